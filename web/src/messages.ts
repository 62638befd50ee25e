// Pure message-list logic: normalising records from REST or DDP, merging pages and live events
// into one ordered list, and laying a list out as rows (day separators, grouping).

import { toDate } from './ejson';
import { t } from './i18n';
import type { MdNode, Message } from './types';

/** Dates of a message from either transport as Date objects. */
export function normalise(raw: any): Message {
  const m = { ...raw } as Message;
  m.ts = toDate(raw.ts);
  if (raw._updatedAt) m._updatedAt = toDate(raw._updatedAt);
  if (raw.editedAt) m.editedAt = toDate(raw.editedAt);
  if (raw.tlm) m.tlm = toDate(raw.tlm);
  return m;
}

/**
 * Merges `incoming` into `list` (sorted by ts, oldest first): a message already there is
 * replaced when the incoming copy is not older (edits, reactions, thread counts), new ones are
 * inserted in order. Returns a new array; `list` is not modified.
 */
export function merge(list: readonly Message[], incoming: readonly Message[]): Message[] {
  if (incoming.length === 0) return list as Message[];
  const byId = new Map(list.map((m, i) => [m._id, i]));
  const out = list.slice();
  const added: Message[] = [];
  for (const m of incoming) {
    const i = byId.get(m._id);
    if (i === undefined) {
      byId.set(m._id, -1);
      added.push(m);
    } else if (i >= 0) {
      const old = out[i];
      const newer = !old._updatedAt || !m._updatedAt || m._updatedAt >= old._updatedAt || old.pending;
      if (newer) out[i] = m;
    } else {
      // Twice in `incoming`: the later copy wins.
      const j = added.findIndex((a) => a._id === m._id);
      added[j] = m;
    }
  }
  if (added.length === 0) return out;
  const all = out.concat(added);
  // Appends of newer messages are the common case: sort only when order is broken.
  if (isSorted(out) && added.every((m, k) => k === 0 || added[k - 1].ts <= m.ts) && (out.length === 0 || out[out.length - 1].ts <= added[0].ts)) {
    return all;
  }
  return all.sort(byTs);
}

function byTs(a: Message, b: Message): number {
  return a.ts.getTime() - b.ts.getTime() || (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);
}

function isSorted(list: readonly Message[]): boolean {
  for (let i = 1; i < list.length; i++) if (byTs(list[i - 1], list[i]) > 0) return false;
  return true;
}

export function remove(list: readonly Message[], ids: Iterable<string>): Message[] {
  const gone = new Set(ids);
  return list.filter((m) => !gone.has(m._id));
}

/** Messages the main list shows: thread replies stay in their thread unless sent to the room too. */
export function inMainList(m: Message): boolean {
  return !m.tmid || !!m.tshow;
}

export type Row =
  | { kind: 'day'; key: string; date: Date }
  | { kind: 'message'; key: string; message: Message; grouped: boolean }
  | { kind: 'system'; key: string; message: Message }
  | { kind: 'unread'; key: string; message: Message };

/** Consecutive messages of one author within this many ms are drawn as one group. */
export const GROUP_WINDOW_MS = 5 * 60 * 1000;

export function sameDay(a: Date, b: Date): boolean {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/**
 * The first message in `list` someone else wrote after `since` (the user's last read): where the
 * unread line goes.
 */
export function firstUnread(list: readonly Message[], since: Date | undefined, userId: string): Message | undefined {
  if (!since) return undefined;
  return list.find((m) => m.ts > since && m.u._id !== userId && !m.pending);
}

/**
 * The rows to draw for `list`: a day separator before each new day, grouping, system lines, and
 * the unread line before `unread` (ungrouping the message after it).
 */
export function layout(list: readonly Message[], unread?: string): Row[] {
  const rows: Row[] = [];
  let prev: Message | null = null; // the message a new one may group with
  let day: Date | null = null;
  for (const m of list) {
    if (m._id === unread) {
      rows.push({ kind: 'unread', key: `unread-${m._id}`, message: m });
      prev = null;
    }
    if (!day || !sameDay(day, m.ts)) {
      rows.push({ kind: 'day', key: `day-${m.ts.toDateString()}`, date: m.ts });
      day = m.ts;
      prev = null;
    }
    if (m.t) {
      rows.push({ kind: 'system', key: m._id, message: m });
      prev = null;
      continue;
    }
    const grouped =
      !!prev &&
      prev.u._id === m.u._id &&
      m.groupable !== false &&
      !m.tmid === !prev.tmid &&
      m.ts.getTime() - prev.ts.getTime() < GROUP_WINDOW_MS;
    rows.push({ kind: 'message', key: m._id, message: m, grouped });
    prev = m;
  }
  return rows;
}

/** The id of the message a Rocket.Chat message link (`…?msg=<id>`) points at, if it is one. */
export function linkedMessageId(url: string): string | undefined {
  try {
    return new URL(url, 'http://x').searchParams.get('msg') || undefined;
  } catch {
    return undefined;
  }
}

// A quote: a message link with a blank label (`[ ](https://…/channel/x?msg=ID)`).
const QUOTE_LINK = /\[\s*\]\(([^)\s]+)\)/g;

