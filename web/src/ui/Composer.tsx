import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, editMessage, errorText, sendMessage, setTyping, store, toast, uploadFile, withQuotes } from '../app';
import { applyCompletion, tokenAt, type Token } from '../complete';
import { loadEmojiCatalog, searchEmoji } from '../emoji-catalog';
import { lastOwn } from '../messages';
import { useSelect } from '../store';
import type { Message } from '../types';
import { t } from '../i18n';
import { EmojiPicker } from './EmojiPicker';

interface Option {
  value: string;
  label: string;
  hint?: string;
}

/** Suggestions for a token: users and rooms from `spotlight`, emoji from the full set. */
async function suggestions(token: Token): Promise<Option[]> {
  if (token.trigger === ':') {
    const found = searchEmoji(await loadEmojiCatalog(), token.query, 8);
    return found.map((e) => ({ value: e.name, label: `${e.glyph} :${e.name}:` }));
  }
  const res = await api.get('spotlight', { query: `${token.trigger}${token.query}` });
  if (token.trigger === '@') {
    const users: Option[] = (res.users ?? []).slice(0, 8).map((u: any) => ({ value: u.username, label: `@${u.username}`, hint: u.name }));
    const special = ['all', 'here'].filter((x) => x.startsWith(token.query)).map((x) => ({ value: x, label: `@${x}`, hint: 'notify everyone' }));
    return [...users, ...special];
  }
  return (res.rooms ?? []).filter((r: any) => r.t === 'c' || r.t === 'p').slice(0, 8).map((r: any) => ({ value: r.name, label: `#${r.name}`, hint: r.fname !== r.name ? r.fname : undefined }));
}

/**
 * The message box: Enter sends, Shift+Enter breaks the line, ↑ in an empty box edits the last
 * own message, Escape cancels an edit; files by button, paste or drop (`onFiles`).
 */
