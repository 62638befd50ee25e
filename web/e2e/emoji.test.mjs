// End-to-end: the full emoji picker — reactions found by search, the recent tab, categories,
// the composer's emoji button and the `:` autocomplete over the whole set.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BIN, ROOT, Server, launchBrowser, logIn, screenshotter, signUp } from './harness.mjs';

const shot = screenshotter(ROOT);

let server;
let browser;
let page;
let pia;
let messageId;

describe('emoji picker', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    pia = await signUp(server, 'pia', 'Pia');
    const rid = (await server.rest('channels.create', { name: 'fun' }, pia)).channel._id;
    messageId = (await server.rest('chat.postMessage', { roomId: rid, text: 'react to me' }, pia)).message._id;
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    await logIn(page, server.url, 'pia');
    await page.goto(`${server.url}/channel/fun`);
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  const target = () => page.locator(`.room .message[data-id="${messageId}"]`);
  const openPicker = async () => {
    await target().hover();
    await target().getByRole('button', { name: 'Add reaction' }).click();
    return target().getByRole('dialog', { name: 'Pick a reaction' });
  };

  it('reacts with an emoji found by search, beyond the quick set', async () => {
    const picker = await openPicker();
    await picker.getByRole('button', { name: '+1', exact: true }).waitFor();
    await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('avocado');
    await picker.getByRole('button', { name: 'avocado', exact: true }).click();
    const reaction = target().locator('.reaction.mine');
    await reaction.waitFor();
    assert.equal((await reaction.textContent()).replace(/\s+/g, ''), '🥑1');
    const saved = await server.rest(`chat.getMessage?msgId=${messageId}`, undefined, pia);
    assert.deepEqual(Object.keys(saved.message.reactions), [':avocado:']);
  });

  it('offers the last pick under Recent and every category as a tab', async () => {
    const picker = await openPicker();
    const recent = picker.getByRole('group', { name: 'Recent' });
    assert.equal(await recent.getByRole('button').first().getAttribute('aria-label'), 'avocado');
    await picker.getByRole('tab', { name: 'Food & drink' }).click();
    await picker.getByRole('group', { name: 'Food & drink' }).getByRole('button', { name: 'pizza', exact: true }).waitFor();
    await shot(page, 'emoji-picker');
    await picker.getByRole('tab', { name: 'Flags' }).click();
    assert.ok((await picker.getByRole('group', { name: 'Flags' }).getByRole('button').count()) > 200);
    await page.keyboard.press('Escape');
    await picker.waitFor({ state: 'detached' });
  });

  it('puts emoji into the message from the composer button and the : autocomplete', async () => {
    const box = page.locator('.room textarea');
    await box.fill('lift off');
    await page.locator('.composer').getByRole('button', { name: 'Emoji' }).click();
    const picker = page.locator('.composer').getByRole('dialog', { name: 'Emoji' });
    await picker.getByRole('searchbox', { name: 'Search emoji' }).fill('rocket');
    await page.keyboard.press('Enter');
    await picker.waitFor({ state: 'detached' });
    assert.equal(await box.inputValue(), 'lift off :rocket: ');
    await box.pressSequentially(':avoc');
    const option = page.getByRole('option', { name: /🥑 :avocado:/ });
    await option.waitFor();
    await box.press('Enter');
    assert.equal(await box.inputValue(), 'lift off :rocket: :avocado: ');
  });
});
