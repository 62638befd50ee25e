// Federation health for administrators: each Matrix server we send to, with its waiting
// events, the next attempt and how the last attempts ended (federation.destinations).
// Refreshed every ten seconds while shown.

import { useEffect, useState } from 'preact/hooks';
import { api, errorText } from '../app';
import { t } from '../i18n';

interface Destination {
  server: string;
  queueLength: number;
  oldestPendingAt?: string | null;
  nextAttemptAt?: string | null;
  inFlight: boolean;
  failedAttempts: number;
  lastSuccessAt?: string | null;
  lastFailureAt?: string | null;
  lastError?: string | null;
}

const when = (ts?: string | null) => (ts ? new Date(ts).toLocaleString() : '—');

/** Healthy: nothing waiting, or the last attempt succeeded. */
const healthy = (d: Destination) => d.queueLength === 0 || d.failedAttempts === 0;

export function FederationHealth() {
  const [destinations, setDestinations] = useState<Destination[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const res = await api.get('federation.destinations');
        if (live) {
          setDestinations(res.destinations ?? []);
          setError('');
        }
      } catch (e) {
        if (live) setError(errorText(e));
      }
    };
    void load();
    const timer = setInterval(() => void load(), 10_000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return (
    <div class="federation-health">
      {error && <p class="error" role="alert">{error}</p>}
      {!error && destinations.length === 0 && <p>{t('No federation traffic yet')}</p>}
      {destinations.length > 0 && (
        <table class="admin-table">
          <thead>
            <tr>
              <th>{t('Server')}</th><th>{t('Waiting')}</th><th>{t('Oldest waiting')}</th><th>{t('Next attempt')}</th>
              <th>{t('Failed attempts')}</th><th>{t('Last success')}</th><th>{t('Last error')}</th>
            </tr>
          </thead>
          <tbody>
            {destinations.map((d) => (
              <tr key={d.server} class={healthy(d) ? '' : 'broken'}>
                <td><code>{d.server}</code></td>
                <td>{d.queueLength}{d.inFlight ? ` (${t('sending')})` : ''}</td>
                <td>{when(d.oldestPendingAt)}</td>
                <td>{when(d.nextAttemptAt)}</td>
                <td>{d.failedAttempts}</td>
                <td>{when(d.lastSuccessAt)}</td>
                <td>{d.lastError ? <span title={when(d.lastFailureAt)}>{d.lastError}</span> : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
