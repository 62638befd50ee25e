// A DDP client for Apogee's (and Rocket.Chat's) raw `/websocket` endpoint: handshake, heartbeats,
// methods, `stream-*` subscriptions, and reconnection that resumes the session — log in again with
// the resume token, then re-subscribe — before any queued call goes out.

import { encode, revive } from './ejson';

export type DdpStatus = 'connecting' | 'connected' | 'offline';

/** The part of WebSocket the client uses, so tests can hand it a fake. */
export interface SocketLike {
  send(data: string): void;
  close(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export interface DdpOptions {
  createSocket?: (url: string) => SocketLike;
  /** Milliseconds to wait before each reconnect attempt; the last repeats. */
  backoff?: number[];
  /** Idle time after which the client pings the server. */
  pingEveryMs?: number;
  /**
   * How long a ping may go unanswered (no frame at all) before the socket is taken for dead:
   * a lost network often closes nothing, so only silence tells.
   */
  pongTimeoutMs?: number;
  /** How long a new socket may take to open and answer `connect` before it is given up. */
  connectTimeoutMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class DdpError extends Error {
  readonly error: string | number;
  readonly reason: string;
  readonly details: unknown;
  constructor(e: { error?: string | number; reason?: string; message?: string; details?: unknown }) {
    super(e.reason ?? e.message ?? String(e.error));
    this.error = e.error ?? 'error';
    this.reason = e.reason ?? e.message ?? '';
    this.details = e.details;
  }
}

interface Pending {
  method: string;
  params: unknown[];
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Sub {
  name: string;
  params: unknown[];
}

type Listener = (args: unknown[], frame: Record<string, unknown>) => void;

export class DdpClient {
  status: DdpStatus = 'offline';
  /** Set after a login; used to resume on every reconnect. */
  resumeToken: string | null = null;

  private socket: SocketLike | null = null;
  private nextId = 1;
  private attempts = 0;
  private closedByUs = false;
  private ready = false; // connected *and* resumed: queued calls may go
  private queue: Pending[] = [];
  private inflight = new Map<string, Pending>();
  private subs = new Map<string, Sub>();
  private listeners = new Map<string, Set<Listener>>();
  private statusListeners = new Set<(s: DdpStatus, resumed: boolean) => void>();
  private reconnectTimer: unknown = null;
  private pingTimer: unknown = null;
  /** The current socket has answered `connect` (before that, nothing may be sent but it). */
  private handshaken = false;
  /** The socket a ping was sent on and not yet answered (any frame answers). */
  private awaitingPong: SocketLike | null = null;
  private everConnected = false;
  private readonly opts: Required<DdpOptions>;

  constructor(private readonly url: string, opts: DdpOptions = {}) {
    this.opts = {
      createSocket: opts.createSocket ?? ((u) => new WebSocket(u) as unknown as SocketLike),
      backoff: opts.backoff ?? [300, 1000, 2000, 4000, 8000],
      pingEveryMs: opts.pingEveryMs ?? 25_000,
      pongTimeoutMs: opts.pongTimeoutMs ?? 10_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 15_000,
      setTimer: opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms)),
      clearTimer: opts.clearTimer ?? ((t) => clearTimeout(t as number)),
    };
  }

  connect(): void {
    this.closedByUs = false;
    if (this.socket) return;
    this.setStatus('connecting', false);
    const socket = this.opts.createSocket(this.url);
    this.socket = socket;
    // A connection into a lost network may hang without ever failing.
    this.opts.setTimer(() => {
      if (socket === this.socket && !this.handshaken) this.giveUp(socket);
    }, this.opts.connectTimeoutMs);
    socket.onopen = () => {
      socket.send(JSON.stringify({ msg: 'connect', version: '1', support: ['1'] }));
    };
    socket.onmessage = (ev) => this.onFrame(String(ev.data));
    socket.onclose = () => this.onClose(socket);
    socket.onerror = () => {
      /* onclose follows */
    };
  }

  close(): void {
    this.closedByUs = true;
    if (this.reconnectTimer !== null) this.opts.clearTimer(this.reconnectTimer);
    this.reconnectTimer = null;
    this.socket?.close();
    this.dropSocket();
    this.setStatus('offline', false);
  }

  /** Calls a method; waits for the connection (and the resumed login) when there is none. */
  call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { method, params, resolve: resolve as (v: unknown) => void, reject };
      if (this.ready) this.send(p);
      else this.queue.push(p);
    });
  }

  /** Subscribes to `name` with `params`; kept across reconnects until `stop()` is called. */
  subscribe(name: string, ...params: unknown[]): { id: string; stop: () => void } {
    const id = `s${this.nextId++}`;
    this.subs.set(id, { name, params });
    if (this.ready) this.sendSub(id);
    return {
      id,
      stop: () => {
        if (this.subs.delete(id) && this.ready) this.raw({ msg: 'unsub', id });
      },
    };
  }

  /** Listens to `changed` frames of `collection` whose eventName (or id for presence) matches. */
  on(collection: string, eventName: string, fn: Listener): () => void {
    const key = `${collection}\u0000${eventName}`;
    let set = this.listeners.get(key);
    if (!set) this.listeners.set(key, (set = new Set()));
    set.add(fn);
    return () => set!.delete(fn);
  }

  onStatus(fn: (s: DdpStatus, resumed: boolean) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  private setStatus(s: DdpStatus, resumed: boolean) {
    this.status = s;
    for (const fn of this.statusListeners) fn(s, resumed);
  }

  private raw(frame: unknown) {
    this.socket?.send(JSON.stringify(encode(frame)));
    this.schedulePing();
  }

  private send(p: Pending) {
    const id = String(this.nextId++);
    this.inflight.set(id, p);
    this.raw({ msg: 'method', method: p.method, params: p.params, id });
  }

  private sendSub(id: string) {
    const sub = this.subs.get(id)!;
    this.raw({ msg: 'sub', id, name: sub.name, params: sub.params });
  }

  private schedulePing() {
    if (this.pingTimer !== null) this.opts.clearTimer(this.pingTimer);
    this.pingTimer = this.opts.setTimer(() => {
      this.pingTimer = null;
      this.probe();
    }, this.opts.pingEveryMs);
  }

  /**
   * Pings and gives the server `pongTimeoutMs` to say anything; silence drops the socket and
   * reconnects (then resumes). Also what the app calls when the browser reports going offline.
   */
  probe(timeoutMs = this.opts.pongTimeoutMs): void {
    const socket = this.socket;
    if (!socket || !this.handshaken || this.awaitingPong === socket) return;
    this.awaitingPong = socket;
    this.raw({ msg: 'ping' });
    this.opts.setTimer(() => {
      if (this.awaitingPong !== socket || socket !== this.socket) return;
      this.awaitingPong = null;
      this.giveUp(socket);
    }, timeoutMs);
  }

  /** Closes a socket taken for dead and goes on as if the server had closed it. */
  private giveUp(socket: SocketLike): void {
    try {
      socket.close();
    } catch {
      /* already closed */
    }
    this.onClose(socket);
  }

  /**
   * The network is back (the browser's \`online\` event): reconnect now rather than after the
   * rest of the back-off, or check that the current socket still works.
   */
  reconnectNow(): void {
    if (this.closedByUs) return;
    if (this.socket && this.handshaken) {
      this.probe(3000);
      return;
    }
    // A socket still opening was started into the lost network: start again.
    if (this.socket) {
      const stale = this.socket;
      this.dropSocket();
      try {
        stale.close();
      } catch {
        /* never opened */
      }
    }
    if (this.reconnectTimer !== null) this.opts.clearTimer(this.reconnectTimer);
    this.reconnectTimer = null;
    this.attempts = 0;
    this.connect();
  }

  private onFrame(data: string) {
    this.awaitingPong = null;
    let frame: Record<string, unknown>;
    try {
      frame = revive(JSON.parse(data)) as Record<string, unknown>;
    } catch {
      return;
    }
    switch (frame.msg) {
      case 'connected':
        void this.onConnected();
        break;
      case 'ping':
        this.raw(frame.id !== undefined ? { msg: 'pong', id: frame.id } : { msg: 'pong' });
        break;
      case 'result': {
        const p = this.inflight.get(String(frame.id));
        if (!p) break;
        this.inflight.delete(String(frame.id));
        if (frame.error) p.reject(new DdpError(frame.error as Record<string, never>));
        else p.resolve(frame.result);
        break;
      }
      case 'nosub': {
        const id = String(frame.id);
        const error = frame.error as { error?: string; details?: { timeToReset?: number } } | undefined;
        if (error?.error === 'too-many-requests' && this.subs.has(id)) {
          // Refused by the rate limiter: asked again once its window has reset.
          const socket = this.socket;
          const wait = Math.min(60_000, Number(error.details?.timeToReset) || 1000);
          this.opts.setTimer(() => {
            if (socket === this.socket && this.ready && this.subs.has(id)) this.sendSub(id);
          }, wait);
        } else {
          // A stream the server ended (access lost) is not resubscribed.
          this.subs.delete(id);
        }
        break;
      }
      case 'changed':
      case 'added': {
        const fields = (frame.fields ?? {}) as { eventName?: string; args?: unknown[] };
        const eventName = fields.eventName ?? String(frame.id ?? '');
        const set = this.listeners.get(`${String(frame.collection)}\u0000${eventName}`);
        if (set) for (const fn of [...set]) fn(fields.args ?? [], frame);
        break;
      }
    }
  }

  private async onConnected() {
    this.handshaken = true;
    this.attempts = 0;
    const resumed = this.everConnected;
    this.everConnected = true;
    if (this.resumeToken) {
      // Sent ahead of the queue: everything else waits for the login.
      const token = this.resumeToken;
      try {
        await new Promise((resolve, reject) => this.send({ method: 'login', params: [{ resume: token }], resolve, reject }));
      } catch (e) {
        // The token is gone (logged out elsewhere): the app hears it through the status
        // listeners and the REST 401s; the socket stays as an anonymous connection.
        this.resumeToken = null;
        this.emitLocal('__client__', 'resume-failed', [e]);
      }
    }
    this.ready = true;
    for (const id of this.subs.keys()) this.sendSub(id);
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) this.send(p);
    this.setStatus('connected', resumed);
  }

  private emitLocal(collection: string, eventName: string, args: unknown[]) {
    const set = this.listeners.get(`${collection}\u0000${eventName}`);
    if (set) for (const fn of [...set]) fn(args, {});
  }

  private dropSocket() {
    if (this.socket) {
      this.socket.onopen = this.socket.onmessage = this.socket.onclose = this.socket.onerror = null;
    }
    this.socket = null;
    this.ready = false;
    this.handshaken = false;
    if (this.pingTimer !== null) this.opts.clearTimer(this.pingTimer);
    this.pingTimer = null;
    // Unanswered calls cannot be known to have run or not: the caller decides.
    const lost = [...this.inflight.values()];
    this.inflight.clear();
    for (const p of lost) p.reject(new DdpError({ error: 'disconnected', reason: 'Connection lost' }));
  }

  private onClose(socket: SocketLike) {
    if (socket !== this.socket) return;
    this.dropSocket();
    if (this.closedByUs) return;
    this.setStatus('offline', false);
    const delays = this.opts.backoff;
    const delay = delays[Math.min(this.attempts, delays.length - 1)];
    this.attempts++;
    this.reconnectTimer = this.opts.setTimer(() => {
      if (this.reconnectTimer === null) return; // reconnectNow() went ahead
      this.reconnectTimer = null;
      this.connect();
    }, delay);
  }
}
