import { useEffect, useState } from 'preact/hooks';
import { deleteMessage, errorText, findMessage, messageLink, navigate, setPinned, setStarred, store, toast, toggleReaction } from '../app';
import { EMOJI, QUICK, emojiFor } from '../emoji';
import { Markdown } from '../markdown';
import { linkedMessageId, mdWithoutQuotes, quotedIds, systemText, withoutQuotes } from '../messages';
import { parse, roomRoute, type Route } from '../router';
import { useSelect } from '../store';
import type { Attachment, Message } from '../types';
import { Avatar } from './Avatar';
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

/** Goes to message `id` of room `rid` (a `?msg=` route), or opens `link` when the room is unknown. */
function goToMessage(rid: string, id: string, link?: string): void {
  const sub = store.get().subs[rid];
  if (sub) navigate({ ...roomRoute(sub.t, sub.name, sub.rid), msg: id } as Route);
  else if (link) openMessageLink(link);
}

/** A quoted message the server did not attach: fetched and drawn like Rocket.Chat's quote attachment. */
function QuoteView({ id }: { id: string }) {
  const [quoted, setQuoted] = useState<Message | null | undefined>(undefined);
  useEffect(() => {
    let live = true;
    void findMessage(id).then((m) => live && setQuoted(m ?? null));
    return () => {
      live = false;
    };
  }, [id]);
  if (quoted === undefined) return null;
  if (quoted === null) return <blockquote class="attachment-quote missing">{t('Message not found')}</blockquote>;
  return (
    <blockquote class="attachment-quote" data-quote={id}>
      <button class="quote-author" onClick={() => goToMessage(quoted.rid, quoted._id)}>
        <strong>{quoted.u.username}</strong> <time dateTime={quoted.ts.toISOString()}>{full(quoted.ts)}</time>
      </button>
      <p>{withoutQuotes(quoted.msg)}</p>
    </blockquote>
  );
}

export function SystemLine({ m }: { m: Message }) {
  return (
    <div class="system-message" role="listitem" data-id={m._id}>
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
        <button class="image-button" onClick={() => onView(full, a.title ?? '')} aria-label={`View ${a.title ?? 'image'}`}>
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
  if (a.text || a.author_name) {
    const linked = a.message_link ? linkedMessageId(a.message_link) : undefined;
    return (
      <blockquote class="attachment-quote" data-quote={linked}>
        {a.author_name &&
          (a.message_link ? (
            <a class="quote-author" href={a.message_link} onClick={(e) => openMessageLink(a.message_link!) && e.preventDefault()}>
              <strong>{a.author_name}</strong>
            </a>
          ) : (
            <strong>{a.author_name}</strong>
          ))}
        <p>{a.text}</p>
      </blockquote>
    );
  }
  return null;
}

export function ImageViewer({ url, title, onClose }: { url: string; title: string; onClose: () => void }) {
  return (
    <div class="viewer" role="dialog" aria-modal="true" aria-label={title || 'Image'} onClick={onClose} onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <img src={url} alt={title} />
      <button class="icon viewer-close" aria-label="Close" autofocus onClick={onClose}>✕</button>
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
}: {
  m: Message;
  grouped: boolean;
  threadRoute?: Route;
  onEdit?: (m: Message) => void;
  onQuote?: (m: Message) => void;
  inThread?: boolean;
  /** The target of a `?msg=` link, marked for a moment. */
  highlighted?: boolean;
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
  // Quotes the server attached are drawn from the attachment; the others are fetched.
  const attached = new Set((m.attachments ?? []).map((a) => (a.message_link ? linkedMessageId(a.message_link) : undefined)));
  const quotes = m.msg ? quotedIds(m.msg) : [];
  const fetchedQuotes = quotes.filter((id) => !attached.has(id));
  return (
    <div
      class={`message${grouped ? ' grouped' : ''}${m.pending ? ' pending' : ''}${active ? ' active' : ''}${highlighted ? ' highlighted' : ''}`}
      role="listitem"
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
        {fetchedQuotes.map((id) => <QuoteView key={id} id={id} />)}
        <div
          class="message-text"
          onClick={(e) => {
            const a = (e.target as HTMLElement).closest('a');
            if (a && openMessageLink(a.href)) e.preventDefault();
          }}
        >
          {m.msg && (quotes.length ? <Markdown md={mdWithoutQuotes(m.md)} fallback={withoutQuotes(m.msg)} /> : <Markdown md={m.md} fallback={m.msg} />)}
          {m.pinned && <span class="pinned-mark" title={t('Pinned')}> 📌</span>}
          {m.editedAt && <span class="edited" title={`Edited ${full(m.editedAt)}`}> {t('(edited)')}</span>}
        </div>
        {m.attachments?.map((a, i) => <AttachmentView key={i} a={a} onView={(url, title) => setViewing({ url, title })} />)}
        {reactions.length > 0 && (
          <div class="reactions" role="group" aria-label="Reactions">
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
        <div class="message-toolbar" role="toolbar" aria-label="Message actions">
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
            <div class="emoji-picker" role="menu" aria-label="Pick a reaction">
              {[...QUICK, ...Object.keys(EMOJI).filter((k) => !QUICK.includes(k)).slice(0, 24)].map((code) => (
                <button key={code} role="menuitem" title={`:${code}:`} aria-label={code} onClick={() => react(code)}>{EMOJI[code]}</button>
              ))}
            </div>
          )}
        </div>
      )}
      {viewing && <ImageViewer url={viewing.url} title={viewing.title} onClose={() => setViewing(null)} />}
    </div>
  );
}
