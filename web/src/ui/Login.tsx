import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { errorText, login, navigate, register } from '../app';
import { t } from '../i18n';

function Brand() {
  return (
    <div class="auth-brand">
      <img src="/favicon.svg" alt="" width={40} height={40} />
      <h1>Apogee</h1>
    </div>
  );
}

export function Login() {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [needCode, setNeedCode] = useState<string | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await login(user.trim(), password, needCode ? code.trim() : undefined);
    } catch (err) {
      if (err instanceof ApiError && (err.error === 'totp-required' || err.errorType === 'totp-required')) {
        const method = (err.details as any)?.method ?? 'totp';
        setNeedCode(method);
      } else if (err instanceof ApiError && err.error === 'totp-invalid') {
        setError(t('Invalid two-factor code'));
      } else if (err instanceof ApiError && err.status === 401) {
        setError(t('Incorrect username or password'));
      } else {
        setError(errorText(err));
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="login-title">
        <Brand />
        <h2 id="login-title">{needCode ? t('Two-factor authentication') : t('Login')}</h2>
        {!needCode ? (
          <>
            <label>
              {t('Email or username')}
              <input name="username" autocomplete="username" value={user} onInput={(e) => setUser(e.currentTarget.value)} required autofocus />
            </label>
            <label>
              {t('Password')}
              <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
            </label>
          </>
        ) : (
          <label>
            {needCode === 'email' ? t('Enter the code sent to your e-mail') : t('Enter the code from your authenticator app (or a backup code)')}
            <input name="code" inputMode="numeric" autocomplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} required autofocus />
          </label>
        )}
        {error && <p class="form-error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy}>
          {needCode ? t('Verify') : t('Login')}
        </button>
        {needCode ? (
          <button type="button" class="link" onClick={() => { setNeedCode(null); setCode(''); }}>{t('Back')}</button>
        ) : (
          <p class="auth-alt">
            {t('New here?')}{' '}
            <a href="/register" onClick={(e) => { e.preventDefault(); navigate({ name: 'register' }); }}>{t('Create an account')}</a>
          </p>
        )}
      </form>
    </main>
  );
}

export function Register() {
  const [f, setF] = useState({ name: '', username: '', email: '', pass: '' });
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const field = (k: keyof typeof f) => ({ value: f[k], onInput: (e: any) => setF({ ...f, [k]: e.currentTarget.value }) });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await register(f);
    } catch (err) {
      const details = err instanceof ApiError && Array.isArray((err.details as any)?.errors) ? ` (${(err.details as any).errors.map((x: any) => x.error ?? x).join(', ')})` : '';
      setError(errorText(err) + details);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="auth">
      <form class="auth-card" onSubmit={submit} aria-labelledby="register-title">
        <Brand />
        <h2 id="register-title">{t('Create an account')}</h2>
        <label>{t('Name')}<input name="name" autocomplete="name" required {...field('name')} /></label>
        <label>{t('Username')}<input name="username" autocomplete="username" required {...field('username')} /></label>
        <label>{t('Email')}<input name="email" type="email" autocomplete="email" required {...field('email')} /></label>
        <label>{t('Password')}<input name="pass" type="password" autocomplete="new-password" required {...field('pass')} /></label>
        {error && <p class="form-error" role="alert">{error}</p>}
        <button class="primary" type="submit" disabled={busy}>{t('Join')}</button>
        <p class="auth-alt">
          <a href="/login" onClick={(e) => { e.preventDefault(); navigate({ name: 'login' }); }}>{t('Back to login')}</a>
        </p>
      </form>
    </main>
  );
}
