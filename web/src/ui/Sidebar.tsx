import { useMemo, useState } from 'preact/hooks';
import { enableNotifications, errorText, isAdmin, logout, navigate, notificationsWanted, resolveRoom, setStatus, store, toast } from '../app';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import type { Room, Subscription } from '../types';
import { Avatar } from './Avatar';
import { CreateChannel, Directory, DirectMessage } from './Modals';
import { t } from '../i18n';

function partnerId(room: Room | undefined, myId: string): string | undefined {
  return room?.uids?.find((u) => u !== myId);
}

function Item({ sub, active }: { sub: Subscription; active: boolean }) {
  const room = useSelect(store, (s) => s.rooms[sub.rid]);
  const me = useSelect(store, (s) => s.me!);
  const status = useSelect(store, (s) => {
    const p = partnerId(s.rooms[sub.rid], me._id);
    return p ? (s.presence[p] ?? 'offline') : undefined;
  });
  const unread = sub.unread ?? 0;
  const mentions = (sub.userMentions ?? 0) + (sub.groupMentions ?? 0);
  const bold = unread > 0 || sub.alert;
  const label = sub.t === 'd' ? sub.fname || sub.name : sub.fname || sub.name;
  return (
    <li>
      <a
        href={`/${sub.t === 'd' ? 'direct' : sub.t === 'p' ? 'group' : 'channel'}/${encodeURIComponent(sub.t === 'd' ? sub.rid : sub.name)}`}
        class={`room-item${active ? ' active' : ''}${bold ? ' unread' : ''}`}
        aria-current={active ? 'page' : undefined}
        data-room={sub.name}
        onClick={(e) => {
          e.preventDefault();
          navigate(roomRoute(sub.t, sub.name, sub.rid));
        }}
      >
        {sub.t === 'd' ? (
          <Avatar username={sub.name} size={20} status={status} />
        ) : (
          <span class="room-icon" aria-hidden="true">{room?.teamMain ? '👥' : sub.t === 'p' ? '🔒' : '#'}</span>
        )}
        <span class="room-name">{label}</span>
        {unread > 0 && (
          <span class={`badge${mentions > 0 ? ' badge-mention' : ''}`} aria-label={mentions ? t('{n} unread, {m} mentions', { n: unread, m: mentions }) : t('{n} unread', { n: unread })}>
            {mentions > 0 ? `@${unread}` : unread}
          </span>
        )}
      </a>
    </li>
  );
}

export function Sidebar() {
  const me = useSelect(store, (s) => s.me!);
  const subs = useSelect(store, (s) => s.subs);
  const rooms = useSelect(store, (s) => s.rooms);
  const route = useSelect(store, (s) => s.route);
  const activeRid = useSelect(store, (s) => resolveRoom(s.route, s)?.rid);
  const [filter, setFilter] = useState('');
  const [modal, setModal] = useState<'create' | 'team' | 'dm' | 'directory' | null>(null);
  const [menu, setMenu] = useState(false);
  const sections = useMemo(() => {
    const f = filter.trim().toLowerCase();
    const list = Object.values(subs)
      .filter((s) => s.open !== false)
      .filter((s) => !f || (s.fname ?? s.name).toLowerCase().includes(f) || s.name.toLowerCase().includes(f))
      .sort((a, b) => (a.fname ?? a.name).localeCompare(b.fname ?? b.name));
    const isTeam = (s: Subscription) => !!rooms[s.rid]?.teamMain;
    return [
      { title: t('Favorites'), items: list.filter((s) => s.f) },
      { title: t('Teams'), items: list.filter((s) => !s.f && isTeam(s)) },
      { title: t('Channels'), items: list.filter((s) => !s.f && s.t !== 'd' && !isTeam(s)) },
      { title: t('Direct messages'), items: list.filter((s) => !s.f && s.t === 'd') },
    ].filter((s) => s.items.length > 0);
  }, [subs, rooms, filter]);

  return (
    <nav class="sidebar" aria-label={t('Rooms')}>
      <header class="sidebar-header">
        <button class="me" aria-haspopup="menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>
          <Avatar username={me.username} size={28} status={me.status && me.status !== 'offline' ? me.status : 'online'} />
          <span>{me.username}</span>
        </button>
        <div class="sidebar-actions">
          <button class="icon" title={t('Directory')} aria-label={t('Directory')} onClick={() => setModal('directory')}>⌕</button>
          <button class="icon" title={t('Direct message')} aria-label={t('Direct message')} onClick={() => setModal('dm')}>✉</button>
          <button class="icon" title={t('Create channel')} aria-label={t('Create channel')} onClick={() => setModal('create')}>✎</button>
          <button class="icon" title={t('Create team')} aria-label={t('Create team')} onClick={() => setModal('team')}>👥</button>
        </div>
        {menu && (
          <ul class="menu" role="menu" onClick={() => setMenu(false)}>
            {(['online', 'away', 'busy', 'offline'] as const).map((st) => (
              <li role="none" key={st}>
                <button role="menuitemradio" aria-checked={(me.status ?? 'online') === st} onClick={() => setStatus(st).catch((e) => toast(errorText(e)))}>
                  <span class={`presence-inline presence-${st}`} /> {t(st[0].toUpperCase() + st.slice(1))}
                </button>
              </li>
            ))}
            <li role="separator" class="menu-separator" />
            <li role="none">
              <button role="menuitem" onClick={() => navigate({ name: 'account', section: 'security' })}>{t('My account')}</button>
            </li>
            {isAdmin() && (
              <li role="none">
                <button role="menuitem" onClick={() => navigate({ name: 'admin', section: 'users' })}>{t('Administration')}</button>
              </li>
            )}
            {notificationsWanted() && (
              <li role="none">
                <button role="menuitem" onClick={() => void enableNotifications()}>{t('Enable desktop notifications')}</button>
              </li>
            )}
            <li role="none">
              <button role="menuitem" onClick={() => void logout()}>{t('Logout')}</button>
            </li>
          </ul>
        )}
      </header>
      <input class="search" type="search" placeholder={t('Search')} aria-label={t('Search rooms')} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <div class="room-sections">
        {sections.map((sec) => (
          <section key={sec.title} aria-label={sec.title}>
            <h3>{sec.title}</h3>
            <ul role="list">
              {sec.items.map((s) => (
                <Item key={s.rid} sub={s} active={route.name === 'room' && s.rid === activeRid} />
              ))}
            </ul>
          </section>
        ))}
      </div>
      {modal === 'create' && <CreateChannel onClose={() => setModal(null)} />}
      {modal === 'team' && <CreateChannel team onClose={() => setModal(null)} />}
      {modal === 'dm' && <DirectMessage onClose={() => setModal(null)} />}
      {modal === 'directory' && <Directory onClose={() => setModal(null)} />}
    </nav>
  );
}
