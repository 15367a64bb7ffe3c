// Regressions found by hostile input to the tools beside Bus (tests/js/hostile-tools-props.test.mjs):
// IdempotenceFilter, RequestTracker, ShardedBus (main thread and worker side) and the remote client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdempotenceFilter, RequestTracker, ShardedBus, ManualClock, connect } from 'edgebus';
import { settle, throwsCode, rejectsCode } from './support/helpers.mjs';

/** Runs `fn` with console.error muted (a clock gone bad is said once there); returns what it said. */
async function muted(fn) {
  const said = [];
  const error = console.error;
  console.error = (...args) => said.push(args);
  try {
    await fn();
  } finally {
    console.error = error;
  }
  return said;
}

// ----- IdempotenceFilter ---------------------------------------------------------------------

test('IdempotenceFilter: a clock whose now() later gives a Symbol, a BigInt, NaN, ±Infinity or throws: its last reading stands in, no untyped error from the core', async () => {
  for (const bad of [Symbol('t'), 10n, NaN, Infinity, -Infinity, '5', undefined, 'throw']) {
    let t = 100;
    let broken = false;
    const clock = { now: () => { if (!broken) return t; if (bad === 'throw') throw new Error('clock down'); return bad; } };
    const f = new IdempotenceFilter({ maxIds: 10, maxAgeMs: 50, clock });
    assert.equal(f.check('a'), true);
    const said = await muted(() => {
      broken = true;
      assert.equal(f.check('a'), false, `${String(bad)}: a duplicate still (time stands at 100)`);
      assert.equal(f.check('b'), true);
      assert.equal(f.has('b'), true);
      assert.equal(f.size, 2, `${String(bad)}: nothing expired nor lost`);
    });
    assert.equal(said.length, 1, 'said once on the console');
    broken = false;
    t = 149;
    assert.deepEqual([f.has('a'), f.has('b'), f.check('c')], [true, true, true]);
    t = 151;
    assert.equal(f.has('a'), false, 'ages count again once the clock reads well');
  }
});

test('IdempotenceFilter: a clock that checks another id from inside now() does not change which id is recorded', () => {
  let f;
  let inner = false;
  const clock = { now() { if (inner) { inner = false; f.check('zzzzzzzz'); } return 0; } };
  f = new IdempotenceFilter({ maxAgeMs: 1000, clock });
  inner = true;
  assert.equal(f.check('ab'), true);
  assert.deepEqual([f.has('ab'), f.has('zzzzzzzz'), f.has('zz'), f.size], [true, true, false, 2]);
  inner = true;
  assert.equal(f.has('ab'), true, 'has() likewise');
});

// ----- RequestTracker ------------------------------------------------------------------------

test('RequestTracker: a clock gone bad after construction gives no untyped error and loses no deadline', async () => {
  for (const bad of [Symbol('t'), 10n, NaN, Infinity, -Infinity, '5', undefined, 'throw']) {
    let t = 1000;
    let broken = false;
    const clock = { now: () => { if (!broken) return t; if (bad === 'throw') throw new Error('clock down'); return bad; } };
    const tr = new RequestTracker({ clock });
    await muted(() => {
      broken = true;
      const id = tr.open({ timeoutMs: 10 });
      assert.equal(tr.nextDeadline(), 1010, `${String(bad)}: the deadline is the last good reading + timeoutMs`);
      assert.deepEqual(tr.due(), []);
      broken = false;
      t = 1010;
      assert.deepEqual(tr.due(), [id], `${String(bad)}: it times out on time`);
    });
    assert.equal(tr.stats().timedOut, 1);
  }
});

test('RequestTracker: reports and responders of up to 2^32 - 1 never wrap around to end a request', () => {
  const tr = new RequestTracker({ clock: new ManualClock() });
  const id = tr.open({ max: 5 });
  assert.equal(tr.reached(id, 2 ** 32 - 1, 0), 'pending', '1 + (2^32 - 1) reports awaited is not 0');
  const other = tr.open({ max: 5, reports: 2 });
  assert.equal(tr.reached(other, 0, 2 ** 32 - 1), 'pending');
  assert.equal(tr.reached(other, 0, 2), 'pending');
  assert.equal(tr.answer(other, 1, 'reply'), 'reply');
  const st = tr.stats();
  assert.deepEqual([st.noResponders, st.pending], [0, 2]);
});

