import { useEffect, useState } from 'preact/hooks';
import { api, errorText, findMessage, joinRoom, navigate, openRoom, openThread, resolveRoom, searchMessages, setFavorite, store, toast, uploadFile } from '../app';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import type { Message, Subscription } from '../types';
import { Avatar } from './Avatar';
import { Composer } from './Composer';
import { MessageItem } from './MessageItem';
import { MessageList } from './MessageList';

function Typing({ rid }: { rid: string }) {
  const who = useSelect(store, (s) => s.typing[rid] ?? []);
  if (who.length === 0) return <div class="typing" aria-hidden="true" />;
  const names = who.length > 3 ? `${who.slice(0, 3).join(', ')} and others` : who.join(', ');
  return (
    <div class="typing" role="status">
      <strong>{names}</strong> {who.length === 1 ? 'is' : 'are'} typing…
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
  const close = () => navigate(roomRoute(sub.t, sub.name, sub.rid));
  return (
    <aside class="thread-panel" aria-label="Thread">
      <header class="panel-header">
        <h2>Thread</h2>
        <button class="icon" aria-label="Close thread" onClick={close}>✕</button>
      </header>
      <div class="thread-messages" role="list">
        {shownParent && <MessageItem m={shownParent} grouped={false} inThread />}
        <div class="thread-divider">
          {shownReplies.length} {shownReplies.length === 1 ? 'reply' : 'replies'}
        </div>
        {shownReplies.map((m) => (
          <MessageItem key={m._id} m={m} grouped={false} inThread onEdit={setEditing} />
        ))}
      </div>
      <Composer rid={sub.rid} tmid={tmid} placeholder="Reply in thread" editing={editing} setEditing={setEditing} list={replies ?? []} />
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
    <aside class="thread-panel" aria-label="Search messages">
      <header class="panel-header">
        <h2>Search messages</h2>
        <button class="icon" aria-label="Close search" onClick={onClose}>✕</button>
      </header>
      <input class="search panel-search" type="search" placeholder="Search messages" aria-label="Search messages" value={text} onInput={(e) => setText(e.currentTarget.value)} autofocus />
      <div class="thread-messages" role="list">
        {results?.length === 0 && <p class="empty-results">No messages found</p>}
        {results?.map((m) => <MessageItem key={m._id} m={m} grouped={false} inThread />)}
      </div>
    </aside>
  );
}

function Header({ sub, onSearch }: { sub: Subscription; onSearch: () => void }) {
  const room = useSelect(store, (s) => s.rooms[sub.rid]);
  const me = useSelect(store, (s) => s.me!);
  const partner = room?.uids?.find((u) => u !== me._id);
  const status = useSelect(store, (s) => (partner ? (s.presence[partner] ?? 'offline') : undefined));
  return (
    <header class="room-header">
      {sub.t === 'd' ? <Avatar username={sub.name} size={28} status={status} /> : <span class="room-icon big">{sub.t === 'p' ? '🔒' : '#'}</span>}
      <div class="room-title">
        <h1>{sub.fname || sub.name}</h1>
        {room?.topic ? <p class="topic">{room.topic}</p> : sub.t === 'd' && status ? <p class="topic">{status}</p> : null}
      </div>
      {room?.usersCount !== undefined && sub.t !== 'd' && <span class="members" title="Members">👤 {room.usersCount}</span>}
      <button
        class={`icon favorite${sub.f ? ' on' : ''}`}
        aria-pressed={!!sub.f}
        aria-label={sub.f ? 'Remove from favorites' : 'Add to favorites'}
        title={sub.f ? 'Remove from favorites' : 'Add to favorites'}
        onClick={() => setFavorite(sub, !sub.f).catch((e) => toast(errorText(e)))}
      >
        {sub.f ? '★' : '☆'}
      </button>
      <button class="icon" aria-label="Search messages" title="Search messages" onClick={onSearch}>⌕</button>
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
  if (error) return <div class="empty-room"><p>Room not found: {name}</p></div>;
  if (!room) return <div class="empty-room"><p>Loading…</p></div>;
  return (
    <div class="empty-room">
      <h2>{kind === 'group' ? '🔒' : '#'} {room.fname ?? room.name}</h2>
      {room.topic && <p>{room.topic}</p>}
      <button class="primary" onClick={() => joinRoom(room._id, room.t, room.name).catch((e) => setError(errorText(e)))}>Join</button>
    </div>
  );
}

export function RoomView() {
  const route = useSelect(store, (s) => s.route);
  const sub = useSelect(store, (s) => resolveRoom(s.route, s));
  const room = useSelect(store, (s) => (sub ? s.rooms[sub.rid] : undefined));
  const [editing, setEditing] = useState<Message | null>(null);
  const [dragging, setDragging] = useState(false);
  const [searching, setSearching] = useState(false);
  const list = useSelect(store, (s) => (sub ? s.messages[sub.rid]?.list : undefined));

  useEffect(() => {
    if (sub) void openRoom(sub.rid);
    setEditing(null);
    setSearching(false);
  }, [sub?.rid]);

  if (route.name !== 'room') return null;
  if (!sub) return <JoinGate kind={route.kind} name={route.key} />;
  const tmid = route.tmid;
  return (
    <div class="room-and-panel">
      <section
        class={`room${dragging ? ' dragging' : ''}`}
        aria-label={`Room ${sub.fname || sub.name}`}
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
        <Header sub={sub} onSearch={() => setSearching(!searching)} />
        <MessageList sub={sub} onEdit={setEditing} />
        <Typing rid={sub.rid} />
        <Composer
          rid={sub.rid}
          placeholder={`Message ${sub.t === 'd' ? '@' : '#'}${sub.fname || sub.name}`}
          editing={editing}
          setEditing={setEditing}
          list={list ?? []}
          readOnly={room?.ro && !(sub.roles ?? []).includes('owner')}
        />
        {dragging && <div class="drop-hint">Drop files to upload</div>}
      </section>
      {tmid ? <ThreadPanel sub={sub} tmid={tmid} /> : searching && <SearchPanel sub={sub} onClose={() => setSearching(false)} />}
    </div>
  );
}