export function Composer({
  rid,
  tmid,
  placeholder,
  editing,
  setEditing,
  list,
  readOnly,
  quoting = [],
  setQuoting,
}: {
  rid: string;
  tmid?: string;
  placeholder: string;
  editing: Message | null;
  setEditing: (m: Message | null) => void;
  list: Message[];
  readOnly?: boolean;
  /** Messages the next one quotes (the Quote action), shown above the box until sent. */
  quoting?: Message[];
  setQuoting?: (m: Message[]) => void;
}) {
  const me = useSelect(store, (s) => s.me!);
  const uploads = useSelect(store, (s) => s.uploads.filter((u) => u.rid === rid));
  const [text, setText] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);
  const [token, setToken] = useState<Token | null>(null);
  const [options, setOptions] = useState<Option[]>([]);
  const [selected, setSelected] = useState(0);
  const [picking, setPicking] = useState(false);
  const [caret, setCaret] = useState<number | null>(null);

  /** Puts `:name:` where the caret is (the emoji picker's choice). */
  const insertEmoji = (name: string) => {
    const el = area.current;
    const at = el?.selectionStart ?? text.length;
    const before = text.slice(0, at);
    const insert = `${before && !/\s$/.test(before) ? ' ' : ''}:${name}: `;
    setText(before + insert + text.slice(el?.selectionEnd ?? at));
    setPicking(false);
    setCaret(at + insert.length);
  };

  // The caret after a programmatic edit, placed as soon as the new text is rendered: before any
  // further keystroke is handled (a later animation frame could come after the next keys and
  // move the caret back behind them).
  useLayoutEffect(() => {
    const el = area.current;
    if (caret === null || !el) return;
    el.focus();
    el.setSelectionRange(caret, caret);
    setCaret(null);
  }, [caret]);

  useEffect(() => {
    if (!token) {
      setOptions([]);
      return;
    }
    let live = true;
    const t = setTimeout(() => {
      suggestions(token).then((o) => live && (setOptions(o), setSelected(0)), () => live && setOptions([]));
    }, 120);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [token?.trigger, token?.query]);

  const complete = (o: Option) => {
    const el = area.current;
    if (!el || !token) return;
    const next = applyCompletion(text, el.selectionStart ?? text.length, token, o.value);
    setText(next.text);
    setToken(null);
    setCaret(next.caret);
  };

  useEffect(() => {
    if (editing) {
      setText(editing.msg);
      area.current?.focus();
    }
  }, [editing]);

  useEffect(() => {
    if (quoting.length) area.current?.focus();
  }, [quoting.length]);

  useEffect(() => {
    if (!area.current) return;
    area.current.style.height = 'auto';
    area.current.style.height = `${Math.min(area.current.scrollHeight, 200)}px`;
  }, [text]);

  const submit = async () => {
    const value = text.trim();
    if (!value) return;
    setText('');
    setTyping(rid, false);
    try {
      if (editing) {
        const m = editing;
        setEditing(null);
        if (value !== m.msg) await editMessage(m, value);
      } else {
        const quoted = quoting;
        setQuoting?.([]);
        await sendMessage(rid, withQuotes(value, quoted), tmid);
      }
    } catch (e) {
      setText(value);
      toast(errorText(e));
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (token && options.length > 0) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const n = options.length;
        setSelected((i) => (i + (e.key === 'ArrowDown' ? 1 : n - 1)) % n);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        complete(options[selected]);
        return;
      }
      if (e.key === 'Escape') {
        setToken(null);
        return;
      }
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    } else if (e.key === 'ArrowUp' && text === '' && !editing) {
      const last = lastOwn(list, me._id);
      if (last) {
        e.preventDefault();
        // The text in the same render as the editing state (the effect below would be a frame later).
        setText(last.msg);
        setEditing(last);
      }
    } else if (e.key === 'Escape' && !editing && quoting.length) {
      setQuoting?.([]);
    } else if (e.key === 'Escape' && editing) {
      setEditing(null);
      setText('');
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (files.length) {
      e.preventDefault();
      files.forEach((f) => uploadFile(rid, f, tmid));
    }
  };

  if (readOnly) return <div class="composer composer-readonly">{t('This room is read only')}</div>;

  return (
    <div class="composer-wrap">
      {uploads.map((u) => (
        <div class={`upload${u.error ? ' upload-error' : ''}`} key={u.id} role="status">
          <span class="upload-name">{u.name}</span>
          {u.error ? (
            <span>{u.error}</span>
          ) : (
            <progress max={1} value={u.progress} aria-label={t('Uploading {name}', { name: u.name })} />
          )}
          <span class="upload-pct">{Math.round(u.progress * 100)}%</span>
        </div>
      ))}
      {editing && (
        <div class="editing-bar">
          {t('Editing message')} · <kbd>Esc</kbd> {t('to cancel')}
        </div>
      )}
      {quoting.map((q) => (
        <div class="quoting-bar" key={q._id} role="status" aria-label={t('Quoting')}>
          <span>
            ❝ <strong>{q.u.username}</strong> {q.msg.length > 120 ? `${q.msg.slice(0, 120)}…` : q.msg}
          </span>
          <button class="icon" aria-label={t('Cancel quote')} title={t('Cancel quote')} onClick={() => setQuoting?.(quoting.filter((x) => x._id !== q._id))}>✕</button>
        </div>
      ))}
      {token && options.length > 0 && (
        <ul class="autocomplete" role="listbox" aria-label={t('Suggestions')}>
          {options.map((o, i) => (
            <li
              key={o.value}
              role="option"
              aria-selected={i === selected}
              class={i === selected ? 'selected' : ''}
              onMouseDown={(e) => {
                e.preventDefault();
                complete(o);
              }}
            >
              <strong>{o.label}</strong> {o.hint && <small>{o.hint}</small>}
            </li>
          ))}
        </ul>
      )}
      <div class={`composer${editing ? ' is-editing' : ''}`}>
        <button class="icon" title={t('Upload file')} aria-label={t('Upload file')} onClick={() => fileInput.current?.click()}>+</button>
        <input
          ref={fileInput}
          type="file"
          hidden
          multiple
          data-testid="file-input"
          onChange={(e) => {
            [...(e.currentTarget.files ?? [])].forEach((f) => uploadFile(rid, f, tmid));
            e.currentTarget.value = '';
          }}
        />
        <textarea
          ref={area}
          rows={1}
          aria-label={placeholder}
          placeholder={placeholder}
          value={text}
          onInput={(e) => {
            const el = e.currentTarget;
            setText(el.value);
            setToken(tokenAt(el.value, el.selectionStart ?? el.value.length));
            setTyping(rid, el.value.length > 0);
          }}
          aria-autocomplete="list"
          aria-expanded={options.length > 0 && !!token}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          onBlur={() => {
            setTyping(rid, false);
            setToken(null);
          }}
        />
        <button class="icon" title={t('Emoji')} aria-label={t('Emoji')} aria-expanded={picking} onClick={() => setPicking(!picking)}>☺</button>
        {picking && <EmojiPicker label={t('Emoji')} onPick={insertEmoji} onClose={() => setPicking(false)} />}
        <button class="icon send" title={t('Send')} aria-label={t('Send')} disabled={!text.trim()} onClick={() => void submit()}>➤</button>
      </div>
    </div>
  );
}
