import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { errorText, firstUnreadAfter, jumpToLatest, loadAround, loadNewer, loadOlder, store, toast } from '../app';
import { firstUnread, inMainList, layout, type Row } from '../messages';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import type { Message, Subscription } from '../types';
import { covers, prefixOffsets, rangeFor, rowAt } from '../virtual';
import { MessageItem, SystemLine, type RowPlace } from './MessageItem';
import { t } from '../i18n';

/** Pixels drawn beyond each edge of the view, so small scrolls show rows already measured. */
const OVERSCAN = 900;
/** Within this many pixels of an end of what is loaded, the next page is asked for. */
const LOAD_AHEAD = 1500;
/** Within this many pixels of the bottom, the list follows new messages. */
const STICK = 60;

/** A first guess at a row's height until it has been drawn and measured. */
function estimate(r: Row): number {
  if (r.kind === 'day') return 38;
  if (r.kind === 'unread') return 30;
  if (r.kind === 'system') return 27;
  const m = r.message;
  const lines = Math.ceil((m.msg?.length ?? 0) / 90) || 1;
  const extra = (m.attachments?.length ? 120 : 0) + (m.reactions ? 28 : 0) + (m.tcount ? 26 : 0);
  return (r.grouped ? 6 : 40) + 20 * lines + extra;
}

const dayLabel = (d: Date) => {
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return t('Today');
  if (d.toDateString() === yesterday.toDateString()) return t('Yesterday');
  return d.toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
};

/** The key a drawn row element carries (`data-row` on separators, `data-id` on messages). */
const keyOf = (el: Element) => (el as HTMLElement).dataset.row ?? (el as HTMLElement).dataset.id ?? '';

/**
 * The room's messages, newest at the bottom, virtualised: only the rows in view and
 * `OVERSCAN` pixels around it are in the DOM, between two paddings that stand for the rest
 * (heights measured once drawn, estimated before). The reader's place is a row and its offset
 * from the top of the view — the anchor — kept when rows are added above (older pages), grow
 * (images, edits) or are measured for the first time; at the bottom the list follows new
 * messages instead. Older pages load near the top, newer ones near the bottom while the list is
 * a window opened deep in history (`?msg=`).
 */
