import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Bus, ManualClock, EdgebusError } from 'edgebus';
import { settle, deferred, throwsCode, rejectsCode, assertStillWorks } from './support/helpers.mjs';

/** An async handler whose calls wait until released, recording starts and finishes. */
function gated() {
  const running = new Map();
  const started = [];
  const finished = [];
  let active = 0;
  let maxActive = 0;
  const handler = (p) => {
    started.push(p);
    active++;
    maxActive = Math.max(maxActive, active);
    const d = deferred();
    running.set(p, d);
    return d.promise.then(() => { active--; finished.push(p); }, (e) => { active--; finished.push(p); throw e; });
  };
  return {
    handler,
    started,
    finished,
    get active() { return active; },
    get maxActive() { return maxActive; },
    release(p) { const d = running.get(p); assert.ok(d, `${String(p)} is running`); running.delete(p); d.resolve(); },
    fail(p, e) { const d = running.get(p); assert.ok(d, `${String(p)} is running`); running.delete(p); d.reject(e); },
    running: () => [...running.keys()],
  };
}

test('async handlers: default concurrency 1 is strict FIFO', async () => {
  const bus = new Bus();
  const g = gated();
  bus.subscribe('jobs', g.handler);
  for (let i = 0; i < 5; i++) bus.publish('jobs', i);
  assert.deepEqual(g.started, [0]);
  for (let i = 0; i < 5; i++) {
    assert.deepEqual(g.running(), [i]);
    g.release(i);
    await settle();
  }
  assert.deepEqual(g.started, [0, 1, 2, 3, 4]);
  assert.deepEqual(g.finished, [0, 1, 2, 3, 4]);
  assert.equal(g.maxActive, 1);
  await bus.drain();
});

