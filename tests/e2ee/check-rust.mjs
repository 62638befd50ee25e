// check-rust.mjs — WebCrypto (Node >= 20, globalThis.crypto.subtle only) opens what apogee-e2ee
// (Rust) produced, the way Rocket.Chat's web client would.
//
// Usage: node check-rust.mjs FILE.json
//   FILE.json is written by crates/apogee-e2ee/tests/interop.rs; it holds the Rust-made material
//   and the plaintexts expected. Exits 1 on the first mismatch or failure.

import { readFileSync } from 'node:fs';

const { subtle } = globalThis.crypto;
const dec = new TextDecoder('utf-8', { fatal: true });

const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
// Rocket.Chat's Binary.decode / Binary.encode (one char <-> one byte).
const binaryDecode = (str) => {
	const out = new Uint8Array(str.length);
	for (let i = 0; i < str.length; i++) {
		const c = str.charCodeAt(i);
		if (c > 0xff) throw new RangeError(`illegal char code: ${c}`);
		out[i] = c;
	}
	return out;
};
const binaryEncode = (u8) => {
	let s = '';
	for (const b of u8) s += String.fromCharCode(b);
	return s;
};

let checks = 0;
function eq(got, want, label) {
	const g = JSON.stringify(got);
	const w = JSON.stringify(want);
	if (g !== w) {
		console.error(`FAIL ${label}\n  got:  ${g}\n  want: ${w}`);
		process.exit(1);
	}
	checks++;
	console.log(`ok   ${label}`);
}

// crypto/rsa.ts importKey: RSA-OAEP / SHA-256, from the JWK object.
const importRsa = (jwkString, usage) =>
	subtle.importKey('jwk', JSON.parse(jwkString), { name: 'RSA-OAEP', hash: { name: 'SHA-256' } }, true, [usage]);

// crypto/aes.ts importKey: the cipher follows the JWK alg.
async function importRoomKey(jwk) {
	const name = { A256GCM: 'AES-GCM', A128CBC: 'AES-CBC' }[jwk.alg];
	if (!name) throw new Error(`unknown alg ${jwk.alg}`);
	return subtle.importKey('jwk', jwk, { name }, true, ['encrypt', 'decrypt']);
}

// prefixed.ts: kid = all but the last 344 chars.
async function importGroupKey(privateKey, e2eKey) {
	const kid = e2eKey.slice(0, -344);
	const ct = unb64(e2eKey.slice(-344));
	const jwkString = binaryEncode(new Uint8Array(await subtle.decrypt({ name: 'RSA-OAEP' }, privateKey, ct)));
	return { kid, jwkString, key: await importRoomKey(JSON.parse(jwkString)) };
}

async function openV2(key, content) {
	if (content.algorithm !== 'rc.v2.aes-sha2') throw new Error('not v2');
	const iv = unb64(content.iv);
	const name = key.algorithm.name;
	const pt = await subtle.decrypt({ name, iv }, key, unb64(content.ciphertext));
	return JSON.parse(dec.decode(pt));
}

// keychain.ts decryptKey, current form.
async function unwrapPrivateKey(stored, passphrase) {
	const o = JSON.parse(stored);
	eq(Object.keys(o), ['iv', 'ciphertext', 'salt', 'iterations'], 'wrapped private key member order');
	const base = await subtle.importKey('raw', binaryDecode(passphrase), { name: 'PBKDF2' }, false, ['deriveBits']);
	const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: binaryDecode(o.salt), iterations: o.iterations }, base, 256);
	const key = await subtle.importKey('raw', bits, { name: 'AES-GCM' }, false, ['decrypt']);
	return binaryEncode(new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: unb64(o.iv) }, key, unb64(o.ciphertext))));
}

const file = process.argv[2];
if (!file) {
	console.error('usage: node check-rust.mjs FILE.json');
	process.exit(2);
}
const r = JSON.parse(readFileSync(file, 'utf8'));

// 1. A room key Rust wrapped for the vectors' user, and a v2 message under it.
const vecPriv = await importRsa(r.vector_user_private_jwk, 'decrypt');
const room = await importGroupKey(vecPriv, r.room.E2EKey);
eq(room.kid, r.room.kid, 'E2EKey kid');
eq(room.jwkString, r.room.jwk, 'E2EKey room key JWK string');
eq(await openV2(room.key, r.message.content), r.message.payload, 'v2 message');
eq(r.message.content.kid, r.room.kid, 'v2 message kid');
eq(unb64(r.message.content.iv).length, 12, 'v2 IV is 12 bytes');
eq(Object.keys(r.message.content), ['algorithm', 'kid', 'iv', 'ciphertext'], 'v2 member order');

// 2. A user keypair made in Rust: WebCrypto imports both halves with the client's usages.
const pub = await importRsa(r.user.public_key, 'encrypt');
const priv = await importRsa(r.user.private_jwk, 'decrypt');
const probe = new Uint8Array([1, 2, 3, 250]);
eq([...new Uint8Array(await subtle.decrypt({ name: 'RSA-OAEP' }, priv, await subtle.encrypt({ name: 'RSA-OAEP' }, pub, probe)))], [...probe], 'Rust keypair under WebCrypto');
const own = await importGroupKey(priv, r.user.E2EKey);
eq(own.jwkString, r.room.jwk, 'E2EKey for the Rust user');
eq(await unwrapPrivateKey(r.user.private_key, r.user.passphrase), r.user.private_jwk, 'wrapped private key (v2)');

// 3. An encrypted file (AES-CTR, 64-bit counter) and its attachment payload.
const fkey = await subtle.importKey('jwk', r.file.encryption.key, { name: 'AES-CTR' }, true, ['encrypt', 'decrypt']);
const fplain = new Uint8Array(await subtle.decrypt({ name: 'AES-CTR', counter: unb64(r.file.encryption.iv), length: 64 }, fkey, unb64(r.file.ciphertext_b64)));
eq(binaryEncode(fplain), binaryEncode(unb64(r.file.plaintext_b64)), 'file (AES-CTR, length 64)');
const digest = Array.from(new Uint8Array(await subtle.digest('SHA-256', fplain)), (b) => b.toString(16).padStart(2, '0')).join('');
eq(digest, r.file.sha256, 'file sha256 of plaintext');

console.log(`${checks} passed, 0 failed`);
