import { useEffect, useState } from 'preact/hooks';
import { api, errorText, navigate, store, toast, withSecondFactor } from '../app';
import { AuditLog, RolesAndPermissions } from './AdminAccess';
import { AdminRooms } from './AdminRooms';
import { useSelect } from '../store';
import { t } from '../i18n';

interface AdminUser {
  _id: string;
  username: string;
  name?: string;
  emails?: { address: string }[];
  roles: string[];
  active: boolean;
  status?: string;
}

/** The administrator's "new user" form (`users.create`). */
function NewUser({ roles, onCreated }: { roles: { _id: string; name: string }[]; onCreated: () => void }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState('');
  const [picked, setPicked] = useState<string[]>(['user']);
  if (!open) return <button onClick={() => setOpen(true)}>{t('New user')}</button>;
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget as HTMLFormElement);
    const get = (k: string) => String(f.get(k) ?? '').trim();
    try {
      await api.post('users.create', {
        name: get('new-name'),
        username: get('new-username'),
        email: get('new-email'),
        password: get('new-password'),
        roles: picked,
        verified: f.get('new-verified') === 'on',
        requirePasswordChange: f.get('new-require-change') === 'on',
      });
      setOpen(false);
      setError('');
      toast(t('User created'));
      onCreated();
    } catch (err) {
      setError(errorText(err));
    }
  };
  return (
    <form class="admin-form" aria-label={t('New user')} onSubmit={submit}>
      <label>{t('Name')} <input name="new-name" required /></label>
      <label>{t('Username')} <input name="new-username" required /></label>
      <label>{t('Email')} <input name="new-email" type="email" required /></label>
      <label>{t('Password')} <input name="new-password" type="password" required autocomplete="new-password" /></label>
      <fieldset class="role-editor">
        <legend>{t('Roles')}</legend>
        {roles.map((r) => (
          <label key={r._id} class="check">
            <input type="checkbox" name={`new-role-${r.name}`} checked={picked.includes(r._id)} onChange={(e) => setPicked(e.currentTarget.checked ? [...picked, r._id] : picked.filter((x) => x !== r._id))} /> {r.name}
          </label>
        ))}
      </fieldset>
      <label class="check"><input type="checkbox" name="new-verified" /> {t('Email verified')}</label>
      <label class="check"><input type="checkbox" name="new-require-change" /> {t('Require password change')}</label>
      {error && <p class="form-error" role="alert">{error}</p>}
      <div class="row-actions">
        <button class="primary" type="submit">{t('Create')}</button>
        <button type="button" onClick={() => setOpen(false)}>{t('Cancel')}</button>
      </div>
    </form>
  );
}