test('RequestTracker: a kind that cannot be converted to a key (a revoked Proxy, a throwing toString) is INVALID_ARGUMENT', () => {
  const tr = new RequestTracker({ clock: new ManualClock() });
  const id = tr.open();
  const r = Proxy.revocable({}, {});
  r.revoke();
  for (const kind of [r.proxy, { toString() { throw new Error('toString'); } }, { [Symbol.toPrimitive]: () => 'reply' }, Symbol('reply')]) {
    throwsCode(() => tr.answer(id, 1, kind), 'INVALID_ARGUMENT');
  }
  assert.equal(tr.answer(id, 1, 'reply'), 'replyLast', 'the request was left as it was');
  assert.equal(tr.stats().late, 0);
});

// ----- ShardedBus ----------------------------------------------------------------------------

const handlers = new URL('./fixtures/hostile-tools-handlers.mjs', import.meta.url);

test('ShardedBus: a getter or Proxy that closes (or terminates) the bus while a publish reads it: the publish is refused CLOSED, nothing left in flight', async () => {
  const calls = [
    (b) => b.publish('t.a', 1, { get id() { b.close(); return 'i1'; } }),
    (b) => b.publishBatch('t.a', new Proxy([1, 2, 3], { get(t, k) { if (k === '1') b.close(); return Reflect.get(t, k); } })),
    (b) => b.publish('t.a', { get x() { b.terminate(); return 1; } }),
  ];
  for (const call of calls) {
    const b = new ShardedBus({ handlers, workers: 1 });
    await b.ready;
    throwsCode(() => call(b), 'CLOSED');
    await b.close();
    const s = b.stats();
    assert.deepEqual([s.published, s.queued, s.inFlight], [0, 0, 0]);
  }
  for (const [what, call] of [
    ['publishAsync', (b) => b.publishAsync('t.a', 5, { get key() { b.close(); return 'k'; } })],
    ['request', (b) => b.request('t.a', 5, { get timeoutMs() { b.terminate(); return 1000; } })],
  ]) {
    const b = new ShardedBus({ handlers, workers: 1 });
    await b.ready;
    await rejectsCode(call(b), 'CLOSED');
    await b.close();
    const s = b.stats();
    assert.deepEqual([s.published, s.queued, s.inFlight, s.requests.pending], [0, 0, 0, 0], what);
  }
});

test('ShardedBus worker: a handler whose length throws, or options that cannot be read, fail the worker with a typed cause', async () => {
  for (const [mode, code] of [['length', 'INVALID_HANDLER'], ['revoked', 'INVALID_OPTION'], ['getter', 'INVALID_OPTION']]) {
    const b = new ShardedBus({ handlers, workers: 1, data: { mode } });
    const e = await rejectsCode(b.ready, 'WORKER_FAILED');
    assert.equal(e.cause?.code, code, `${mode}: ${e.cause?.message}`);
    await b.close();
  }
});

test('ShardedBus worker: subscribe options are read once, own keys only: `batch` cannot be one thing to the worker and another to its bus', async () => {
  for (const mode of ['flip', 'proto']) {
    const errors = [];
    const b = new ShardedBus({ handlers, workers: 1, data: { mode }, onError: (e) => errors.push(e) });
    await b.ready;
    for (let i = 0; i < 3; i++) b.publish('f.a', i);
    await b.drain();
    const s = b.stats();
    assert.deepEqual(errors.map((e) => e.message), [], mode);
    assert.deepEqual([s.done, s.failed], [3, 0], mode);
    await b.close();
  }
});

// ----- the remote client ---------------------------------------------------------------------

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(...[JSON.parse(text)].flat()); }
  close() {}
  hello() { this.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0 }) }); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
}

async function online(options = {}) {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't', WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 }, ...options });
  await settle();
  const ws = FakeSocket.all.at(-1);
  ws.hello();
  return { bus, ws };
}

test('connect: a url or hub that cannot be read or is no URL is refused with a code', () => {
  const opts = { token: 't', WebSocket: FakeSocket };
  for (const url of ['not a url', '', Symbol('u'), { toString() { throw new Error('toString'); } }, 10n]) {
    throwsCode(() => connect(url, opts), 'INVALID_ARGUMENT');
  }
  for (const hub of [Symbol('h'), { toString() { throw new Error('hub'); } }, 10n]) {
    throwsCode(() => connect('https://edge.example.com', { ...opts, hub }), 'INVALID_OPTION');
  }
});

