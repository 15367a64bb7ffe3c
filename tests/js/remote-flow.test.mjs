// The remote client's flow control against a scripted WebSocket: publishes paced at the hub's
// announced rate, RATE_LIMITED / UNAVAILABLE refusals sent again after a backoff (not lost), a
// permanent refusal of the connection reported to onError and not retried, transient failures
// retried and counted, and an invalid `hub` refused at the call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.frames = 0;
    FakeSocket.all.push(this);
  }
  send(text) { this.frames++; this.sent.push(...[JSON.parse(text)].flat()); }
  close() {}
  hello(limits) { this.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0, limits }) }); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
  drop(code = 1006, reason = '') { this.onclose({ code, reason }); }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const until = async (pred) => {
  const guard = Date.now() + 10000; // a hang guard
  while (!pred()) {
    if (Date.now() > guard) throw new Error('condition not met');
    await sleep(5);
  }
};

function open(options = {}) {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't0k', WebSocket: FakeSocket, reconnect: { initialMs: 5, maxMs: 20 }, ...options });
  return { bus, ws: () => FakeSocket.all.at(-1) };
}

test('the offline buffer is flushed at the hub\'s maxMessagesPerSecond, not in one burst', async () => {
  const { bus, ws } = open({ maxBuffer: 500 });
  for (let i = 0; i < 250; i++) bus.publish('t.x', i);
  ws().hello({ maxMessagesPerSecond: 100 });
  assert.equal(ws().sent.length, 100, 'one second\'s burst at once');
  await until(() => ws().sent.length === 250);
  assert.deepEqual(ws().sent.map((o) => o.payload), Array.from({ length: 250 }, (_, i) => i), 'in order');
  for (const o of ws().sent) ws().deliver({ t: 'ok', op: 'pub', ref: o.ref });
  await bus.flush();
  assert.deepEqual(await bus.close(), { remaining: [] });
});

test('a publish refused RATE_LIMITED (or UNAVAILABLE) is sent again with its ref and id, and resolves', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e) => errors.push(e.code) });
  ws().hello({ maxMessagesPerSecond: 1000 });
  const a = bus.publishAsync('t.x', 'a');
  const b = bus.publishAsync('t.x', 'b');
  await until(() => ws().sent.length === 2);
  const [pa, pb] = ws().sent;
  ws().deliver([{ t: 'err', op: 'pub', ref: pa.ref, code: 'RATE_LIMITED', message: 'slow down' },
    { t: 'err', op: 'pub', ref: pb.ref, code: 'UNAVAILABLE', message: 'try again' }]);
  await until(() => ws().sent.length === 4);
  assert.deepEqual(ws().sent.slice(2).map((o) => [o.ref, o.id]), [[pa.ref, pa.id], [pb.ref, pb.id]], 'the same publishes, in order');
  ws().deliver([{ t: 'ok', op: 'pub', ref: pa.ref }, { t: 'ok', op: 'pub', ref: pb.ref }]);
  assert.deepEqual(await Promise.all([a, b]), [true, true]);
  assert.equal(bus.stats().retried, 2);
  assert.deepEqual(errors, []);
  await bus.close();
});

test('an invalid `hub` option is refused at the call with INVALID_OPTION', () => {
  assert.throws(() => open({ hub: 'a..b' }), (e) => e.code === 'INVALID_OPTION' && /hub/.test(e.message));
  assert.throws(() => open({ hub: '' }), (e) => e.code === 'INVALID_OPTION');
});

test('a permanent refusal of the connection reaches onError with the hub\'s code and stops the retries', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e) => errors.push(e) });
  const p = bus.publishAsync('t.x', 1);
  const sub = bus.subscribe('t.*', () => {});
  ws().deliver({ t: 'err', code: 'FORBIDDEN', message: 'origin not allowed' });
  ws().drop(4403, 'origin');
  assert.deepEqual(errors.map((e) => e.code), ['FORBIDDEN']);
  await assert.rejects(p, (e) => e.code === 'FORBIDDEN');
  await assert.rejects(sub.ready, (e) => e.code === 'FORBIDDEN');
  await assert.rejects(bus.ready, (e) => e.code === 'FORBIDDEN');
  await assert.rejects(bus.flush(), (e) => e.code === 'FORBIDDEN');
  await sleep(50);
  assert.equal(FakeSocket.all.length, 1, 'no retry');
  assert.equal((await bus.close()).remaining.length, 1, 'what was not sent is listed');
});

test('a close code 4400 without a frame is reported as CONNECT_REFUSED', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e) => errors.push(e.code) });
  ws().drop(4400, 'bad request');
  assert.deepEqual(errors, ['CONNECT_REFUSED']);
  await sleep(30);
  assert.equal(FakeSocket.all.length, 1);
  await bus.close();
});

test('transient failures are retried with backoff and counted, not reported as errors', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e) => errors.push(e.code) });
  ws().drop(1006);
  await until(() => FakeSocket.all.length === 2);
  ws().drop(1011);
  await until(() => FakeSocket.all.length === 3);
  assert.equal(bus.stats().connectFailures, 2);
  assert.equal(bus.stats().lastError.code, 'UNAVAILABLE');
  ws().hello();
  await bus.ready;
  assert.deepEqual(errors, []);
  await bus.close();
});
