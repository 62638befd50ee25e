// End-to-end: where a reader lands in a room. The unread line and "jump to first unread" when
// more messages are unread than the first page holds; `?msg=<id>` links (also what "copy link"
// copies) scrolling to and highlighting their message, older pages loaded on the way; quoting a
// message (Rocket.Chat's `[ ](link)` form) and following the quote back to its message.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIN, ROOT, Server, launchBrowser, logIn, screenshotter, signUp } from './harness.mjs';

const shot = screenshotter(ROOT);
const READ = 12; // messages dave has read
const UNREAD = 90; // more than the client's first page (50)

let server;
let browser;
let page;
let erin; // the admin, who writes
let dave; // the reader
let rid;
const ids = {}; // message text → id

/** Goes to a client route as the client's own links do (history and popstate). */
const visit = (path) =>
  page.evaluate((p) => {
    history.pushState(null, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
const byId = (id) => page.locator(`.room .message[data-id="${id}"]`);

/**
 * Scrolls the list (down, or up) until message `id`, already loaded, is drawn: the list is
 * virtualised, so only rows near the view are in the DOM.
 */
async function scrollToDrawn(id, down = true) {
  for (let i = 0; i < 100 && (await byId(id).count()) === 0; i++) {
    await page.locator('.message-list').evaluate((el, dy) => el.scrollBy(0, dy), down ? 500 : -500);
    await page.waitForTimeout(50);
  }
  await byId(id).scrollIntoViewIfNeeded();
}

/** Whether the element comes to be inside the message list's visible part (within 5 s). */
async function inView(locator) {
  for (let i = 0; i < 50; i++) {
    const seen = await locator.evaluate((el) => {
      const list = el.closest('.message-list').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return r.bottom > list.top && r.top < list.bottom;
    });
    if (seen) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('unread line, message links and quotes', { timeout: 240_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    erin = await signUp(server, 'erin', 'Erin');
    // The server turns links to its own messages (under Site_Url) into quote attachments.
    await server.rest('settings/Site_Url', { value: server.url }, erin);
    dave = await signUp(server, 'dave', 'Dave');
    rid = (await server.rest('channels.create', { name: 'landing', members: ['dave'] }, erin)).channel._id;
    const post = async (text) => {
      ids[text] = (await server.rest('chat.postMessage', { roomId: rid, text }, erin)).message._id;
    };
    for (let i = 1; i <= READ; i++) await post(`early ${i}`);
    await server.rest('subscriptions.read', { rid }, dave);
    // Later than dave's last read, to the millisecond.
    await new Promise((r) => setTimeout(r, 20));
    for (let i = 1; i <= UNREAD; i++) await post(`later ${i}`);

    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(20_000);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
    page = await context.newPage();
    await logIn(page, server.url, 'dave');
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('draws the unread line and jumps to the first unread message, older than what is loaded', async () => {
    await page.locator('.room-item[data-room="landing"]').click();
    await byId(ids[`later ${UNREAD}`]).waitFor();
    const bar = page.locator('.unread-bar');
    await bar.waitFor();
    // The first unread message is older than the first page: not loaded yet.
    assert.equal(await byId(ids['later 1']).count(), 0);
    await shot(page, 'unread');
    await bar.getByRole('button', { name: 'Jump to first unread' }).click();
    const line = page.getByRole('separator', { name: 'Unread messages' });
    await line.waitFor();
    await bar.waitFor({ state: 'detached' });
    // The line sits right before "later 1", after the last read message, and is in view.
    const around = await line.evaluate((el) => [el.previousElementSibling?.getAttribute('data-id'), el.nextElementSibling?.getAttribute('data-id')]);
    assert.deepEqual(around, [ids[`early ${READ}`], ids['later 1']]);
    await page.waitForFunction(() => {
      const el = document.querySelector('.unread-separator');
      const list = document.querySelector('.message-list').getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return r.top >= list.top && r.bottom <= list.bottom;
    });
    // Opening the room read it: the server has no unread left for dave.
    await page.waitForFunction(
      async ({ url, uid, token, rid }) => {
        const res = await fetch(`${url}/api/v1/subscriptions.getOne?roomId=${rid}`, { headers: { 'X-User-Id': uid, 'X-Auth-Token': token } });
        return (await res.json()).subscription.unread === 0;
      },
      { url: server.url, uid: dave.userId, token: dave.authToken, rid },
    );
  });

  it('opens a ?msg= link at its message, highlighted, loading older pages first', async () => {
    // A fresh load: only the newest page is loaded, "early 3" is two pages back.
    await page.goto(`${server.url}/channel/landing?msg=${ids['early 3']}`);
    const target = byId(ids['early 3']);
    await target.waitFor();
    await page.locator(`.message.highlighted[data-id="${ids['early 3']}"]`).waitFor();
    assert.ok(await inView(target), 'the linked message is scrolled into view');
    assert.equal(new URL(page.url()).searchParams.get('msg'), ids['early 3']);
    // The mark goes after a moment.
    await page.locator('.message.highlighted').waitFor({ state: 'detached', timeout: 10_000 });
  });

  it('copies a message link that leads back to the message', async () => {
    const m = byId(ids['later 60']);
    await scrollToDrawn(ids['later 60']);
    await m.hover();
    await m.getByRole('button', { name: 'Copy link' }).click();
    await page.getByText('Link copied').waitFor();
    const link = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(link, `${server.url}/channel/landing?msg=${ids['later 60']}`);
    // Followed inside the client, as a link in a message is (no new page load and session).
    await visit('/home');
    await visit(new URL(link).pathname + new URL(link).search);
    await page.locator(`.message.highlighted[data-id="${ids['later 60']}"]`).waitFor();
    assert.ok(await inView(byId(ids['later 60'])));
  });

  it('quotes a message; the quote shows the message and leads back to it', async () => {
    await visit('/channel/landing');
    const quoted = byId(ids[`later ${UNREAD - 1}`]);
    await quoted.waitFor();
    await quoted.hover();
    await quoted.getByRole('button', { name: 'Quote' }).click();
    await page.getByRole('status', { name: 'Quoting' }).filter({ hasText: `later ${UNREAD - 1}` }).waitFor();
    await page.locator('.room textarea').fill('agreed, see above');
    await page.locator('.room textarea').press('Enter');
    await page.getByRole('status', { name: 'Quoting' }).waitFor({ state: 'detached' });

    const reply = page.locator('.room .message', { hasText: 'agreed, see above' });
    const quote = reply.locator('.attachment-quote');
    await quote.waitFor();
    assert.match(await quote.textContent(), new RegExp(`erin.*later ${UNREAD - 1}`));
    // The link itself is not shown as text.
    assert.equal((await reply.locator('.message-text').textContent()).trim(), 'agreed, see above');
    await shot(page, 'quote');

    // On the wire it is Rocket.Chat's quote: a blank-labelled link to the message, then the text.
    const replyId = await reply.getAttribute('data-id');
    const saved = await server.rest(`chat.getMessage?msgId=${replyId}`, undefined, erin);
    const link = `${server.url}/channel/landing?msg=${ids[`later ${UNREAD - 1}`]}`;
    assert.equal(saved.message.msg, `[ ](${link})\nagreed, see above`);
    // …and the server attached the quote, which is what the client draws.
    assert.equal(saved.message.attachments?.[0]?.message_link, link);
    assert.equal(saved.message.attachments[0].text, `later ${UNREAD - 1}`);

    // Following the quote goes to the quoted message, in the app (no reload).
    await page.evaluate(() => (window.__sameDocument = true));
    await quote.locator('.quote-author').click();
    await page.waitForURL(`**/channel/landing?msg=${ids[`later ${UNREAD - 1}`]}`);
    await page.locator(`.message.highlighted[data-id="${ids[`later ${UNREAD - 1}`]}"]`).waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true);
  });

  it('shows a quote another client wrote with a link to an older message', async () => {
    const text = `[ ](${server.url}/channel/landing?msg=${ids['early 1']})\nfrom the archive`;
    await server.rest('chat.postMessage', { roomId: rid, text }, erin);
    const reply = page.locator('.room .message', { hasText: 'from the archive' });
    await reply.locator('.attachment-quote', { hasText: 'early 1' }).waitFor();
  });

  it('leaves a link to a message the writer cannot read as a link, without a quote', async () => {
    const secret = (await server.rest('groups.create', { name: 'erins-notes' }, erin)).group._id;
    // chat.sendMessage: chat.postMessage has used up its rate limit in before().
    const send = async (roomId, msg, auth) => (await server.rest('chat.sendMessage', { message: { rid: roomId, msg } }, auth)).message;
    const hidden = (await send(secret, 'private words', erin))._id;
    const dave2 = await send(rid, `[ ](${server.url}/group/erins-notes?msg=${hidden})\nguessing`, dave);
    assert.equal(dave2.attachments, undefined, 'no quote of a room dave cannot read');
    const reply = page.locator('.room .message', { hasText: 'guessing' });
    await reply.waitFor();
    assert.equal(await reply.locator('.attachment-quote').count(), 0);
    assert.ok(!(await reply.textContent()).includes('private words'));
    await reply.locator(`.message-text a[href*="${hidden}"]`).waitFor();
  });
});