test('connect: the url is read once (a toString answering differently later changes nothing)', async () => {
  FakeSocket.all.length = 0;
  let reads = 0;
  const url = { toString: () => (reads++ === 0 ? 'https://edge.example.com' : 'https://elsewhere.example.com') };
  const bus = connect(url, { token: 't', WebSocket: FakeSocket });
  await settle();
  assert.match(FakeSocket.all.at(-1).url, /^wss:\/\/edge\.example\.com\//);
  assert.equal(bus.toJSON().url, 'https://edge.example.com');
  await bus.close();
});

test('remote publish / request: a payload JSON cannot carry is refused at the call, and the publishes beside it still go', async () => {
  const { bus, ws } = await online({ onError: () => {} });
  const cyclic = {};
  cyclic.self = cyclic;
  for (const payload of [10n, { n: 1n }, cyclic, () => 1, Symbol('p'), { toJSON() { throw new Error('toJSON'); } }]) {
    throwsCode(() => bus.publish('a', payload), 'INVALID_ARGUMENT');
    await rejectsCode(bus.publishAsync('a', payload), 'INVALID_ARGUMENT');
    await rejectsCode(bus.request('a', payload, { timeoutMs: 1000 }), 'INVALID_ARGUMENT');
  }
  assert.equal(bus.publish('a', 1), true);
  await settle();
  assert.deepEqual(ws.sent.map((op) => [op.op, op.payload]), [['pub', 1]]);
  const st = bus.stats();
  assert.deepEqual([st.published, st.requests, st.unacknowledged], [1, 0, 1]);
  ws.deliver({ t: 'ok', op: 'pub', ref: ws.sent[0].ref });
  await bus.flush();
  await bus.close();
});

test('remote publish: what is sent is the payload as it was at the call', async () => {
  const { bus, ws } = await online();
  const payload = { n: 1 };
  bus.publish('a', payload);
  payload.n = 10n; // would not even be JSON now
  await settle();
  assert.deepEqual(ws.sent.map((op) => op.payload), [{ n: 1 }]);
  await bus.close({ timeoutMs: 0 });
});

test('remote subscribe: maxAttempts and ackTimeoutMs are checked at the call, as the hub takes them', async () => {
  const { bus, ws } = await online();
  for (const maxAttempts of [10n, 0, 1001, 1.5, NaN, '3', Symbol('m')]) {
    throwsCode(() => bus.subscribe('w', () => {}, { group: 'g', maxAttempts }), 'INVALID_OPTION');
  }
  for (const ackTimeoutMs of [10n, 0, 3600001, 0.5, Infinity, 'x']) {
    throwsCode(() => bus.subscribe('w', () => {}, { group: 'g', ackTimeoutMs }), 'INVALID_OPTION');
  }
  const sub = bus.subscribe('w', () => {}, { group: 'g', maxAttempts: 3, ackTimeoutMs: 1000 });
  await settle();
  assert.deepEqual(ws.sent, [{ op: 'sub', id: sub.id, pattern: 'w', group: 'g', maxAttempts: 3, ackTimeoutMs: 1000 }]);
  assert.equal(bus.stats().subscriptions, 1);
  await bus.close();
});

test('remote request handlers: a reply JSON cannot carry answers the request with a failure, reported; the other frames still go', async () => {
  const errors = [];
  const { bus, ws } = await online({ onError: (e) => errors.push(e) });
  const bad = bus.subscribe('rq.bad', () => 10n);
  const byReply = bus.subscribe('rq.reply', (p, m) => { m.reply({ big: 1n }); });
  const fn = bus.subscribe('rq.fn', () => () => 1);
  const good = bus.subscribe('rq.good', (p) => p + 1);
  await settle();
  ws.sent.length = 0;
  ws.deliver({ t: 'msg', m: [
    [[bad.id], { topic: 'rq.bad', payload: 1, id: 'm1', rq: 1 }],
    [[byReply.id], { topic: 'rq.reply', payload: 1, id: 'm2', rq: 2 }],
    [[fn.id], { topic: 'rq.fn', payload: 1, id: 'm4', rq: 4 }],
    [[good.id], { topic: 'rq.good', payload: 1, id: 'm3', rq: 3 }],
  ] });
  await settle();
  assert.deepEqual(ws.sent.map((op) => [op.op, op.to, op.v, typeof op.error]), [
    ['answer', 1, undefined, 'string'], ['answer', 2, undefined, 'string'], ['answer', 4, undefined, 'string'], ['answer', 3, 2, 'undefined'],
  ]);
  assert.deepEqual(errors.map((e) => e.code), ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT']);
  await bus.close();
});

test('remote handlers throwing a value that cannot be printed: nacked and reported, never an uncaught error', async () => {
  const errors = [];
  const { bus, ws } = await online({ onError: (e) => errors.push(e) });
  const thrown = Object.create(null);
  const work = bus.subscribe('w', () => { throw thrown; }, { group: 'g' });
  const req = bus.subscribe('rq', () => { throw thrown; });
  await settle();
  ws.sent.length = 0;
  ws.deliver({ t: 'msg', m: [[[work.id], { topic: 'w', payload: 1, id: 'm1' }, 'd1'], [[req.id], { topic: 'rq', payload: 1, id: 'm2', rq: 7 }]] });
  await settle();
  assert.deepEqual(ws.sent.map((op) => [op.op, typeof op.error]), [['nack', 'string'], ['answer', 'string']]);
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e === thrown));
  await bus.close();
});

