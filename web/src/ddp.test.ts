import { describe, expect, it } from 'vitest';
import { DdpClient, type SocketLike } from './ddp';

class FakeSocket implements SocketLike {
  sent: any[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: unknown) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  send(data: string) {
    this.sent.push(JSON.parse(data));
  }
  close() {
    this.onclose?.({});
  }
  serverSays(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  /** Answers the last method call of `method`. */
  answer(method: string, result: unknown) {
    const call = [...this.sent].reverse().find((f) => f.msg === 'method' && f.method === method);
    this.serverSays({ msg: 'result', id: call.id, result });
  }
}

function harness() {
  const sockets: FakeSocket[] = [];
  const timers: { fn: () => void; ms: number }[] = [];
  const client = new DdpClient('ws://x/websocket', {
    createSocket: () => {
      const s = new FakeSocket();
      sockets.push(s);
      return s;
    },
    setTimer: (fn, ms) => timers.push({ fn, ms }),
    clearTimer: () => {},
  });
  return { client, sockets, timers };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('DdpClient', () => {
  it('queues calls until connected, converts $date, and rejects Meteor errors', async () => {
    const { client, sockets } = harness();
    client.connect();
    const result = client.call<any>('loadHistory', 'rid');
    const s = sockets[0];
    s.onopen?.({});
    expect(s.sent[0]).toMatchObject({ msg: 'connect', version: '1' });
    expect(s.sent.some((f) => f.msg === 'method')).toBe(false);
    s.serverSays({ msg: 'connected', session: 'x' });
    await tick();
    s.answer('loadHistory', { messages: [{ ts: { $date: 5 } }] });
    expect((await result).messages[0].ts).toEqual(new Date(5));

    const failing = client.call('sendMessage', {});
    await tick();
    s.serverSays({ msg: 'result', id: s.sent.at(-1).id, error: { error: 'error-action-not-allowed', reason: 'Not allowed' } });
    await expect(failing).rejects.toMatchObject({ error: 'error-action-not-allowed', reason: 'Not allowed' });
    s.serverSays({ msg: 'ping', id: 'p' });
    expect(s.sent.at(-1)).toEqual({ msg: 'pong', id: 'p' });
  });

  it('after a drop, reconnects, resumes the login first, then resubscribes and sends queued calls', async () => {
    const { client, sockets, timers } = harness();
    const statuses: string[] = [];
    client.onStatus((s, resumed) => statuses.push(`${s}${resumed ? '+resumed' : ''}`));
    client.resumeToken = 'tok';
    client.connect();
    sockets[0].onopen?.({});
    sockets[0].serverSays({ msg: 'connected' });
    await tick();
    sockets[0].answer('login', { id: 'U', token: 'tok' });
    await tick();
    const events: unknown[] = [];
    const sub = client.subscribe('stream-room-messages', 'R1', { useCollection: false, args: [] });
    client.on('stream-room-messages', 'R1', (args) => events.push(args[0]));
    expect(sockets[0].sent.at(-1)).toMatchObject({ msg: 'sub', id: sub.id, name: 'stream-room-messages', params: ['R1', {}] });

    // The server goes away while a call is in flight: that call fails, later ones wait.
    const lost = client.call('sendMessage', { msg: 'a' });
    sockets[0].close();
    await expect(lost).rejects.toMatchObject({ error: 'disconnected' });
    const queued = client.call('sendMessage', { msg: 'b' });
    const reconnects = timers.filter((t) => t.ms === 300);
    expect(reconnects.length).toBe(1);
    reconnects[0].fn();
    const s = sockets[1];
    s.onopen?.({});
    s.serverSays({ msg: 'connected' });
    await tick();
    const order = () => s.sent.filter((f) => f.msg !== 'connect').map((f) => f.method ?? f.msg);
    expect(order()).toEqual(['login']);
    expect(s.sent.at(-1).params).toEqual([{ resume: 'tok' }]);
    s.answer('login', { id: 'U', token: 'tok' });
    await tick();
    expect(order()).toEqual(['login', 'sub', 'sendMessage']);
    s.answer('sendMessage', { _id: 'm' });
    expect(await queued).toEqual({ _id: 'm' });
    expect(statuses).toContain('connected+resumed');

    s.serverSays({ msg: 'changed', collection: 'stream-room-messages', id: 'id', fields: { eventName: 'R1', args: [{ _id: 'live' }] } });
    expect(events).toEqual([{ _id: 'live' }]);
    sub.stop();
    expect(s.sent.at(-1)).toEqual({ msg: 'unsub', id: sub.id });
  });

  it('takes a silent socket for dead after an unanswered ping, then reconnects and resumes', async () => {
    const { client, sockets, timers } = harness();
    const statuses: string[] = [];
    client.onStatus((s, resumed) => statuses.push(`${s}${resumed ? '+resumed' : ''}`));
    client.resumeToken = 'tok';
    client.connect();
    sockets[0].onopen?.({});
    sockets[0].serverSays({ msg: 'connected' });
    await tick();
    sockets[0].answer('login', { id: 'U', token: 'tok' });
    await tick();

    // Idle: a ping. An answer (any frame) keeps the socket.
    timers.filter((t) => t.ms === 25_000).at(-1)!.fn();
    expect(sockets[0].sent.at(-1)).toEqual({ msg: 'ping' });
    sockets[0].serverSays({ msg: 'pong' });
    timers.filter((t) => t.ms === 10_000).at(-1)!.fn();
    expect(sockets.length).toBe(1);
    expect(client.status).toBe('connected');

    // The network goes: the next ping gets nothing back.
    timers.filter((t) => t.ms === 25_000).at(-1)!.fn();
    timers.filter((t) => t.ms === 10_000).at(-1)!.fn();
    expect(client.status).toBe('offline');
    // Back online: reconnects at once, resumes the login first.
    client.reconnectNow();
    expect(sockets.length).toBe(2);
    sockets[1].onopen?.({});
    sockets[1].serverSays({ msg: 'connected' });
    await tick();
    expect(sockets[1].sent.filter((f) => f.msg === 'method').map((f) => f.method)).toEqual(['login']);
    expect(sockets[1].sent.at(-1).params).toEqual([{ resume: 'tok' }]);
    sockets[1].answer('login', { id: 'U', token: 'tok' });
    await tick();
    expect(statuses.at(-1)).toBe('connected+resumed');
    // The back-off timer that was pending when it reconnected does nothing more.
    timers.filter((t) => t.ms === 300).at(-1)!.fn();
    expect(sockets.length).toBe(2);
  });

  it('gives up a connection that never opens, and starts again at once when the network is back', async () => {
    const { client, sockets, timers } = harness();
    client.resumeToken = 'tok';
    client.connect();
    // Nothing comes back: the connect timeout closes it and schedules another attempt.
    timers.filter((t) => t.ms === 15_000).at(-1)!.fn();
    expect(client.status).toBe('offline');
    timers.filter((t) => t.ms === 300).at(-1)!.fn();
    expect(sockets.length).toBe(2);
    // Still hanging when the browser says it is online again: a fresh socket right away.
    client.reconnectNow();
    expect(sockets.length).toBe(3);
    sockets[2].onopen?.({});
    sockets[2].serverSays({ msg: 'connected' });
    await tick();
    expect(sockets[2].sent.filter((f) => f.msg === 'method').map((f) => f.method)).toEqual(['login']);
    // The abandoned socket's late events change nothing.
    sockets[1].onclose?.({});
    sockets[2].answer('login', { id: 'U', token: 'tok' });
    await tick();
    expect(client.status).toBe('connected');
    expect(sockets.length).toBe(3);
  });

  it('asks again for a subscription the rate limiter refused, once its window has reset', async () => {
    const { client, sockets, timers } = harness();
    client.connect();
    const s = sockets[0];
    s.onopen?.({});
    s.serverSays({ msg: 'connected', session: 'x' });
    await tick();
    const sub = client.subscribe('stream-notify-room', 'r/typing', false);
    const refused = { error: 'too-many-requests', details: { timeToReset: 1234 } };
    s.serverSays({ msg: 'nosub', id: sub.id, error: refused });
    const retry = timers.find((t) => t.ms === 1234)!;
    expect(retry).toBeDefined();
    retry.fn();
    expect(s.sent.filter((f) => f.msg === 'sub' && f.id === sub.id)).toHaveLength(2);
    // A stream the server ended for another reason is dropped: not asked for again, even
    // after a reconnect.
    s.serverSays({ msg: 'nosub', id: sub.id, error: { error: 'not-allowed' } });
    s.close();
    timers.find((t) => t.ms === 300)!.fn();
    sockets[1].onopen?.({});
    sockets[1].serverSays({ msg: 'connected' });
    await tick();
    expect(sockets[1].sent.filter((f) => f.msg === 'sub')).toEqual([]);
  });
});
