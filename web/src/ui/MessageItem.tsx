import { useEffect, useState } from 'preact/hooks';
import { deleteMessage, errorText, messageLink, navigate, setPinned, setStarred, store, toast, toggleReaction } from '../app';
import { emojiFor } from '../emoji';
import { loadEmojiCatalog } from '../emoji-catalog';
import { toDate } from '../ejson';
import { Markdown } from '../markdown';
import { linkedMessageId, mdWithoutQuotes, quotedIds, systemText, withoutQuotes } from '../messages';
import { parse, type Route } from '../router';
import { useSelect } from '../store';
import type { Attachment, Message } from '../types';
import { Avatar } from './Avatar';
import { EmojiPicker } from './EmojiPicker';
import { t } from '../i18n';

// One formatter each: `toLocaleTimeString(…, options)` builds a new one per call, which showed
// in the first render of a room.
const timeFormat = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat([], { dateStyle: 'medium', timeStyle: 'short' });
const time = (d: Date) => timeFormat.format(d);
const full = (d: Date) => fullFormat.format(d);

/** Opens a message link of this server in the app (the room, scrolled to the message). */
function openMessageLink(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url, location.href);
  } catch {
    return false;
  }
  if (parsed.origin !== location.origin || !linkedMessageId(url)) return false;
  navigate(parse(parsed.pathname, parsed.search));
  return true;
}

/**
 * Where a row sits among its siblings for assistive technology: inside the room's `log` each row
 * is an `article` numbered within what is loaded (`size` -1 while more can be loaded); elsewhere
 * (thread, search results) a `listitem`.
 */
export interface RowPlace {
  pos: number;
  size: number;
}

const placeAttrs = (place?: RowPlace) =>
  place ? { role: 'article' as const, 'aria-posinset': place.pos, 'aria-setsize': place.size } : { role: 'listitem' as const };

export function SystemLine({ m, place }: { m: Message; place?: RowPlace }) {
  return (
    <div class="system-message" {...placeAttrs(place)} tabIndex={-1} data-id={m._id} aria-label={systemText(m)}>
      <span>{systemText(m)}</span> <time dateTime={m.ts.toISOString()}>{time(m.ts)}</time>
    </div>
  );
}

function AttachmentView({ a, onView }: { a: Attachment; onView: (url: string, title: string) => void }) {
  if (a.image_url) {
    const dims = a.image_dimensions;
    const full = a.title_link ?? a.image_url;
    return (
      <figure class="attachment-image">
        <button class="image-button" onClick={() => onView(full, a.title ?? '')} aria-label={a.title ? t('View {title}', { title: a.title }) : t('View image')}>
          <img
            src={a.image_url}
            alt={a.description || a.title || ''}
            width={dims ? Math.min(dims.width, 360) : undefined}
            style={dims ? { aspectRatio: `${dims.width} / ${dims.height}` } : undefined}
            loading="lazy"
          />
        </button>
        <figcaption>
          <a href={full} target="_blank" rel="noopener">{a.title}</a>
          {a.description && <span> — {a.description}</span>}
        </figcaption>
      </figure>
    );
  }
  if (a.title_link) {
    return (
      <div class="attachment-file">
        <span aria-hidden="true">📄</span>
        <a href={a.title_link} target="_blank" rel="noopener" download={a.title_link_download ? a.title : undefined}>{a.title}</a>
        {a.description && <p>{a.description}</p>}
      </div>
    );
  }
  if (a.message_link || a.text || a.author_name) return <QuoteAttachment a={a} onView={onView} />;
  return null;
}

/** Rocket.Chat's quote attachment, as the server adds it for a message link: author, time, the
 * quoted message's text (its `md` when given) and its own attachments (nested quotes, files). */