test('async handlers: concurrency N runs up to N at once; the rest wait in the queue', async () => {
  const bus = new Bus();
  const g = gated();
  const sub = bus.subscribe('jobs', g.handler, { concurrency: 3 });
  for (let i = 0; i < 7; i++) bus.publish('jobs', i);
  await settle();
  assert.deepEqual(g.started, [0, 1, 2]);
  let st = sub.stats();
  assert.equal(st.inFlight, 3);
  assert.equal(st.queued, 4);
  g.release(1);
  await settle();
  assert.deepEqual(g.started, [0, 1, 2, 3]);
  st = bus.stats();
  assert.equal(st.inFlight, 3);
  assert.equal(st.queued, 3);
  while (g.running().length > 0) {
    for (const p of g.running()) g.release(p);
    await settle();
  }
  await bus.drain();
  assert.equal(g.maxActive, 3);
  assert.deepEqual([...g.finished].sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.equal(bus.stats().delivered, 7);
});

test('a busy subscription with a free slot starts a message inside publish; a keyed one waits behind its key', async () => {
  const bus = new Bus();
  const g = gated();
  const sub = bus.subscribe('jobs', (p, msg) => g.handler(msg.key === undefined ? p : `${msg.key}${p}`), { concurrency: 3 });
  bus.publish('jobs', 0, { key: 'a' });
  bus.publish('jobs', 1);
  assert.deepEqual(g.started, ['a0', 1], 'a keyless message takes a free slot at once');
  bus.publish('jobs', 2, { key: 'a' });
  assert.deepEqual(g.started, ['a0', 1], 'a keyed message waits for the running one of its key');
  bus.publish('jobs', 3);
  assert.deepEqual(g.started, ['a0', 1, 3], 'a message of no key passes one parked behind its key');
  bus.publish('jobs', 4);
  assert.deepEqual(g.started, ['a0', 1, 3], 'every slot taken');
  let st = sub.stats();
  assert.deepEqual([st.inFlight, st.queued], [3, 2]);
  g.release('a0');
  await settle();
  assert.deepEqual(g.started, ['a0', 1, 3, 'a2'], 'the key\'s next message goes first');
  g.release(1);
  await settle();
  assert.deepEqual(g.started, ['a0', 1, 3, 'a2', 4]);
  g.release(3);
  await settle();
  bus.publish('jobs', 5);
  assert.deepEqual(g.started, ['a0', 1, 3, 'a2', 4, 5], 'a slot is free again');
  for (const p of ['a2', 4, 5]) g.release(p);
  await bus.drain();
  st = sub.stats();
  assert.deepEqual([st.delivered, st.inFlight, st.queued, st.failed], [6, 0, 0, 0]);
  assert.equal(g.maxActive, 3);
  assert.equal(bus.stats().published, 6);
});

test('messages with the same key never overlap and keep their order, even with concurrency > 1', async () => {
  const bus = new Bus();
  const running = new Set();
  const order = { a: [], b: [], c: [] };
  let overlap = false;
  let maxParallel = 0;
  const gates = [];
  bus.subscribe('k', (p, msg) => {
    if (running.has(msg.key)) overlap = true;
    running.add(msg.key);
    maxParallel = Math.max(maxParallel, running.size);
    order[msg.key].push(p.n);
    const d = deferred();
    gates.push(() => { running.delete(msg.key); d.resolve(); });
    return d.promise;
  }, { concurrency: 4 });
  const keys = ['a', 'b', 'a', 'c', 'a', 'b', 'c', 'a', 'b', 'a'];
  keys.forEach((key, n) => bus.publish('k', { n }, { key }));
  // Release in an interleaved, not-FIFO order: latest started first.
  for (let round = 0; round < 50 && gates.length > 0; round++) {
    const g = gates.splice(gates.length - 1, 1)[0];
    g();
    await settle();
  }
  await bus.drain();
  assert.equal(overlap, false);
  assert.ok(maxParallel > 1, 'different keys ran in parallel');
  const expected = { a: [], b: [], c: [] };
  keys.forEach((key, n) => expected[key].push(n));
  assert.deepEqual(order, expected);
});

test('overflow dropNewest: the incoming message is dropped and counted', async () => {
  const bus = new Bus();
  const g = gated();
  const sub = bus.subscribe('q', g.handler, { maxQueue: 2, overflow: 'dropNewest' });
  for (let i = 0; i < 6; i++) bus.publish('q', i);
  assert.equal(sub.stats().dropped, 3);
  assert.equal(bus.stats().dropped, 3);
  for (let i = 0; i < 3; i++) {
    for (const p of g.running()) g.release(p);
    await settle();
  }
  await bus.drain();
  assert.deepEqual(g.started, [0, 1, 2]);
});

test('overflow dropOldest (the default): the oldest waiting message is dropped and counted', async () => {
  const bus = new Bus({ maxQueue: 2 });
  const g = gated();
  const sub = bus.subscribe('q', g.handler);
  for (let i = 0; i < 6; i++) bus.publish('q', i);
  assert.equal(sub.stats().dropped, 3);
  for (let i = 0; i < 3; i++) {
    for (const p of g.running()) g.release(p);
    await settle();
  }
  await bus.drain();
  assert.deepEqual(g.started, [0, 4, 5]);
  assert.equal(bus.stats().dropped, 3);
});

test('maxQueue 0 with dropNewest: a busy subscription drops everything that arrives', async () => {
  const bus = new Bus();
  const g = gated();
  const sub = bus.subscribe('q', g.handler, { maxQueue: 0, overflow: 'dropNewest' });
  bus.publish('q', 0);
  bus.publish('q', 1);
  bus.publish('q', 2);
  assert.deepEqual(g.started, [0]);
  assert.equal(sub.stats().dropped, 2);
  g.release(0);
  await bus.drain();
  assert.deepEqual(g.started, [0]);
});

test('overflow reject: publish throws QUEUE_FULL and nothing is delivered to anyone (atomic)', async () => {
  const bus = new Bus();
  const g = gated();
  const others = [];
  bus.subscribe('r', (p) => { others.push(p); });
  bus.subscribe('r', g.handler, { maxQueue: 1, overflow: 'reject' });
  const after = [];
  bus.subscribe('r', (p) => { after.push(p); });
  bus.publish('r', 0); // starts
  bus.publish('r', 1); // queued
  assert.deepEqual(others, [0, 1]);
  assert.deepEqual(after, [0, 1]);
  throwsCode(() => bus.publish('r', 2), 'QUEUE_FULL');
  assert.deepEqual(others, [0, 1], 'not delivered to the sync subscriber before');
  assert.deepEqual(after, [0, 1], 'not delivered to the sync subscriber after');
  const st = bus.stats();
  assert.equal(st.dropped, 0);
  g.release(0);
  await settle();
  g.release(1);
  await settle();
  await bus.drain();
  assert.deepEqual(g.started, [0, 1]);
  // room again: accepted
  bus.publish('r', 3);
  assert.deepEqual(others, [0, 1, 3]);
  g.release(3);
  await bus.drain();
  assertStillWorks(bus);
});

test('overflow reject over publishBatch is atomic too', async () => {
  const bus = new Bus();
  const g = gated();
  const sync = [];
  bus.subscribe('r', (p) => { sync.push(p); });
  bus.subscribe('r', g.handler, { maxQueue: 2, overflow: 'reject' });
  bus.publish('r', 'first');
  throwsCode(() => bus.publishBatch('r', ['a', 'b', 'c']), 'QUEUE_FULL');
  assert.deepEqual(sync, ['first']);
  assert.equal(bus.publishBatch('r', ['a', 'b']), 2);
  assert.deepEqual(sync, ['first', 'a', 'b']);
  for (let i = 0; i < 3; i++) { for (const p of g.running()) g.release(p); await settle(); }
  await bus.drain();
  assert.deepEqual(g.started, ['first', 'a', 'b']);
});

test('overflow wait: sync publish throws QUEUE_FULL; publishAsync waits for room, in call order', async () => {
  const bus = new Bus();
  const g = gated();
  bus.subscribe('w', g.handler, { maxQueue: 1, overflow: 'wait' });
  bus.publish('w', 0);
  bus.publish('w', 1);
  throwsCode(() => bus.publish('w', 'x'), 'QUEUE_FULL');
  let r2 = 'pending';
  let r3 = 'pending';
  const p2 = bus.publishAsync('w', 2).then((v) => { r2 = v; });
  const p3 = bus.publishAsync('w', 3).then((v) => { r3 = v; });
  await settle();
  assert.equal(r2, 'pending');
  assert.equal(r3, 'pending');
  g.release(0);
  await settle();
  assert.equal(r2, true);
  assert.equal(r3, 'pending');
  g.release(1);
  await settle();
  assert.equal(r3, true);
  await Promise.all([p2, p3]);
  g.release(2);
  await settle();
  g.release(3);
  await bus.drain();
  assert.deepEqual(g.started, [0, 1, 2, 3]);
  assert.equal(bus.stats().dropped, 0);
});

test('publishAsync resolves true at once when there is room, false for a duplicate', async () => {
  const bus = new Bus({ dedupe: true });
  const got = [];
  bus.subscribe('t', (p) => { got.push(p); });
  assert.equal(await bus.publishAsync('t', 1, { id: 'x' }), true);
  assert.equal(await bus.publishAsync('t', 2, { id: 'x' }), false);
  assert.deepEqual(got, [1]);
});

test('TTL: an expired message is never delivered and is counted as expired', async () => {
  const clock = new ManualClock(1000);
  const bus = new Bus({ clock });
  const g = gated();
  const sub = bus.subscribe('ttl', g.handler);
  bus.publish('ttl', 'busy');
  bus.publish('ttl', 'short', { ttlMs: 50 });
  bus.publish('ttl', 'long', { ttlMs: 500 });
  bus.publish('ttl', 'forever');
  clock.advance(100);
  g.release('busy');
  await settle();
  assert.deepEqual(g.started, ['busy', 'long']);
  g.release('long');
  await settle();
  g.release('forever');
  await bus.drain();
  assert.deepEqual(g.started, ['busy', 'long', 'forever']);
  assert.equal(sub.stats().expired, 1);
  assert.equal(bus.stats().expired, 1);
});

test('TTL: a queued message expires when its TTL ends, while the handler before it still runs', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  const g = gated();
  const sub = bus.subscribe('ttl', g.handler, { concurrency: 2, maxQueue: 2, overflow: 'wait' });
  bus.publish('ttl', 'a1', { key: 'a' });
  bus.publish('ttl', 'b1', { key: 'b' });
  bus.publish('ttl', 'a2', { key: 'a', ttlMs: 50 });
  bus.publish('ttl', 'a3', { key: 'a' });
  let admitted = 'waiting';
  bus.publishAsync('ttl', 'c1', { key: 'c' }).then((r) => { admitted = r; }, (e) => { admitted = e; });
  await settle();
  assert.equal(admitted, 'waiting');
  clock.advance(49);
  await settle();
  assert.deepEqual([sub.stats().queued, sub.stats().expired], [2, 0]);
  // Neither handler has settled: a2 leaves the queue at its TTL, which makes room for c1.
  clock.advance(1);
  await settle();
  assert.equal(admitted, true);
  assert.deepEqual([sub.stats().queued, sub.stats().expired, bus.stats().expired], [2, 1, 1]);
  g.release('b1');
  await settle();
  assert.deepEqual(g.started, ['a1', 'b1', 'c1'], 'a3 still waits for a1');
  g.release('a1');
  await settle();
  g.release('c1');
  g.release('a3');
  await bus.drain();
  assert.deepEqual(g.started, ['a1', 'b1', 'c1', 'a3']);
  const st = sub.stats();
  assert.deepEqual([st.delivered, st.expired, st.queued], [4, 1, 0]);
  await bus.close();
});

