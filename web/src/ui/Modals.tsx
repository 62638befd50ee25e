import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, createRoom, errorText, joinRoom, startDirect } from '../app';
import { t } from '../i18n';
import { createTeam } from '../teams';

export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    document.addEventListener('keydown', onKey);
    ref.current?.querySelector<HTMLElement>('input, button')?.focus();
    return () => document.removeEventListener('keydown', onKey);
  }, [onClose]);
  return (
    <div class="modal-backdrop" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <header>
          <h2>{title}</h2>
          <button class="icon" aria-label={t('Close')} onClick={onClose}>✕</button>
        </header>
        {children}
      </div>
    </div>
  );
}

function useSubmit(action: () => Promise<void>, onDone: () => void) {
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await action();
      onDone();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, submit };
}

/** Creates a channel, or with `team` a team (whose main room is a channel or a private group). */
export function CreateChannel({ onClose, team = false }: { onClose: () => void; team?: boolean }) {
  const [name, setName] = useState('');
  const [priv, setPriv] = useState(false);
  const { error, busy, submit } = useSubmit(() => (team ? createTeam(name.trim(), priv) : createRoom(name.trim(), priv)), onClose);
  return (
    <Modal title={t(team ? 'Create team' : 'Create channel')} onClose={onClose}>
      <form onSubmit={submit} class="modal-form">
        <label>
          {t('Name')}
          <input name="channel-name" value={name} onInput={(e) => setName(e.currentTarget.value)} required pattern="[\w.-]+" />
        </label>
        <label class="check">
          <input type="checkbox" checked={priv} onChange={(e) => setPriv(e.currentTarget.checked)} /> {t('Private (only invited members)')}
        </label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <footer>
          <button type="button" onClick={onClose}>{t('Cancel')}</button>
          <button class="primary" type="submit" disabled={busy}>{t('Create')}</button>
        </footer>
      </form>
    </Modal>
  );
}

export function DirectMessage({ onClose }: { onClose: () => void }) {
  const [username, setUsername] = useState('');
  const { error, busy, submit } = useSubmit(() => startDirect(username.trim().replace(/^@/, '')), onClose);
  return (
    <Modal title={t('Direct message')} onClose={onClose}>
      <form onSubmit={submit} class="modal-form">
        <label>
          {t('Username')}
          <input name="dm-username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} required />
        </label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <footer>
          <button type="button" onClick={onClose}>{t('Cancel')}</button>
          <button class="primary" type="submit" disabled={busy}>{t('Start')}</button>
        </footer>
      </form>
    </Modal>
  );
}

interface DirectoryRoom {
  _id: string;
  name: string;
  t: string;
  topic?: string;
  usersCount?: number;
}

export function Directory({ onClose }: { onClose: () => void }) {
  const [text, setText] = useState('');
  const [rooms, setRooms] = useState<DirectoryRoom[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    const t = setTimeout(() => {
      api
        .get('directory', { type: 'channels', text, count: 50, sort: JSON.stringify({ name: 1 }) })
        .then((r) => setRooms(r.result ?? []), (e) => setError(errorText(e)));
    }, 200);
    return () => clearTimeout(t);
  }, [text]);
  return (
    <Modal title={t('Directory')} onClose={onClose}>
      <input class="search" placeholder={t('Search channels')} value={text} onInput={(e) => setText(e.currentTarget.value)} aria-label={t('Search channels')} />
      {error && <p class="form-error">{error}</p>}
      <ul class="directory" role="list">
        {rooms.map((r) => (
          <li key={r._id}>
            <span class="room-icon">#</span>
            <span class="grow">
              <strong>{r.name}</strong>
              {r.topic && <small> — {r.topic}</small>}
            </span>
            <small>{t('{n} members', { n: r.usersCount ?? 0 })}</small>
            <button onClick={() => joinRoom(r._id, r.t, r.name).then(onClose, (e) => setError(errorText(e)))}>{t('Open')}</button>
          </li>
        ))}
      </ul>
    </Modal>
  );
}
