// The client's session: who is logged in, the sidebar, the rooms' messages, live updates.
// Everything goes through the public REST API (`Api`) and DDP (`DdpClient`); components read
// `store` and call the actions exported here.

import { Api, ApiError } from './api';
import { DdpClient, DdpError, type DdpStatus } from './ddp';
import { toDate } from './ejson';
import { describeError, errorCode } from './errors';
import { inMainList, merge, normalise, remove } from './messages';
import { href, parse, roomRoute, type Route } from './router';
import { t } from './i18n';
import { Store } from './store';
import type { Me, Message, Room, Subscription } from './types';

export interface RoomMessages {
  list: Message[];
  /** Older messages exist on the server. */
  hasMore: boolean;
  loading: boolean;
  /**
   * The list is a window of history opened around a message (`?msg=`): newer messages exist
   * between it and the live end. Live messages are not added until the window reaches the end.
   */
  hasNewer?: boolean;
  loadingNewer?: boolean;
}

export interface Upload {
  id: string;
  rid: string;
  name: string;
  progress: number;
  error?: string;
}

export interface State {
  booting: boolean;
  me: Me | null;
  connection: DdpStatus;
  route: Route;
  subs: Record<string, Subscription>;
  rooms: Record<string, Room>;
  messages: Record<string, RoomMessages>;
  threads: Record<string, Message[]>;
  typing: Record<string, string[]>;
  presence: Record<string, string>;
  uploads: Upload[];
  toast: string | null;
  /**
   * Per room: when the user last read it, as it was when the room was opened with unread
   * messages (reading it moves the subscription's `ls` on, so the unread line needs the old one).
   */
  unreadSince: Record<string, Date>;
  /**
   * The user's role makes two-factor authentication mandatory and none is set up: the server
   * refuses all but the set-up (`error-two-factor-setup-required`), so the client shows only that.
   */
  setupRequired: boolean;
}