test('TTL: waiting for a queued message to expire does not keep the Node process alive (real clock)', () => {
  // A handler that never settles holds a message with a TTL an hour away in its queue.
  const script = `
    const { Bus } = require('edgebus');
    const bus = new Bus();
    bus.subscribe('x', () => new Promise(() => {}));
    bus.publish('x', 1);
    bus.publish('x', 2, { ttlMs: 3600000 });
    process.on('exit', () => console.log('end', bus.stats().queued));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.signal, null, 'the process was still alive after 20 s (the expiry watch held it)');
  assert.equal(r.stdout.trim(), 'end 1', r.stderr);
});

test('TTL: a message not yet expired is delivered (boundary)', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  const g = gated();
  bus.subscribe('ttl', g.handler);
  bus.publish('ttl', 'busy');
  bus.publish('ttl', 'm', { ttlMs: 100 });
  clock.advance(99);
  g.release('busy');
  await settle();
  assert.deepEqual(g.started, ['busy', 'm']);
  g.release('m');
  await bus.drain();
  assert.equal(bus.stats().expired, 0);
});

test('handler timeout: HANDLER_TIMEOUT reported to onError, slot freed, late result ignored', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, onError: (e, m, s) => errors.push([e, m, s]) });
  const g = gated();
  const sub = bus.subscribe('slow', g.handler, { timeoutMs: 100 });
  bus.publish('slow', 'a');
  bus.publish('slow', 'b');
  assert.deepEqual(g.started, ['a']);
  clock.advance(99);
  await settle();
  assert.equal(errors.length, 0);
  clock.advance(1);
  await settle();
  assert.equal(errors.length, 1);
  const [e, m, s] = errors[0];
  assert.ok(e instanceof EdgebusError);
  assert.equal(e.code, 'HANDLER_TIMEOUT');
  assert.equal(m.payload, 'a');
  assert.equal(s, sub);
  // slot freed: b started while a still hangs
  assert.deepEqual(g.started, ['a', 'b']);
  // late failure of a is ignored
  g.fail('a', new Error('late'));
  await settle();
  assert.equal(errors.length, 1);
  g.release('b');
  await bus.drain();
  assert.equal(sub.stats().failed, 1);
  assert.equal(errors.length, 1);
});

test('a single async delivery to an idle subscription times out (no other publish needed)', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, onError: (e) => errors.push(e.code) });
  const sub = bus.subscribe('slow', () => new Promise(() => {}), { timeoutMs: 10 });
  bus.publish('slow', 1);
  clock.advance(10);
  await settle();
  assert.deepEqual(errors, ['HANDLER_TIMEOUT']);
  assert.equal(sub.stats().failed, 1);
  assert.equal(sub.stats().inFlight, 0);
  await bus.drain();
});

test('bus-level timeoutMs applies to subscriptions', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, timeoutMs: 10, onError: (e) => errors.push(e.code) });
  bus.subscribe('slow', () => new Promise(() => {}));
  bus.publish('slow', 1);
  clock.advance(10);
  await settle();
  assert.deepEqual(errors, ['HANDLER_TIMEOUT']);
  await bus.drain();
});

test('drain resolves only after every queued message has been handled', async () => {
  const bus = new Bus();
  const g = gated();
  bus.subscribe('d', g.handler, { concurrency: 2 });
  for (let i = 0; i < 4; i++) bus.publish('d', i);
  let drained = false;
  const p = bus.drain().then(() => { drained = true; });
  await settle();
  assert.equal(drained, false);
  for (let i = 0; i < 4; i++) {
    for (const x of g.running()) g.release(x);
    await settle();
    if (i < 1) assert.equal(drained, false);
  }
  await p;
  assert.equal(g.finished.length, 4);
  assert.equal(drained, true);
});

test('drain does not resolve while waiting publishAsync calls are being admitted', async () => {
  // Found by the property suite: admitting the first of two waiting messages ran a pass that
  // found nothing running (the handler took it synchronously) and resolved drain() before the
  // second was admitted and started.
  const bus = new Bus();
  const gates = new Map();
  const started = [];
  bus.subscribe('d', (p) => {
    started.push(p.n);
    if (!p.slow) return undefined;
    return new Promise((resolve) => gates.set(p.n, resolve));
  }, { maxQueue: 1, overflow: 'wait' });
  bus.publish('d', { n: 1, slow: true });
  bus.publish('d', { n: 2 });
  const admitted = [bus.publishAsync('d', { n: 3 }), bus.publishAsync('d', { n: 4, slow: true })];
  let drained = false;
  const p = bus.drain().then(() => { drained = true; });
  await settle();
  gates.get(1)();
  await settle();
  assert.deepEqual(started, [1, 2, 3, 4]);
  assert.deepEqual(await Promise.all(admitted), [true, true]);
  assert.equal(drained, false, 'message 4 is still running');
  assert.equal(bus.stats().inFlight, 1);
  gates.get(4)();
  await p;
  assert.equal(bus.stats().inFlight, 0);
  await bus.close();
});

test('close: drains, then later publish/subscribe throw CLOSED and publishAsync rejects CLOSED', async () => {
  const bus = new Bus();
  const g = gated();
  bus.subscribe('c', g.handler);
  bus.publish('c', 1);
  bus.publish('c', 2);
  let closed = false;
  const p = bus.close().then(() => { closed = true; });
  throwsCode(() => bus.publish('c', 3), 'CLOSED');
  await settle();
  assert.equal(closed, false);
  g.release(1);
  await settle();
  g.release(2);
  await p;
  assert.equal(closed, true);
  assert.deepEqual(g.started, [1, 2]);
  throwsCode(() => bus.publish('c', 4), 'CLOSED');
  throwsCode(() => bus.publish('c', 4, { key: 'k' }), 'CLOSED');
  throwsCode(() => bus.publishBatch('c', [4]), 'CLOSED');
  throwsCode(() => bus.subscribe('c', () => {}), 'CLOSED');
  await rejectsCode(bus.publishAsync('c', 5), 'CLOSED');
  assert.deepEqual(g.started, [1, 2]);
  await bus.close(); // closing twice is fine
});

test('close on an idle bus resolves and refuses a publish on a cached route', async () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('hot', (p) => { got.push(p); });
  bus.publish('hot', 1); // caches the route
  await bus.close();
  throwsCode(() => bus.publish('hot', 2), 'CLOSED');
  assert.deepEqual(got, [1]);
});

test('stats(): counters, queued, inFlight, subscriptions, latency and perSubscription', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, dedupe: true, onError: () => {} });
  const g = gated();
  const s1 = bus.subscribe('s.*', () => {});
  const s2 = bus.subscribe('s.>', g.handler);
  const s3 = bus.subscribe('s.x', () => { throw new Error('boom'); });
  bus.publish('s.x', 'a', { id: '1' });
  bus.publish('s.x', 'b', { id: '1' }); // duplicate
  bus.publish('s.x', 'c', { id: '2' });
  bus.publish('s.y', 'd');
  let st = bus.stats();
  assert.equal(st.published, 3);
  assert.equal(st.duplicates, 1);
  assert.equal(st.subscriptions, 3);
  assert.equal(st.failed, 2);
  assert.equal(st.inFlight, 1);
  assert.equal(st.queued, 2);
  assert.equal(st.perSubscription.length, 3);
  const per = new Map(st.perSubscription.map((p) => [p.id, p]));
  assert.equal(per.get(s1.id).pattern, 's.*');
  assert.equal(per.get(s1.id).delivered, 3);
  assert.equal(per.get(s3.id).failed, 2);
  assert.equal(per.get(s2.id).queued, 2);
  assert.equal(per.get(s2.id).inFlight, 1);
  for (const k of ['delivered', 'dropped', 'expired', 'failed', 'cancelled', 'queued', 'inFlight']) {
    assert.equal(typeof per.get(s1.id)[k], 'number', k);
  }
  clock.advance(20);
  g.release('a');
  await settle();
  clock.advance(20);
  g.release('c');
  await settle();
  g.release('d');
  await bus.drain();
  st = bus.stats();
  assert.equal(st.queued, 0);
  assert.equal(st.inFlight, 0);
  assert.equal(st.delivered, 3 + 3 + 2);
  assert.equal(typeof st.latency.count, 'number');
  assert.ok(st.latency.count >= 2);
  assert.ok(st.latency.p99Ms >= st.latency.p50Ms);
  assert.ok(st.latency.p99Ms >= 20, `queued messages waited ≥ 20 ms, p99 ${st.latency.p99Ms}`);
  const s2st = s2.stats();
  assert.equal(s2st.delivered, 3);
  assert.equal(s2st.id, s2.id);
  assert.equal(s2st.pattern, 's.>');
  assert.ok(s2st.latency.count >= 2);
  assert.equal(s1.unsubscribe(), true);
  assert.equal(bus.stats().subscriptions, 2);
});

test('a drained or closed bus does not keep the Node process alive (real clock)', () => {
  // A pending batch deadline far in the future: once the batch has been delivered by drain()/close(),
  // nothing is left to wait for and the process must exit on its own.
  for (const end of ['drain', 'close']) {
    const script = `
      const { Bus } = require('edgebus');
      const bus = new Bus();
      const got = [];
      bus.subscribe('b', (msgs) => { got.push(msgs.length); }, { batch: { maxSize: 100, maxWaitMs: 600000 } });
      bus.publish('b', 1);
      bus.publish('b', 2);
      bus.${end}().then(() => console.log('done ' + JSON.stringify(got)));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 5000 });
    assert.equal(r.stdout.trim(), 'done [2]', `${end}: ${r.stderr}`);
    assert.equal(r.signal, null, `${end}(): the process was still alive after 5 s (a timer left armed)`);
    assert.equal(r.status, 0);
  }
});

test('maxQueue: Infinity holds every waiting message while handlers run (nothing dropped)', async () => {
  const bus = new Bus({ maxQueue: Infinity });
  const g = gated();
  bus.subscribe('jobs', g.handler, { concurrency: 2 });
  for (let i = 0; i < 10; i++) bus.publish('jobs', i);
  assert.deepEqual(g.started, [0, 1]);
  const st = bus.stats();
  assert.deepEqual([st.queued, st.dropped], [8, 0]);
  for (let i = 0; i < 10; i++) { g.release(i); await settle(); }
  await bus.drain();
  assert.equal(g.finished.length, 10);
});
