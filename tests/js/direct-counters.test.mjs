// Counters of the direct path. A cached route whose handlers take only the payload counts each
// publish once, on the route, and adds it to its subscriptions' counters when something reads or
// changes them. These tests pin what the counters say when that happens in the middle of a
// publish: a handler reading stats, unsubscribing a later handler or itself, subscribing,
// throwing, returning a promise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from 'edgebus';

const counts = (sub) => {
  const st = sub.stats();
  return { delivered: st.delivered, failed: st.failed, cancelled: st.cancelled };
};

/** Three subscriptions on `t`, handlers taking only the payload; `hook(name, n)` runs in each. */
function three(hook) {
  const bus = new Bus({ onError: () => {} });
  const calls = { a: 0, b: 0, c: 0 };
  const subs = {};
  for (const name of ['a', 'b', 'c']) {
    subs[name] = bus.subscribe('t', (p) => {
      calls[name]++;
      hook(name, p);
    });
  }
  return { bus, calls, subs };
}

test('plain counting: every publish counted once for the bus and once per handler', () => {
  const { bus, calls, subs } = three(() => {});
  for (let i = 0; i < 1000; i++) bus.publish('t', i);
  assert.deepEqual(calls, { a: 1000, b: 1000, c: 1000 });
  for (const s of Object.values(subs)) assert.deepEqual(counts(s), { delivered: 1000, failed: 0, cancelled: 0 });
  const st = bus.stats();
  assert.equal(st.published, 1000);
  assert.equal(st.delivered, 3000);
  // Reading stats folds the counts: later publishes add to them, none is counted twice.
  for (let i = 0; i < 10; i++) bus.publish('t', i);
  assert.equal(bus.stats().published, 1010);
  assert.equal(counts(subs.b).delivered, 1010);
});

test('stats read by a handler mid-publish: the handlers after it have not had this publish yet', () => {
  const seen = [];
  let bus;
  const { bus: b, subs } = three((name, p) => {
    if (name === 'b' && p === 7) {
      const st = bus.stats();
      seen.push(st.published, ...st.perSubscription.map((x) => x.delivered));
    }
  });
  bus = b;
  for (let i = 0; i < 10; i++) bus.publish('t', i);
  // Publish #8 (payload 7) is counted; a and b have had it, c not yet.
  assert.deepEqual(seen, [8, 8, 8, 7]);
  for (const s of Object.values(subs)) assert.equal(counts(s).delivered, 10);
  assert.equal(bus.stats().published, 10);
  assert.equal(bus.stats().delivered, 30);
});

test('a handler unsubscribing a later one mid-publish: that one is cancelled, not delivered', () => {
  let subs;
  const r = three((name, p) => {
    if (name === 'a' && p === 4) subs.c.unsubscribe();
  });
  subs = r.subs;
  for (let i = 0; i < 10; i++) r.bus.publish('t', i);
  assert.deepEqual(r.calls, { a: 10, b: 10, c: 4 });
  assert.deepEqual(counts(subs.a), { delivered: 10, failed: 0, cancelled: 0 });
  assert.deepEqual(counts(subs.b), { delivered: 10, failed: 0, cancelled: 0 });
  assert.deepEqual(counts(subs.c), { delivered: 4, failed: 0, cancelled: 1 });
  assert.equal(r.bus.stats().published, 10);
});

test('a handler unsubscribing itself, then throwing: delivered and failed, and the rest still run', () => {
  let subs;
  const errors = [];
  const bus = new Bus({ onError: (e) => errors.push(e.message) });
  const calls = { a: 0, b: 0, c: 0 };
  subs = {};
  for (const name of ['a', 'b', 'c']) {
    subs[name] = bus.subscribe('t', (p) => {
      calls[name]++;
      if (name === 'b' && p === 5) {
        subs.b.unsubscribe();
        throw new Error('b left');
      }
      if (name === 'a' && p % 3 === 0) throw new Error(`a ${p}`);
    });
  }
  for (let i = 0; i < 10; i++) bus.publish('t', i);
  assert.deepEqual(calls, { a: 10, b: 6, c: 10 });
  assert.deepEqual(errors, ['a 0', 'a 3', 'b left', 'a 6', 'a 9']);
  assert.deepEqual(counts(subs.a), { delivered: 10, failed: 4, cancelled: 0 });
  assert.deepEqual(counts(subs.b), { delivered: 6, failed: 1, cancelled: 0 });
  assert.deepEqual(counts(subs.c), { delivered: 10, failed: 0, cancelled: 0 });
  const st = bus.stats();
  assert.equal(st.published, 10);
  assert.equal(st.failed, 5);
});

