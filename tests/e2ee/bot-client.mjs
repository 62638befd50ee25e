// bot-client.mjs — two people with WebCrypto clients (as Rocket.Chat's web client does it) and an
// encrypted bot in one encrypted room, against a running Apogee. Node >= 20 (fetch, WebCrypto).
//
// Env: APOGEE_URL; ADMIN, ALICE, BOB, BOT as "<userId>:<token>"; BOT_USERNAME; MARK (a unique
// marker every plaintext starts with, so the caller can grep storage and logs for it).
// Prints "RESULT <json>" ({rid, messages}) last; exits 1 on the first failed check.
//
// 1. alice and bob make RSA-OAEP keypairs and publish them (private key wrapped with PBKDF2 +
//    AES-GCM under a passphrase); alice makes an encrypted private group with bob and the room
//    key (setRoomKeyID, updateGroupKey);
// 2. the admin authorises the bot for the room; alice hands the waiting bob and bot the key
//    (fetchUsersWaitingForGroupKey, provideUsersSuggestedGroupKeys); bob accepts his;
// 3. alice writes; the bot reads it decrypted and replies encrypted; bob decrypts the reply;
//    bob writes; the bot reads it;
// 4. alice rotates the room key and hands it out again; alice writes under the new key; the bot
//    reads old and new messages (its oldRoomKeys) and replies under the new key.

const { subtle } = globalThis.crypto;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const BASE = process.env.APOGEE_URL;
const MARK = process.env.MARK;
const who = (name) => {
	const [userId, token] = process.env[name].split(':');
	return { name, userId, token };
};
const admin = who('ADMIN');
const alice = who('ALICE');
const bob = who('BOB');
const bot = who('BOT');

let checks = 0;
function check(cond, label, detail) {
	if (!cond) {
		console.error(`FAIL ${label}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
		process.exit(1);
	}
	checks++;
	console.log(`ok   ${label}`);
}

async function api(user, method, path, body) {
	const res = await fetch(`${BASE}/api/v1/${path}`, {
		method,
		headers: { 'X-User-Id': user.userId, 'X-Auth-Token': user.token, 'Content-Type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	const json = await res.json();
	if (!res.ok || json.success === false) {
		console.error(`FAIL ${user.name} ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
		process.exit(1);
	}
	return json;
}
const get = (u, path) => api(u, 'GET', path);
const post = (u, path, body) => api(u, 'POST', path, body);

// ---- Rocket.Chat's client formats, with WebCrypto only -----------------------------------------
const b64 = (u8) => btoa(String.fromCharCode(...u8));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const binaryDecode = (s) => Uint8Array.from(s, (c) => {
	const n = c.charCodeAt(0);
	if (n > 0xff) throw new RangeError('illegal char code');
	return n;
});
const binaryEncode = (u8) => String.fromCharCode(...u8);
const rsaAlg = { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: { name: 'SHA-256' } };

async function makeUserKeys(user, passphrase) {
	const pair = await subtle.generateKey(rsaAlg, true, ['encrypt', 'decrypt']);
	const publicKey = JSON.stringify(await subtle.exportKey('jwk', pair.publicKey));
	const privateJwk = JSON.stringify(await subtle.exportKey('jwk', pair.privateKey));
	// keychain.ts encryptKey: PBKDF2-SHA-256 100000 over the passphrase, AES-GCM, 12-byte IV.
	const salt = `v2:${user.userId}:${crypto.randomUUID()}`;
	const base = await subtle.importKey('raw', binaryDecode(passphrase), 'PBKDF2', false, ['deriveBits']);
	const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: binaryDecode(salt), iterations: 100000 }, base, 256);
	const master = await subtle.importKey('raw', bits, 'AES-GCM', false, ['encrypt', 'decrypt']);
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv }, master, binaryDecode(privateJwk)));
	const privateKey = JSON.stringify({ iv: b64(iv), ciphertext: b64(ct), salt, iterations: 100000 });
	await post(user, 'e2e.setUserPublicAndPrivateKeys', { public_key: publicKey, private_key: privateKey });
	return { publicKey, privateKey: pair.privateKey, passphrase };
}