test('remote handlers returning a value whose `then` cannot be read, or whose then() throws: a failure of the handler; the rest of the frame is delivered', async () => {
  const errors = [];
  const { bus, ws } = await online({ onError: (e) => errors.push(e) });
  const r = Proxy.revocable({}, {});
  r.revoke();
  const results = [r.proxy, Object.defineProperty({}, 'then', { get() { throw new Error('then getter'); } }), { then() { throw new Error('then() throws'); } }];
  let i = 0;
  const work = bus.subscribe('w', () => results[i++ % 3], { group: 'g' });
  const req = bus.subscribe('rq', () => results[i++ % 3]);
  const got = [];
  const plain = bus.subscribe('p', (payload) => got.push(payload));
  await settle();
  ws.sent.length = 0;
  const m = [];
  for (let k = 0; k < 3; k++) {
    m.push([[work.id], { topic: 'w', payload: k, id: `w${k}` }, `d${k}`]);
    m.push([[req.id], { topic: 'rq', payload: k, id: `r${k}`, rq: k + 1 }]);
  }
  m.push([[plain.id], { topic: 'p', payload: 'last', id: 'p1' }]);
  ws.deliver({ t: 'msg', m });
  await settle();
  assert.deepEqual(got, ['last'], 'the message after them was delivered');
  assert.deepEqual(ws.sent.map((op) => [op.op, typeof op.error]),
    [['nack', 'string'], ['answer', 'string'], ['nack', 'string'], ['answer', 'string'], ['nack', 'string'], ['answer', 'string']]);
  assert.equal(errors.length, 6);
  await bus.close();
});

test('remote client: a hub frame not shaped as the protocol says is reported BAD_JSON, never thrown out of the socket; the rest of the frame is read', async () => {
  const errors = [];
  const { bus, ws } = await online({ onError: (e) => errors.push(e) });
  const got = [];
  const sub = bus.subscribe('a', (p) => got.push(p));
  await settle();
  ws.deliver([null, 5, { t: 'msg', m: 5 }, { t: 'msg', m: [[5]] }, { t: 'gap', sub: sub.id, gaps: [null] },
    { t: 'msg', m: [[[sub.id], { topic: 'a', payload: 'after', id: 'm1' }]] }]);
  assert.deepEqual(got, ['after']);
  assert.deepEqual(errors.map((e) => e.code), ['BAD_JSON', 'BAD_JSON', 'BAD_JSON', 'BAD_JSON'], '(a part without a kind, 5, is ignored as an unknown kind)');
  await bus.close();
});

test('ShardedBus: a handlers string with a lone surrogate is INVALID_OPTION at the call (a URL would make it another name)', () => {
  throwsCode(() => new ShardedBus({ handlers: '/tmp/\uD800.mjs', workers: 1 }), 'INVALID_OPTION');
});
