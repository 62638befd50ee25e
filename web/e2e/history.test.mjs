// End-to-end: the two-factor prompt at login, logout, and a long history — the first page's render
// time, infinite scroll upwards through older pages to the start of the room.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, ROOT, Server, launchBrowser, screenshotter, signUp, submitLogin, totp } from './harness.mjs';

const shot = screenshotter(ROOT);
const MESSAGES = 130;

const step = () => Math.floor(Date.now() / 30_000);

let server;
let browser;
let page;
let carol;

describe('login and history', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    // carol is the first user, hence admin (and so not rate limited while seeding).
    carol = await signUp(server, 'carol', 'Carol');
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it("speaks the browser's language (German here), English otherwise", async () => {
    const german = await browser.newContext({ locale: 'de-DE' });
    const p = await german.newPage();
    await p.goto(`${server.url}/login`);
    await p.getByRole('heading', { name: 'Anmelden' }).waitFor();
    await p.getByText('E-Mail oder Benutzername').waitFor();
    assert.equal(await p.evaluate(() => document.documentElement.lang), 'de');
    await german.close();
  });

  it('asks for the second factor at login and logs out', async () => {
    const res = await fetch(`${server.url}/api/v1/users.enableTotp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-User-Id': carol.userId,
        'X-Auth-Token': carol.authToken,
        'x-2fa-code': createHash('sha256').update(PASSWORD).digest('hex'),
        'x-2fa-method': 'password',
      },
      body: '{}',
    });
    assert.equal(res.status, 200);
    const { secret } = await res.json();
    const enabledAt = step();
    const { codes: backupCodes } = await server.rest('users.validateTotp', { code: totp(secret, enabledAt) }, carol);

    await submitLogin(page, server.url, 'carol');
    await page.getByRole('heading', { name: 'Two-factor authentication' }).waitFor();
    await shot(page, 'two-factor');
    const valid = [-1, 0, 1, 2].map((d) => totp(secret, enabledAt + d));
    await page.fill('input[name=code]', ['000000', '111111', '222222'].find((c) => !valid.includes(c)));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('alert').filter({ hasText: 'Invalid two-factor code' }).waitFor();
    // The step after the one used to enable it (each step is accepted once; the server allows
    // one step of drift, so this holds until the step after next).
    await page.fill('input[name=code]', totp(secret, enabledAt + 1));
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/home');

    await page.locator('.sidebar .me').click();
    await page.getByRole('menuitem', { name: 'Logout' }).click();
    await page.waitForURL('**/login');
    // The session is gone on the server too.
    const token = await page.evaluate(() => localStorage.getItem('Meteor.loginToken'));
    assert.equal(token, null);
    const cookies = await page.context().cookies();
    assert.equal(cookies.filter((c) => c.name === 'rc_token' && c.value).length, 0);
    // Back in for the rest, with a backup code (the next TOTP step may be half a minute away).
    await page.fill('input[name=username]', 'carol');
    await page.fill('input[name=password]', PASSWORD);
    await page.getByRole('button', { name: 'Login' }).click();
    await page.fill('input[name=code]', backupCodes[0]);
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.waitForURL('**/home');
  });

  it('renders the newest page fast and scrolls up through the whole history', async () => {
    const created = await fetch(`${server.url}/api/v1/channels.create`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'X-User-Id': carol.userId, 'X-Auth-Token': carol.authToken },
      body: JSON.stringify({ name: 'history' }),
    }).then((r) => r.json());
    const rid = created.channel._id;
    for (let i = 1; i <= MESSAGES; i++) {
      await server.rest('chat.sendMessage', { message: { rid, msg: `history message ${i}` } }, carol);
    }
    await page.locator('.room-item[data-room=history]').click();
    const msg = (n) => page.locator('.room .message-text', { hasText: new RegExp(`^history message ${n}$`) });
    await msg(MESSAGES).waitFor();
    // Only what fills the view and its margins is drawn (the list is virtualised; the first
    // message of the room is not).
    assert.equal(await msg(1).count(), 0);
    const drawn = await page.locator('.room .message').count();
    assert.ok(drawn > 10 && drawn <= 80, `${drawn} drawn`);
    const render = await page.evaluate((rid) => performance.getEntriesByName(`apogee:first-render:${rid}`)[0]?.duration, rid);
    assert.ok(typeof render === 'number', 'the first render was measured');
    console.log(`first render of 50 messages after the data arrived: ${render.toFixed(1)} ms`);
    assert.ok(render < 500, `first render took ${render} ms`);

    const list = page.locator('.message-list');
    for (let round = 0; round < 60 && (await msg(1).count()) === 0; round++) {
      await list.evaluate((el) => (el.scrollTop = 0));
      await page.waitForTimeout(300);
    }
    await msg(1).waitFor();
    await page.getByText('Start of conversation').waitFor();
    // All loaded, not all drawn (the list is virtualised; e2e/deep-history.test.mjs has more).
    assert.ok((await page.locator('.room .message').count()) < MESSAGES);
    // Growing upwards keeps the reader's place: not thrown back to the top or bottom.
    await list.evaluate((el) => (el.scrollTop = el.scrollHeight));
    await msg(MESSAGES).waitFor();
  });
});