// keychain.ts decryptKey: the stored private key back with the passphrase.
async function loadUserKeys(user, passphrase) {
	const mine = await get(user, 'e2e.fetchMyKeys');
	const o = JSON.parse(mine.private_key);
	const base = await subtle.importKey('raw', binaryDecode(passphrase), 'PBKDF2', false, ['deriveBits']);
	const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: binaryDecode(o.salt), iterations: o.iterations }, base, 256);
	const master = await subtle.importKey('raw', bits, 'AES-GCM', false, ['decrypt']);
	const jwk = binaryEncode(new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: unb64(o.iv) }, master, unb64(o.ciphertext))));
	return subtle.importKey('jwk', JSON.parse(jwk), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['decrypt']);
}

async function newRoomKey() {
	const key = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt', 'decrypt']);
	return { kid: crypto.randomUUID(), key, jwk: JSON.stringify(await subtle.exportKey('jwk', key)) };
}

// encryptGroupKeyForParticipant: kid + base64(RSA-OAEP(publicKey, Binary.decode(jwkString))).
async function wrapFor(publicKeyJwkString, room) {
	const pub = await subtle.importKey('jwk', JSON.parse(publicKeyJwkString), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
	return room.kid + b64(new Uint8Array(await subtle.encrypt({ name: 'RSA-OAEP' }, pub, binaryDecode(room.jwk))));
}

async function unwrap(privateKey, e2eKey) {
	const ct = unb64(e2eKey.slice(-344));
	const jwk = binaryEncode(new Uint8Array(await subtle.decrypt({ name: 'RSA-OAEP' }, privateKey, ct)));
	return { kid: e2eKey.slice(0, -344), jwk, key: await subtle.importKey('jwk', JSON.parse(jwk), 'AES-GCM', true, ['encrypt', 'decrypt']) };
}

async function seal(room, text) {
	const iv = crypto.getRandomValues(new Uint8Array(12));
	const ct = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv }, room.key, enc.encode(JSON.stringify({ msg: text }))));
	return { algorithm: 'rc.v2.aes-sha2', kid: room.kid, iv: b64(iv), ciphertext: b64(ct) };
}

async function open(rooms, content) {
	check(content.algorithm === 'rc.v2.aes-sha2', 'bot writes v2 envelopes', content.algorithm);
	check(unb64(content.iv).length === 12, 'with a 12-byte IV');
	const room = rooms.find((r) => r.kid === content.kid);
	check(room !== undefined, 'under a key id the client knows', content.kid);
	const pt = await subtle.decrypt({ name: 'AES-GCM', iv: unb64(content.iv) }, room.key, unb64(content.ciphertext));
	return JSON.parse(dec.decode(pt));
}

async function send(user, rid, room, text) {
	const mentions = [...text.matchAll(/(?:^|\s)(@[\w.-]+)/g)].map((m) => m[1]);
	const r = await post(user, 'chat.sendMessage', {
		message: { rid, t: 'e2e', e2e: 'pending', msg: '', content: await seal(room, text), e2eMentions: { e2eUserMentions: mentions, e2eChannelMentions: [] } },
	});
	return r.message._id;
}

// Hands the current key (and old keys) to everyone waiting, as a key holder's client does.
async function provideWaiting(holder, holderPrivate, rid, room, oldKeys) {
	const waiting = await get(holder, `e2e.fetchUsersWaitingForGroupKey?roomIds[]=${rid}`);
	const users = waiting.usersWaitingForE2EKeys[rid] ?? [];
	const out = [];
	for (const u of users) {
		const old = [];
		for (const o of oldKeys) old.push({ e2eKeyId: o.kid, ts: o.ts, E2EKey: await wrapFor(u.public_key, o) });
		out.push({ _id: u._id, key: await wrapFor(u.public_key, room), oldKeys: old });
	}
	await post(holder, 'e2e.provideUsersSuggestedGroupKeys', { usersSuggestedGroupKeys: { [rid]: out } });
	return users.map((u) => u._id);
}

async function botRead(rid) {
	return (await get(bot, `e2e.bot.messages?rid=${rid}&count=100`)).messages;
}

// ---- the conversation ---------------------------------------------------------------------------
const aliceKeys = await makeUserKeys(alice, 'alpine meadow quartz lantern');
const bobKeys = await makeUserKeys(bob, 'harbor cedar ginger velvet');

const group = await post(alice, 'groups.create', { name: `vault-${Date.now()}`, members: ['bob'] });
const rid = group.group._id;
await post(alice, 'groups.setEncrypted', { roomId: rid, encrypted: true });
let room = await newRoomKey();
await post(alice, 'e2e.setRoomKeyID', { rid, keyID: room.kid });
await post(alice, 'e2e.updateGroupKey', { rid, uid: alice.userId, key: await wrapFor(aliceKeys.publicKey, room) });

