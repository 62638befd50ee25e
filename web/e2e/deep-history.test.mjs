// End-to-end: a room with 2,000 messages. The list is virtualised — the DOM holds a bounded number
// of rows however far the reader scrolls — and keeps the reader's place while older pages load;
// `?msg=` links (room and thread forms) open a window deep in history around their message,
// and scrolling down loads newer pages until the live end, where new messages follow again.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIN, ROOT, Server, launchBrowser, logIn, screenshotter, signUp } from './harness.mjs';

const shot = screenshotter(ROOT);
const MESSAGES = 2000;
/** Most message rows the DOM may hold at 1280×800 (the view plus the overscan on each side). */
const BOUND = 120;

let server;
let browser;
let page;
let vera;
let rid;
const ids = []; // ids[n] is "deep n"
let replyId; // a thread reply to "deep 500"

const list = () => page.locator('.message-list');
const byId = (id) => page.locator(`.room .message[data-id="${id}"]`);
/** Message rows in the DOM. */
const domRows = () => page.locator('.room .rows > .message, .room .rows > .system-message').count();

/** The first message row in view: its id and its distance from the list's top. */
const firstInView = () =>
  list().evaluate((el) => {
    const top = el.getBoundingClientRect().top;
    const row = [...el.querySelectorAll('.rows > .message')].find((r) => r.getBoundingClientRect().top >= top);
    return row ? { id: row.dataset.id, y: row.getBoundingClientRect().top - top } : null;
  });
/** Where message `id` is now, relative to the list's top (null when not drawn). */
const yOf = (id) =>
  list().evaluate((el, id) => {
    const row = el.querySelector(`.rows > [data-id="${id}"]`);
    return row ? row.getBoundingClientRect().top - el.getBoundingClientRect().top : null;
  }, id);

/** Whether the element is inside the list's visible part. */
const inView = (id) =>
  list().evaluate((el, id) => {
    const row = el.querySelector(`.rows > [data-id="${id}"]`);
    if (!row) return false;
    const l = el.getBoundingClientRect();
    const r = row.getBoundingClientRect();
    return r.bottom > l.top && r.top < l.bottom;
  }, id);

