// End-to-end: teams. Creating a (private) team from the sidebar, its main room under /group/,
// the team icon and section in the sidebar, adding and removing a team's rooms and members in the
// team panel — each change checked against the server's teams.* answers.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN, PASSWORD, ROOT, Server, eventually, launchBrowser, logIn, screenshotter, signUp } from './harness.mjs';

const shot = screenshotter(ROOT);

let server;
let browser;
let page;
let tess; // creates the team
let teamId;

const teamRoomNames = async () => (await server.rest(`teams.listRooms?teamId=${teamId}`, undefined, tess)).rooms.map((r) => r.name);
const teamMemberNames = async () => (await server.rest(`teams.members?teamId=${teamId}`, undefined, tess)).members.map((m) => m.user.username);

describe('teams', { timeout: 180_000 }, () => {
  before(async () => {
    server = new Server(BIN);
    await server.start();
    tess = await signUp(server, 'tess', 'Tess');
    await server.rest('users.register', { username: 'uma', email: 'uma@example.com', pass: PASSWORD, name: 'Uma' });
    await server.rest('channels.create', { name: 'launch-news' }, tess);
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    context.setDefaultTimeout(20_000);
    page = await context.newPage();
    await logIn(page, server.url, 'tess');
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('creates a private team whose main room is a group with the team icon', async () => {
    await page.getByRole('button', { name: 'Create team' }).click();
    const dialog = page.getByRole('dialog', { name: 'Create team' });
    await dialog.locator('input[name=channel-name]').fill('launch');
    await dialog.getByLabel('Private (only invited members)').check();
    await dialog.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL('**/group/launch');
    const item = page.locator('.sidebar section[aria-label="Teams"] a[data-room="launch"]');
    await item.waitFor();
    assert.equal((await item.locator('.room-icon').textContent()).trim(), '👥');
    const info = await server.rest('teams.info?teamName=launch', undefined, tess);
    teamId = info.teamInfo._id;
    assert.equal(info.teamInfo.type, 1, 'a private team');
    await page.locator('.room-header h1', { hasText: 'launch' }).waitFor();
  });

  it('adds an existing channel to the team, opens it and removes it again', async () => {
    await page.getByRole('button', { name: 'Team', exact: true }).click();
    const panel = page.getByRole('complementary', { name: 'Team' });
    await panel.locator('input[name=team-add-room]').fill('#launch-news');
    await panel.getByRole('button', { name: 'Add' }).click();
    await panel.locator('li[data-room="launch-news"]').waitFor();
    assert.ok((await teamRoomNames()).includes('launch-news'));
    // The main room says so, as Rocket.Chat's system message.
    await page.locator('.room .system-message', { hasText: 'tess added #launch-news to this team' }).waitFor();
    // A room that does not exist is refused in the panel, and nothing is added.
    await panel.locator('input[name=team-add-room]').fill('no-such-room');
    await panel.getByRole('button', { name: 'Add' }).click();
    await panel.getByRole('alert').filter({ hasText: 'No such room' }).waitFor();
    const after = await teamRoomNames();
    assert.ok(after.includes('launch-news') && !after.includes('no-such-room'), after.join());
    await shot(page, 'team');

    await panel.getByRole('link', { name: 'launch-news' }).click();
    await page.waitForURL('**/channel/launch-news');
    await page.locator('.room-header h1', { hasText: 'launch-news' }).waitFor();
    // The team's room names its team, and leads back to it.
    await page.locator('.room-header .team-link', { hasText: 'launch' }).click();
    await page.waitForURL('**/group/launch');
    await page.goto(`${server.url}/channel/launch-news`);
    await page.locator('.room-header h1', { hasText: 'launch-news' }).waitFor();

    // The team's main room is still reached by its /group/ link.
    await page.goto(`${server.url}/group/launch`);
    await page.locator('.room-header h1', { hasText: 'launch' }).waitFor();
    await page.getByRole('button', { name: 'Team', exact: true }).click();
    await panel.getByRole('button', { name: 'Remove launch-news from the team' }).click();
    await panel.locator('li[data-room="launch-news"]').waitFor({ state: 'detached' });
    assert.ok(!(await teamRoomNames()).includes('launch-news'));
  });

  it('adds a member by username and removes them', async () => {
    const panel = page.getByRole('complementary', { name: 'Team' });
    await panel.getByRole('tab', { name: 'Members' }).click();
    await panel.locator('li[data-username="tess"]').waitFor();
    await panel.locator('input[name=team-add-member]').fill('@uma');
    await panel.getByRole('button', { name: 'Add' }).click();
    await panel.locator('li[data-username="uma"]').waitFor();
    await eventually(async () => (await teamMemberNames()).includes('uma'), 'uma is a member');
    await panel.getByRole('button', { name: 'Remove uma from the team' }).click();
    await panel.locator('li[data-username="uma"]').waitFor({ state: 'detached' });
    assert.deepEqual(await teamMemberNames(), ['tess']);
  });
});