const auth = await post(admin, 'e2e.bots.authorize', { userId: bot.userId, roomIds: [rid] });
check(auth.bot.roomIds.includes(rid), 'bot authorised for the room');
const botPublic = JSON.parse(auth.bot.publicKey);
check(botPublic.kty === 'RSA' && botPublic.alg === 'RSA-OAEP-256' && botPublic.d === undefined, 'bot publishes an RSA-OAEP-256 public JWK only');
await subtle.importKey('jwk', botPublic, { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);

const served = await provideWaiting(alice, aliceKeys.privateKey, rid, room, []);
check(served.includes(bot.userId) && served.includes(bob.userId), 'bob and the bot were waiting for the key', served);
const info = await get(admin, `e2e.bots.info?userId=${bot.userId}`);
check(info.bot.rooms[0].hasKey === true, 'the server took the suggested key for the bot', info.bot.rooms);

// bob's client: his private key back from the server with his passphrase, then his room key.
const bobPrivate = await loadUserKeys(bob, bobKeys.passphrase);
let sub = (await get(bob, `subscriptions.getOne?roomId=${rid}`)).subscription;
const bobRoom = await unwrap(bobPrivate, sub.E2ESuggestedKey);
check(bobRoom.kid === room.kid, 'bob got the current key');
await post(bob, 'e2e.acceptSuggestedGroupKey', { rid });

const t1 = `${MARK} alice: the launch code is 0000 @${process.env.BOT_USERNAME}`;
const m1 = await send(alice, rid, room, t1);
let seen = await botRead(rid);
const b1 = seen.find((m) => m._id === m1);
check(b1 && b1.msg === t1 && b1.encrypted === true, 'the bot reads alice decrypted', b1);

const r1 = await post(bot, 'e2e.bot.sendMessage', { rid, msg: `${MARK} bot: received "${t1.slice(MARK.length + 1, MARK.length + 20)}"` });
check(r1.message.t === 'e2e' && r1.message.msg === '' && r1.message.content.kid === room.kid, 'the bot posts a t:e2e message under the current key', r1.message);
const hist = await get(bob, `groups.history?roomId=${rid}&count=20`);
const stored = hist.messages.find((m) => m._id === r1.message._id);
check(stored && !JSON.stringify(stored).includes(MARK), 'the stored reply carries no plaintext');
const reply = await open([bobRoom], stored.content);
check(reply.msg.startsWith(`${MARK} bot: received`), 'bob decrypts the bot with WebCrypto', reply);

const t2 = `${MARK} bob: ping for the bot`;
const m2 = await send(bob, rid, bobRoom, t2);
seen = await botRead(rid);
check(seen.find((m) => m._id === m2)?.msg === t2, 'the bot reads bob');
const one = await get(bot, `e2e.bot.decrypt?msgId=${m2}`);
check(one.message.msg === t2, 'e2e.bot.decrypt opens one message');

// Rotation: alice resets the key; everyone's current key moves to oldRoomKeys.
const oldRoom = { ...room, ts: { $date: Date.now() } };
room = await newRoomKey();
await post(alice, 'e2e.resetRoomKey', { rid, e2eKey: await wrapFor(aliceKeys.publicKey, room), e2eKeyId: room.kid });
const again = await provideWaiting(alice, aliceKeys.privateKey, rid, room, [oldRoom]);
check(again.includes(bot.userId), 'after the reset the bot waits again', again);
const t3 = `${MARK} alice: after rotation`;
const m3 = await send(alice, rid, room, t3);
seen = await botRead(rid);
check(seen.find((m) => m._id === m1)?.msg === t1, 'the bot still reads the message under the old key');
check(seen.find((m) => m._id === m3)?.msg === t3, 'and the new one');
const r2 = await post(bot, 'e2e.bot.sendMessage', { rid, msg: `${MARK} bot: rotated fine` });
check(r2.message.content.kid === room.kid, 'the bot replies under the new key');
const low = await post(bot, 'e2e.bot.encrypt', { rid, payload: { msg: `${MARK} bot: low level` } });
check((await open([room], low.content)).msg === `${MARK} bot: low level`, 'e2e.bot.encrypt seals for WebCrypto');

console.log(`RESULT ${JSON.stringify({ rid, messages: { m1, m2, m3, t1, t2, t3 } })}`);
console.log(`${checks} passed, 0 failed`);
