import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { loadOlder, store } from '../app';
import { inMainList, layout } from '../messages';
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
export function MessageList({ sub, onEdit }: { sub: Subscription; onEdit: (m: Message) => void }) {
  const state = useSelect(store, (s) => s.messages[sub.rid]);
  const rows = useMemo(() => layout((state?.list ?? []).filter(inMainList)), [state?.list]);
  const [shown, setShown] = useState(FIRST_WINDOW);
  const scroller = useRef<HTMLDivElement>(null);
  const top = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  const anchor = useRef<number | null>(null); // distance from the bottom to restore after growing upwards
  const measured = useRef<string | null>(null);

  useEffect(() => {
    setShown(FIRST_WINDOW);
    atBottom.current = true;
  }, [sub.rid]);

  const visible = rows.slice(Math.max(0, rows.length - shown));

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (anchor.current !== null) {
      el.scrollTop = el.scrollHeight - anchor.current;
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
  }, [visible.length, rows]);

  useEffect(() => {
    const el = scroller.current;
    const sentinel = top.current;
    if (!el || !sentinel) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (!entries.some((e) => e.isIntersecting)) return;
        if (el.scrollHeight <= el.clientHeight && atBottom.current && rows.length <= shown && !state?.hasMore) return;
        anchor.current = el.scrollHeight - el.scrollTop;
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
      <div ref={top} class="list-top">
        {state?.loading ? <span class="loading">{t('Loading…')}</span> : !state?.hasMore && rows.length <= shown ? <span class="room-start">{t('Start of conversation')}</span> : null}
      </div>
      <div role="list" aria-label="Messages" aria-live="polite">
        {visible.map((r) =>
          r.kind === 'day' ? (
            <div class="day-separator" key={r.key} role="separator">
              <span>{dayLabel(r.date)}</span>
            </div>
          ) : r.kind === 'system' ? (
            <SystemLine key={r.key} m={r.message} />
          ) : (
            <MessageItem key={r.key} m={r.message} grouped={r.grouped} onEdit={onEdit} threadRoute={roomRoute(sub.t, sub.name, sub.rid, r.message._id)} />
          ),
        )}
      </div>
    </div>
  );
}
