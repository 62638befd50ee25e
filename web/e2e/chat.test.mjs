// End-to-end: the embedded web client in headless Chromium against a real apogee.
// Two users in two browser contexts register, create and join a channel, talk in real time, see
// typing, unread badges, react, reply in a thread, upload an image and see its preview, edit with
// ↑; the admin changes the other user's roles; the server is killed and restarted and the client
// reconnects, resumes and catches up. Run by scripts/web-test.sh (APOGEE_BIN set).

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, ROOT, Server, ddpRefusals, launchBrowser, screenshotter } from './harness.mjs';

const shot = screenshotter(ROOT);
const CHANNEL = 'e2e-room';

let server;
let browser;
let alice; // the first user: the administrator
let bob;
let refusals; // alice's calls and subscriptions the DDP rate limiter refused

const composer = (page) => page.locator('.room textarea');
const message = (page, text) => page.locator('.room .message', { hasText: text });

async function register(page, name) {
  await page.goto(`${server.url}/`);
  await page.waitForURL('**/login');
  await page.getByRole('link', { name: 'Create an account' }).click();
  await page.fill('input[name=name]', name[0].toUpperCase() + name.slice(1));
  await page.fill('input[name=username]', name);
  await page.fill('input[name=email]', `${name}@example.com`);
  await page.fill('input[name=pass]', PASSWORD);
  await page.getByRole('button', { name: 'Join' }).click();
  await page.waitForURL('**/home');
  await page.locator('.sidebar .me', { hasText: name }).waitFor();
}

async function send(page, text) {
  await composer(page).fill(text);
  await composer(page).press('Enter');
}

async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  context.setDefaultTimeout(20_000);
  return context.newPage();
}

