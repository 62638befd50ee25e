// Test harness for the browser tests: a real apogee binary on a free loopback port (restartable
// on the same port and data), Debian's Chromium driven by playwright-core, and helpers.

import { execFileSync, spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const PASSWORD = 'a long enough test password';

/** The repository's root, and the apogee binary the tests run (APOGEE_BIN, else the debug build). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = process.env.APOGEE_BIN ?? join(process.env.CARGO_TARGET_DIR ?? join(ROOT, 'target'), 'debug', 'apogee');

/** Flags the machine needs: no sandbox as root, no GPU, and no background traffic to the closed network. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * A fresh database on the PostgreSQL of APOGEE_TEST_DATABASE_URL (scripts/with-postgres.sh), or
 * undefined: SQLite in the data directory.
 */
function freshPostgres() {
  const base = process.env.APOGEE_TEST_DATABASE_URL;
  if (!base) return undefined;
  const name = `web_${randomBytes(6).toString('hex')}`;
  execFileSync('psql', [base, '-qc', `CREATE DATABASE ${name}`], { stdio: 'inherit' });
  return `${base.slice(0, base.lastIndexOf('/'))}/${name}`;
}

export class Server {
  constructor(bin) {
    this.bin = bin;
    this.dir = mkdtempSync(join(tmpdir(), 'apogee-web-e2e-'));
    this.listen = '127.0.0.1:0';
    this.proc = null;
    this.log = '';
    this.databaseUrl = freshPostgres();
  }

  /** Starts the binary; the first start picks a free port, later ones reuse it. */
  async start() {
    this.log = '';
    const args = ['serve', '--listen', this.listen, '--data-dir', join(this.dir, 'data')];
    if (this.databaseUrl) args.push('--database-url', this.databaseUrl);
    const proc = spawn(this.bin, args, {
      env: { ...process.env, APOGEE_LOG: process.env.APOGEE_LOG ?? 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.proc = proc;
    const address = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`apogee did not start:\n${this.log}`)), 30_000);
      proc.stderr.on('data', (chunk) => {
        this.log += chunk;
        const m = /address=([0-9.:]+)/.exec(this.log);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`apogee exited (${code}):\n${this.log}`));
      });
    });
    this.listen = address;
    this.url = `http://${address}`;
    return this.url;
  }

  async stop() {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    this.proc = null;
  }

  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async rest(path, body, auth) {
    const headers = { 'content-type': 'application/json' };
    if (auth) Object.assign(headers, { 'X-User-Id': auth.userId, 'X-Auth-Token': auth.authToken });
    const res = await fetch(`${this.url}/api/v1/${path}`, {
      method: body ? 'POST' : 'GET',
      headers,
      body: body && JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  }
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

/** Saves a screenshot under docs/screenshots/ when run with --screenshots. */
/**
 * Records the DDP frames in which the server refused a page's call or subscription with `code`
 * (e.g. `too-many-requests`), so a scenario can assert that normal use is never refused.
 */
export function ddpRefusals(page, code) {
  const seen = [];
  page.on('websocket', (ws) =>
    ws.on('framereceived', (f) => {
      const payload = String(f.payload);
      if (payload.includes(`"${code}"`)) seen.push(payload.slice(0, 200));
    }),
  );
  return seen;
}

export function screenshotter(root) {
  const enabled = process.argv.includes('--screenshots') || process.env.APOGEE_SCREENSHOTS === '1';
  const dir = join(root, 'docs', 'screenshots');
  if (enabled) mkdirSync(dir, { recursive: true });
  return async (page, name) => {
    if (enabled) await page.screenshot({ path: join(dir, `${name}.png`) });
  };
}

/**
 * A TCP relay in front of the server whose network can be lost silently: while cut, nothing
 * passes either way and no connection is closed or refused — what a browser sees when Wi-Fi
 * goes, unlike a server that stops (its sockets close at once).
 */
export class Relay {
  constructor(target) {
    this.target = new URL(target);
    this.cut = false;
    this.sockets = new Set();
    this.closedMeanwhile = new Set();
  }

  async start() {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('error', () => {});
      client.on('close', () => this.sockets.delete(client));
      if (this.cut) return; // accepted, never answered
      const upstream = connect(Number(this.target.port), this.target.hostname);
      this.sockets.add(upstream);
      upstream.on('error', () => {});
      // The server's side closing reaches the browser only while the network is up; a close
      // during the outage arrives when it is back (see restore).
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        if (!this.cut) client.destroy();
        else this.closedMeanwhile.add(client);
      });
      client.on('close', () => upstream.destroy());
      client.on('data', (d) => this.cut || upstream.write(d));
      upstream.on('data', (d) => this.cut || client.write(d));
    });
    await new Promise((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${this.server.address().port}`;
    return this.url;
  }

  /** The network goes: bytes are dropped from now on, connections stay open. */
  lose() {
    this.cut = true;
  }

  /** The network is back: new connections pass, closes that happened meanwhile arrive. */
  restore() {
    this.cut = false;
    for (const s of this.closedMeanwhile) s.destroy();
    this.closedMeanwhile.clear();
  }

  async close() {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}

/** Registers `username` over REST and logs in; the login's session (`userId`, `authToken`). */
export async function signUp(server, username, name) {
  await server.rest('users.register', { username, email: `${username}@example.com`, pass: PASSWORD, name });
  return (await server.rest('login', { username, password: PASSWORD })).data;
}

/** Fills in and sends the login page at `baseUrl` as `username` (what follows is the caller's). */
export async function submitLogin(page, baseUrl, username) {
  await page.goto(`${baseUrl}/login`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', PASSWORD);
  await page.getByRole('button', { name: 'Login' }).click();
}

/** Logs `username` in through the login page at `baseUrl`; resolves on the home page. */
export async function logIn(page, baseUrl, username) {
  await submitLogin(page, baseUrl, username);
  await page.waitForURL('**/home');
}

/** RFC 6238 code (SHA-1, 30 s, 6 digits) for a base32 secret at time step `at` (default: now). */
export function totp(secret, at = Math.floor(Date.now() / 30_000)) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(at));
  const mac = createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/** Waits until `check` holds (the server has applied what the page asked for), 5 s at most. */
export async function eventually(check, what) {
  for (let i = 0; i < 50; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`never became true: ${what}`);
}
