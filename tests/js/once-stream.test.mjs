import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock } from 'edgebus';
import { settle, deferred, rejectsCode, throwsCode } from './support/helpers.mjs';

test('once resolves with the first matching message and leaves', async () => {
  const bus = new Bus();
  const p = bus.once('orders.*');
  assert.equal(bus.stats().subscriptions, 1);
  bus.publish('orders.eu', { n: 1 }, { key: 'k' });
  bus.publish('orders.us', { n: 2 });
  const m = await p;
  assert.deepEqual([m.topic, m.payload, m.key], ['orders.eu', { n: 1 }, 'k']);
  assert.equal(bus.stats().subscriptions, 0, 'nothing left behind');
});

test('once with a filter skips messages it refuses; a throwing filter rejects', async () => {
  const bus = new Bus();
  const p = bus.once('n', { filter: (m) => m.payload % 2 === 0 && m.payload > 0 });
  for (let i = 0; i < 5; i++) bus.publish('n', i);
  assert.equal((await p).payload, 2);
  const boom = new Error('bad filter');
  const q = bus.once('n', { filter: () => { throw boom; } });
  bus.publish('n', 1);
  const e = await rejectsCode(q, 'HANDLER_FAILED');
  assert.equal(e.cause, boom);
  assert.equal(bus.stats().subscriptions, 0);
});

test('once times out on the bus clock, aborts with its signal, and close() rejects it', async () => {
  const clock = new ManualClock();
  const bus = new Bus({ clock });
  const p = bus.once('x', { timeoutMs: 100 });
  clock.advance(99);
  await settle();
  bus.publish('y', 1);
  clock.advance(1);
  const e = await rejectsCode(p, 'TIMEOUT');
  assert.match(e.message, /100 ms/);
  const ac = new AbortController();
  const q = bus.once('x', { signal: ac.signal });
  ac.abort(new Error('gone'));
  assert.equal((await rejectsCode(q, 'ABORTED')).cause.message, 'gone');
  await rejectsCode(bus.once('x', { signal: AbortSignal.abort() }), 'ABORTED');
  const r = bus.once('x', { timeoutMs: 2 ** 40 });
  const closing = bus.close();
  await rejectsCode(r, 'CLOSED');
  await closing;
  assert.equal(bus.stats().subscriptions, 0);
  await rejectsCode(bus.once('x'), 'CLOSED');
  for (const bad of [{ timeoutMs: 0 }, { filter: 1 }, { signal: {} }, { nope: 1 }, 'x']) {
    await rejectsCode(new Bus().once('x', bad), 'INVALID_OPTION');
  }
});

test('stream yields messages in order, bounded by its subscription queue', async () => {
  const bus = new Bus();
  const s = bus.stream('s', { maxQueue: 2 });
  for (let i = 0; i < 5; i++) bus.publish('s', i);
  const got = [];
  for await (const m of s) {
    got.push(m.payload);
    if (got.length === 3) break;
  }
  // 0 is held by the stream's handler; 1 and 2 queued; 3 and 4 each drop the oldest.
  assert.deepEqual(got, [0, 3, 4]);
  const st = bus.stats();
  assert.deepEqual([st.dropped, st.subscriptions], [2, 0], 'counted, and the loop left');
  // With overflow 'wait', publishAsync waits for the loop.
  const w = bus.stream('w', { maxQueue: 1, overflow: 'wait' });
  bus.publish('w', 'a');
  bus.publish('w', 'b');
  let admitted = false;
  const pa = bus.publishAsync('w', 'c').then(() => { admitted = true; });
  await settle();
  assert.equal(admitted, false);
  throwsCode(() => bus.publish('w', 'd'), 'QUEUE_FULL');
  const it = w[Symbol.asyncIterator]();
  assert.equal((await it.next()).value.payload, 'a');
  await pa;
  assert.equal(admitted, true);
  assert.equal((await it.next()).value.payload, 'b');
  assert.equal((await it.next()).value.payload, 'c');
  w.subscription.unsubscribe();
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('stream ends on unsubscribe and close (what it holds is still read), throws ABORTED on its signal', async () => {
  const bus = new Bus();
  const ac = new AbortController();
  const s = bus.stream('t', { signal: ac.signal });
  const seen = [];
  const loop = (async () => { for await (const m of s) seen.push(m.payload); })();
  bus.publish('t', 1);
  await settle();
  bus.publish('t', 2);
  ac.abort(new Error('enough'));
  await assert.rejects(loop, { code: 'ABORTED' });
  assert.deepEqual(seen, [1, 2]);
  const c = bus.stream('c');
  bus.publish('c', 'held');
  bus.publish('c', 'queued');
  const closing = bus.close();
  const rest = [];
  for await (const m of c) rest.push(m.payload);
  assert.deepEqual(rest, ['held']);
  await closing;
  const st = bus.stats();
  assert.deepEqual([st.cancelled, st.subscriptions], [1, 0], 'the queued one is counted cancelled');
  throwsCode(() => bus.stream('c'), 'CLOSED');
  throwsCode(() => new Bus().stream('c', { signal: AbortSignal.abort() }), 'ABORTED');
  throwsCode(() => new Bus().stream('c', { concurrency: 2 }), 'INVALID_OPTION');
});

test('a subscription signal unsubscribes it; an aborted one refuses to subscribe', async () => {
  const bus = new Bus();
  const ac = new AbortController();
  const got = [];
  const sub = bus.subscribe('a', (p) => { got.push(p); }, { signal: ac.signal });
  bus.publish('a', 1);
  ac.abort();
  bus.publish('a', 2);
  assert.deepEqual(got, [1]);
  assert.equal(sub.active, false);
  throwsCode(() => bus.subscribe('a', () => {}, { signal: AbortSignal.abort() }), 'ABORTED');
  throwsCode(() => bus.subscribe('a', () => {}, { signal: 'no' }), 'INVALID_OPTION');
  // Unsubscribed first, the signal's listener is taken back: a later abort changes nothing.
  const ac2 = new AbortController();
  const s2 = bus.subscribe('b', () => {}, { signal: ac2.signal });
  assert.equal(s2.unsubscribe(), true);
  ac2.abort();
  assert.equal(s2.unsubscribe(), false);
});

test('publishAsync and drain take a signal: an aborted wait rejects with ABORTED and leaves nothing behind', async () => {
  const bus = new Bus();
  const gate = deferred();
  bus.subscribe('q', async () => { await gate.promise; }, { maxQueue: 1, overflow: 'wait' });
  bus.publish('q', 1);
  bus.publish('q', 2);
  const ac = new AbortController();
  const waiting = bus.publishAsync('q', 3, { signal: ac.signal });
  const later = bus.publishAsync('q', 4);
  ac.abort(new Error('no longer'));
  assert.equal((await rejectsCode(waiting, 'ABORTED')).cause.message, 'no longer');
  const dac = new AbortController();
  const draining = bus.drain({ signal: dac.signal });
  dac.abort();
  await rejectsCode(draining, 'ABORTED');
  gate.resolve();
  assert.equal(await later, true);
  await bus.drain();
  assert.equal(bus.stats().published, 3, '3 never got in');
  await rejectsCode(bus.publishAsync('q', 5, { signal: AbortSignal.abort() }), 'ABORTED');
  await rejectsCode(bus.drain({ signal: AbortSignal.abort() }), 'ABORTED');
  await rejectsCode(bus.drain({ signal: 1 }), 'INVALID_OPTION');
  throwsCode(() => bus.publish('q', 1, { signal: new AbortController().signal }), 'INVALID_OPTION');
});