function QuoteAttachment({ a, onView }: { a: Attachment; onView: (url: string, title: string) => void }) {
  const linked = a.message_link ? linkedMessageId(a.message_link) : undefined;
  const ts = a.ts ? toDate(a.ts) : undefined;
  const nested = a.attachments ?? [];
  const shown = attachedQuotes(nested);
  const author = (
    <>
      {a.author_icon && <img class="quote-icon" src={a.author_icon} alt="" width={16} height={16} loading="lazy" />}
      <strong>{a.author_name}</strong>
      {ts && !isNaN(ts.getTime()) && <time dateTime={ts.toISOString()}> {full(ts)}</time>}
    </>
  );
  return (
    <blockquote class="attachment-quote" data-quote={linked}>
      {a.message_link ? (
        <a class="quote-author" href={a.message_link} onClick={(e) => openMessageLink(a.message_link!) && e.preventDefault()}>
          {author}
        </a>
      ) : (
        <span class="quote-author">{author}</span>
      )}
      {a.text && (
        <div class="quote-text">
          <Markdown md={mdWithoutQuotes(a.md, shown)} fallback={withoutQuotes(a.text, shown)} />
        </div>
      )}
      {nested.map((n, i) => <AttachmentView key={i} a={n} onView={onView} />)}
    </blockquote>
  );
}

/** The ids of the messages the quote attachments in `attachments` stand for. */
function attachedQuotes(attachments: readonly Attachment[]): Set<string> {
  const ids = new Set<string>();
  for (const a of attachments) {
    const id = a.message_link ? linkedMessageId(a.message_link) : undefined;
    if (id) ids.add(id);
  }
  return ids;
}

export function ImageViewer({ url, title, onClose }: { url: string; title: string; onClose: () => void }) {
  return (
    <div class="viewer" role="dialog" aria-modal="true" aria-label={title || 'Image'} onClick={onClose} onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <img src={url} alt={title} />
      <button class="icon viewer-close" aria-label={t('Close')} autofocus onClick={onClose}>✕</button>
    </div>
  );
}

