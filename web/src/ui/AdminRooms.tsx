// Administration → Rooms: every room of the workspace (`rooms.adminRooms`, the server decides
// who may see it: `view-room-administration`), filtered by type and name, and a room's settings
// edited through `rooms.saveRoomSettings`.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText, navigate, toast } from '../app';
import { t } from '../i18n';
import { roomRoute } from '../router';

interface AdminRoom {
  _id: string;
  t: 'c' | 'p' | 'd' | 'l';
  name?: string;
  fname?: string;
  usernames?: string[];
  usersCount?: number;
  msgs?: number;
  topic?: string;
  announcement?: string;
  description?: string;
  ro?: boolean;
  default?: boolean;
  archived?: boolean;
  teamMain?: boolean;
}

const TYPES: [string, string][] = [
  ['c', 'Channels'],
  ['p', 'Private groups'],
  ['d', 'Direct messages'],
];

function roomLabel(r: AdminRoom): string {
  return r.t === 'd' ? (r.usernames ?? []).join(', ') : (r.fname ?? r.name ?? r._id);
}

function typeLabel(r: AdminRoom): string {
  if (r.teamMain) return t('Team');
  return t(r.t === 'p' ? 'Private group' : r.t === 'd' ? 'Direct message' : 'Channel');
}

/** The settings of one room, saved with the fields that changed only. */
function RoomSettings({ room, onSaved, onClose }: { room: AdminRoom; onSaved: () => void; onClose: () => void }) {
  const initial = {
    roomName: room.name ?? '',
    roomTopic: room.topic ?? '',
    roomAnnouncement: room.announcement ?? '',
    roomDescription: room.description ?? '',
    roomType: room.t,
    readOnly: !!room.ro,
    default: !!room.default,
  };
  const [draft, setDraft] = useState(initial);
  const [error, setError] = useState('');
  const set = <K extends keyof typeof initial>(key: K, value: (typeof initial)[K]) => setDraft({ ...draft, [key]: value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setError('');
    const changed = Object.fromEntries(Object.entries(draft).filter(([k, v]) => initial[k as keyof typeof initial] !== v));
    if (Object.keys(changed).length === 0) return onClose();
    try {
      await api.post('rooms.saveRoomSettings', { rid: room._id, ...changed });
      toast(t('Room saved'));
      onSaved();
    } catch (err) {
      setError(errorText(err));
    }
  };
  const direct = room.t === 'd';
  return (
    <form class="admin-form room-settings" aria-label={t('Room settings')} onSubmit={submit}>
      <h2>{roomLabel(room)}</h2>
      {!direct && (
        <>
          <label>{t('Name')} <input name="room-name" value={draft.roomName} onInput={(e) => set('roomName', e.currentTarget.value)} required /></label>
          <label>{t('Topic')} <input name="room-topic" value={draft.roomTopic} onInput={(e) => set('roomTopic', e.currentTarget.value)} /></label>
          <label>{t('Announcement')} <input name="room-announcement" value={draft.roomAnnouncement} onInput={(e) => set('roomAnnouncement', e.currentTarget.value)} /></label>
          <label>{t('Description')} <input name="room-description" value={draft.roomDescription} onInput={(e) => set('roomDescription', e.currentTarget.value)} /></label>
          <label class="check">
            <input type="checkbox" name="room-private" checked={draft.roomType === 'p'} onChange={(e) => set('roomType', e.currentTarget.checked ? 'p' : 'c')} /> {t('Private')}
          </label>
          <label class="check">
            <input type="checkbox" name="room-default" checked={draft.default} onChange={(e) => set('default', e.currentTarget.checked)} /> {t('Default (new users join it)')}
          </label>
        </>
      )}
      <label class="check">
        <input type="checkbox" name="room-readonly" checked={draft.readOnly} onChange={(e) => set('readOnly', e.currentTarget.checked)} /> {t('Read only')}
      </label>
      {error && <p class="form-error" role="alert">{error}</p>}
      <div class="row-actions">
        <button class="primary" type="submit">{t('Save')}</button>
        <button type="button" onClick={onClose}>{t('Cancel')}</button>
        {!direct && room.name && (
          <button type="button" onClick={() => navigate(roomRoute(room.t, room.name!, room._id))}>{t('Open room')}</button>
        )}
      </div>
    </form>
  );
}

export function AdminRooms() {
  const [rooms, setRooms] = useState<AdminRoom[]>([]);
  const [total, setTotal] = useState(0);
  const [filter, setFilter] = useState('');
  const [types, setTypes] = useState<string[]>([]);
  const [editing, setEditing] = useState<AdminRoom | null>(null);
  const [error, setError] = useState('');
  const load = () => {
    const qs = new URLSearchParams({ count: '100' });
    if (filter.trim()) qs.set('filter', filter.trim());
    types.forEach((x) => qs.append('types[]', x));
    return api.get(`rooms.adminRooms?${qs}`).then(
      (r) => {
        setRooms(r.rooms ?? []);
        setTotal(r.total ?? 0);
        setError('');
      },
      (e) => setError(errorText(e)),
    );
  };
  useEffect(() => {
    const timer = setTimeout(() => void load(), 200);
    return () => clearTimeout(timer);
  }, [filter, types.join()]);
  return (
    <div class="admin-rooms">
      <div class="admin-filters">
        <input class="search" type="search" placeholder={t('Search rooms')} aria-label={t('Search rooms')} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <fieldset class="role-editor" aria-label={t('Room types')}>
          {TYPES.map(([code, label]) => (
            <label key={code} class="check">
              <input type="checkbox" name={`type-${code}`} checked={types.includes(code)} onChange={(e) => setTypes(e.currentTarget.checked ? [...types, code] : types.filter((x) => x !== code))} /> {t(label)}
            </label>
          ))}
        </fieldset>
      </div>
      {error && <p class="form-error" role="alert">{error}</p>}
      {editing && (
        <RoomSettings
          key={editing._id}
          room={editing}
          onClose={() => setEditing(null)}
          onSaved={() => {
            setEditing(null);
            void load();
          }}
        />
      )}
      <p class="admin-count">{t('{n} rooms', { n: total })}</p>
      <table class="admin-table">
        <thead>
          <tr><th>{t('Name')}</th><th>{t('Type')}</th><th>{t('Users')}</th><th>{t('Messages')}</th><th>{t('Settings')}</th><th /></tr>
        </thead>
        <tbody>
          {rooms.map((r) => (
            <tr key={r._id} data-room={r.name ?? r._id}>
              <td>{roomLabel(r)}</td>
              <td>{typeLabel(r)}</td>
              <td>{r.usersCount ?? 0}</td>
              <td>{r.msgs ?? 0}</td>
              <td>
                {r.default && <span class="role-tag">{t('default')}</span>}
                {r.ro && <span class="role-tag">{t('read only')}</span>}
                {r.archived && <span class="role-tag">{t('archived')}</span>}
              </td>
              <td class="row-actions">
                <button onClick={() => setEditing(r)} aria-label={t('Edit {room}', { room: roomLabel(r) })}>{t('Edit')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
