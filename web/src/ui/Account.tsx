// The user's own account: two-factor authentication set-up (an authenticator app with a QR code
// and backup codes, and codes by e-mail), through Rocket.Chat's DDP `2fa:*` methods and the
// `users.2fa.*Email` REST calls.

import { useEffect, useState } from 'preact/hooks';
import { api, callWithSecondFactor, ddp, errorText, refreshMe, store, toast, withSecondFactor } from '../app';
import { t } from '../i18n';
import { qrModules, qrPath } from '../qr';
import { useSelect } from '../store';

function QrCode({ text }: { text: string }) {
  const [modules, setModules] = useState<boolean[][] | null>(null);
  useEffect(() => {
    let live = true;
    void qrModules(text).then((m) => live && setModules(m));
    return () => {
      live = false;
    };
  }, [text]);
  if (!modules) return <div class="qr" aria-busy="true" />;
  const size = modules.length + 8;
  return (
    <svg class="qr" viewBox={`0 0 ${size} ${size}`} width={size * 5} height={size * 5} role="img" aria-label={t('QR code for your authenticator app')} shape-rendering="crispEdges">
      <rect width={size} height={size} fill="#fff" />
      <path d={qrPath(modules)} fill="#000" />
    </svg>
  );
}

function BackupCodes({ codes, onDone }: { codes: string[]; onDone: () => void }) {
  return (
    <div class="backup-codes" role="region" aria-label={t('Backup codes')}>
      <p>{t('Keep these backup codes somewhere safe. Each one works once, in place of a code from your app.')}</p>
      <ul>
        {codes.map((c) => (
          <li key={c}><code>{c}</code></li>
        ))}
      </ul>
      <button class="primary" onClick={onDone}>{t('Done')}</button>
    </div>
  );
}

/** Setting up: the QR code (and the secret, for typing in), then the first code to confirm. */
function TotpEnrolment({ setup, onCodes, onCancel }: { setup: { secret: string; url: string }; onCodes: (codes: string[]) => void; onCancel: () => void }) {
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  const verify = async (e: Event) => {
    e.preventDefault();
    setError('');
    try {
      const res = await ddp.call<{ codes: string[] }>('2fa:validateTempToken', code.trim());
      onCodes(res?.codes ?? []);
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="totp-setup" aria-label={t('Set up an authenticator app')} onSubmit={verify}>
      <p>{t('Scan this code with your authenticator app, or type in the key below, then enter the code it shows.')}</p>
      <QrCode text={setup.url} />
      <p>
        {t('Key')}: <code class="totp-secret">{setup.secret}</code>
      </p>
      <label>
        {t('Code')}
        <input name="totp-verify" inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} required />
      </label>
      {error && <p class="form-error" role="alert">{error}</p>}
      <footer>
        <button type="button" onClick={onCancel}>{t('Cancel')}</button>
        <button class="primary" type="submit">{t('Verify')}</button>
      </footer>
    </form>
  );
}

function TotpSection() {
  const enabled = useSelect(store, (s) => !!s.me?.services?.totp?.enabled);
  const [setup, setSetup] = useState<{ secret: string; url: string } | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [remaining, setRemaining] = useState<number | null>(null);
  const [code, setCode] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    if (enabled && !codes) ddp.call<{ remaining: number }>('2fa:checkCodesRemaining').then((r) => setRemaining(r?.remaining ?? null), () => {});
  }, [enabled, codes]);
  const run = async (action: () => Promise<void>) => {
    setError('');
    try {
      await action();
    } catch (e) {
      setError(errorText(e));
    }
  };
  const start = () =>
    run(async () => {
      const res = await callWithSecondFactor<{ secret: string; url: string }>('2fa:enable');
      if (res) setSetup(res);
    });
  const regenerate = () =>
    run(async () => {
      const res = await ddp.call<{ codes: string[] } | null>('2fa:regenerateCodes', code.trim());
      if (!res?.codes) throw new Error(t('Invalid two-factor code'));
      setCode('');
      setCodes(res.codes);
    });
  const disable = () =>
    run(async () => {
      const done = await ddp.call<boolean>('2fa:disable', code.trim());
      if (!done) throw new Error(t('Invalid two-factor code'));
      setCode('');
      await refreshMe();
      toast(t('Authenticator app turned off'));
    });

  let body;
  if (codes) {
    body = (
      <BackupCodes
        codes={codes}
        onDone={() => {
          setCodes(null);
          if (store.get().setupRequired) refreshMe().catch((e) => toast(errorText(e)));
        }}
      />
    );
  } else if (setup) {
    body = (
      <TotpEnrolment
        setup={setup}
        onCancel={() => setSetup(null)}
        onCodes={(c) => {
          setSetup(null);
          setCodes(c);
          // A required set-up finishes once the codes are put away ("Done"), not under them.
          void refreshMe(false);
        }}
      />
    );
  } else if (enabled) {
    body = (
      <>
        <p class="status-on">{t('An authenticator app is set up.')} {remaining !== null && t('{n} backup codes left.', { n: remaining })}</p>
        <label>
          {t('Code from your app or a backup code')}
          <input name="totp-code" inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
        </label>
        <div class="row-actions">
          <button disabled={!code.trim()} onClick={regenerate}>{t('New backup codes')}</button>
          <button class="danger" disabled={!code.trim()} onClick={disable}>{t('Turn off')}</button>
        </div>
      </>
    );
  } else {
    body = (
      <>
        <p>{t('Use an authenticator app (such as FreeOTP or Google Authenticator) for a second step at login.')}</p>
        <button class="primary" onClick={start}>{t('Set up an authenticator app')}</button>
      </>
    );
  }
  return (
    <section class="account-section" aria-label={t('Authenticator app')}>
      <h2>{t('Authenticator app')}</h2>
      {body}
      {error && <p class="form-error" role="alert">{error}</p>}
    </section>
  );
}

function EmailSection() {
  const enabled = useSelect(store, (s) => !!s.me?.services?.email2fa?.enabled);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const toggle = async (on: boolean) => {
    setBusy(true);
    setError('');
    try {
      const done = on
        ? await api.post('users.2fa.enableEmail')
        : await withSecondFactor((headers) => api.post('users.2fa.disableEmail', {}, headers));
      if (done) await refreshMe();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="account-section" aria-label={t('Codes by e-mail')}>
      <h2>{t('Codes by e-mail')}</h2>
      <label class="check">
        <input type="checkbox" name="email2fa" checked={enabled} disabled={busy} onChange={(e) => void toggle(e.currentTarget.checked)} />
        {t('Send me a code by e-mail when I log in')}
      </label>
      {error && <p class="form-error" role="alert">{error}</p>}
    </section>
  );
}

/** `required`: the user's role demands a second factor and the server allows nothing else yet. */
export function Account({ required = false }: { required?: boolean }) {
  return (
    <section class="admin account" aria-label={t('My account')}>
      <header class="room-header">
        <h1>{t('My account')}</h1>
        <nav class="tabs" aria-label={t('My account')}>
          <a class="active" href="/account/security" aria-current="page">{t('Security')}</a>
        </nav>
      </header>
      <div class="admin-body">
        {required && (
          <p class="setup-required" role="alert">
            {t('Your role requires two-factor authentication. Set up an authenticator app or codes by e-mail to continue.')}
          </p>
        )}
        <h2 class="account-title">{t('Two-factor authentication')}</h2>
        <TotpSection />
        <EmailSection />
      </div>
    </section>
  );
}
