// Administration of who may do what, and the record of what was done: roles with the permission
// matrix (roles.* and permissions.*), and the tamper-evident audit log (audit.events).

import { useEffect, useState } from 'preact/hooks';
import { api, errorText, toast } from '../app';
import { chainBreaks, verificationText, type AuditEvent, type ChainCheck } from '../audit';
import { t } from '../i18n';

interface Role {
  _id: string;
  name: string;
  scope?: string;
  description?: string;
  protected?: boolean;
}

interface Permission {
  _id: string;
  roles: string[];
  group?: string;
}

function NewRole({ onCreated }: { onCreated: () => void }) {
  const [error, setError] = useState('');
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.currentTarget as HTMLFormElement;
    const f = new FormData(form);
    try {
      await api.post('roles.create', { name: String(f.get('role-name') ?? '').trim(), scope: f.get('role-scope'), description: String(f.get('role-description') ?? '') });
      form.reset();
      setError('');
      onCreated();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="admin-form inline" aria-label={t('New role')} onSubmit={submit}>
      <input name="role-name" placeholder={t('Role name')} aria-label={t('Role name')} required />
      <select name="role-scope" aria-label={t('Scope')}>
        <option value="Users">Users</option>
        <option value="Subscriptions">Subscriptions</option>
      </select>
      <input name="role-description" placeholder={t('Description')} aria-label={t('Description')} />
      <button class="primary" type="submit">{t('Create role')}</button>
      {error && <p class="form-error" role="alert">{error}</p>}
    </form>
  );
}

/**
 * Roles (create, describe, delete) and the permission matrix: one row per permission, one
 * checkbox per role; a change is saved at once with `permissions.update`.
 */
