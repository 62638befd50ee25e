// End-to-end: the administration beyond users' roles and settings — creating a user, roles and
// the permission matrix, resetting a user's two-factor authentication, and the audit log with
// its chain links.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, ROOT, Server, launchBrowser, logIn, screenshotter, signUp, totp } from './harness.mjs';

const shot = screenshotter(ROOT);

let server;
let browser;
let page;
let admin;

async function loginStatus(user, extra = {}) {
  const res = await fetch(`${server.url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, password: PASSWORD, ...extra }),
  });
  return { status: res.status, body: await res.json() };
}

describe('administration', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    admin = await signUp(server, 'grace', 'Grace');
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    page.on('dialog', (d) => d.accept());
    await logIn(page, server.url, 'grace');
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('creates a user who can then log in', async () => {
    await page.goto(`${server.url}/admin/users`);
    await page.getByRole('button', { name: 'New user' }).click();
    const form = page.getByRole('form', { name: 'New user' });
    await form.locator('input[name=new-name]').fill('Henry');
    await form.locator('input[name=new-username]').fill('henry');
    await form.locator('input[name=new-email]').fill('henry@example.com');
    await form.locator('input[name=new-password]').fill(PASSWORD);
    await form.locator('input[name=new-verified]').check();
    await form.getByRole('button', { name: 'Create' }).click();
    await page.getByText('User created').waitFor();
    await page.locator('tr[data-username="henry"]').waitFor();
    const login = await loginStatus('henry');
    assert.equal(login.status, 200, JSON.stringify(login.body));
    // A taken username is refused, in the form.
    await page.getByRole('button', { name: 'New user' }).click();
    await form.locator('input[name=new-name]').fill('Henry again');
    await form.locator('input[name=new-username]').fill('henry');
    await form.locator('input[name=new-email]').fill('henry2@example.com');
    await form.locator('input[name=new-password]').fill(PASSWORD);
    await form.getByRole('button', { name: 'Create' }).click();
    // The server's error-field-unavailable, in the client's words.
    await form.getByRole('alert').filter({ hasText: 'That name is taken already' }).waitFor();
    await form.getByRole('button', { name: 'Cancel' }).click();
  });

  it("resets a user's two-factor authentication", async () => {
    const henry = (await server.rest('login', { username: 'henry', password: PASSWORD })).data;
    const enabled = await fetch(`${server.url}/api/v1/users.enableTotp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-User-Id': henry.userId,
        'X-Auth-Token': henry.authToken,
        'x-2fa-code': createHash('sha256').update(PASSWORD).digest('hex'),
        'x-2fa-method': 'password',
      },
      body: '{}',
    }).then((r) => r.json());
    await server.rest('users.validateTotp', { code: totp(enabled.secret) }, henry);
    assert.equal((await loginStatus('henry')).body.error, 'totp-required');

    await page.locator('tr[data-username="henry"]').getByRole('button', { name: 'Reset 2FA' }).click();
    await page.getByText('Two-factor authentication of henry reset').waitFor();
    const after = await loginStatus('henry');
    assert.equal(after.status, 200, JSON.stringify(after.body));
  });

  it('creates a role, grants it a permission in the matrix, describes and deletes a role', async () => {
    await page.getByRole('link', { name: 'Permissions' }).click();
    await page.waitForURL('**/admin/permissions');
    const form = page.getByRole('form', { name: 'New role' });
    await form.getByRole('textbox', { name: 'Role name' }).fill('auditor');
    await form.getByRole('button', { name: 'Create role' }).click();
    await page.locator('tr[data-role="auditor"]').waitFor();
    await page.getByRole('searchbox', { name: 'Filter permissions' }).fill('can-audit-log');
    const box = page.getByRole('checkbox', { name: 'can-audit-log: auditor', exact: true });
    await box.check();
    await shot(page, 'admin-permissions');
    const auditorId = (await server.rest('roles.list', undefined, admin)).roles.find((r) => r.name === 'auditor')._id;
    const granted = async () => {
      const all = await server.rest('permissions.listAll', undefined, admin);
      return all.update.find((p) => p._id === 'can-audit-log').roles.map((r) => (r === auditorId ? 'auditor' : r));
    };
    for (let i = 0; i < 50 && !(await granted()).includes('auditor'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok((await granted()).includes('auditor'));
    assert.ok((await granted()).includes('admin'), 'the other roles keep the permission');
    await box.uncheck();
    for (let i = 0; i < 50 && (await granted()).includes('auditor'); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!(await granted()).includes('auditor'));

    // The description is saved when the field is left.
    const description = page.getByRole('textbox', { name: 'Description of auditor' });
    await description.fill('reads the audit log');
    await description.press('Tab');
    await page.getByText('Saved').waitFor();
    const roles = await server.rest('roles.list', undefined, admin);
    assert.equal(roles.roles.find((r) => r.name === 'auditor').description, 'reads the audit log');

    // Built-in roles cannot be deleted; a new one can.
    assert.equal(await page.locator('tr[data-role="admin"]').getByRole('button', { name: 'Delete' }).count(), 0);
    await page.locator('tr[data-role="auditor"]').getByRole('button', { name: 'Delete' }).click();
    await page.locator('tr[data-role="auditor"]').waitFor({ state: 'detached' });
    const left = await server.rest('roles.list', undefined, admin);
    assert.equal(left.roles.filter((r) => r.name === 'auditor').length, 0);
  });

  it('shows the audit log with its chain links, filtered by event', async () => {
    assert.equal((await loginStatus('henry', { password: 'not the password' })).status, 401);
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL('**/admin/audit');
    const status = page.locator('.chain-status');
    await page.locator('.audit-table tbody tr').first().waitFor();
    await status.filter({ hasText: /entries, each chained to the one before/ }).waitFor();
    // What this test did is there: the user created, the 2FA reset, the role created.
    const events = await page.locator('.audit-table tbody td:nth-child(3)').allTextContents();
    for (const wanted of ['user.created', 'login']) assert.ok(events.some((e) => e.startsWith(wanted)), `${wanted} in ${events}`);
    // The numbers run down without gaps and the API's hashes are shown.
    const api = await server.rest('audit.events?count=50', undefined, admin);
    const seqs = (await page.locator('.audit-table tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq))));
    assert.deepEqual(seqs, api.events.map((e) => e.seq));
    assert.equal(await page.locator('.audit-table tbody tr').first().locator('code[title]').textContent(), api.events[0].hash.slice(0, 12));
    // The server's verification of every hash: verified up to the newest entry it had then.
    const verification = page.locator('.chain-verification[data-intact="true"]');
    await verification.waitFor();
    const verifiedUpTo = Number((await verification.textContent()).match(/Chain verified up to entry (\d+)/)[1]);
    const check = await server.rest('audit.verify', undefined, admin);
    assert.ok(check.intact && verifiedUpTo >= 1 && verifiedUpTo <= check.verified, `${verifiedUpTo} / ${JSON.stringify(check)}`);
    await shot(page, 'admin-audit');

    await page.getByRole('searchbox', { name: 'Filter by event' }).fill('login.failed');
    await status.filter({ hasText: 'Chain links are checked on the unfiltered log' }).waitFor();
    await page.waitForFunction(() => {
      const cells = [...document.querySelectorAll('.audit-table tbody td:nth-child(3)')];
      return cells.length > 0 && cells.every((td) => td.textContent === 'login.failed');
    });
    assert.match(await page.locator('.audit-table tbody tr').first().textContent(), /henry/);
  });

  it('lists every room, filtered by type and name, and edits a room\'s settings', async () => {
    const henry = (await server.rest('login', { username: 'henry', password: PASSWORD })).data;
    await server.rest('channels.create', { name: 'ops' }, henry);
    await server.rest('groups.create', { name: 'ops-private' }, henry);
    await page.getByRole('link', { name: 'Rooms' }).click();
    await page.waitForURL('**/admin/rooms');
    const row = (name) => page.locator(`.admin-rooms tr[data-room="${name}"]`);
    // The admin sees henry's private group without being in it.
    await row('ops-private').waitFor();
    await row('general').waitFor();
    await page.getByLabel('Private groups').check();
    await row('general').waitFor({ state: 'detached' });
    await row('ops-private').waitFor();
    await page.getByLabel('Private groups').uncheck();
    await page.locator('.admin-rooms').getByRole('searchbox', { name: 'Search rooms' }).fill('ops');
    await row('general').waitFor({ state: 'detached' });
    await row('ops').waitFor();
    await row('ops-private').waitFor();
    await shot(page, 'admin-rooms');

    await row('ops').getByRole('button', { name: 'Edit ops' }).click();
    const form = page.getByRole('form', { name: 'Room settings' });
    await form.locator('input[name=room-topic]').fill('Operations');
    await form.locator('input[name=room-readonly]').check();
    await form.getByRole('button', { name: 'Save' }).click();
    await form.waitFor({ state: 'detached' });
    await row('ops').getByText('read only').waitFor();
    const info = await server.rest('rooms.info?roomName=ops', undefined, admin);
    assert.equal(info.room.topic, 'Operations');
    assert.equal(info.room.ro, true);
    // A name another room has is refused in the form, and nothing changes.
    await row('ops').getByRole('button', { name: 'Edit ops' }).click();
    await form.locator('input[name=room-name]').fill('general');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByRole('alert').filter({ hasText: 'A room with that name exists already' }).waitFor();
    assert.equal((await server.rest('rooms.info?roomName=ops', undefined, admin)).room.topic, 'Operations');
    await form.getByRole('button', { name: 'Cancel' }).click();
  });

  it('deactivates a user, who then cannot log in, and activates them again', async () => {
    await page.goto(`${server.url}/admin/users`);
    const row = page.locator('tr[data-username="henry"]');
    await row.getByRole('button', { name: 'Deactivate' }).click();
    await row.getByText('deactivated').waitFor();
    assert.equal((await server.rest('users.info?username=henry', undefined, admin)).user.active, false);
    assert.notEqual((await loginStatus('henry')).status, 200);
    await row.getByRole('button', { name: 'Activate' }).click();
    await row.getByRole('button', { name: 'Deactivate' }).waitFor();
    assert.equal((await server.rest('users.info?username=henry', undefined, admin)).user.active, true);
    assert.equal((await loginStatus('henry')).status, 200);
  });

  it('shows the settings by group and saves one', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.waitForURL('**/admin/settings');
    await page.getByRole('tab', { name: 'General' }).click();
    const setting = page.locator('.setting', { has: page.locator('code', { hasText: /^Site_Name$/ }) });
    await setting.locator('input').fill('Apogee under test');
    await setting.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved Site_Name').waitFor();
    const saved = await server.rest('settings/Site_Name', undefined, admin);
    assert.equal(saved.value, 'Apogee under test');
  });
});
