import { useEffect, useState } from 'preact/hooks';
import { errorText, navigate, store } from '../app';
import { t } from '../i18n';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import { addTeamMember, addTeamRoom, removeTeamMember, removeTeamRoom, teamMembers, teamRooms, type TeamMember } from '../teams';
import type { Room } from '../types';
import { Avatar } from './Avatar';

/** A list loaded from the server, reloaded after each change made through the panel. */
function useList<T>(load: () => Promise<T[]>, key: string) {
  const [items, setItems] = useState<T[] | null>(null);
  const [error, setError] = useState('');
  const reload = () => load().then(setItems, (e) => setError(errorText(e)));
  useEffect(() => {
    setItems(null);
    setError('');
    void reload();
  }, [key]);
  /** Runs a change, then reloads; a refusal is shown in the panel. */
  const change = async (action: () => Promise<void>) => {
    setError('');
    try {
      await action();
      await reload();
    } catch (e) {
      setError(errorText(e));
    }
  };
  return { items, error, change };
}

function AddForm({ label, name, onAdd }: { label: string; name: string; onAdd: (value: string) => Promise<void> }) {
  const [value, setValue] = useState('');
  return (
    <form
      class="panel-add"
      aria-label={label}
      onSubmit={(e) => {
        e.preventDefault();
        if (value.trim()) void onAdd(value).then(() => setValue(''));
      }}
    >
      <input name={name} value={value} placeholder={label} aria-label={label} onInput={(e) => setValue(e.currentTarget.value)} />
      <button type="submit">{t('Add')}</button>
    </form>
  );
}

function TeamRooms({ teamId, mainRid }: { teamId: string; mainRid: string }) {
  const { items, error, change } = useList<Room>(() => teamRooms(teamId), teamId);
  const rooms = (items ?? []).filter((r) => r._id !== mainRid);
  return (
    <>
      <AddForm label={t('Add an existing room')} name="team-add-room" onAdd={(name) => change(() => addTeamRoom(teamId, name))} />
      {error && <p class="form-error" role="alert">{error}</p>}
      {items && rooms.length === 0 && <p class="empty-results">{t('No rooms in this team yet')}</p>}
      <ul class="directory panel-list" role="list" aria-label={t('Team channels')}>
        {rooms.map((r) => (
          <li key={r._id} data-room={r.name}>
            <span class="room-icon" aria-hidden="true">{r.t === 'p' ? '🔒' : '#'}</span>
            <a class="grow" href={`/${r.t === 'p' ? 'group' : 'channel'}/${encodeURIComponent(r.name ?? '')}`} onClick={(e) => {
              e.preventDefault();
              navigate(roomRoute(r.t, r.name ?? '', r._id));
            }}>
              {r.fname ?? r.name}
            </a>
            <button onClick={() => change(() => removeTeamRoom(teamId, r._id))} aria-label={t('Remove {name} from the team', { name: r.name ?? '' })}>
              {t('Remove')}
            </button>
          </li>
        ))}
      </ul>
    </>
  );
}

function TeamMembers({ teamId }: { teamId: string }) {
  const me = useSelect(store, (s) => s.me!);
  const { items, error, change } = useList<TeamMember>(() => teamMembers(teamId), teamId);
  return (
    <>
      <AddForm label={t('Add a member by username')} name="team-add-member" onAdd={(name) => change(() => addTeamMember(teamId, name))} />
      {error && <p class="form-error" role="alert">{error}</p>}
      <ul class="directory panel-list" role="list" aria-label={t('Members')}>
        {(items ?? []).map((m) => (
          <li key={m.user._id} data-username={m.user.username}>
            <Avatar username={m.user.username} size={24} />
            <span class="grow">
              <strong>{m.user.name || m.user.username}</strong> <small>@{m.user.username}</small>
              {(m.roles ?? []).filter((r) => r !== 'member').map((r) => <span key={r} class="role-tag">{r}</span>)}
            </span>
            {m.user._id !== me._id && (
              <button onClick={() => change(() => removeTeamMember(teamId, m.user._id))} aria-label={t('Remove {name} from the team', { name: m.user.username })}>
                {t('Remove')}
              </button>
            )}
          </li>
        ))}
      </ul>
    </>
  );
}

/** The side panel of a team's main room: its rooms and its members. */
export function TeamPanel({ room, onClose }: { room: Room; onClose: () => void }) {
  const [tab, setTab] = useState<'rooms' | 'members'>('rooms');
  const teamId = room.teamId!;
  return (
    <aside class="thread-panel team-panel" aria-label={t('Team')}>
      <header class="panel-header">
        <h2>👥 {room.fname ?? room.name}</h2>
        <button class="icon" aria-label={t('Close')} onClick={onClose}>✕</button>
      </header>
      <div class="tabs panel-tabs" role="tablist">
        <button role="tab" aria-selected={tab === 'rooms'} class={tab === 'rooms' ? 'active' : ''} onClick={() => setTab('rooms')}>{t('Team channels')}</button>
        <button role="tab" aria-selected={tab === 'members'} class={tab === 'members' ? 'active' : ''} onClick={() => setTab('members')}>{t('Members')}</button>
      </div>
      <div class="panel-body" role="tabpanel">
        {tab === 'rooms' ? <TeamRooms teamId={teamId} mainRid={room._id} /> : <TeamMembers teamId={teamId} />}
      </div>
    </aside>
  );
}
