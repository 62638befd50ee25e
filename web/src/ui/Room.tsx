import { useEffect, useState } from 'preact/hooks';
import { api, errorText, findMessage, joinRoom, navigate, openRoom, openThread, resolveRoom, searchMessages, setFavorite, store, toast, uploadFile } from '../app';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import type { Message, Subscription } from '../types';
import { BackToRooms } from './BackToRooms';
import { Avatar } from './Avatar';
import { Composer } from './Composer';
import { MessageItem } from './MessageItem';
import { MessageList } from './MessageList';
import { TeamPanel } from './TeamPanel';
import { t } from '../i18n';

function Typing({ rid }: { rid: string }) {
  const who = useSelect(store, (s) => s.typing[rid] ?? []);
  if (who.length === 0) return <div class="typing" aria-hidden="true" />;
  const names = who.length > 3 ? `${who.slice(0, 3).join(', ')} and others` : who.join(', ');
  return (
    <div class="typing" role="status">
      {t(who.length === 1 ? '{names} is typing…' : '{names} are typing…', { names })}
    </div>
  );
}

function ThreadPanel({ sub, tmid }: { sub: Subscription; tmid: string }) {
  const replies = useSelect(store, (s) => s.threads[tmid]);
  const [parent, setParent] = useState<Message | undefined>();
  const [editing, setEditing] = useState<Message | null>(null);
  const liveParent = useSelect(store, (s) => s.messages[sub.rid]?.list.find((m) => m._id === tmid));
  useEffect(() => {
    void findMessage(tmid).then(setParent);
    void openThread(tmid);
  }, [tmid]);
  const shownParent = liveParent ?? parent;
  const shownReplies = (replies ?? []).filter((m) => m._id !== tmid);
  // A link to a reply (`…/thread/<tmid>?msg=<reply>`): the reply is brought into view, marked.
  const linked = useSelect(store, (s) => (s.route.name === 'room' ? s.route.msg : undefined));
  const linkedLoaded = !!linked && shownReplies.some((m) => m._id === linked);
  useEffect(() => {
    if (!linkedLoaded) return;
    document.querySelector(`.thread-panel .message[data-id="${CSS.escape(linked!)}"]`)?.scrollIntoView({ block: 'center' });
  }, [linked, linkedLoaded]);
  const close = () => navigate(roomRoute(sub.t, sub.name, sub.rid));
  return (
    <aside class="thread-panel" aria-label={t('Thread')}>
      <header class="panel-header">
        <h2>{t('Thread')}</h2>
        <button class="icon" aria-label={t('Close thread')} onClick={close}>✕</button>
      </header>
      <div class="thread-messages" role="list">
        {shownParent && <MessageItem m={shownParent} grouped={false} inThread />}
        <div class="thread-divider">
          {t(shownReplies.length === 1 ? '{n} reply' : '{n} replies', { n: shownReplies.length })}
        </div>
        {shownReplies.map((m) => (
          <MessageItem key={m._id} m={m} grouped={false} inThread onEdit={setEditing} highlighted={m._id === linked} />
        ))}
      </div>
      <Composer rid={sub.rid} tmid={tmid} placeholder={t('Reply in thread')} editing={editing} setEditing={setEditing} list={replies ?? []} />
    </aside>
  );
}

function SearchPanel({ sub, onClose }: { sub: Subscription; onClose: () => void }) {
  const [text, setText] = useState('');
  const [results, setResults] = useState<Message[] | null>(null);
  useEffect(() => {
    if (!text.trim()) {
      setResults(null);
      return;
    }
    const t = setTimeout(() => {
      searchMessages(sub.rid, text.trim()).then(setResults, (e) => toast(errorText(e)));
    }, 250);
    return () => clearTimeout(t);
  }, [text, sub.rid]);
  return (
    <aside class="thread-panel" aria-label={t('Search messages')}>
      <header class="panel-header">
        <h2>{t('Search messages')}</h2>
        <button class="icon" aria-label={t('Close search')} onClick={onClose}>✕</button>
      </header>
      <input class="search panel-search" type="search" placeholder={t('Search messages')} aria-label={t('Search messages')} value={text} onInput={(e) => setText(e.currentTarget.value)} autofocus />
      <div class="thread-messages" role="list">
        {results?.length === 0 && <p class="empty-results">{t('No messages found')}</p>}
        {results?.map((m) => <MessageItem key={m._id} m={m} grouped={false} inThread />)}
      </div>
    </aside>
  );
}