function Users() {
  const [users, setUsers] = useState<AdminUser[]>([]);
  const [roles, setRoles] = useState<{ _id: string; name: string; scope: string }[]>([]);
  const [filter, setFilter] = useState('');
  const [editing, setEditing] = useState<string | null>(null);
  const load = () =>
    api
      .get('users.list', { count: 100, sort: JSON.stringify({ username: 1 }), query: filter ? JSON.stringify({ username: { $regex: filter, $options: 'i' } }) : undefined })
      .then((r) => setUsers(r.users), (e) => toast(errorText(e)));
  useEffect(() => {
    void load();
  }, [filter]);
  useEffect(() => {
    api.get('roles.list').then((r) => setRoles((r.roles ?? []).filter((x: any) => (x.scope ?? 'Users') === 'Users')), (e) => toast(errorText(e)));
  }, []);

  const toggleRole = async (u: AdminUser, role: string, on: boolean) => {
    try {
      await api.post(on ? 'roles.addUserToRole' : 'roles.removeUserFromRole', { roleId: role, roleName: role, username: u.username });
      await load();
    } catch (e) {
      toast(errorText(e));
    }
  };
  const setActive = async (u: AdminUser, active: boolean) => {
    try {
      await api.post('users.setActiveStatus', { userId: u._id, activeStatus: active });
      await load();
    } catch (e) {
      toast(errorText(e));
    }
  };

  const resetTwoFactor = async (u: AdminUser) => {
    if (!confirm(t('Reset the two-factor authentication of {user}?', { user: u.username }))) return;
    try {
      const done = await withSecondFactor((headers) => api.post('users.resetTOTP', { userId: u._id }, headers));
      if (done) toast(t('Two-factor authentication of {user} reset', { user: u.username }));
    } catch (e) {
      toast(errorText(e));
    }
  };

  return (
    <>
      <NewUser roles={roles} onCreated={() => void load()} />
      <input class="search" type="search" placeholder={t('Search users')} aria-label={t('Search users')} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      <table class="admin-table">
        <thead>
          <tr><th>{t('Username')}</th><th>{t('Name')}</th><th>{t('Email')}</th><th>{t('Roles')}</th><th>{t('Status')}</th><th /></tr>
        </thead>
        <tbody>
          {users.map((u) => (
            <tr key={u._id} data-username={u.username}>
              <td>{u.username}</td>
              <td>{u.name}</td>
              <td>{u.emails?.[0]?.address}</td>
              <td>
                {editing === u._id ? (
                  <fieldset class="role-editor">
                    <legend class="sr-only">{t('Roles of {name}', { name: u.username })}</legend>
                    {roles.map((r) => (
                      <label key={r._id} class="check">
                        <input type="checkbox" name={`role-${r.name}`} checked={u.roles.includes(r._id) || u.roles.includes(r.name)} onChange={(e) => toggleRole(u, r._id, e.currentTarget.checked)} /> {r.name}
                      </label>
                    ))}
                  </fieldset>
                ) : (
                  <span class="roles">{u.roles.map((r) => <span key={r} class="role-tag">{r}</span>)}</span>
                )}
              </td>
              <td>{u.active ? u.status ?? 'offline' : t('deactivated')}</td>
              <td class="row-actions">
                <button onClick={() => setEditing(editing === u._id ? null : u._id)}>{editing === u._id ? t('Done') : t('Edit roles')}</button>
                <button onClick={() => setActive(u, !u.active)}>{u.active ? t('Deactivate') : t('Activate')}</button>
                <button onClick={() => void resetTwoFactor(u)}>{t('Reset 2FA')}</button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** What an asset setting (`{url?, defaultUrl}`) shows: the uploaded image, else the default. */
function assetUrl(value: unknown): string {
  const asset = value as { url?: string; defaultUrl?: string } | null;
  return asset?.url ?? asset?.defaultUrl ?? '';
}

interface Setting {
  _id: string;
  type: string;
  value: unknown;
  group?: string;
  section?: string;
  i18nLabel?: string;
}

function Settings() {
  const [settings, setSettings] = useState<Setting[]>([]);
  const [group, setGroup] = useState<string>('');
  const [drafts, setDrafts] = useState<Record<string, unknown>>({});
  useEffect(() => {
    api.get('settings', { count: 2000 }).then((r) => setSettings(r.settings ?? []), (e) => toast(errorText(e)));
  }, []);
  const groups = [...new Set(settings.map((s) => s.group ?? 'General'))].sort();
  const current = group || groups[0] || '';
  const save = async (s: Setting) => {
    try {
      await api.post(`settings/${encodeURIComponent(s._id)}`, { value: drafts[s._id] });
      setSettings(settings.map((x) => (x._id === s._id ? { ...x, value: drafts[s._id] } : x)));
      const d = { ...drafts };
      delete d[s._id];
      setDrafts(d);
      toast(t('Saved {setting}', { setting: s._id }));
    } catch (e) {
      toast(errorText(e));
    }
  };
  return (
    <div class="settings">
      <ul class="settings-groups" role="tablist">
        {groups.map((g) => (
          <li key={g}><button role="tab" aria-selected={g === current} class={g === current ? 'active' : ''} onClick={() => setGroup(g)}>{g}</button></li>
        ))}
      </ul>
      <div class="settings-list">
        {settings.filter((s) => (s.group ?? 'General') === current).map((s) => {
          const value = s._id in drafts ? drafts[s._id] : s.value;
          const dirty = s._id in drafts;
          return (
            <div class="setting" key={s._id}>
              <label>
                <code>{s._id}</code>
                {s.type === 'boolean' ? (
                  <input type="checkbox" checked={!!value} onChange={(e) => setDrafts({ ...drafts, [s._id]: e.currentTarget.checked })} />
                ) : s.type === 'asset' ? (
                  // Assets are uploaded through assets.setAsset, not typed in.
                  <span class="asset-url">{assetUrl(value)}</span>
                ) : s.type === 'int' ? (
                  <input type="number" value={String(value ?? '')} onInput={(e) => setDrafts({ ...drafts, [s._id]: Number(e.currentTarget.value) })} />
                ) : (
                  <input type={s.type === 'password' ? 'password' : 'text'} value={String(value ?? '')} onInput={(e) => setDrafts({ ...drafts, [s._id]: e.currentTarget.value })} />
                )}
              </label>
              {dirty && <button class="primary" onClick={() => save(s)}>{t('Save')}</button>}
            </div>
          );
        })}
      </div>
    </div>
  );
}

export function Admin() {
  const route = useSelect(store, (s) => s.route);
  const section = route.name === 'admin' ? route.section : 'users';
  const tabs = [
    ['users', t('Users')],
    ['rooms', t('Rooms')],
    ['settings', t('Settings')],
    ['permissions', t('Permissions')],
    ['audit', t('Audit log')],
  ];
  const body = section === 'settings' ? <Settings /> : section === 'permissions' ? <RolesAndPermissions /> : section === 'audit' ? <AuditLog /> : section === 'rooms' ? <AdminRooms /> : <Users />;
  return (
    <section class="admin" aria-label={t('Administration')}>
      <header class="room-header">
        <h1>{t('Administration')}</h1>
        <nav class="tabs" aria-label={t('Administration sections')}>
          {tabs.map(([id, label]) => (
            <a key={id} href={`/admin/${id}`} aria-current={section === id ? 'page' : undefined} class={section === id ? 'active' : ''} onClick={(e) => { e.preventDefault(); navigate({ name: 'admin', section: id }); }}>{label}</a>
          ))}
        </nav>
      </header>
      <div class="admin-body">{body}</div>
    </section>
  );
}