export function RolesAndPermissions() {
  const [roles, setRoles] = useState<Role[]>([]);
  const [permissions, setPermissions] = useState<Permission[]>([]);
  const [filter, setFilter] = useState('');
  const loadRoles = () => api.get('roles.list').then((r) => setRoles(r.roles ?? []), (e) => toast(errorText(e)));
  const loadPermissions = () => api.get('permissions.listAll').then((r) => setPermissions((r.update ?? []).filter((p: Permission) => Array.isArray(p.roles))), (e) => toast(errorText(e)));
  useEffect(() => {
    void loadRoles();
    void loadPermissions();
  }, []);

  const setGranted = async (p: Permission, role: string, on: boolean) => {
    const next = on ? [...new Set([...p.roles, role])] : p.roles.filter((r) => r !== role);
    try {
      const res = await api.post('permissions.update', { permissions: [{ _id: p._id, roles: next }] });
      const saved: Permission[] = res.permissions ?? [];
      const roles = saved.find((x) => x._id === p._id)?.roles ?? next;
      setPermissions((all) => all.map((x) => (x._id === p._id ? { ...x, roles } : x)));
    } catch (e) {
      toast(errorText(e));
    }
  };
  const describe = async (r: Role, description: string) => {
    try {
      await api.post('roles.update', { roleId: r._id, name: r.name, description, scope: r.scope });
      await loadRoles();
      toast(t('Saved'));
    } catch (e) {
      toast(errorText(e));
    }
  };
  const remove = async (r: Role) => {
    if (!confirm(t('Delete the role {role}?', { role: r.name }))) return;
    try {
      await api.post('roles.delete', { roleId: r._id });
      await Promise.all([loadRoles(), loadPermissions()]);
    } catch (e) {
      toast(errorText(e));
    }
  };

  const q = filter.trim().toLowerCase();
  const shown = permissions.filter((p) => !q || p._id.toLowerCase().includes(q)).sort((a, b) => a._id.localeCompare(b._id));
  return (
    <div class="access">
      <h2>{t('Roles')}</h2>
      <NewRole onCreated={() => void loadRoles()} />
      <table class="admin-table roles-table">
        <thead>
          <tr><th>{t('Role')}</th><th>{t('Scope')}</th><th>{t('Description')}</th><th /></tr>
        </thead>
        <tbody>
          {roles.map((r) => (
            <tr key={r._id} data-role={r.name}>
              <td>{r.name}{r.protected && <span class="role-tag" title={t('Built in')}>🔒</span>}</td>
              <td>{r.scope ?? 'Users'}</td>
              <td>
                <input
                  aria-label={t('Description of {role}', { role: r.name })}
                  value={r.description ?? ''}
                  onChange={(e) => e.currentTarget.value !== (r.description ?? '') && void describe(r, e.currentTarget.value)}
                />
              </td>
              <td class="row-actions">{!r.protected && <button onClick={() => void remove(r)}>{t('Delete')}</button>}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>{t('Permissions')}</h2>
      <input class="search" type="search" placeholder={t('Filter permissions')} aria-label={t('Filter permissions')} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <div class="matrix-wrap">
        <table class="admin-table permission-matrix">
          <thead>
            <tr>
              <th>{t('Permission')}</th>
              {roles.map((r) => <th key={r._id} scope="col">{r.name}</th>)}
            </tr>
          </thead>
          <tbody>
            {shown.map((p) => (
              <tr key={p._id} data-permission={p._id}>
                <th scope="row"><code>{p._id}</code></th>
                {roles.map((r) => (
                  <td key={r._id}>
                    <input type="checkbox" aria-label={`${p._id}: ${r.name}`} name={`perm-${p._id}-${r.name}`} checked={p.roles.includes(r._id) || p.roles.includes(r.name)} onChange={(e) => void setGranted(p, r._id, e.currentTarget.checked)} />
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

const PAGE = 50;

const when = (ts: AuditEvent['ts']) => new Date(typeof ts === 'string' ? ts : ts.$date).toLocaleString();

/** The audit log, newest first, filtered by event, paged by entry number. */
/** The server's check of the whole chain (`audit.verify`): every hash recomputed, and the head. */
function ChainVerification() {
  const [check, setCheck] = useState<ChainCheck | null>(null);
  const [busy, setBusy] = useState(false);
  const verify = async () => {
    setBusy(true);
    try {
      setCheck(await api.get('audit.verify'));
    } catch (e) {
      toast(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => void verify(), []);
  const text = check && verificationText(check);
  return (
    <p class={`chain-verification${check && !check.intact ? ' broken' : ''}`} role="status" data-intact={check ? String(check.intact) : undefined}>
      <span>{busy ? t('Verifying the chain…') : text}</span>
      <button disabled={busy} onClick={() => void verify()}>{t('Verify again')}</button>
    </p>
  );
}

export function AuditLog() {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [filter, setFilter] = useState('');
  const [more, setMore] = useState(false);
  const load = async (before?: number) => {
    try {
      const res = await api.get('audit.events', { count: PAGE, event: filter.trim() || undefined, before });
      const page: AuditEvent[] = res.events ?? [];
      setEvents((cur) => (before ? [...cur, ...page] : page));
      setMore(page.length >= PAGE);
    } catch (e) {
      toast(errorText(e));
    }
  };
  useEffect(() => {
    const timer = setTimeout(() => void load(), 200);
    return () => clearTimeout(timer);
  }, [filter]);
  const breaks = filter.trim() ? [] : chainBreaks(events);
  return (
    <div class="audit">
      <ChainVerification />
      <input class="search" type="search" placeholder={t('Filter by event (e.g. login)')} aria-label={t('Filter by event')} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <p class={`chain-status${breaks.length ? ' broken' : ''}`} role="status">
        {filter.trim()
          ? t('Chain links are checked on the unfiltered log')
          : breaks.length
            ? t('Chain broken at entry {seq}', { seq: breaks[0] })
            : t('{n} entries, each chained to the one before', { n: events.length })}
      </p>
      <table class="admin-table audit-table">
        <thead>
          <tr><th>#</th><th>{t('Time')}</th><th>{t('Event')}</th><th>{t('Actor')}</th><th>IP</th><th>{t('Details')}</th><th>{t('Hash')}</th></tr>
        </thead>
        <tbody>
          {events.map((e) => (
            <tr key={e._id} data-seq={e.seq} class={breaks.includes(e.seq) ? 'broken' : ''}>
              <td>{e.seq}</td>
              <td>{when(e.ts)}</td>
              <td><code>{e.event}</code></td>
              <td>{e.actor?.username ?? '—'}</td>
              <td>{e.ip ?? ''}</td>
              <td><code class="details">{e.details && Object.keys(e.details as object).length ? JSON.stringify(e.details) : ''}</code></td>
              <td><code title={`prev ${e.prevHash}\nhash ${e.hash}`}>{e.hash.slice(0, 12)}</code></td>
            </tr>
          ))}
        </tbody>
      </table>
      {more && <button onClick={() => void load(events[events.length - 1]?.seq)}>{t('Older entries')}</button>}
    </div>
  );
}