function Header({ sub, onSearch, onTeam }: { sub: Subscription; onSearch: () => void; onTeam: () => void }) {
  const room = useSelect(store, (s) => s.rooms[sub.rid]);
  const me = useSelect(store, (s) => s.me!);
  // A room of a team names its team (when the user is in the team's main room).
  const team = useSelect(store, (s) =>
    room?.teamId && !room.teamMain ? Object.values(s.rooms).find((r) => r.teamMain && r.teamId === room.teamId) : undefined,
  );
  const partner = room?.uids?.find((u) => u !== me._id);
  const status = useSelect(store, (s) => (partner ? (s.presence[partner] ?? 'offline') : undefined));
  return (
    <header class="room-header">
      <BackToRooms />
      {sub.t === 'd' ? <Avatar username={sub.name} size={28} status={status} /> : <span class="room-icon big">{room?.teamMain ? '👥' : sub.t === 'p' ? '🔒' : '#'}</span>}
      <div class="room-title">
        <h1>{sub.fname || sub.name}</h1>
        {team?.name && (
          <a
            class="team-link"
            href={`/${team.t === 'p' ? 'group' : 'channel'}/${encodeURIComponent(team.name)}`}
            onClick={(e) => {
              e.preventDefault();
              navigate(roomRoute(team.t, team.name!, team._id));
            }}
          >
            👥 {team.fname ?? team.name}
          </a>
        )}
        {room?.topic ? <p class="topic">{room.topic}</p> : sub.t === 'd' && status ? <p class="topic">{status}</p> : null}
      </div>
      {room?.usersCount !== undefined && sub.t !== 'd' && <span class="members" title={t('Members')}>👤 {room.usersCount}</span>}
      <button
        class={`icon favorite${sub.f ? ' on' : ''}`}
        aria-pressed={!!sub.f}
        aria-label={t(sub.f ? 'Remove from favorites' : 'Add to favorites')}
        title={t(sub.f ? 'Remove from favorites' : 'Add to favorites')}
        onClick={() => setFavorite(sub, !sub.f).catch((e) => toast(errorText(e)))}
      >
        {sub.f ? '★' : '☆'}
      </button>
      {room?.teamMain && room.teamId && (
        <button class="icon" aria-label={t('Team')} title={t('Team')} onClick={onTeam}>👥</button>
      )}
      <button class="icon" aria-label={t('Search messages')} title={t('Search messages')} onClick={onSearch}>⌕</button>
    </header>
  );
}

function JoinGate({ kind, name }: { kind: string; name: string }) {
  const [room, setRoom] = useState<any>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    setRoom(null);
    setError('');
    api.get('rooms.info', { roomName: name }).then((r) => setRoom(r.room), (e) => setError(errorText(e)));
  }, [name]);
  if (error) return <div class="empty-room"><p>{t('Room not found: {name}', { name })}</p></div>;
  if (!room) return <div class="empty-room"><p>{t('Loading…')}</p></div>;
  return (
    <div class="empty-room">
      <h2>{kind === 'group' ? '🔒' : '#'} {room.fname ?? room.name}</h2>
      {room.topic && <p>{room.topic}</p>}
      <button class="primary" onClick={() => joinRoom(room._id, room.t, room.name).catch((e) => setError(errorText(e)))}>{t('Join')}</button>
    </div>
  );
}

export function RoomView() {
  const route = useSelect(store, (s) => s.route);
  const sub = useSelect(store, (s) => resolveRoom(s.route, s));
  const room = useSelect(store, (s) => (sub ? s.rooms[sub.rid] : undefined));
  const [editing, setEditing] = useState<Message | null>(null);
  const [dragging, setDragging] = useState(false);
  const [panel, setPanel] = useState<'search' | 'team' | null>(null);
  const [quoting, setQuoting] = useState<Message[]>([]);
  const list = useSelect(store, (s) => (sub ? s.messages[sub.rid]?.list : undefined));

  useEffect(() => {
    if (sub) void openRoom(sub.rid);
    setEditing(null);
    setPanel(null);
    setQuoting([]);
  }, [sub?.rid]);

  if (route.name !== 'room') return null;
  if (!sub) return <JoinGate kind={route.kind} name={route.key} />;
  const tmid = route.tmid;
  return (
    <div class="room-and-panel">
      <section
        class={`room${dragging ? ' dragging' : ''}`}
        aria-label={t('Room {name}', { name: sub.fname || sub.name })}
        onDragOver={(e) => {
          if (e.dataTransfer?.types.includes('Files')) {
            e.preventDefault();
            setDragging(true);
          }
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          [...(e.dataTransfer?.files ?? [])].forEach((f) => uploadFile(sub.rid, f));
        }}
      >
        <Header
          sub={sub}
          onSearch={() => setPanel(panel === 'search' ? null : 'search')}
          onTeam={() => setPanel(panel === 'team' ? null : 'team')}
        />
        <MessageList key={sub.rid} sub={sub} onEdit={setEditing} onQuote={(m) => setQuoting((q) => (q.some((x) => x._id === m._id) ? q : [...q, m]))} />
        <Typing rid={sub.rid} />
        <Composer
          rid={sub.rid}
          placeholder={t('Message {room}', { room: `${sub.t === 'd' ? '@' : '#'}${sub.fname || sub.name}` })}
          editing={editing}
          setEditing={setEditing}
          list={list ?? []}
          quoting={quoting}
          setQuoting={setQuoting}
          readOnly={room?.ro && !(sub.roles ?? []).includes('owner')}
        />
        {dragging && <div class="drop-hint">{t('Drop files to upload')}</div>}
      </section>
      {tmid ? (
        <ThreadPanel sub={sub} tmid={tmid} />
      ) : panel === 'search' ? (
        <SearchPanel sub={sub} onClose={() => setPanel(null)} />
      ) : (
        panel === 'team' && room?.teamId && <TeamPanel room={room} onClose={() => setPanel(null)} />
      )}
    </div>
  );
}
