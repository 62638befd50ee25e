import { useEffect } from 'preact/hooks';
import { closeRoom, isAdmin, store } from '../app';
import { useSelect } from '../store';
import { Account } from './Account';
import { Admin } from './Admin';
import { BackToRooms } from './BackToRooms';
import { Login, Register } from './Login';
import { RoomView } from './Room';
import { Sidebar } from './Sidebar';
import { t } from '../i18n';

function Home() {
  const me = useSelect(store, (s) => s.me!);
  return (
    <section class="home" aria-label={t('Home')}>
      <h1>{t('Welcome, {name}', { name: me.name || me.username })}</h1>
      <p>{t('Pick a room on the left, open the directory (⌕) to find channels, or create one (✎).')}</p>
    </section>
  );
}

function ConnectionBanner() {
  const connection = useSelect(store, (s) => s.connection);
  if (connection === 'connected') return null;
  return (
    <div class="connection-banner" role="status">
      {connection === 'connecting' ? t('Connecting…') : t('Waiting for the server — reconnecting…')}
    </div>
  );
}

function Toast() {
  const toast = useSelect(store, (s) => s.toast);
  return toast ? <div class="toast" role="alert">{toast}</div> : null;
}

export function App() {
  const booting = useSelect(store, (s) => s.booting);
  const me = useSelect(store, (s) => s.me);
  const route = useSelect(store, (s) => s.route);
  const setupRequired = useSelect(store, (s) => s.setupRequired);
  useEffect(() => {
    if (route.name !== 'room') closeRoom();
  }, [route.name]);
  const inPage = setupRequired || route.name === 'room' || route.name === 'admin' || route.name === 'account';
  if (booting) return <div class="boot" aria-busy="true" />;
  if (!me) {
    return (
      <>
        {route.name === 'register' ? <Register /> : <Login />}
        <Toast />
      </>
    );
  }
  return (
    // On a phone the sidebar is the home screen and a room (or page) takes the whole screen.
    <div class={`layout${inPage ? ' in-page' : ' at-home'}`}>
      <Sidebar />
      <main class="main">
        <ConnectionBanner />
        {inPage && route.name !== 'room' && <BackToRooms />}
        {setupRequired ? (
          <Account required />
        ) : route.name === 'room' ? (
          <RoomView />
        ) : route.name === 'admin' && isAdmin() ? (
          <Admin />
        ) : route.name === 'account' ? (
          <Account />
        ) : (
          <Home />
        )}
      </main>
      <Toast />
    </div>
  );
}