export function MessageItem({
  m,
  grouped,
  threadRoute,
  onEdit,
  onQuote,
  inThread = false,
  highlighted = false,
  place,
}: {
  m: Message;
  grouped: boolean;
  threadRoute?: Route;
  onEdit?: (m: Message) => void;
  onQuote?: (m: Message) => void;
  inThread?: boolean;
  /** The target of a `?msg=` link, marked for a moment. */
  highlighted?: boolean;
  place?: RowPlace;
}) {
  const me = useSelect(store, (s) => s.me!);
  const [picker, setPicker] = useState(false);
  // The action toolbar exists only while the message is hovered or focused: 50 hidden toolbars
  // would cost a first render a third more DOM.
  const [active, setActive] = useState(false);
  const [viewing, setViewing] = useState<{ url: string; title: string } | null>(null);
  const mine = m.u._id === me._id;
  const starred = !!m.starred?.some((x) => x._id === me._id);
  const react = (emoji: string) => {
    setPicker(false);
    setActive(false);
    toggleReaction(m, emoji).catch((e) => toast(errorText(e)));
  };
  const reactions = Object.entries(m.reactions ?? {});
  // A reaction outside the quick set draws once the full set has loaded.
  const [, setEmojiLoaded] = useState(false);
  const unknownReaction = reactions.some(([code]) => !emojiFor(code));
  useEffect(() => {
    if (unknownReaction) void loadEmojiCatalog().then(() => setEmojiLoaded(true), () => {});
  }, [unknownReaction]);
  // Quotes are the server's attachments; their links are hidden from the text (all of them
  // while the message is pending: the server attaches them as it stores it). A quote link the
  // server did not attach (a room the sender cannot read) stays a plain link.
  const shown = m.pending ? undefined : attachedQuotes(m.attachments ?? []);
  const quotes = m.msg ? quotedIds(m.msg) : [];
  return (
    <div
      class={`message${grouped ? ' grouped' : ''}${m.pending ? ' pending' : ''}${active ? ' active' : ''}${highlighted ? ' highlighted' : ''}`}
      {...placeAttrs(place)}
      data-id={m._id}
      aria-label={`${m.u.username}: ${m.msg}`}
      tabIndex={-1}
      onMouseEnter={() => setActive(true)}
      onMouseLeave={() => !picker && setActive(false)}
      onFocusIn={() => setActive(true)}
    >
      <div class="message-gutter">{grouped ? <time class="hover-time">{time(m.ts)}</time> : <Avatar username={m.u.username} />}</div>
      <div class="message-body">
        {!grouped && (
          <div class="message-header">
            <strong class="author">{m.u.name || m.u.username}</strong>
            {m.u.name && <span class="username">@{m.u.username}</span>}
            <time dateTime={m.ts.toISOString()} title={full(m.ts)}>{time(m.ts)}</time>
          </div>
        )}
        <div
          class="message-text"
          onClick={(e) => {
            const a = (e.target as HTMLElement).closest('a');
            if (a && openMessageLink(a.href)) e.preventDefault();
          }}
        >
          {m.msg && (quotes.length ? <Markdown md={mdWithoutQuotes(m.md, shown)} fallback={withoutQuotes(m.msg, shown)} /> : <Markdown md={m.md} fallback={m.msg} />)}
          {m.pinned && <span class="pinned-mark" title={t('Pinned')}> 📌</span>}
          {m.editedAt && <span class="edited" title={`Edited ${full(m.editedAt)}`}> {t('(edited)')}</span>}
        </div>
        {m.attachments?.map((a, i) => <AttachmentView key={i} a={a} onView={(url, title) => setViewing({ url, title })} />)}
        {reactions.length > 0 && (
          <div class="reactions" role="group" aria-label={t('Reactions')}>
            {reactions.map(([code, r]) => {
              const name = code.replace(/^:|:$/g, '');
              const pressed = r.usernames.includes(me.username);
              return (
                <button key={code} class={`reaction${pressed ? ' mine' : ''}`} aria-pressed={pressed} title={`${r.usernames.join(', ')} reacted with ${code}`} onClick={() => react(name)}>
                  <span>{emojiFor(name) ?? code}</span> <span class="count">{r.usernames.length}</span>
                </button>
              );
            })}
          </div>
        )}
        {!inThread && !!m.tcount && threadRoute && (
          <button class="thread-summary" onClick={() => navigate(threadRoute)}>
            💬 {t(m.tcount === 1 ? '{n} reply' : '{n} replies', { n: m.tcount })}
            {m.tlm && <small> · last {time(m.tlm)}</small>}
          </button>
        )}
      </div>
      {active && !m.pending && (
        <div class="message-toolbar" role="toolbar" aria-label={t('Message actions')}>
          <button class="icon" title={t('Add reaction')} aria-label={t('Add reaction')} onClick={() => setPicker(!picker)}>☺</button>
          {!inThread && threadRoute && (
            <button class="icon" title={t('Reply in thread')} aria-label={t('Reply in thread')} onClick={() => navigate(threadRoute)}>💬</button>
          )}
          {onQuote && (
            <button class="icon" title={t('Quote')} aria-label={t('Quote')} onClick={() => onQuote(m)}>❝</button>
          )}
          <button class="icon" title={t(starred ? 'Unstar' : 'Star')} aria-label={t(starred ? 'Unstar' : 'Star')} aria-pressed={starred} onClick={() => setStarred(m, !starred).catch((e) => toast(errorText(e)))}>{starred ? '★' : '☆'}</button>
          <button class="icon" title={t(m.pinned ? 'Unpin' : 'Pin')} aria-label={t(m.pinned ? 'Unpin' : 'Pin')} aria-pressed={!!m.pinned} onClick={() => setPinned(m, !m.pinned).catch((e) => toast(errorText(e)))}>📌</button>
          <button
            class="icon"
            title={t('Copy link')}
            aria-label={t('Copy link')}
            onClick={() =>
              navigator.clipboard.writeText(messageLink(m)).then(
                () => toast(t('Link copied')),
                () => toast(messageLink(m)),
              )
            }
          >
            🔗
          </button>
          {mine && onEdit && !m.file && (
            <button class="icon" title={t('Edit')} aria-label={t('Edit')} onClick={() => onEdit(m)}>✎</button>
          )}
          {mine && (
            <button class="icon" title={t('Delete')} aria-label={t('Delete')} onClick={() => confirm(t('Delete this message?')) && deleteMessage(m).catch((e) => toast(errorText(e)))}>🗑</button>
          )}
          {picker && (
            <EmojiPicker
              label={t('Pick a reaction')}
              onPick={react}
              onClose={() => {
                setPicker(false);
                setActive(false);
              }}
            />
          )}
        </div>
      )}
      {viewing && <ImageViewer url={viewing.url} title={viewing.title} onClose={() => setViewing(null)} />}
    </div>
  );
}