export const api = new Api();
export const ddp = new DdpClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/websocket`);

export const store = new Store<State>({
  booting: true,
  me: null,
  connection: 'offline',
  route: parse(location.pathname, location.search),
  subs: {},
  rooms: {},
  messages: {},
  threads: {},
  typing: {},
  presence: {},
  uploads: [],
  toast: null,
  unreadSince: {},
  setupRequired: false,
});

const TOKEN_KEY = 'Meteor.loginToken';
const USER_KEY = 'Meteor.userId';
const PAGE = 50;

// ---- navigation -----------------------------------------------------------------------------

export function navigate(route: Route, replace = false): void {
  const url = href(route);
  if (url !== location.pathname + location.search) {
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
  }
  store.update(() => ({ route }));
}

// A lost network often closes no socket: going offline makes the client check its connection
// at once, coming back reconnects without waiting out the back-off (then resumes and catches up).
window.addEventListener('offline', () => ddp.probe(3000));
window.addEventListener('online', () => ddp.reconnectNow());

window.addEventListener('popstate', () => store.update(() => ({ route: parse(location.pathname, location.search) })));

export function toast(message: string): void {
  store.update(() => ({ toast: message }));
  setTimeout(() => store.update((s) => (s.toast === message ? { toast: null } : {})), 5000);
}

/** An error as the user reads it: known server codes in the user's language (`errors.ts`). */
export function errorText(e: unknown): string {
  return describeError(e);
}

// ---- session ------------------------------------------------------------------------------------

/** Restores a stored session, if any. */
export async function boot(): Promise<void> {
  api.onUnauthorized = () => void endSession();
  const token = localStorage.getItem(TOKEN_KEY);
  const userId = localStorage.getItem(USER_KEY);
  if (token && userId) {
    api.credentials = { userId, token };
    try {
      const me = await api.get('me');
      await startSession(me, token);
    } catch {
      api.credentials = null;
      localStorage.removeItem(TOKEN_KEY);
    }
  }
  store.update((s) => ({ booting: false, route: s.me ? s.route : publicRoute(s.route) }));
}

function publicRoute(route: Route): Route {
  if (route.name === 'login' || route.name === 'register') return route;
  const wanted = href(route);
  if (wanted !== '/home') sessionStorage.setItem('apogee.after-login', wanted);
  history.replaceState(null, '', '/login');
  return { name: 'login' };
}

/** Password login; throws ApiError `totp-required` when a second factor is needed. */
export async function login(user: string, password: string, code?: string): Promise<void> {
  const body: Record<string, string> = { user, password };
  const extra: Record<string, string> = {};
  if (code) {
    body.code = code;
    extra['x-2fa-code'] = code;
  }
  const res = await api.post('login', body, extra);
  const { userId, authToken, me } = res.data;
  localStorage.setItem(TOKEN_KEY, authToken);
  localStorage.setItem(USER_KEY, userId);
  api.credentials = { userId, token: authToken };
  await startSession(me, authToken);
  const after = sessionStorage.getItem('apogee.after-login');
  sessionStorage.removeItem('apogee.after-login');
  navigate(after ? parse(after) : { name: 'home' }, true);
}

export async function register(fields: { name: string; username: string; email: string; pass: string }): Promise<void> {
  await api.post('users.register', fields);
  await login(fields.username, fields.pass);
}

export async function logout(): Promise<void> {
  try {
    await api.post('logout');
  } catch {
    /* the session ends here either way */
  }
  await endSession();
}

/**
 * Rocket.Chat's `rc_uid`/`rc_token` cookies: what lets `<img>` and download links load files
 * when `FileUpload_ProtectFiles` is on (they cannot send headers).
 */
function setFileCookies(creds: { userId: string; token: string } | null): void {
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  const age = creds ? '' : '; Max-Age=0';
  document.cookie = `rc_uid=${creds ? encodeURIComponent(creds.userId) : ''}; Path=/; SameSite=Strict${secure}${age}`;
  document.cookie = `rc_token=${creds ? encodeURIComponent(creds.token) : ''}; Path=/; SameSite=Strict${secure}${age}`;
}

async function endSession(): Promise<void> {
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(USER_KEY);
  setFileCookies(null);
  api.credentials = null;
  ddp.resumeToken = null;
  ddp.close();
  for (const stop of sessionStops.splice(0)) stop();
  openRoomStops.splice(0).forEach((s) => s());
  openRid = null;
  store.update(() => ({ me: null, subs: {}, rooms: {}, messages: {}, threads: {}, typing: {}, presence: {}, uploads: [], unreadSince: {}, setupRequired: false }));
  navigate({ name: 'login' }, true);
}

const sessionStops: (() => void)[] = [];

/** Only the on/off flags of `/me`'s `services`. */
function servicesOf(rawMe: any): Me['services'] {
  return { totp: { enabled: !!rawMe?.services?.totp?.enabled }, email2fa: { enabled: !!rawMe?.services?.email2fa?.enabled } };
}

/**
 * Reads `/me` again for what account changes (second factors) changed; once a required second
 * factor is set up, loads what the server held back until then.
 */
export async function refreshMe(finishSetup = true): Promise<void> {
  const rawMe = await api.get('me');
  const services = servicesOf(rawMe);
  store.update((s) => (s.me ? { me: { ...s.me, services } } : {}));
  if (finishSetup && store.get().setupRequired && (services?.totp?.enabled || services?.email2fa?.enabled)) {
    await loadSidebar();
    store.update(() => ({ setupRequired: false }));
  }
}

async function startSession(rawMe: any, token: string): Promise<void> {
  const me: Me = { _id: rawMe._id, username: rawMe.username, name: rawMe.name, roles: rawMe.roles ?? [], status: rawMe.status, services: servicesOf(rawMe) };
  store.update(() => ({ me }));
  setFileCookies({ userId: me._id, token });
  ddp.resumeToken = token;
  sessionStops.push(ddp.onStatus((connection, resumed) => {
    store.update(() => ({ connection }));
    if (connection === 'connected' && resumed) void resync();
  }));
  const uid = me._id;
  const watch = (event: string, fn: (args: any[]) => void) => {
    const sub = ddp.subscribe('stream-notify-user', `${uid}/${event}`, { useCollection: false, args: [] });
    const off = ddp.on('stream-notify-user', `${uid}/${event}`, fn);
    sessionStops.push(() => {
      off();
      sub.stop();
    });
  };
  watch('subscriptions-changed', ([action, sub]) => onSubscriptionChanged(action, sub));
  watch('rooms-changed', ([action, room]) => onRoomChanged(action, room));
  watch('force_logout', () => void endSession());
  watch('notification', ([n]) => notify(n));
  ddp.connect();
  try {
    await loadSidebar();
  } catch (e) {
    if (errorCode(e) !== 'error-two-factor-setup-required') throw e;
    store.update(() => ({ setupRequired: true }));
  }
}

/** Rooms and subscriptions a stream event changed while a sidebar snapshot was being fetched. */
let changedDuringLoad: { subs: Set<string>; rooms: Set<string> } | null = null;

async function loadSidebar(): Promise<void> {
  const changed = (changedDuringLoad = { subs: new Set(), rooms: new Set() });
  try {
    const [subs, rooms] = await Promise.all([api.get('subscriptions.get'), api.get('rooms.get')]);
    const bySub: Record<string, Subscription> = {};
    for (const s of subs.update as any[]) bySub[s.rid] = normaliseSub(s);
    const byRoom: Record<string, Room> = {};
    for (const r of rooms.update as any[]) byRoom[r._id] = normaliseRoom(r);
    // An event that arrived while the snapshot was on its way is newer than the snapshot.
    store.update((s) => ({
      subs: preferLive(bySub, s.subs, changed.subs),
      rooms: preferLive(byRoom, s.rooms, changed.rooms),
    }));
    watchPresence(Object.values(byRoom).flatMap((r) => r.uids ?? []));
  } finally {
    if (changedDuringLoad === changed) changedDuringLoad = null;
  }
}

/** `snapshot`, except for the `changed` keys, which keep their `live` state (or absence). */
function preferLive<T>(snapshot: Record<string, T>, live: Record<string, T>, changed: Set<string>): Record<string, T> {
  const merged = { ...snapshot };
  for (const key of changed) {
    if (key in live) merged[key] = live[key];
    else delete merged[key];
  }
  return merged;
}

function normaliseSub(s: any): Subscription {
  return { ...s, ls: s.ls ? toDate(s.ls) : undefined, _updatedAt: s._updatedAt ? toDate(s._updatedAt) : undefined };
}

function normaliseRoom(r: any): Room {
  return { ...r, lm: r.lm ? toDate(r.lm) : undefined };
}

function onSubscriptionChanged(action: string, sub: any): void {
  if (!sub?.rid) return;
  changedDuringLoad?.subs.add(sub.rid);
  if (action === 'removed') {
    store.update((s) => {
      const subs = { ...s.subs };
      delete subs[sub.rid];
      return { subs };
    });
    return;
  }
  store.update((s) => ({ subs: { ...s.subs, [sub.rid]: normaliseSub(sub) } }));
  if (!store.get().rooms[sub.rid]) {
    void api.get('rooms.info', { roomId: sub.rid }).then((r) => onRoomChanged('updated', r.room), () => {});
  }
}

function onRoomChanged(action: string, room: any): void {
  if (!room?._id) return;
  changedDuringLoad?.rooms.add(room._id);
  store.update((s) => {
    const rooms = { ...s.rooms };
    if (action === 'removed') delete rooms[room._id];
    else rooms[room._id] = normaliseRoom(room);
    return { rooms };
  });
  if (room.uids) watchPresence(room.uids);
}

/** After the connection came back: what changed while it was down. */
async function resync(): Promise<void> {
  try {
    await loadSidebar();
    if (openRid) await catchUp(openRid);
  } catch (e) {
    toast(errorText(e));
  }
}

// ---- browser notifications -----------------------------------------------------------------------

/** Mentions and direct messages (the server sends only those) as desktop notifications, unless
 * the user is looking at that room. */
function notify(n: any): void {
  if (!n || typeof Notification === 'undefined' || Notification.permission !== 'granted') return;
  const rid = n.payload?.rid;
  if (rid === openRid && document.visibilityState === 'visible') return;
  const note = new Notification(String(n.title ?? 'Apogee'), { body: String(n.text ?? ''), tag: n.payload?._id });
  note.onclick = () => {
    window.focus();
    const sub = rid ? store.get().subs[rid] : undefined;
    if (sub) navigate(roomRoute(sub.t, sub.name, sub.rid));
  };
}

export function notificationsWanted(): boolean {
  return typeof Notification !== 'undefined' && Notification.permission === 'default';
}

export async function enableNotifications(): Promise<void> {
  if (typeof Notification !== 'undefined') await Notification.requestPermission();
}

// ---- presence ---------------------------------------------------------------------------------

const watchedUsers = new Set<string>();
const STATUS = ['offline', 'online', 'away', 'busy', 'disabled'];

function watchPresence(uids: string[]): void {
  const me = store.get().me;
  const fresh = [...new Set(uids)].filter((u) => u && u !== me?._id && !watchedUsers.has(u));
  if (fresh.length === 0) return;
  for (const u of fresh) {
    watchedUsers.add(u);
    sessionStops.push(ddp.on('stream-user-presence', u, (args) => {
      const [, code] = (args[0] ?? []) as [string, number];
      store.update((s) => ({ presence: { ...s.presence, [u]: STATUS[code] ?? 'offline' } }));
    }));
  }
  const sub = ddp.subscribe('stream-user-presence', '', { added: fresh });
  sessionStops.push(() => {
    sub.stop();
    fresh.forEach((u) => watchedUsers.delete(u));
  });
}

// ---- rooms --------------------------------------------------------------------------------------

let openRid: string | null = null;
const openRoomStops: (() => void)[] = [];
const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();

/** Finds the room a route names among the user's subscriptions. */
export function resolveRoom(route: Route, s: State = store.get()): Subscription | undefined {
  if (route.name !== 'room') return undefined;
  const subs = Object.values(s.subs);
  if (route.kind === 'direct') return s.subs[route.key] ?? subs.find((x) => x.t === 'd' && x.name === route.key);
  const t = route.kind === 'group' ? 'p' : 'c';
  return subs.find((x) => x.t === t && x.name === route.key) ?? subs.find((x) => x.name === route.key);
}

/** Opens a room: history, the room's streams, read state. Closes the previous one. */
export async function openRoom(rid: string): Promise<void> {
  if (openRid === rid) return;
  openRoomStops.splice(0).forEach((stop) => stop());
  openRid = rid;
  const listen = (collection: string, event: string, fn: (args: any[]) => void) => {
    const sub = ddp.subscribe(collection, event, { useCollection: false, args: [] });
    const off = ddp.on(collection, event, fn);
    openRoomStops.push(() => {
      off();
      sub.stop();
    });
  };
  const sub = store.get().subs[rid];
  store.update((s) => {
    const { [rid]: _, ...rest } = s.unreadSince;
    return { unreadSince: sub && sub.unread > 0 && sub.ls ? { ...rest, [rid]: sub.ls } : rest };
  });
  listen('stream-room-messages', rid, ([m]) => onLiveMessage(normalise(m)));
  listen('stream-notify-room', `${rid}/user-activity`, ([username, activities]) => onActivity(rid, username, activities));
  listen('stream-notify-room', `${rid}/deleteMessage`, ([{ _id }]) => dropMessages(rid, [_id]));
  listen('stream-notify-room', `${rid}/deleteMessageBulk`, ([{ ids }]) => ids && dropMessages(rid, ids));
  const loaded = store.get().messages[rid];
  if (!loaded) await loadLatest(rid);
  // A window deep in history is left to the list: it goes to the newest itself unless a link
  // brought the reader there.
  else if (!loaded.hasNewer) void loadLatest(rid);
  markRead(rid);
}

export function closeRoom(): void {
  openRoomStops.splice(0).forEach((stop) => stop());
  openRid = null;
}

function setRoomMessages(rid: string, fn: (m: RoomMessages) => Partial<RoomMessages>): void {
  store.update((s) => {
    const cur = s.messages[rid] ?? { list: [], hasMore: true, loading: false };
    return { messages: { ...s.messages, [rid]: { ...cur, ...fn(cur) } } };
  });
}

async function loadLatest(rid: string): Promise<void> {
  setRoomMessages(rid, () => ({ loading: true }));
  try {
    const res = await ddp.call<any>('loadHistory', rid, null, PAGE, null);
    const page = ((res?.messages ?? []) as any[]).map(normalise);
    // The list measures its first render from here (docs/BENCHMARKS.md).
    performance.mark(`apogee:history:${rid}`);
    // A window deep in history is left for the live end (its gap cannot be merged over).
    setRoomMessages(rid, (cur) => {
      const fresh = cur.list.length === 0 || cur.hasNewer;
      return { list: fresh ? page : merge(cur.list, page), hasMore: fresh ? page.length >= PAGE : cur.hasMore, hasNewer: false, loading: false };
    });
    watchPresence(page.map((m) => m.u._id));
  } catch (e) {
    setRoomMessages(rid, () => ({ loading: false }));
    const wait = rateLimitWait(e);
    if (wait === null) toast(errorText(e));
    // Refused by DDP's rate limiter: asked again when its window resets, if still open.
    else setTimeout(() => openRid === rid && void loadLatest(rid), wait);
  }
}

/**
 * What changed in a loaded room since its newest known change (`chat.syncMessages`): new and
 * edited messages merged, deleted ones removed. Used after a reconnect.
 */
async function catchUp(rid: string): Promise<void> {
  const cur = store.get().messages[rid];
  const since = (cur?.list ?? []).reduce((t, m) => Math.max(t, (m._updatedAt ?? m.ts).getTime()), 0);
  if (!since) return loadLatest(rid);
  const res = await api.get('chat.syncMessages', { roomId: rid, lastUpdate: new Date(since).toISOString() });
  const updated = ((res.result?.updated ?? []) as any[]).map(normalise);
  const deleted = ((res.result?.deleted ?? []) as any[]).map((d) => String(d._id));
  setRoomMessages(rid, (c) => {
    const known = new Set(c.list.map((m) => m._id));
    const shown = updated.filter((m) => known.has(m._id) || (inMainList(m) && !c.hasNewer));
    return { list: remove(merge(c.list, shown), deleted) };
  });
  watchPresence(updated.map((m) => m.u._id));
}

/** The page before the oldest loaded message (infinite scroll upwards). */
export async function loadOlder(rid: string): Promise<void> {
  const cur = store.get().messages[rid];
  if (!cur || cur.loading || !cur.hasMore) return;
  const oldest = cur.list[0];
  setRoomMessages(rid, () => ({ loading: true }));
  try {
    const res = await ddp.call<any>('loadHistory', rid, oldest ? oldest.ts : null, PAGE, null);
    const page = ((res?.messages ?? []) as any[]).map(normalise);
    setRoomMessages(rid, (c) => ({ list: merge(c.list, page), hasMore: page.length >= PAGE, loading: false }));
  } catch (e) {
    pageFailed(rid, 'loading', e);
  }
}

/** The page after the newest loaded message, while the list is a window short of the live end. */
export async function loadNewer(rid: string): Promise<void> {
  const cur = store.get().messages[rid];
  if (!cur || cur.loadingNewer || !cur.hasNewer) return;
  const newest = cur.list[cur.list.length - 1];
  setRoomMessages(rid, () => ({ loadingNewer: true }));
  try {
    const res = await ddp.call<any>('loadNextMessages', rid, newest ? newest.ts : null, PAGE);
    const page = ((res?.messages ?? []) as any[]).map(normalise);
    setRoomMessages(rid, (c) => ({ list: merge(c.list, page), hasNewer: page.length >= PAGE, loadingNewer: false }));
    watchPresence(page.map((m) => m.u._id));
  } catch (e) {
    pageFailed(rid, 'loadingNewer', e);
  }
}

/**
 * A page could not be loaded: its flag stays set for a while, so the list (which asks again as
 * soon as it draws) does not hammer the server — DDP's rate limit says how long to wait.
 */
function pageFailed(rid: string, flag: 'loading' | 'loadingNewer', e: unknown): void {
  const limited = rateLimitWait(e);
  if (limited === null) toast(errorText(e));
  setTimeout(() => setRoomMessages(rid, () => ({ [flag]: false })), limited ?? 3000);
}

/** How long DDP's rate limiter asks to wait before the refused call may go again; null if `e` is another error. */
function rateLimitWait(e: unknown): number | null {
  if (!(e instanceof DdpError) || e.error !== 'too-many-requests') return null;
  return Math.min(10_000, Number((e.details as any)?.timeToReset) || 1000);
}

/** Leaves a window deep in history for the newest page (and live messages). */
export async function jumpToLatest(rid: string): Promise<void> {
  if (store.get().messages[rid]?.hasNewer) await loadLatest(rid);
}

/** Waits until the room's first page is loaded (a room may still be opening). */
async function settled(rid: string): Promise<RoomMessages | undefined> {
  let cur = store.get().messages[rid];
  for (let wait = 0; (!cur || cur.loading) && wait < 400; wait++) {
    await new Promise((r) => setTimeout(r, 50));
    cur = store.get().messages[rid];
  }
  return cur;
}

/**
 * Makes message `id` loaded, however far back: the page around it (`loadSurroundingMessages`)
 * joins the loaded list when the two touch, else replaces it as a window whose newer pages load
 * as the reader scrolls down. Resolves the message, or `undefined` when it cannot be read.
 */
export async function loadAround(rid: string, id: string): Promise<Message | undefined> {
  const cur = await settled(rid);
  const known = cur?.list.find((m) => m._id === id);
  if (known) return known;
  let res: any;
  try {
    res = await ddp.call<any>('loadSurroundingMessages', { _id: id, rid }, PAGE);
  } catch {
    return undefined;
  }
  const page = ((res?.messages ?? []) as any[]).map(normalise).filter((m) => m.rid === rid);
  const found = page.find((m) => m._id === id);
  if (!found) return undefined;
  setRoomMessages(rid, (c) => {
    const around = merge([], page);
    const [first, last] = [around[0], around[around.length - 1]];
    const [oldest, newest] = [c.list[0], c.list[c.list.length - 1]];
    // One list when there is no gap between the two: they overlap, or both reach the live end.
    const overlap = !!oldest && last.ts >= oldest.ts && first.ts <= newest.ts;
    const bothLive = !!oldest && !res.moreAfter && !c.hasNewer;
    if (!overlap && !bothLive) return { list: around, hasMore: !!res.moreBefore, hasNewer: !!res.moreAfter };
    return {
      list: merge(c.list, around),
      hasMore: first.ts < oldest.ts ? !!res.moreBefore : c.hasMore,
      hasNewer: last.ts > newest.ts ? !!res.moreAfter : c.hasNewer,
    };
  });
  watchPresence(page.map((m) => m.u._id));
  return found;
}

/**
 * The first message someone else sent after `since` (where the unread line goes), asked of the
 * server however far back it is, so the list can open around it.
 */
export async function firstUnreadAfter(rid: string, since: Date, me: string): Promise<Message | undefined> {
  const res = await ddp.call<any>('loadNextMessages', rid, since, 20);
  return ((res?.messages ?? []) as any[]).map(normalise).find((m) => m.u._id !== me && inMainList(m));
}

function onLiveMessage(m: Message): void {
  if (m.tmid) {
    store.update((s) => (s.threads[m.tmid!] ? { threads: { ...s.threads, [m.tmid!]: merge(s.threads[m.tmid!], [m]) } } : {}));
  }
  const room = store.get().messages[m.rid];
  const known = !!room?.list.some((x) => x._id === m._id);
  // A window short of the live end gets new messages when it reaches the end.
  if (known || (inMainList(m) && !room?.hasNewer)) {
    setRoomMessages(m.rid, (cur) => ({ list: merge(cur.list, [m]) }));
  }
  // Replying stops the author's typing line at once.
  onActivity(m.rid, m.u.username, []);
  watchPresence([m.u._id]);
  if (m.rid === openRid && m.u._id !== store.get().me?._id) markRead(m.rid);
}

function dropMessages(rid: string, ids: string[]): void {
  setRoomMessages(rid, (cur) => ({ list: remove(cur.list, ids) }));
}

function onActivity(rid: string, username: string, activities: string[]): void {
  const key = `${rid}/${username}`;
  clearTimeout(typingTimers.get(key));
  const typing = Array.isArray(activities) && activities.includes('user-typing');
  store.update((s) => {
    const now = (s.typing[rid] ?? []).filter((u) => u !== username);
    if (typing) now.push(username);
    return { typing: { ...s.typing, [rid]: now } };
  });
  // Rocket.Chat clients repeat the activity while typing; a silent one has stopped.
  if (typing) typingTimers.set(key, setTimeout(() => onActivity(rid, username, []), 15_000));
}

let readTimer: ReturnType<typeof setTimeout> | undefined;
function markRead(rid: string): void {
  clearTimeout(readTimer);
  readTimer = setTimeout(() => {
    const sub = store.get().subs[rid];
    if (!sub || (sub.unread === 0 && !sub.alert && sub.userMentions === 0)) return;
    if (document.visibilityState === 'hidden') return;
    void api.post('subscriptions.read', { rid }).catch(() => {});
  }, 300);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && openRid) markRead(openRid);
});

// ---- messages -----------------------------------------------------------------------------------

export function randomId(): string {
  const chars = '23456789ABCDEFGHJKLMNPQRSTWXYZabcdefghijkmnopqrstuvwxyz';
  const bytes = crypto.getRandomValues(new Uint8Array(17));
  return Array.from(bytes, (b) => chars[b % chars.length]).join('');
}

/**
 * Rocket.Chat's quote: a link to each quoted message, with a blank label, on the first line of
 * the new message; clients show the linked message as a quote in place of the link.
 */
export function withQuotes(text: string, quoted: Message[]): string {
  if (quoted.length === 0) return text;
  return `${quoted.map((m) => `[ ](${messageLink(m)})`).join('')}\n${text}`;
}

export async function sendMessage(rid: string, text: string, tmid?: string): Promise<void> {
  const me = store.get().me!;
  const _id = randomId();
  const pending: Message = { _id, rid, msg: text, ts: new Date(), u: { _id: me._id, username: me.username, name: me.name }, tmid, pending: true };
  // Writing from deep in history: back to the live end, where the message will be.
  if (!tmid) await jumpToLatest(rid);
  if (!tmid) setRoomMessages(rid, (cur) => ({ list: merge(cur.list, [pending]) }));
  try {
    const saved = await ddp.call<any>('sendMessage', { _id, rid, msg: text, ...(tmid ? { tmid } : {}) });
    if (saved) onLiveMessage(normalise(saved));
  } catch (e) {
    dropMessages(rid, [_id]);
    throw e;
  }
}

export async function editMessage(m: Message, text: string): Promise<void> {
  await ddp.call('updateMessage', { _id: m._id, rid: m.rid, msg: text });
}

export async function deleteMessage(m: Message): Promise<void> {
  await ddp.call('deleteMessage', { _id: m._id });
  dropMessages(m.rid, [m._id]);
}

export async function toggleReaction(m: Message, emoji: string): Promise<void> {
  await ddp.call('setReaction', `:${emoji}:`, m._id);
}

export async function setPinned(m: Message, pinned: boolean): Promise<void> {
  await api.post(pinned ? 'chat.pinMessage' : 'chat.unPinMessage', { messageId: m._id });
}

export async function setStarred(m: Message, starred: boolean): Promise<void> {
  await api.post(starred ? 'chat.starMessage' : 'chat.unStarMessage', { messageId: m._id });
  // Stars are private: no stream event tells this client, so it updates its own copy.
  const me = store.get().me!._id;
  const next = starred ? [...(m.starred ?? []), { _id: me }] : (m.starred ?? []).filter((x) => x._id !== me);
  setRoomMessages(m.rid, (cur) => ({ list: cur.list.map((x) => (x._id === m._id ? { ...x, starred: next } : x)) }));
}

/** A link to the message as Rocket.Chat writes them (`?msg=<id>` on the room's URL). */
export function messageLink(m: Message): string {
  const sub = store.get().subs[m.rid];
  const path = sub ? href(roomRoute(sub.t, sub.name, sub.rid)) : `/home`;
  return `${location.origin}${path}?msg=${encodeURIComponent(m._id)}`;
}

export async function setStatus(status: 'online' | 'away' | 'busy' | 'offline'): Promise<void> {
  await api.post('users.setStatus', { status });
  store.update((s) => (s.me ? { me: { ...s.me, status } } : {}));
}

let lastTyping = 0;
/** Tells the room this user is typing (repeated at most every 3 s) or stopped. */
export function setTyping(rid: string, typing: boolean): void {
  const me = store.get().me;
  if (!me) return;
  const now = Date.now();
  if (typing && now - lastTyping < 3000) return;
  lastTyping = typing ? now : 0;
  void ddp.call('stream-notify-room', `${rid}/user-activity`, me.username, typing ? ['user-typing'] : [], {}).catch(() => {});
}

export async function openThread(tmid: string): Promise<void> {
  const res = await ddp.call<any>('getThreadMessages', { tmid, limit: 100 });
  const list = (Array.isArray(res) ? res : (res?.messages ?? [])).map(normalise);
  store.update((s) => ({ threads: { ...s.threads, [tmid]: merge(s.threads[tmid] ?? [], list) } }));
}

/** Finds a message by id among loaded ones, else asks the server. */
export async function findMessage(id: string): Promise<Message | undefined> {
  for (const r of Object.values(store.get().messages)) {
    const m = r.list.find((x) => x._id === id);
    if (m) return m;
  }
  try {
    const res = await api.get('chat.getMessage', { msgId: id });
    return normalise(res.message);
  } catch {
    return undefined;
  }
}

export function uploadFile(rid: string, file: File, tmid?: string): void {
  const id = randomId();
  const patch = (p: Partial<Upload>) =>
    store.update((s) => ({ uploads: s.uploads.map((u) => (u.id === id ? { ...u, ...p } : u)) }));
  store.update((s) => ({ uploads: [...s.uploads, { id, rid, name: file.name, progress: 0 }] }));
  api
    .upload(rid, file, { tmid, onProgress: (progress) => patch({ progress }) })
    .then(
      (res) => {
        store.update((s) => ({ uploads: s.uploads.filter((u) => u.id !== id) }));
        if (res?.message) onLiveMessage(normalise(res.message));
      },
      (e) => {
        patch({ error: errorText(e) });
        setTimeout(() => store.update((s) => ({ uploads: s.uploads.filter((u) => u.id !== id) })), 6000);
      },
    );
}

// ---- room management ---------------------------------------------------------------------------

export async function createRoom(name: string, isPrivate: boolean): Promise<void> {
  const res = await api.post(isPrivate ? 'groups.create' : 'channels.create', { name });
  const room = res.channel ?? res.group;
  onRoomChanged('updated', room);
  navigate(roomRoute(room.t, room.name, room._id));
}

export async function startDirect(username: string): Promise<void> {
  const res = await api.post('im.create', { username });
  const rid = res.room?._id ?? res.room?.rid;
  navigate({ name: 'room', kind: 'direct', key: rid });
}

export async function joinRoom(rid: string, t: string, name: string): Promise<void> {
  await api.post(t === 'p' ? 'groups.join' : 'channels.join', { roomId: rid });
  const sub = await api.get('subscriptions.getOne', { roomId: rid });
  if (sub.subscription) onSubscriptionChanged('inserted', sub.subscription);
  navigate(roomRoute(t, name, rid));
}

export async function setFavorite(sub: Subscription, favorite: boolean): Promise<void> {
  await api.post('rooms.favorite', { roomId: sub.rid, favorite });
  // The server's subscriptions-changed event follows; this only makes the star answer at once.
  store.update((s) => ({ subs: { ...s.subs, [sub.rid]: { ...sub, f: favorite } } }));
}

export async function searchMessages(rid: string, text: string): Promise<Message[]> {
  const res = await api.get('chat.search', { roomId: rid, searchText: text, count: 50 });
  return ((res.messages ?? []) as any[]).map(normalise);
}

export function isAdmin(s: State = store.get()): boolean {
  return !!s.me?.roles.includes('admin');
}

// ---- sensitive calls ---------------------------------------------------------------------------

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Runs a sensitive call (Rocket.Chat's `twoFactorRequired`): when the server answers
 * `totp-required` (REST or DDP), asks for the code of the method it names (for `password`, the
 * password, sent as its SHA-256 as Rocket.Chat's client does) and calls again with it.
 * `undefined` when the user cancels.
 */
async function withProof<T>(call: (proof?: { code: string; method: string }) => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (e) {
    const required =
      (e instanceof ApiError && (e.error === 'totp-required' || e.errorType === 'totp-required')) ||
      (e instanceof DdpError && e.error === 'totp-required');
    if (!required) throw e;
    const method = String(((e as ApiError | DdpError).details as any)?.method ?? 'totp');
    const ask = method === 'password' ? 'Confirm with your password' : method === 'email' ? 'Enter the code sent to your e-mail' : 'Enter the code from your authenticator app (or a backup code)';
    const answer = prompt(t(ask));
    if (!answer) return undefined;
    const code = method === 'password' ? await sha256Hex(answer) : answer.trim();
    return await call({ code, method });
  }
}

/** A sensitive REST call: the second factor goes in the `x-2fa-code`/`x-2fa-method` headers. */
export function withSecondFactor<T>(call: (headers: Record<string, string>) => Promise<T>): Promise<T | undefined> {
  return withProof((proof) => call(proof ? { 'x-2fa-code': proof.code, 'x-2fa-method': proof.method } : {}));
}

/** A sensitive DDP method: the second factor is its trailing `{twoFactorCode, twoFactorMethod}`. */
export function callWithSecondFactor<T>(method: string, ...params: unknown[]): Promise<T | undefined> {
  return withProof((proof) =>
    ddp.call<T>(method, ...params, ...(proof ? [{ twoFactorCode: proof.code, twoFactorMethod: proof.method }] : [])),
  );
}