export function MessageList({ sub, onEdit, onQuote }: { sub: Subscription; onEdit: (m: Message) => void; onQuote: (m: Message) => void }) {
  const state = useSelect(store, (s) => s.messages[sub.rid]);
  const me = useSelect(store, (s) => s.me!._id);
  const since = useSelect(store, (s) => s.unreadSince[sub.rid]);
  const target = useSelect(store, (s) => (s.route.name === 'room' ? s.route.msg : undefined));
  const main = useMemo(() => (state?.list ?? []).filter(inMainList), [state?.list]);
  const first = useMemo(() => firstUnread(main, since, me), [main, since, me]);
  // The line is drawn once its place is loaded: with a read message before it, or at the start.
  const unreadId = first && (main[0] !== first || state?.hasMore === false) ? first._id : undefined;
  const rows = useMemo(() => layout(main, unreadId), [main, unreadId]);
  const [highlight, setHighlight] = useState<string | null>(null);
  const [jumpBar, setJumpBar] = useState(true);
  const [, setTick] = useState(0);
  const redraw = () => setTick((n) => n + 1);

  const scroller = useRef<HTMLDivElement>(null);
  const listEl = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  /** Following the live end: new messages scroll into view. */
  const stick = useRef(true);
  /** The reader's place while not following the end. */
  const anchor = useRef<{ key: string; offset: number } | null>(null);
  /** The scroll position this component set last: its own scroll events move no anchor. */
  const placedAt = useRef<number | null>(null);
  const focusNext = useRef<string | null>(null);
  const measured = useRef(false);
  const observer = useRef<ResizeObserver | null>(null);
  const observed = useRef(new Set<Element>());

  const live = !state?.hasNewer;
  const index = useMemo(() => new Map(rows.map((r, i) => [r.key, i])), [rows]);
  const offsets = prefixOffsets(rows.length, (i) => heights.current.get(rows[i].key) ?? estimate(rows[i]));
  const total = offsets[rows.length];
  const viewHeight = scroller.current?.clientHeight || 600;

  /** Where the list starts inside the scroller (the banner and the top line come first). */
  const listTop = () => listEl.current?.offsetTop ?? 0;
  /** The view's top in the list's coordinates, as the anchor (or the bottom) puts it. */
  const wantedTop = (): number => {
    if (stick.current && live) return Math.max(0, total - viewHeight);
    const a = anchor.current;
    const at = a ? index.get(a.key) : undefined;
    if (a && at !== undefined) return offsets[at] - a.offset;
    return (scroller.current?.scrollTop ?? 0) - listTop();
  };
  const [start, end] = rangeFor(offsets, wantedTop(), viewHeight, OVERSCAN);
  const drawn = useRef<[number, number]>([0, 0]);
  drawn.current = [start, end];
  const latest = useRef({ rows, offsets, index, state, live });
  latest.current = { rows, offsets, index, state, live };

  /**
   * The reader's place: the first message whose top is in view, and its offset from the view's
   * top. A message, not a separator: a day's separator moves up to the first message of its day
   * as older pages arrive. And not one cut off above the view: the oldest loaded message loses
   * its header once the page before it arrives (it groups with the one before), so anything held
   * below it would see it move.
   */
  const readAnchor = (): { key: string; offset: number } | null => {
    const el = scroller.current;
    const list = listEl.current;
    if (!el || !list) return null;
    const top = el.getBoundingClientRect().top;
    const bottom = top + el.clientHeight;
    // Only when the drawn rows reach the view's top: otherwise the first drawn message in view
    // has rows above it, still in view, that are only padding yet (a scroll past the drawn rows).
    const firstDrawn = list.firstElementChild?.getBoundingClientRect().top;
    if (firstDrawn !== undefined && firstDrawn <= top) {
      let cut: Element | null = null;
      for (const row of list.children) {
        if (!(row as HTMLElement).dataset.id) continue;
        const r = row.getBoundingClientRect();
        if (r.bottom <= top) continue;
        if (r.top >= top) {
          if (r.top < bottom) return { key: keyOf(row), offset: r.top - top };
          break;
        }
        cut ??= row;
      }
      // One tall row fills the view: that row.
      if (cut) return { key: keyOf(cut), offset: cut.getBoundingClientRect().top - top };
    }
    // Not drawn there: the message the offsets put first in view.
    const { rows, offsets } = latest.current;
    const y = el.scrollTop - listTop();
    let i = rowAt(offsets, y);
    if (i >= 0 && offsets[i] < y && i < rows.length - 1) i++;
    while (i >= 0 && i < rows.length - 1 && (rows[i].kind === 'day' || rows[i].kind === 'unread')) i++;
    return i < 0 ? null : { key: rows[i].key, offset: offsets[i] - y };
  };

  /** Heights of the drawn rows; whether any changed. */
  const measure = (): boolean => {
    let changed = false;
    for (const row of listEl.current?.children ?? []) {
      const key = keyOf(row);
      const h = (row as HTMLElement).offsetHeight;
      if (key && heights.current.get(key) !== h) {
        heights.current.set(key, h);
        changed = true;
      }
    }
    return changed;
  };

  /** Puts the view where it belongs: at the bottom when following, else the anchor in place. */
  const place = () => {
    const el = scroller.current;
    if (!el) return;
    if (stick.current && latest.current.live) {
      el.scrollTop = el.scrollHeight;
    } else {
      const a = anchor.current;
      const row = a && [...(listEl.current?.children ?? [])].find((r) => keyOf(r) === a.key);
      if (!a || !row) return;
      const delta = row.getBoundingClientRect().top - el.getBoundingClientRect().top - a.offset;
      if (Math.abs(delta) >= 1) el.scrollTop += delta;
    }
    placedAt.current = el.scrollTop;
  };

  /** Asks for the next page when the view nears an end of what is loaded. */
  const loadNear = () => {
    const el = scroller.current;
    const { state, offsets } = latest.current;
    if (!el || !state) return;
    const top = el.scrollTop - listTop();
    if (state.hasMore && !state.loading && top < LOAD_AHEAD) {
      if (!stick.current) anchor.current ??= readAnchor();
      void loadOlder(sub.rid);
    }
    const below = offsets[offsets.length - 1] - top - el.clientHeight;
    if (state.hasNewer && !state.loadingNewer && below < LOAD_AHEAD) void loadNewer(sub.rid);
  };

  /** Draws again when what is drawn no longer covers the view (after scrolling or measuring). */
  const redrawIfShort = () => {
    const el = scroller.current;
    if (!el) return;
    const { offsets } = latest.current;
    const top = el.scrollTop - listTop();
    if (!covers(offsets, drawn.current, top - OVERSCAN / 3, el.clientHeight + (2 * OVERSCAN) / 3)) redraw();
  };

  // Rows change height after they are drawn (images loading, edits, reactions, the window's
  // width): measured again, the anchor kept, more rows drawn if needed.
  useEffect(() => {
    observer.current = new ResizeObserver(() => {
      const changed = measure();
      place();
      if (changed) redraw();
    });
    // The view itself changes height too (the composer grows, the window is resized).
    if (scroller.current) observer.current.observe(scroller.current);
    return () => observer.current?.disconnect();
  }, []);

  useLayoutEffect(() => {
    const list = listEl.current;
    const ro = observer.current;
    if (list && ro) {
      const now = new Set<Element>(list.children);
      for (const el of observed.current) if (!now.has(el)) ro.unobserve(el);
      for (const el of now) if (!observed.current.has(el)) ro.observe(el);
      observed.current = now;
    }
    const grew = measure();
    place();
    if (focusNext.current) {
      const row = [...(list?.children ?? [])].find((r) => keyOf(r) === focusNext.current) as HTMLElement | undefined;
      if (row) {
        focusNext.current = null;
        row.focus({ preventScroll: true });
      }
    }
    // First render of the room's history: from the data's arrival to the DOM laid out (measuring
    // above forced the layout).
    const mark = `apogee:history:${sub.rid}`;
    if (!measured.current && rows.length > 0 && performance.getEntriesByName(mark).length > 0) {
      measured.current = true;
      performance.measure(`apogee:first-render:${sub.rid}`, mark);
    }
    if (grew) redrawIfShort();
    loadNear();
  });

  /** Brings row `key` into view (middle of the view) and keeps it there while rows settle. */
  const show = (key: string, focus = false) => {
    stick.current = false;
    anchor.current = { key, offset: Math.max(0, (scroller.current?.clientHeight ?? 600) / 2 - 40) };
    placedAt.current = null;
    if (focus) focusNext.current = key;
    redraw();
  };

  /** Back to the newest messages, following the end again. */
  const toLatest = async () => {
    await jumpToLatest(sub.rid);
    stick.current = true;
    anchor.current = null;
    redraw();
  };

  /** Loads message `id` (however far back) and shows it; whether it could be. */
  const reveal = async (id: string): Promise<string | null> => {
    const m = await loadAround(sub.rid, id);
    if (!m) return null;
    // A thread reply is not in the main list: its thread's first message is.
    const shown = inMainList(m) ? m._id : m.tmid;
    if (!shown) return null;
    if (shown !== m._id && !(await loadAround(sub.rid, shown))) return null;
    show(shown);
    return shown;
  };

  // A `?msg=` link: bring the message into view and mark it. The room's own URL again (the
  // sidebar, a link) from a window deep in history: back to the newest messages.
  useEffect(() => {
    if (!target) {
      if (store.get().messages[sub.rid]?.hasNewer) void toLatest();
      return;
    }
    let alive = true;
    void reveal(target).then((shown) => {
      if (!alive) return;
      if (!shown) toast(t('Message not found'));
      else setHighlight(shown);
    });
    return () => {
      alive = false;
    };
  }, [target, sub.rid]);

  useEffect(() => {
    if (!highlight) return;
    const timer = setTimeout(() => setHighlight(null), 4000);
    return () => clearTimeout(timer);
  }, [highlight]);

  const jumpToUnread = async () => {
    setJumpBar(false);
    if (!since) return;
    // The line may be far older than what is loaded: the page around its first message.
    try {
      const first = await firstUnreadAfter(sub.rid, since, me);
      if (first && (await loadAround(sub.rid, first._id))) show(`unread-${first._id}`);
    } catch (e) {
      toast(errorText(e));
    }
  };

  /** Arrow keys, Page Up/Down, Home/End move between messages (the feed pattern). */
  const onKeyDown = (e: KeyboardEvent) => {
    const moves: Record<string, number> = { ArrowUp: -1, ArrowDown: 1, PageUp: -5, PageDown: 5, Home: -Infinity, End: Infinity };
    const step = moves[e.key];
    if (step === undefined || e.altKey || e.metaKey || e.ctrlKey) return;
    const row = (e.target as HTMLElement).closest?.('[role=article]');
    const { rows, index } = latest.current;
    const focusable = (i: number) => rows[i] && (rows[i].kind === 'message' || rows[i].kind === 'system');
    let from: number;
    if (row && listEl.current?.contains(row)) from = index.get(keyOf(row)) ?? -1;
    else if (e.target === scroller.current && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      // From the list itself: into the messages in view.
      const a = readAnchor();
      from = (a ? (index.get(a.key) ?? 0) : 0) - Math.sign(step);
    } else return;
    if (from < 0 && !row && step < 0) from = 0;
    let to = Number.isFinite(step) ? from + step : step > 0 ? rows.length - 1 : 0;
    to = Math.max(0, Math.min(rows.length - 1, to));
    const dir = step > 0 ? 1 : -1;
    while (to >= 0 && to < rows.length && !focusable(to)) to += Number.isFinite(step) ? dir : -dir;
    if (!focusable(to)) return;
    e.preventDefault();
    const key = rows[to].key;
    const el = [...(listEl.current?.children ?? [])].find((r) => keyOf(r) === key) as HTMLElement | undefined;
    const view = scroller.current!.getBoundingClientRect();
    const box = el?.getBoundingClientRect();
    if (el && box && box.top >= view.top && box.bottom <= view.bottom) {
      el.focus({ preventScroll: true });
      return;
    }
    // Not in view (maybe not drawn): place it at the edge it comes from, then focus it.
    stick.current = false;
    anchor.current = { key, offset: dir > 0 ? Math.max(0, view.height - (box?.height ?? estimate(rows[to]))) : 0 };
    placedAt.current = null;
    focusNext.current = key;
    redraw();
  };

  // The newest message from someone else, once it arrives live, for screen readers.
  const newest = live ? main[main.length - 1] : undefined;
  const seenNewest = useRef<string | undefined>(undefined);
  const [news, setNews] = useState<Message | null>(null);
  useEffect(() => {
    const previous = seenNewest.current;
    seenNewest.current = newest?._id;
    if (previous && newest && newest._id !== previous && newest.u._id !== me && !newest.t) setNews(newest);
  }, [newest?._id]);

  const messageCount = rows.reduce((n, r) => (r.kind === 'message' || r.kind === 'system' ? n + 1 : n), 0);
  const setSize = state?.hasMore || state?.hasNewer ? -1 : messageCount;
  let pos = rows.slice(0, start).reduce((n, r) => (r.kind === 'message' || r.kind === 'system' ? n + 1 : n), 0);
  const nextPlace = (): RowPlace => ({ pos: ++pos, size: setSize });

  return (
    <div class="message-list-frame">
      <div
        class="message-list"
        ref={scroller}
        tabIndex={0}
        onKeyDown={onKeyDown}
        onScroll={() => {
          const el = scroller.current!;
          const mine = placedAt.current !== null && Math.abs(el.scrollTop - placedAt.current) < 1;
          if (!mine) {
            stick.current = latest.current.live && el.scrollHeight - el.scrollTop - el.clientHeight < STICK;
            anchor.current = stick.current ? null : readAnchor();
            placedAt.current = null;
          }
          redrawIfShort();
          loadNear();
        }}
      >
        {since && first && jumpBar && (
          <div class="unread-bar" role="status">
            <span>{t('New messages since {time}', { time: since.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }) })}</span>
            <button onClick={() => void jumpToUnread()}>{t('Jump to first unread')}</button>
            <button class="icon" aria-label={t('Close')} onClick={() => setJumpBar(false)}>✕</button>
          </div>
        )}
        <div class="list-top">
          {state?.loading ? <span class="loading">{t('Loading…')}</span> : !state?.hasMore && rows.length > 0 ? <span class="room-start">{t('Start of conversation')}</span> : null}
        </div>
        <div
          ref={listEl}
          class="rows"
          // A feed, not a live region: rows drawn while scrolling are not news. New messages are
          // announced by the status line below.
          role="feed"
          aria-label={t('Messages')}
          aria-busy={state?.loading || state?.loadingNewer ? 'true' : 'false'}
          style={{ paddingTop: `${offsets[start]}px`, paddingBottom: `${total - offsets[end]}px` }}
        >
          {rows.slice(start, end).map((r) =>
            r.kind === 'day' ? (
              <div class="day-separator" key={r.key} data-row={r.key} role="separator">
                <span>{dayLabel(r.date)}</span>
              </div>
            ) : r.kind === 'unread' ? (
              <div class="unread-separator" key={r.key} data-row={r.key} role="separator" aria-label={t('Unread messages')}>
                <span>{t('Unread messages')}</span>
              </div>
            ) : r.kind === 'system' ? (
              <SystemLine key={r.key} m={r.message} place={nextPlace()} />
            ) : (
              <MessageItem
                key={r.key}
                m={r.message}
                grouped={r.grouped}
                onEdit={onEdit}
                onQuote={onQuote}
                highlighted={highlight === r.message._id}
                threadRoute={roomRoute(sub.t, sub.name, sub.rid, r.message._id)}
                place={nextPlace()}
              />
            ),
          )}
        </div>
        {state?.loadingNewer && <div class="list-bottom loading">{t('Loading…')}</div>}
      </div>
      <p class="sr-only" role="status">
        {news ? t('New message from {name}: {text}', { name: news.u.name || news.u.username, text: news.msg ?? '' }) : ''}
      </p>
      {!live && (
        <button class="jump-latest" onClick={() => void toLatest()}>
          {t('Jump to recent messages')} ↓
        </button>
      )}
    </div>
  );
}
