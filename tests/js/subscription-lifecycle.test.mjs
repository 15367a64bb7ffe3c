// Subscribing and unsubscribing through each of the core's entry points (a short ASCII pattern
// with every default through the topic buffer; options or other patterns as one object), and the
// final statistics of a subscription in each way it can retire: at once having counted nothing,
// at once having counted, or later when its last delivery settles.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, EdgebusError } from 'edgebus';
import { settle } from './support/helpers.mjs';

const quiet = (id, pattern) => ({
  id, pattern, delivered: 0, dropped: 0, expired: 0, failed: 0, cancelled: 0, queued: 0, inFlight: 0,
  latency: { count: 0, p50Ms: 0, p99Ms: 0 },
});

test('a subscription that never saw a message keeps its statistics after unsubscribing', () => {
  const bus = new Bus();
  const subs = [bus.subscribe('a.b', () => {}), bus.subscribe('a.*', () => {}, { maxQueue: 5 }), bus.subscribe('é.>', () => {})];
  const before = subs.map((s) => s.stats());
  assert.deepEqual(before, [quiet(subs[0].id, 'a.b'), quiet(subs[1].id, 'a.*'), quiet(subs[2].id, 'é.>')]);
  for (const s of subs) assert.equal(s.unsubscribe(), true);
  for (const s of subs) assert.equal(s.unsubscribe(), false);
  assert.deepEqual(subs.map((s) => s.stats()), before);
  assert.deepEqual(subs.map((s) => s.active), [false, false, false]);
  // The same object each time (made once, when first asked for).
  assert.equal(subs[0].stats(), subs[0].stats());
  assert.equal(bus.stats().subscriptions, 0);
});

test('ids follow subscription order whichever way the pattern crossed', () => {
  const bus = new Bus();
  const ids = [
    bus.subscribe('x', () => {}).id,
    bus.subscribe('x', () => {}, {}).id,
    bus.subscribe('ü', () => {}).id,
    bus.subscribe('x.'.repeat(200) + 'y', () => {}).id, // longer than the topic buffer
    bus.subscribe('x', () => {}).id,
  ];
  for (let i = 1; i < ids.length; i++) assert.equal(ids[i], ids[i - 1] + 1);
});

test('a subscription that counted keeps its final statistics, taken at unsubscribe', () => {
  const errors = [];
  const bus = new Bus({ onError: (e) => errors.push(e) });
  const sub = bus.subscribe('a.b', () => {});
  const failing = bus.subscribe('a.b', (p) => { if (p === 2) throw new Error('no'); }, {});
  bus.publish('a.b', 1);
  bus.publish('a.b', 2);
  const before = [sub.stats(), failing.stats()];
  assert.equal(before[0].delivered, 2);
  assert.deepEqual([before[1].delivered, before[1].failed, errors.length], [2, 1, 1]);
  sub.unsubscribe();
  failing.unsubscribe();
  assert.deepEqual([sub.stats(), failing.stats()], before);
});

test('a subscription with a delivery running reports its final statistics when it settles', async () => {
  const bus = new Bus();
  let release;
  const sub = bus.subscribe('job', () => new Promise((r) => { release = r; }));
  bus.publish('job', 1);
  bus.publish('job', 2); // waits behind the first
  await settle();
  sub.unsubscribe();
  assert.equal(sub.stats().inFlight, 1);
  release();
  await bus.drain();
  const final = sub.stats();
  assert.deepEqual([final.delivered, final.cancelled, final.inFlight, final.queued], [1, 1, 0, 0]);
});

test('subscribing and unsubscribing drop only the cached routes their pattern reaches', () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('t.1', (p) => got.push(['a', p]));
  bus.subscribe('t.2', (p) => got.push(['b', p]));
  bus.publish('t.1', 1);
  bus.publish('t.2', 1);
  const late = bus.subscribe('t.*', (p) => got.push(['late', p]));
  bus.publish('t.1', 2);
  bus.publish('t.2', 2);
  late.unsubscribe();
  bus.publish('t.1', 3);
  bus.publish('t.2', 3);
  assert.deepEqual(got, [['a', 1], ['b', 1], ['a', 2], ['late', 2], ['b', 2], ['late', 2], ['a', 3], ['b', 3]]);
});

test('a bad pattern is refused the same way on either path, and nothing is left behind', () => {
  const bus = new Bus();
  for (const [pattern, options] of [['a..b', undefined], ['a..b', {}], ['a.>.b', undefined], ['a\u0001', undefined], ['', undefined]]) {
    assert.throws(() => bus.subscribe(pattern, () => {}, options), (e) => {
      assert.ok(e instanceof EdgebusError);
      assert.equal(e.code, 'INVALID_PATTERN');
      return true;
    });
  }
  const messages = ['a..b', 'a..b'].map((p, i) => {
    try { bus.subscribe(p, () => {}, i === 0 ? undefined : {}); } catch (e) { return e.message; }
    return undefined;
  });
  assert.equal(messages[0], messages[1]);
  assert.equal(bus.stats().subscriptions, 0);
  let n = 0;
  bus.subscribe('a.b', () => { n++; });
  bus.publish('a.b', 1);
  assert.equal(n, 1);
});

test('many subscribe/unsubscribe cycles leave the bus as it was', () => {
  const bus = new Bus();
  let standing = 0;
  for (let i = 0; i < 10; i++) bus.subscribe(`orders.${i}.created`, () => { standing++; });
  for (let i = 0; i < 10; i++) bus.publish(`orders.${i}.created`, i);
  let churned = 0;
  for (let i = 0; i < 5000; i++) {
    const s = bus.subscribe(`orders.${i % 10}.created`, () => { churned++; });
    if (i % 7 === 0) bus.publish(`orders.${i % 10}.created`, i);
    s.unsubscribe();
  }
  for (let i = 0; i < 10; i++) bus.publish(`orders.${i}.created`, i);
  const st = bus.stats();
  assert.equal(st.subscriptions, 10);
  assert.equal(churned, Math.ceil(5000 / 7));
  assert.equal(standing, 20 + Math.ceil(5000 / 7));
  assert.equal(st.delivered, standing + churned);
});