test('a handler subscribing mid-publish: the new subscription starts with the next publish', () => {
  const got = [];
  let late;
  let bus;
  const r = three((name, p) => {
    if (name === 'a' && p === 2) late = bus.subscribe('t', (q) => got.push(q));
  });
  bus = r.bus;
  for (let i = 0; i < 6; i++) bus.publish('t', i);
  assert.deepEqual(got, [3, 4, 5]);
  assert.deepEqual(r.calls, { a: 6, b: 6, c: 6 });
  assert.equal(counts(late).delivered, 3);
  for (const s of Object.values(r.subs)) assert.equal(counts(s).delivered, 6);
  assert.equal(bus.stats().delivered, 21);
});

test('a handler returning a promise: counted once, and the subscription goes through the core until it settles', async () => {
  const bus = new Bus();
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  const order = [];
  const slow = bus.subscribe('t', (p) => {
    order.push(`slow ${p}`);
    return p === 1 ? gate : undefined;
  });
  const fast = bus.subscribe('t', (p) => { order.push(`fast ${p}`); });
  for (let i = 0; i < 4; i++) bus.publish('t', i);
  // Messages 2 and 3 wait for `slow`'s promise; `fast` had them at once.
  assert.deepEqual(order, ['slow 0', 'fast 0', 'slow 1', 'fast 1', 'fast 2', 'fast 3']);
  release();
  await bus.drain();
  assert.deepEqual(order.slice(6), ['slow 2', 'slow 3']);
  assert.equal(counts(slow).delivered, 4);
  assert.equal(counts(fast).delivered, 4);
  assert.equal(bus.stats().published, 4);
});

test('unsubscribing after many direct publishes hands the core every count before it retires', () => {
  const bus = new Bus();
  const s = bus.subscribe('t.*', () => {});
  const other = bus.subscribe('t.a', () => {});
  for (let i = 0; i < 500; i++) bus.publish(i % 2 ? 't.a' : 't.b', i);
  s.unsubscribe();
  assert.deepEqual(counts(s), { delivered: 500, failed: 0, cancelled: 0 });
  assert.equal(counts(other).delivered, 250);
  bus.publish('t.a', 0);
  assert.equal(counts(other).delivered, 251);
  assert.equal(bus.stats().published, 501);
});

test('a clock that breaks while a direct publish tracks a promise: its last reading stands in, every handler runs and counts', async () => {
  let broken = false;
  const clock = { now: () => { if (broken) throw new Error('clock broken'); return 0; } };
  const bus = new Bus({ clock, onError: () => {} });
  const calls = [];
  const errors = [];
  const original = console.error;
  console.error = (...a) => errors.push(a);
  // A handler returns a promise while the clock cannot be read: tracking the promise needs the
  // time, which the clock's last reading gives.
  const odd = bus.subscribe('t', (p) => {
    calls.push(`odd ${p}`);
    if (p !== 2) return undefined;
    broken = true;
    return Promise.resolve();
  });
  const next = bus.subscribe('t', (p) => {
    calls.push(`next ${p}`);
    // Publishing from a handler enqueues: it runs after this publish, never inside it.
    if (p === 3) bus.publish('t', 4);
    calls.push(`next ${p} done`);
  });
  try {
    for (let i = 0; i < 3; i++) bus.publish('t', i);
    broken = false;
    bus.publish('t', 3);
  } finally {
    console.error = original;
  }
  // `odd` is busy with its promise: its next messages wait in the core until it settles.
  await bus.drain();
  assert.deepEqual(calls.filter((c) => c.startsWith('odd')), ['odd 0', 'odd 1', 'odd 2', 'odd 3', 'odd 4']);
  assert.deepEqual(calls.filter((c) => c.startsWith('next')), [
    'next 0', 'next 0 done', 'next 1', 'next 1 done', 'next 2', 'next 2 done', 'next 3', 'next 3 done', 'next 4', 'next 4 done',
  ]);
  assert.equal(counts(odd).delivered, 5);
  assert.equal(counts(next).delivered, 5);
  assert.equal(bus.stats().published, 5);
  assert.equal(errors.length, 1);
});

test('a throw that escapes a direct publish (from reporting a handler failure) leaves the bus dispatching directly and counting', () => {
  let broken = false;
  const bus = new Bus();
  const calls = [];
  const first = bus.subscribe('t', (p) => { calls.push(`first ${p}`); if (p === 1) throw new Error('boom'); });
  const second = bus.subscribe('t', (p) => { calls.push(`second ${p}`); });
  const original = console.error;
  // With no onError and no `$errors` subscriber, the failure is reported on the console: that
  // throw escapes.
  console.error = (...a) => { if (broken) throw new Error('console broken'); original(...a); };
  try {
    bus.publish('t', 0);
    broken = true;
    assert.throws(() => bus.publish('t', 1), /console broken/);
    broken = false;
  } finally {
    console.error = original;
  }
  bus.publish('t', 2);
  assert.deepEqual(calls, ['first 0', 'second 0', 'first 1', 'first 2', 'second 2']);
  assert.deepEqual(counts(first), { delivered: 3, failed: 1, cancelled: 0 });
  assert.deepEqual(counts(second), { delivered: 2, failed: 0, cancelled: 0 });
  assert.equal(bus.stats().published, 3);
});
