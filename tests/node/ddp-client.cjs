// A bot's view of apogee through Rocket.Chat's own DDP client: log in with a password digest and
// with a resume token, subscribe, receive a message another user sent over REST, see typing and
// presence. Run by scripts/ddp-client-test.sh with APOGEE_URL set; exits non-zero on any failure.
'use strict';
const { DDPSDK } = require('@rocket.chat/ddp-client');
const crypto = require('node:crypto');

const base = process.env.APOGEE_URL;
const password = 'a long enough test password';
const sha256 = (s) => crypto.createHash('sha256').update(s).digest('hex');

async function rest(path, body, auth) {
  const headers = { 'content-type': 'application/json' };
  if (auth) Object.assign(headers, { 'X-User-Id': auth.userId, 'X-Auth-Token': auth.authToken });
  const res = await fetch(base + '/api/v1/' + path, { method: body ? 'POST' : 'GET', headers, body: body && JSON.stringify(body) });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function user(name) {
  await rest('users.register', { username: name, email: `${name}@example.com`, pass: password, name });
  return (await rest('login', { username: name, password })).data;
}

// Resolves with the first value `register(resolve)` hands over, or fails after 5 s.
function expectEvent(what, register) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

const results = [];
async function check(name, fn) {
  try {
    await fn();
    results.push([name, true]);
    console.log(`ok   ${name}`);
  } catch (e) {
    results.push([name, false]);
    console.log(`FAIL ${name}: ${e.message}`);
  }
}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function main() {
  const alice = await user('alice');
  const bob = await user('bob');
  const { channel } = await rest('channels.create', { name: 'bots', members: ['bob'] }, alice);
  const rid = channel._id;

  const aliceSdk = await DDPSDK.createAndConnect(base);
  const bobSdk = await DDPSDK.createAndConnect(base);
  try {
    await check('login with a sha-256 digest', async () => {
      await aliceSdk.account.loginWithPassword('alice', sha256(password));
      assert(aliceSdk.account.uid === alice.userId, `uid ${aliceSdk.account.uid}`);
    });

    const online = expectEvent('bob online on stream-notify-logged', (done) =>
      aliceSdk.stream('notify-logged', 'user-status', (...args) => {
        const [uid, , status] = args[0];
        if (uid === bob.userId && status === 1) done(true);
      }),
    );
    const received = expectEvent('the message on stream-room-messages', (done) =>
      aliceSdk.stream('room-messages', rid, (msg) => {
        if (msg.msg === 'hello from REST') done(msg);
      }),
    );
    const typing = expectEvent('typing on stream-notify-room', (done) =>
      aliceSdk.stream('notify-room', `${rid}/user-activity`, (username, activities) => {
        if (username === 'bob' && activities.includes('user-typing')) done(true);
      }),
    );
    // Let the subscriptions become ready before anything happens.
    await new Promise((r) => setTimeout(r, 300));

    await check('resume a REST login over DDP (the mobile flow)', async () => {
      await bobSdk.account.loginWithToken(bob.authToken);
      assert(bobSdk.account.uid === bob.userId, `uid ${bobSdk.account.uid}`);
    });
    await check('presence: a logged-in connection makes its user online', () => online);

    await rest('chat.sendMessage', { message: { rid, msg: 'hello from REST' } }, bob);
    await check('a message sent over REST arrives on the room stream', async () => {
      const msg = await received;
      assert(msg.u.username === 'bob', `author ${msg.u.username}`);
      assert(msg.ts instanceof Date || typeof msg.ts === 'object', 'ts is an EJSON date');
    });

    await bobSdk.call('stream-notify-room', `${rid}/user-activity`, 'bob', ['user-typing'], {});
    await check('typing reaches the other member', () => typing);

    await check('sendMessage over DDP answers with the stored message', async () => {
      const sent = await aliceSdk.call('sendMessage', { rid, msg: 'hello from DDP' });
      assert(sent.msg === 'hello from DDP' && sent.rid === rid, JSON.stringify(sent));
      const { messages } = await rest(`channels.history?roomId=${rid}&count=1`, undefined, bob);
      assert(messages[0].msg === 'hello from DDP', 'persisted');
    });
  } finally {
    aliceSdk.connection.close();
    bobSdk.connection.close();
  }
  const failed = results.filter(([, ok]) => !ok).length;
  console.log(`ddp-client: ${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