/** The ids of the messages `text` quotes, in order. */
export function quotedIds(text: string): string[] {
  const ids: string[] = [];
  for (const [, url] of text.matchAll(QUOTE_LINK)) {
    const id = linkedMessageId(url);
    if (id && !ids.includes(id)) ids.push(id);
  }
  return ids;
}

/**
 * The text without its quote links (they are shown as quotes, not as links): those to the
 * messages in `shown` (the quotes the server attached), or all of them when `shown` is absent.
 */
export function withoutQuotes(text: string, shown?: ReadonlySet<string>): string {
  return text.replace(QUOTE_LINK, (whole, url) => (isShown(linkedMessageId(url), shown) ? '' : whole)).replace(/^\s*\n/, '');
}

function isShown(id: string | undefined, shown: ReadonlySet<string> | undefined): boolean {
  return !!id && (!shown || shown.has(id));
}

function blank(nodes: MdNode[] | undefined): boolean {
  return (nodes ?? []).every((n) => n.type === 'PLAIN_TEXT' && typeof n.value === 'string' && !n.value.trim());
}

/** The `md` AST without quote links (to `shown` messages, as `withoutQuotes`), and without paragraphs they leave empty. */
export function mdWithoutQuotes(md: MdNode[] | undefined, shown?: ReadonlySet<string>): MdNode[] | undefined {
  if (!md) return md;
  const isQuote = (n: MdNode) => {
    if (n.type !== 'LINK') return false;
    const src = n.value?.src;
    const label = n.value?.label;
    const labelNodes: MdNode[] = Array.isArray(label) ? label : label ? [label] : [];
    return isShown(linkedMessageId(typeof src === 'string' ? src : (src?.value ?? '')), shown) && blank(labelNodes);
  };
  const out: MdNode[] = [];
  for (const node of md) {
    if (node.type === 'PARAGRAPH' && Array.isArray(node.value) && node.value.some(isQuote)) {
      const rest = node.value.filter((n: MdNode) => !isQuote(n));
      if (!blank(rest)) out.push({ ...node, value: rest });
    } else out.push(node);
  }
  return out;
}

/** The last message `userId` wrote in `list` that can be edited (not a system message). */
export function lastOwn(list: readonly Message[], userId: string): Message | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i];
    if (m.u._id === userId && !m.t && !m.pending && !m.file) return m;
  }
  return undefined;
}

/** What a system message says, Rocket.Chat's wording for the common kinds. */
/** The line a system message shows, in the user's language. */
export function systemText(m: Message): string {
  const who = m.u.username;
  const vars = { who, msg: m.msg, role: String((m as any).role ?? '') };
  switch (m.t) {
    case 'uj':
      return t('{who} joined the channel', vars);
    case 'ul':
      return t('{who} left the channel', vars);
    case 'au':
      return t('{msg} was added by {who}', vars);
    case 'ru':
      return t('{msg} was removed by {who}', vars);
    case 'r':
      return t('Room name changed to {msg} by {who}', vars);
    case 'room_changed_topic':
      return t('Room topic changed to {msg} by {who}', vars);
    case 'room_changed_description':
      return t('Room description changed to {msg} by {who}', vars);
    case 'room_changed_announcement':
      return t('Room announcement changed to {msg} by {who}', vars);
    case 'message_pinned':
      return t('{who} pinned a message', vars);
    case 'subscription-role-added':
      return t('{msg} was set {role} by {who}', vars);
    case 'subscription-role-removed':
      return t('{msg} is no longer {role} by {who}', vars);
    case 'user-converted-to-team':
      return t('{who} converted the room to a team', vars);
    case 'user-added-room-to-team':
      return t('{who} added #{msg} to this team', vars);
    case 'user-removed-room-from-team':
      return t('{who} removed #{msg} from this team', vars);
    case 'ujt':
      return t('{who} joined the team', vars);
    case 'ult':
      return t('{who} left the team', vars);
    case 'rm':
      return t('Message removed');
    default:
      return m.msg || m.t || '';
  }
}