describe('a long history, virtualised', { timeout: 600_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    vera = await signUp(server, 'vera', 'Vera');
    await server.rest('settings/API_Enable_Rate_Limiter', { value: false }, vera);
    rid = (await server.rest('channels.create', { name: 'longroom' }, vera)).channel._id;
    for (let i = 1; i <= MESSAGES; i++) {
      // Every 25th a longer one, so rows differ in height.
      const msg = i % 25 === 0 ? `deep ${i} ${'and a longer line that wraps '.repeat(12)}` : `deep ${i}`;
      ids[i] = (await server.rest('chat.sendMessage', { message: { rid, msg } }, vera)).message._id;
    }
    replyId = (await server.rest('chat.sendMessage', { message: { rid, msg: 'a late reply in an old thread', tmid: ids[500] } }, vera)).message._id;

    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    if (process.env.DEBUG_LIST) {
      page.on('websocket', (ws) => {
        ws.on('framesent', (f) => String(f.payload).includes('load') && console.log('SENT', String(f.payload).slice(0, 160)));
        ws.on('framereceived', (f) => {
          const p = String(f.payload);
          if (p.includes('"error"')) console.log('ERR', p.slice(0, 300));
          if (p.includes('"messages"')) console.log('RECV', (p.match(/"_id"/g) ?? []).length, p.slice(0, 40), (p.match(/"msg":"deep \d+/g) ?? []).slice(0, 1), (p.match(/"msg":"deep \d+/g) ?? []).slice(-1), p.match(/"more\w+":\w+/g));
        });
      });
      page.on('console', (m) => console.log('CONSOLE', m.text()));
    }
    await logIn(page, server.url, 'vera');
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('keeps the DOM bounded while scrolling to the start, and nothing jumps as pages load', async () => {
    await page.locator('.room-item[data-room=longroom]').click();
    await byId(ids[MESSAGES]).waitFor();
    assert.ok(await inView(ids[MESSAGES]), 'opens at the newest message');
    assert.ok((await domRows()) <= BOUND, `${await domRows()} rows at the start`);
    assert.equal(await page.getByRole('feed', { name: 'Messages' }).count(), 1);

    let most = 0;
    const jumps = [];
    const deadline = Date.now() + 150_000;
    for (let round = 0; Date.now() < deadline && (await byId(ids[1]).count()) === 0; round++) {
      // A reader's scroll upwards, then the place of what is on screen watched while pages load.
      await list().evaluate((el) => el.scrollBy(0, -700));
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const seen = await firstInView();
      // Whatever page that scroll asked for has arrived and been drawn: the row seen is still
      // drawn, at the same place (a row no longer drawn has moved far away).
      await page.waitForTimeout(30);
      await page
        .waitForFunction(() => document.querySelector('[role=feed]')?.getAttribute('aria-busy') === 'false', null, { timeout: 3000 })
        .catch(() => {});
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const y = seen && (await yOf(seen.id));
      if (seen && (y === null || Math.abs(y - seen.y) > 2)) jumps.push({ round, id: seen.id, from: seen.y, to: y });
      most = Math.max(most, await domRows());
    }
    await byId(ids[1]).waitFor();
    await page.getByText('Start of conversation').waitFor();
    assert.deepEqual(jumps, [], 'the view stayed put while older pages were added above it');
    assert.ok(most <= BOUND, `at most ${most} message rows in the DOM`);
    // All 2,000 are loaded, few are drawn: the list's height stands for the rest.
    const height = await list().evaluate((el) => el.scrollHeight);
    assert.ok(height > MESSAGES * 20, `scroll height ${height}`);
    await shot(page, 'history-start');
  });

  it('moves between messages with the keyboard, drawing rows as it goes', async () => {
    await byId(ids[1]).focus();
    for (let i = 0; i < 30; i++) await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => document.activeElement?.getAttribute('data-id'));
    // Day separators are skipped; "deep 31" is 30 messages below "deep 1".
    assert.equal(focused, ids[31]);
    assert.ok(await inView(ids[31]));
    await page.keyboard.press('End');
    await page.waitForFunction((id) => document.activeElement?.getAttribute('data-id') === id, ids[MESSAGES]);
    assert.ok(await inView(ids[MESSAGES]));
    assert.ok((await domRows()) <= BOUND);
    const article = byId(ids[MESSAGES]);
    assert.equal(await article.getAttribute('role'), 'article');
    // Every loaded message counted (no more to load either way).
    assert.ok(Number(await article.getAttribute('aria-setsize')) >= MESSAGES);
  });

  it('opens a ?msg= link deep in history, then loads newer pages down to the live end', async () => {
    const target = 300;
    await page.goto(`${server.url}/channel/longroom?msg=${ids[target]}`);
    await page.locator(`.message.highlighted[data-id="${ids[target]}"]`).waitFor();
    assert.ok(await inView(ids[target]), 'the linked message is in view');
    // Only the page around it was loaded: the newest messages are not there, and it stays put.
    assert.equal(await byId(ids[MESSAGES]).count(), 0);
    const y = await yOf(ids[target]);
    await page.waitForTimeout(500);
    assert.ok(Math.abs((await yOf(ids[target])) - y) <= 2, 'the target did not move');
    await page.getByRole('button', { name: 'Jump to recent messages ↓' }).waitFor();
    await shot(page, 'message-link-deep');

    // A live message while the window is far from the end is not drawn in the gap.
    await server.rest('chat.sendMessage', { message: { rid, msg: 'while you were reading' } }, vera);
    await page.waitForTimeout(500);
    assert.equal(await page.locator('.room .message', { hasText: 'while you were reading' }).count(), 0);

    let most = 0;
    const deadline = Date.now() + 150_000;
    for (let round = 0; Date.now() < deadline && (await byId(ids[MESSAGES]).count()) === 0; round++) {
      const info = await list().evaluate((el) => {
        el.scrollBy(0, 900);
        const rows = el.querySelectorAll('.rows > .message');
        return `${el.scrollTop}/${el.scrollHeight} ${rows.length} ${rows[0]?.textContent.slice(0, 20)} … ${rows[rows.length - 1]?.textContent.slice(0, 20)}`;
      });
      if (process.env.DEBUG_LIST) console.log(round, info);
      await page.waitForTimeout(40);
      most = Math.max(most, await domRows());
    }
    await byId(ids[MESSAGES]).waitFor();
    await page.locator('.room .message', { hasText: 'while you were reading' }).waitFor();
    assert.ok(most <= BOUND, `at most ${most} rows while scrolling down`);
    await page.getByRole('button', { name: 'Jump to recent messages ↓' }).waitFor({ state: 'detached' });
    // At the live end again: a new message is added and followed.
    await list().evaluate((el) => (el.scrollTop = el.scrollHeight));
    // The scroll is the reader's once its event has been handled (a frame later), as with a
    // hand on the wheel; only then does the next message arrive.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    await server.rest('chat.sendMessage', { message: { rid, msg: 'back at the end' } }, vera);
    const last = page.locator('.room .message', { hasText: 'back at the end' });
    await last.waitFor();
    assert.ok(await inView(await last.getAttribute('data-id')));
  });

  it('opens a thread link whose thread starts deep in history', async () => {
    await page.goto(`${server.url}/channel/longroom/thread/${ids[500]}?msg=${replyId}`);
    await page.locator(`.message.highlighted[data-id="${ids[500]}"]`).waitFor();
    assert.ok(await inView(ids[500]));
    await page.locator(`.thread-panel .message.highlighted[data-id="${replyId}"]`, { hasText: 'a late reply in an old thread' }).waitFor();
    // Back to the newest with the button.
    await page.getByRole('button', { name: 'Jump to recent messages ↓' }).click();
    await page.locator('.room .message', { hasText: 'back at the end' }).waitFor();
    assert.ok((await domRows()) <= BOUND);
  });
});