describe('web client', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    browser = await launchBrowser();
    alice = await newPage();
    bob = await newPage();
    refusals = ddpRefusals(alice, 'too-many-requests');
    // Headless Chromium shows no desktop notifications: alice's page records them instead.
    await alice.addInitScript(() => {
      window.__notes = [];
      window.Notification = class {
        static permission = 'granted';
        static requestPermission = () => Promise.resolve('granted');
        constructor(title, options) {
          window.__notes.push({ title, body: options?.body });
        }
      };
    });
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('serves the client at the root URL under the default CSP, and deep links land in the client', async () => {
    const res = await fetch(`${server.url}/channel/general`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/html/);
    assert.match(res.headers.get('cache-control'), /no-store/);
    assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const api404 = await fetch(`${server.url}/api/v1/no.such.endpoint`);
    assert.equal(api404.status, 404);
    assert.match(api404.headers.get('content-type'), /json/);
    const errors = [];
    alice.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    alice.on('pageerror', (e) => errors.push(String(e)));
    await alice.goto(`${server.url}/`);
    await alice.waitForURL('**/login');
    await alice.getByRole('heading', { name: 'Login' }).waitFor();
    await shot(alice, 'login');
    assert.deepEqual(errors.filter((e) => /Content Security Policy|Refused/.test(e)), []);
  });

  it('registers two users in two browsers; the first is the administrator', async () => {
    await register(alice, 'alice');
    await register(bob, 'bob');
    await alice.locator('.sidebar .me').click();
    await alice.getByRole('menuitem', { name: 'Administration' }).waitFor();
    await alice.keyboard.press('Escape');
    await alice.locator('.sidebar .me').click();
  });

  it('creates a channel, the other user joins it from the directory', async () => {
    await alice.getByRole('button', { name: 'Create channel' }).click();
    await alice.fill('input[name=channel-name]', CHANNEL);
    await alice.getByRole('button', { name: 'Create', exact: true }).click();
    await alice.waitForURL(`**/channel/${CHANNEL}`);
    await alice.locator('.room-header h1', { hasText: CHANNEL }).waitFor();
    await alice.locator(`.room-item[data-room="${CHANNEL}"]`).waitFor();

    await bob.getByRole('button', { name: 'Directory' }).click();
    await bob.getByRole('textbox', { name: 'Search channels' }).fill('e2e');
    await bob.locator('.directory li', { hasText: CHANNEL }).getByRole('button', { name: 'Open' }).click();
    await bob.waitForURL(`**/channel/${CHANNEL}`);
    await bob.locator(`.room-item[data-room="${CHANNEL}"]`).waitFor();
  });

  it('exchanges messages in real time, with typing indicators', async () => {
    await send(alice, 'hello bob, this is **alice**');
    await message(bob, 'hello bob').waitFor();
    assert.equal(await message(bob, 'hello bob').locator('.message-text strong', { hasText: 'alice' }).count(), 1, 'markdown is drawn');
    await composer(bob).pressSequentially('hi al', { delay: 20 });
    await alice.getByText('bob is typing…').waitFor();
    await composer(bob).fill('hi alice!');
    await composer(bob).press('Enter');
    await message(alice, 'hi alice!').waitFor();
    await alice.getByText('bob is typing…').waitFor({ state: 'detached' });
    // One author within five minutes: the second message is grouped under the first.
    await send(alice, 'a first line from alice');
    await send(alice, 'a second line from alice');
    await alice.locator('.room .message.grouped', { hasText: 'a second line from alice' }).waitFor();
    assert.equal(await alice.locator('.room .message.grouped', { hasText: 'a first line from alice' }).count(), 0);
    await message(bob, 'a second line from alice').waitFor();
    await alice.locator('.day-separator', { hasText: 'Today' }).waitFor();
  });

  it('shows unread and mention badges live in the sidebar', async () => {
    // Alice leaves the room view for home; bob mentions her.
    await alice.evaluate(() => {
      history.pushState(null, '', '/home');
      dispatchEvent(new PopStateEvent('popstate'));
    });
    await alice.getByRole('heading', { name: /Welcome/ }).waitFor();
    // Typed with the composer's autocomplete: "@al", Enter picks @alice.
    await composer(bob).pressSequentially('@al', { delay: 30 });
    await bob.getByRole('option', { name: /@alice/ }).waitFor();
    await composer(bob).press('Enter');
    assert.equal(await composer(bob).inputValue(), '@alice ');
    await composer(bob).pressSequentially('are you there?');
    await composer(bob).press('Enter');
    const badge = alice.locator(`.room-item[data-room="${CHANNEL}"] .badge-mention`);
    await badge.waitFor();
    assert.equal(await badge.textContent(), '@1');
    await alice.locator(`.room-item[data-room="${CHANNEL}"]`).click();
    await message(alice, 'are you there?').waitFor();
    await badge.waitFor({ state: 'detached' });
    // Opening a room again soon after typing in it stays within the rate limits.
    assert.deepEqual(refusals, []);
  });

  it('reacts to a message and the other user sees the reaction', async () => {
    const target = message(bob, 'hello bob');
    await target.hover();
    await target.getByRole('button', { name: 'Add reaction' }).click();
    await target.getByRole('dialog', { name: 'Pick a reaction' }).getByRole('button', { name: '+1', exact: true }).click();
    const seen = message(alice, 'hello bob').locator('.reaction');
    await seen.waitFor();
    assert.equal((await seen.textContent()).replace(/\s+/g, ''), '👍1');
    await message(bob, 'hello bob').locator('.reaction.mine').waitFor();
  });

  it('replies in a thread; the other user sees the count and the reply', async () => {
    const parent = message(alice, 'hi alice!');
    await parent.hover();
    await parent.getByRole('button', { name: 'Reply in thread' }).click();
    await alice.waitForURL(/\/channel\/e2e-room\/thread\//);
    const reply = alice.locator('.thread-panel textarea');
    await reply.fill('a reply in the thread');
    await reply.press('Enter');
    await alice.locator('.thread-panel .message', { hasText: 'a reply in the thread' }).waitFor();
    await shot(alice, 'thread');
    const summary = message(bob, 'hi alice!').locator('.thread-summary');
    await summary.waitFor();
    assert.match(await summary.textContent(), /1 reply/);
    await summary.click();
    await bob.locator('.thread-panel .message', { hasText: 'a reply in the thread' }).waitFor();
    // Thread replies stay out of the main list.
    assert.equal(await message(bob, 'a reply in the thread').count(), 0);
    await bob.getByRole('button', { name: 'Close thread' }).click();
    await alice.getByRole('button', { name: 'Close thread' }).click();
  });

  it('uploads a file with a progress bar, and an image both users see a preview of', async () => {
    // Upload bandwidth limited to 512 KiB/s, so the progress bar has something to show.
    const cdp = await alice.context().newCDPSession(alice);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 512 * 1024 });
    const notes = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < notes.length; i++) notes[i] = (i * 7919) % 251;
    await alice.locator('[data-testid=file-input]').setInputFiles({ name: 'notes.bin', mimeType: 'application/octet-stream', buffer: notes });
    await alice.locator('.upload progress').waitFor();
    await alice.waitForFunction(() => {
      const p = document.querySelector('.upload progress');
      return p && p.value > 0 && p.value < 1;
    });
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await alice.locator('.upload').waitFor({ state: 'detached' });
    const link = bob.locator('.room .attachment-file a', { hasText: 'notes.bin' });
    await link.waitFor();
    const href = await link.getAttribute('href');
    const download = await bob.evaluate((h) => fetch(h).then((r) => r.arrayBuffer()).then((b) => b.byteLength), href);
    assert.equal(download, notes.length, 'the file downloads whole with the session cookies');

    const png = await alice.evaluate(() => {
      const c = document.createElement('canvas');
      c.width = 480;
      c.height = 270;
      const g = c.getContext('2d');
      const sky = g.createLinearGradient(0, 0, 0, 270);
      sky.addColorStop(0, '#1d74f5');
      sky.addColorStop(1, '#0b2a5b');
      g.fillStyle = sky;
      g.fillRect(0, 0, 480, 270);
      g.fillStyle = '#ffd21f';
      g.beginPath();
      g.arc(360, 80, 40, 0, Math.PI * 2);
      g.fill();
      g.fillStyle = '#fff';
      g.font = 'bold 48px sans-serif';
      g.fillText('apogee', 40, 200);
      return c.toDataURL('image/png').split(',')[1];
    });
    await alice.locator('[data-testid=file-input]').setInputFiles({ name: 'picture.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    for (const page of [alice, bob]) {
      const img = page.locator('.room .attachment-image img').last();
      await img.waitFor();
      await page.waitForFunction((el) => el.complete && el.naturalWidth > 0, await img.elementHandle());
    }
    // The viewer opens the full image.
    await bob.getByRole('button', { name: 'View picture.png' }).click();
    await bob.locator('.viewer img').waitFor();
    await bob.getByRole('button', { name: 'Close' }).click();
    await bob.locator('.viewer').waitFor({ state: 'detached' });
    await bob.mouse.move(5, 795);
    await shot(bob, 'room');
  });

  it('edits the last own message with the up arrow', async () => {
    await composer(alice).click();
    await composer(alice).press('ArrowUp');
    await alice.locator('.composer.is-editing').waitFor();
    assert.equal(await composer(alice).inputValue(), 'a second line from alice');
    await composer(alice).fill('a second line from alice, edited');
    await composer(alice).press('Enter');
    await message(bob, 'a second line from alice, edited').locator('.edited').waitFor();
  });

  it('favourites a room and searches its messages', async () => {
    await bob.getByRole('button', { name: 'Add to favorites' }).click();
    await bob.locator('section[aria-label=Favorites] .room-item', { hasText: CHANNEL }).waitFor();
    await bob.getByRole('button', { name: 'Search messages' }).click();
    await bob.getByRole('searchbox', { name: 'Search messages' }).fill('second line');
    await bob.locator('aside .message', { hasText: 'a second line from alice, edited' }).waitFor();
    await bob.getByRole('button', { name: 'Close search' }).click();
  });

  it('pins and stars messages', async () => {
    const target = message(alice, 'hello bob');
    await target.hover();
    await target.getByRole('button', { name: 'Pin', exact: true }).click();
    await message(bob, 'hello bob').locator('.pinned-mark').waitFor();
    await bob.locator('.system-message', { hasText: 'alice pinned a message' }).waitFor();
    const mine = message(bob, 'hi alice!');
    await mine.hover();
    await mine.getByRole('button', { name: 'Star', exact: true }).click();
    await mine.getByRole('button', { name: 'Unstar' }).waitFor();
    const login = await server.rest('login', { username: 'bob', password: PASSWORD });
    const room = await server.rest(`rooms.info?roomName=${CHANNEL}`, undefined, login.data);
    const starred = await server.rest(`chat.getStarredMessages?roomId=${room.room._id}`, undefined, login.data);
    assert.deepEqual(starred.messages.map((m) => m.msg), ['hi alice!']);
  });

  it('starts a direct message and shows presence', async () => {
    await alice.getByRole('button', { name: 'Direct message' }).click();
    await alice.fill('input[name=dm-username]', 'bob');
    await alice.getByRole('button', { name: 'Start' }).click();
    await alice.waitForURL(/\/direct\//);
    await alice.locator('.room-header .presence-online').waitFor();
    // Bob sets himself busy from his menu; alice sees it live.
    await bob.locator('.sidebar .me').click();
    await bob.getByRole('menuitemradio', { name: 'Busy' }).click();
    await alice.locator('.room-header .presence-busy').waitFor();
    await bob.locator('.sidebar .me .presence-busy').waitFor();
    await send(alice, 'a private word');
    await bob.locator('.room-item[data-room="alice"] .badge').waitFor();
    // Alice is elsewhere: a mention in the channel becomes a desktop notification.
    await send(bob, '@alice look at this');
    await alice.waitForFunction(() => window.__notes.some((n) => n.title === '#e2e-room' && /look at this/.test(n.body)));
  });

  it('lets the administrator change a user role', async () => {
    await alice.goto(`${server.url}/admin/users`);
    const row = alice.locator('tr[data-username=bob]');
    await row.waitFor();
    await row.getByRole('button', { name: 'Edit roles' }).click();
    await row.locator('input[name=role-admin]').check();
    await row.getByRole('button', { name: 'Done' }).click();
    await row.locator('.role-tag', { hasText: 'admin' }).waitFor();
    await shot(alice, 'admin-users');
    const login = await server.rest('login', { username: 'alice', password: PASSWORD });
    const info = await server.rest('users.info?username=bob', undefined, login.data);
    assert.ok(info.user.roles.includes('admin'), JSON.stringify(info.user.roles));
    // Bob, reloading, is offered the administration now.
    await bob.reload();
    await bob.locator('.sidebar .me').click();
    await bob.getByRole('menuitem', { name: 'Administration' }).waitFor();
    await bob.keyboard.press('Escape');
    await bob.goto(`${server.url}/channel/${CHANNEL}`);
  });

  it('reconnects after the server restarts, resumes, and catches up', async () => {
    await alice.goto(`${server.url}/channel/${CHANNEL}`);
    await message(alice, 'hello bob').waitFor();
    const login = await server.rest('login', { username: 'bob', password: PASSWORD });
    const room = await server.rest(`rooms.info?roomName=${CHANNEL}`, undefined, login.data);
    const doomed = await server.rest('chat.sendMessage', { message: { rid: room.room._id, msg: 'soon deleted' } }, login.data);
    await message(alice, 'soon deleted').waitFor();
    await server.stop();
    await alice.locator('.connection-banner').waitFor();
    await server.start();
    // Sent and deleted while alice's client is still waiting to reconnect: she catches up.
    await server.rest('chat.sendMessage', { message: { rid: room.room._id, msg: 'sent during the outage' } }, login.data);
    await server.rest('chat.delete', { roomId: room.room._id, msgId: doomed.message._id }, login.data);
    await alice.locator('.connection-banner').waitFor({ state: 'detached', timeout: 30_000 });
    await message(alice, 'sent during the outage').waitFor();
    await message(alice, 'soon deleted').waitFor({ state: 'detached' });
    // And live again: the room's stream was resubscribed with the resumed login.
    await send(bob, 'live after the restart');
    await message(alice, 'live after the restart').waitFor();
    await send(alice, 'and back from alice');
    await message(bob, 'and back from alice').waitFor();
  });

  it('has a dark theme and fits a phone', async () => {
    await alice.emulateMedia({ colorScheme: 'dark' });
    await message(alice, 'and back from alice').waitFor();
    const bg = await alice.locator('.room').evaluate((el) => getComputedStyle(document.documentElement).getPropertyValue('--bg').trim());
    assert.equal(bg, '#1f2329');
    await shot(alice, 'room-dark');
    await alice.emulateMedia({ colorScheme: 'light' });

    const phone = await newPage({ width: 390, height: 844 });
    await phone.context().addCookies(await alice.context().cookies());
    await phone.goto(`${server.url}/`);
    await phone.evaluate((s) => {
      localStorage.setItem('Meteor.loginToken', s.token);
      localStorage.setItem('Meteor.userId', s.uid);
    }, await alice.evaluate(() => ({ token: localStorage.getItem('Meteor.loginToken'), uid: localStorage.getItem('Meteor.userId') })));
    await phone.goto(`${server.url}/channel/${CHANNEL}`);
    await message(phone, 'and back from alice').waitFor();
    const box = await composer(phone).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844, JSON.stringify(box));
    // The room has the whole screen; the list of rooms is one step back, and the whole screen too.
    assert.equal(await phone.locator('.sidebar').isVisible(), false);
    await shot(phone, 'phone');
    await phone.getByRole('button', { name: 'Back to rooms' }).click();
    await phone.waitForURL('**/home');
    const sidebar = await phone.locator('.sidebar').boundingBox();
    assert.ok(sidebar && sidebar.width >= 389 && sidebar.height > 600, JSON.stringify(sidebar));
    assert.equal(await phone.locator('.room').count(), 0);
    await shot(phone, 'phone-rooms');
    await phone.locator(`.room-item[data-room="${CHANNEL}"]`).click();
    await message(phone, 'and back from alice').waitFor();
    assert.equal(await phone.locator('.sidebar').isVisible(), false);
  });
});
