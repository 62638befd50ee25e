// End-to-end: two-factor set-up in the account page — an authenticator app enrolled from the QR
// code's key, backup codes shown, counted and renewed, codes by e-mail turned on and off (the
// off switch asking for a second factor), and the app turned off — each step checked on /me.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, ROOT, Server, eventually, launchBrowser, logIn, screenshotter, signUp, submitLogin, totp } from './harness.mjs';

const shot = screenshotter(ROOT);

let server;
let browser;
let page;
let otto;
/** What the next window.prompt is answered with. */
let promptAnswer = '';
let prompts = 0;

const services = async () => (await server.rest('me', undefined, otto)).services;

describe('account security', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    otto = await signUp(server, 'otto', 'Otto');
    // The checks below read /me often, more than REST's per-address limit allows in a minute.
    await server.rest('settings/API_Enable_Rate_Limiter', { value: false }, otto);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    page.on('dialog', (d) => {
      prompts++;
      void d.accept(promptAnswer);
    });
    await logIn(page, server.url, 'otto');
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  let backup = [];

  it('sets up an authenticator app from the QR code and shows the backup codes', async () => {
    await page.locator('.sidebar .me').click();
    await page.getByRole('menuitem', { name: 'My account' }).click();
    await page.waitForURL('**/account/security');
    const app = page.getByRole('region', { name: 'Authenticator app' });
    await app.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const qr = app.getByRole('img', { name: 'QR code for your authenticator app' });
    await qr.waitFor();
    assert.ok((await qr.locator('path').getAttribute('d')).length > 1000, 'the QR code has its modules');
    const secret = (await app.locator('.totp-secret').textContent()).trim();
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    await shot(page, 'account-2fa');
    // A wrong code is refused and the app stays off.
    await app.locator('input[name=totp-verify]').fill('000000' === totp(secret) ? '111111' : '000000');
    await app.getByRole('button', { name: 'Verify' }).click();
    await app.getByRole('alert').waitFor();
    assert.equal((await services()).totp.enabled, false);
    await app.locator('input[name=totp-verify]').fill(totp(secret));
    await app.getByRole('button', { name: 'Verify' }).click();
    const list = app.getByRole('region', { name: 'Backup codes' });
    await list.waitFor();
    backup = (await list.locator('code').allTextContents()).map((c) => c.trim());
    assert.equal(backup.length, 12);
    assert.equal((await services()).totp.enabled, true);
    await list.getByRole('button', { name: 'Done' }).click();
    await app.getByText('12 backup codes left.').waitFor();
  });

  it('renews the backup codes with one of them', async () => {
    const app = page.getByRole('region', { name: 'Authenticator app' });
    await app.locator('input[name=totp-code]').fill(backup[0]);
    await app.getByRole('button', { name: 'New backup codes' }).click();
    const list = app.getByRole('region', { name: 'Backup codes' });
    await list.waitFor();
    const fresh = (await list.locator('code').allTextContents()).map((c) => c.trim());
    assert.equal(fresh.length, 12);
    assert.ok(!fresh.includes(backup[1]), 'new codes');
    backup = fresh;
    await list.getByRole('button', { name: 'Done' }).click();
  });

  it('turns codes by e-mail on, and off with a second factor', async () => {
    const email = page.getByRole('region', { name: 'Codes by e-mail' });
    // Clicked rather than check()ed: the box shows the server's state, which follows the click.
    await email.locator('input[name=email2fa]').click();
    await eventually(async () => (await services()).email2fa.enabled === true, 'e-mail codes on');
    promptAnswer = backup[0];
    const asked = prompts;
    await email.locator('input[name=email2fa]').click();
    await eventually(async () => (await services()).email2fa.enabled === false, 'e-mail codes off');
    assert.equal(prompts, asked + 1, 'the second factor was asked for');
    await eventually(async () => !(await email.locator('input[name=email2fa]').isChecked()), 'the box unchecked');
  });

  it('turns the authenticator app off with a backup code', async () => {
    const app = page.getByRole('region', { name: 'Authenticator app' });
    // A used backup code is refused.
    await app.locator('input[name=totp-code]').fill(backup[0]);
    await app.getByRole('button', { name: 'Turn off' }).click();
    await app.getByRole('alert').waitFor();
    assert.equal((await services()).totp.enabled, true);
    await app.locator('input[name=totp-code]').fill(backup[1]);
    await app.getByRole('button', { name: 'Turn off' }).click();
    await app.getByRole('button', { name: 'Set up an authenticator app' }).waitFor();
    assert.equal((await services()).totp.enabled, false);
  });

  it('speaks German', async () => {
    await page.goto(`${server.url}/account/security?lng=de`);
    await page.getByRole('heading', { name: 'Mein Konto' }).waitFor();
    await page.getByRole('button', { name: 'Authenticator-App einrichten' }).waitFor();
    await page.getByText('Bei der Anmeldung einen Code per E-Mail senden').waitFor();
    await shot(page, 'account-de');
  });

  it('keeps a user whose role makes 2FA mandatory to the set-up until it is done', async () => {
    await server.rest('users.register', { username: 'mia', email: 'mia@example.com', pass: PASSWORD, name: 'Mia' });
    const role = (await server.rest('roles.create', { name: 'auditor', mandatory2fa: true }, otto)).role;
    await server.rest('roles.addUserToRole', { roleId: role._id, username: 'mia' }, otto);
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(20_000);
    const mia = await context.newPage();
    await submitLogin(mia, server.url, 'mia');
    await mia.getByRole('alert').filter({ hasText: 'Your role requires two-factor authentication' }).waitFor();
    assert.equal(await mia.locator('.sidebar a[data-room="general"]').count(), 0, 'nothing else loads before the set-up');
    const app = mia.getByRole('region', { name: 'Authenticator app' });
    await app.getByRole('button', { name: 'Set up an authenticator app' }).click();
    const secret = (await app.locator('.totp-secret').textContent()).trim();
    await app.locator('input[name=totp-verify]').fill(totp(secret));
    await app.getByRole('button', { name: 'Verify' }).click();
    await app.getByRole('region', { name: 'Backup codes' }).getByRole('button', { name: 'Done' }).click();
    // Set up: the client loads what the server held back.
    await mia.locator('.sidebar a[data-room="general"]').waitFor();
    await mia.getByRole('alert').filter({ hasText: 'Your role requires' }).waitFor({ state: 'detached' });
    await context.close();
  });
});
