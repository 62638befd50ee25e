import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { loadOlder, loadUntil, store, toast } from '../app';
import { firstUnread, inMainList, layout } from '../messages';
import { roomRoute } from '../router';
import { useSelect } from '../store';
import type { Message, Subscription } from '../types';
import { MessageItem, SystemLine } from './MessageItem';
import { t } from '../i18n';

const FIRST_WINDOW = 60;
const STEP = 50;

const dayLabel = (d: Date) => {
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return t('Today');
  if (d.toDateString() === yesterday.toDateString()) return t('Yesterday');
  return d.toLocaleDateString([], { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
};

/**
 * The room's messages, newest at the bottom. Windowed: only the newest `shown` rows are in the
 * DOM; scrolling to the top reveals more, then fetches older pages, keeping the view where it
 * was. Off-screen rows also skip layout and paint (`content-visibility: auto` in the CSS).
 */
/** The first row of the list visible in `scroller`, with its offset from the scroller's top. */
function topRow(scroller: HTMLElement): { row: Element; offset: number } | null {
  const top = scroller.getBoundingClientRect().top;
  const rows = scroller.querySelector('[role=list]')?.children ?? [];
  for (const row of rows) {
    const r = row.getBoundingClientRect();
    if (r.bottom > top) return { row, offset: r.top - top };
  }
  return null;
}

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
  const [shown, setShown] = useState(FIRST_WINDOW);
  const [highlight, setHighlight] = useState<string | null>(null);
  const [jumpBar, setJumpBar] = useState(true);
  const scrollTo = useRef<string | null>(null); // the row to bring into view once it is drawn
  const [jumpTick, setJumpTick] = useState(0); // draws again for a jump to a row already drawn
  const scroller = useRef<HTMLDivElement>(null);
  const top = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  // The row at the top of the view and its offset, kept in place when rows are added above it.
  // A row, not the distance from the bottom: rows below that were never drawn change height when
  // first laid out (`content-visibility: auto`), which moved a bottom-based position.
  const anchor = useRef<{ row: Element; offset: number } | null>(null);
  // The message just jumped to: for a moment, growth above keeps it centred instead.
  const jumped = useRef<{ row: Element; at: number } | null>(null);
  const measured = useRef<string | null>(null);

  useEffect(() => {
    setShown(FIRST_WINDOW);
    setJumpBar(true);
    atBottom.current = true;
  }, [sub.rid]);

  /** Loads (older pages, if needed) and draws the row of message `id`, then scrolls it into view. */
  const reveal = async (id: string, key = id): Promise<boolean> => {
    if (!(await loadUntil(sub.rid, (m) => m._id === id))) return false;
    const all = layout((store.get().messages[sub.rid]?.list ?? []).filter(inMainList), unreadId);
    const at = all.findIndex((r) => r.key === key || (r.kind !== 'day' && r.message._id === id));
    if (at < 0) return false;
    scrollTo.current = key;
    setShown((n) => Math.max(n, all.length - at + 1));
    setJumpTick((n) => n + 1);
    return true;
  };

  // A `?msg=` link: bring the message into view and mark it.
  useEffect(() => {
    if (!target) return;
    let live = true;
    void reveal(target).then((ok) => {
      if (!live) return;
      if (!ok) toast(t('Message not found'));
      else setHighlight(target);
    });
    return () => {
      live = false;
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
    // The line may be older than what is loaded: load until a message read before it appears.
    await loadUntil(sub.rid, (m) => m.ts <= since);
    const first = firstUnread((store.get().messages[sub.rid]?.list ?? []).filter(inMainList), since, me);
    if (first) await reveal(first._id, `unread-${first._id}`);
  };

  const visible = rows.slice(Math.max(0, rows.length - shown));

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const wanted = scrollTo.current && el.querySelector(`[data-row="${CSS.escape(scrollTo.current)}"], [data-id="${CSS.escape(scrollTo.current)}"]`);
    if (wanted) {
      scrollTo.current = null;
      anchor.current = null;
      atBottom.current = false;
      wanted.scrollIntoView({ block: 'center' });
      jumped.current = { row: wanted, at: performance.now() };
      // Rows around it that were never drawn had a placeholder height (`content-visibility`)
      // until this scroll laid them out: centre again once they have their own.
      requestAnimationFrame(() => requestAnimationFrame(() => wanted.isConnected && wanted.scrollIntoView({ block: 'center' })));
    } else if (anchor.current !== null) {
      const { row, offset } = anchor.current;
      const recent = jumped.current;
      if (recent && recent.row.isConnected && performance.now() - recent.at < 2000) recent.row.scrollIntoView({ block: 'center' });
      else if (row.isConnected) el.scrollTop += row.getBoundingClientRect().top - el.getBoundingClientRect().top - offset;
      anchor.current = null;
    } else if (atBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
    // First render of the room's history: from the data's arrival to the DOM laid out (reading
    // scrollHeight above forced the layout).
    const mark = `apogee:history:${sub.rid}`;
    if (measured.current !== sub.rid && rows.length > 0 && performance.getEntriesByName(mark).length > 0) {
      measured.current = sub.rid;
      performance.measure(`apogee:first-render:${sub.rid}`, mark);
    }
  }, [visible.length, rows, shown, jumpTick]);

  useEffect(() => {
    const el = scroller.current;
    const sentinel = top.current;
    if (!el || !sentinel) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        if (el.scrollHeight <= el.clientHeight && atBottom.current && rows.length <= shown && !state?.hasMore) return;
        anchor.current = topRow(el);
        if (rows.length > shown) setShown((n) => n + STEP);
        else if (state?.hasMore && !state.loading) {
          void loadOlder(sub.rid).then(() => setShown((n) => n + STEP));
        } else anchor.current = null;
      },
      { root: el, rootMargin: '200px 0px 0px 0px' },
    );
    io.observe(sentinel);
    return () => io.disconnect();
  }, [sub.rid, rows.length, shown, state?.hasMore, state?.loading]);

  return (
    <div
      class="message-list"
      ref={scroller}
      onScroll={(e) => {
        const el = e.currentTarget;
        atBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
      }}
    >
      {since && first && jumpBar && (
        <div class="unread-bar" role="status">
          <span>{t('New messages since {time}', { time: since.toLocaleString([], { dateStyle: 'short', timeStyle: 'short' }) })}</span>
          <button onClick={() => void jumpToUnread()}>{t('Jump to first unread')}</button>
          <button class="icon" aria-label={t('Close')} onClick={() => setJumpBar(false)}>✕</button>
        </div>
      )}
      <div ref={top} class="list-top">
        {state?.loading ? <span class="loading">{t('Loading…')}</span> : !state?.hasMore && rows.length <= shown ? <span class="room-start">{t('Start of conversation')}</span> : null}
      </div>
      <div role="list" aria-label="Messages" aria-live="polite">
        {visible.map((r) =>
          r.kind === 'day' ? (
            <div class="day-separator" key={r.key} role="separator">
              <span>{dayLabel(r.date)}</span>
            </div>
          ) : r.kind === 'unread' ? (
            <div class="unread-separator" key={r.key} data-row={r.key} role="separator" aria-label={t('Unread messages')}>
              <span>{t('Unread messages')}</span>
            </div>
          ) : r.kind === 'system' ? (
            <SystemLine key={r.key} m={r.message} />
          ) : (
            <MessageItem
              key={r.key}
              m={r.message}
              grouped={r.grouped}
              onEdit={onEdit}
              onQuote={onQuote}
              highlighted={highlight === r.message._id}
              threadRoute={roomRoute(sub.t, sub.name, sub.rid, r.message._id)}
            />
          ),
        )}
      </div>
    </div>
  );
}
