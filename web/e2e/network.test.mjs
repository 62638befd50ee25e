// End-to-end: reconnecting with resume after the network is lost, not just after the server
// restarts. A relay between browser and server drops every byte without closing anything (as
// when Wi-Fi goes): the client notices the silence (an unanswered ping), shows it is offline,
// and when the network is back reconnects, resumes its login and catches up on what it missed.
// Then the browser's own offline/online events: checked at once, reconnected without waiting.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, Relay, Server, launchBrowser, logIn } from './harness.mjs';

let server;
let relay;
let browser;
let context;
let page;
let nina; // writes, straight to the server
let rid;

const message = (text) => page.locator('.room .message', { hasText: text });
const banner = () => page.locator('.connection-banner');
const post = (msg) => server.rest('chat.sendMessage', { message: { rid, msg } }, nina);

describe('network loss', { timeout: 240_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    await server.rest('users.register', { username: 'nina', email: 'nina@example.com', pass: PASSWORD, name: 'Nina' });
    await server.rest('users.register', { username: 'omar', email: 'omar@example.com', pass: PASSWORD, name: 'Omar' });
    nina = (await server.rest('login', { username: 'nina', password: PASSWORD })).data;
    rid = (await server.rest('channels.create', { name: 'airwaves', members: ['omar'] }, nina)).channel._id;
    await post('before the outage');
    relay = new Relay(server.url);
    await relay.start();

    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    await logIn(page, relay.url, 'omar');
    await page.goto(`${relay.url}/channel/airwaves`);
    await message('before the outage').waitFor();
    await banner().waitFor({ state: 'detached' });
  });

  after(async () => {
    await browser?.close();
    await relay?.close();
    await server?.dispose();
  });

  it('notices a silent network loss, then resumes and catches up when it is back', async () => {
    relay.lose();
    await post('sent into the silence');
    // No socket closed: only the unanswered ping (after 25 s idle, 10 s to answer) tells.
    await banner().waitFor({ timeout: 60_000 });
    assert.equal(await message('sent into the silence').count(), 0);
    relay.restore();
    await banner().waitFor({ state: 'detached', timeout: 30_000 });
    await message('sent into the silence').waitFor();
    await post('live once more');
    await message('live once more').waitFor();
  });

  it("checks the connection at the browser's offline event and reconnects at its online event", async () => {
    relay.lose();
    await context.setOffline(true);
    await banner().waitFor({ timeout: 10_000 });
    await post('sent while offline');
    relay.restore();
    const back = Date.now();
    await context.setOffline(false);
    await message('sent while offline').waitFor();
    await banner().waitFor({ state: 'detached' });
    assert.ok(Date.now() - back < 10_000, 'reconnected without waiting out the back-off');
    await post('and live');
    await message('and live').waitFor();
  });
});
