import { useEffect, useRef, useState } from 'preact/hooks';
import { editMessage, errorText, sendMessage, setTyping, store, toast, uploadFile } from '../app';
import { lastOwn } from '../messages';
import { useSelect } from '../store';
import type { Message } from '../types';

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
}: {
  rid: string;
  tmid?: string;
  placeholder: string;
  editing: Message | null;
  setEditing: (m: Message | null) => void;
  list: Message[];
  readOnly?: boolean;
}) {
  const me = useSelect(store, (s) => s.me!);
  const uploads = useSelect(store, (s) => s.uploads.filter((u) => u.rid === rid));
  const [text, setText] = useState('');
  const area = useRef<HTMLTextAreaElement>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (editing) {
      setText(editing.msg);
      area.current?.focus();
    }
  }, [editing]);

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
        await sendMessage(rid, value, tmid);
      }
    } catch (e) {
      setText(value);
      toast(errorText(e));
    }
  };

  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    } else if (e.key === 'ArrowUp' && text === '' && !editing) {
      const last = lastOwn(list, me._id);
      if (last) {
        e.preventDefault();
        setEditing(last);
      }
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

  if (readOnly) return <div class="composer composer-readonly">This room is read only</div>;

  return (
    <div class="composer-wrap">
      {uploads.map((u) => (
        <div class={`upload${u.error ? ' upload-error' : ''}`} key={u.id} role="status">
          <span class="upload-name">{u.name}</span>
          {u.error ? (
            <span>{u.error}</span>
          ) : (
            <progress max={1} value={u.progress} aria-label={`Uploading ${u.name}`} />
          )}
          <span class="upload-pct">{Math.round(u.progress * 100)}%</span>
        </div>
      ))}
      {editing && (
        <div class="editing-bar">
          Editing message · <kbd>Esc</kbd> to cancel
        </div>
      )}
      <div class={`composer${editing ? ' is-editing' : ''}`}>
        <button class="icon" title="Upload file" aria-label="Upload file" onClick={() => fileInput.current?.click()}>+</button>
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
            setText(e.currentTarget.value);
            setTyping(rid, e.currentTarget.value.length > 0);
          }}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
          onBlur={() => setTyping(rid, false)}
        />
        <button class="icon send" title="Send" aria-label="Send" disabled={!text.trim()} onClick={() => void submit()}>➤</button>
      </div>
    </div>
  );
}
