// Regressions for defects of the JS driver and the core behind it: missed wake-ups, stale topic
// handles, options read after the call, long timers, waits that could never settle, publishBatch
// atomicity, and counters that went nowhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock, EdgebusError } from 'edgebus';
import { settle, deferred, throwsCode, rejectsCode, assertStillWorks } from './support/helpers.mjs';

const MAX_DELAY = 2 ** 31 - 1;

/**
 * A timer host for the bus: time moves only with `advance` (which runs due timers) or `skip`
 * (which does not, like a host whose timer is late). It records every delay it is asked for.
 */
class FakeHost {
  constructor() {
    this.t = 0;
    this.timers = new Map();
    this.next = 1;
    this.delays = [];
  }
  now() { return this.t; }
  setTimeout(fn, ms) {
    this.delays.push(ms);
    const id = this.next++;
    this.timers.set(id, { at: this.t + Math.min(Math.max(0, ms), MAX_DELAY), fn });
    return id;
  }
  clearTimeout(id) { this.timers.delete(id); }
  skip(ms) { this.t += ms; }
  advance(ms) {
    const end = this.t + ms;
    for (;;) {
      let best;
      for (const [id, t] of this.timers) if (t.at <= end && (best === undefined || t.at < best[1].at)) best = [id, t];
      if (best === undefined) break;
      this.timers.delete(best[0]);
      if (best[1].at > this.t) this.t = best[1].at;
      best[1].fn();
    }
    this.t = end;
  }
}

/** Whether `promise` has settled after the pending callbacks ran. */
async function isSettled(promise) {
  let done = false;
  promise.then(() => { done = true; }, () => { done = true; });
  await settle();
  return done;
}

/** Rejects when `promise` does not settle within `ms` of real time. */
function within(promise, ms, what) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}

// ----- 1. publishAsync never misses its wake-up -----------------------------------------------

test('publishAsync: room made by the pass right after "must wait" (a batch flush already due) admits it', async () => {
  const host = new FakeHost();
  const bus = new Bus({ clock: host });
  const got = [];
  bus.subscribe('b', (items) => { got.push(...items.map((m) => m.payload)); }, {
    batch: { maxSize: 100, maxWaitMs: 10 }, maxQueue: 1, overflow: 'wait',
  });
  assert.equal(await bus.publishAsync('b', 1), true);
  host.skip(20); // the batch is due, but its timer has not run yet
  const p = bus.publishAsync('b', 2);
  assert.equal(await isSettled(p), true, 'the waiting publish is admitted by the flush it triggered');
  assert.equal(await p, true);
  host.advance(20);
  await within(bus.drain(), 1000, 'drain');
  assert.deepEqual(got, [1, 2]);
});

test('publishAsync: room made by a work-queue retry already due (the pass right after "must wait") admits it', async () => {
  const host = new FakeHost();
  const bus = new Bus({ clock: host, onError: () => {} });
  const seen = [];
  bus.subscribe('q', (p, m) => {
    seen.push([p, m.attempt]);
    if (p === 1 && m.attempt === 1) throw new Error('first try fails');
  }, { group: 'g', maxQueue: 1, overflow: 'wait', backoff: { initialMs: 10, maxMs: 10 } });
  assert.equal(await bus.publishAsync('q', 1), true); // fails, waits for its retry: the stream is full
  host.skip(20); // the retry is due, but its timer has not run yet
  const p = bus.publishAsync('q', 2);
  assert.equal(await isSettled(p), true, 'the retry ran and finished in the pass after "must wait"');
  assert.equal(await p, true);
  await within(bus.drain(), 1000, 'drain');
  assert.deepEqual(seen, [[1, 1], [1, 2], [2, 1]]);
  assert.equal(bus.stats().groups[0].done, 2);
});

test('publishAsync: a work-queue consumer failing 60 % of the time with maxQueue 1 never strands a publisher', async () => {
  const bus = new Bus({ onError: () => {} });
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const done = new Set();
  bus.subscribe('jobs', async (p) => {
    await null;
    if (random() < 0.6) throw new Error('flaky');
    done.add(p);
  }, { group: 'workers', maxQueue: 1, overflow: 'wait', maxAttempts: 1000, backoff: { initialMs: 0, maxMs: 1 } });
  for (let i = 0; i < 60; i++) {
    assert.equal(await within(bus.publishAsync('jobs', i), 5000, `publishAsync #${i}`), true);
  }
  await within(bus.drain(), 5000, 'drain');
  assert.equal(done.size, 60);
  const { remaining } = await within(bus.close(), 5000, 'close');
  assert.deepEqual(remaining, []);
});

// ----- 2. topic handles never go stale ----------------------------------------------------------

test('routing stays exact past 16,384 distinct topics, with subscribes, delayed messages and groups in between', async () => {
  const clock = new ManualClock(1000);
  const bus = new Bus({ clock, maxQueue: Infinity });
  const got = { a: [], group: [], d: [], exact: new Map() };
  bus.subscribe('A', (p) => { got.a.push(p); });
  bus.subscribe('A', (p) => { got.group.push(p); }, { group: 'wq' });
  bus.subscribe('d.>', async (p) => { got.d.push(p); });
  bus.publish('A', 'first');
  bus.publish('d.x', 'first');
  const total = 20000;
  for (let i = 0; i < total; i++) {
    const topic = `t.${i}`;
    if (i % 1000 === 0) {
      // A subscribe in between (its pattern reaches none of the topics published here).
      bus.subscribe(`t.${i}`, (p) => {
        const list = got.exact.get(topic) ?? [];
        list.push(p);
        got.exact.set(topic, list);
      });
      bus.publish('A', `a${i}`, { notBefore: clock.now() + 5 });
    }
    if (i % 3000 === 0) bus.publish('d.y', `d${i}`, { notBefore: clock.now() + 5 });
    bus.publish(topic, i);
    if (i % 700 === 0) clock.advance(10); // delayed messages become visible and are routed
    if (i % 1000 === 500) {
      bus.publish('A', `a${i}`);
      bus.publish('d.x', `d${i}`);
    }
  }
  clock.advance(10);
  await bus.drain();
  const expectA = ['first'];
  const expectD = ['first'];
  for (let i = 0; i < total; i++) {
    if (i % 1000 === 0) expectA.push(`a${i}`);
    if (i % 3000 === 0) expectD.push(`d${i}`);
    if (i % 1000 === 500) { expectA.push(`a${i}`); expectD.push(`d${i}`); }
  }
  assert.deepEqual([...got.a].sort(), [...expectA].sort());
  assert.deepEqual([...got.group].sort(), [...expectA].sort());
  assert.deepEqual([...got.d].sort(), [...expectD].sort());
  for (let i = 0; i < total; i += 1000) assert.deepEqual(got.exact.get(`t.${i}`), [i], `t.${i}`);
  assert.equal(got.exact.size, total / 1000);
  assertStillWorks(bus);
});

// ----- 3. options are a snapshot taken at the call ------------------------------------------------

test('publishAsync: one options object reused for waiting publishes (dedupe on) keeps each call\'s id', async () => {
  const bus = new Bus({ dedupe: true });
  const seen = [];
  const gates = [];
  bus.subscribe('t', (p, m) => {
    seen.push(m.id);
    const d = deferred();
    gates.push(d);
    return d.promise;
  }, { maxQueue: 1, overflow: 'wait' });
  const o = { id: 'a' };
  const results = [];
  results.push(bus.publishAsync('t', 1, o)); // runs
  o.id = 'b';
  results.push(bus.publishAsync('t', 2, o)); // queued
  o.id = 'c';
  results.push(bus.publishAsync('t', 3, o)); // waits
  o.id = 'd';
  results.push(bus.publishAsync('t', 4, o)); // waits
  o.id = 42; // neither read again nor able to reach the core
  while (seen.length < 4) {
    await settle();
    gates.shift()?.resolve();
  }
  await settle();
  gates.shift()?.resolve();
  assert.deepEqual(await Promise.all(results), [true, true, true, true]);
  await bus.drain();
  assert.deepEqual(seen, ['a', 'b', 'c', 'd']);
  assert.equal(bus.stats().duplicates, 0);
});

test('options: getters are read once, and unreadable options are INVALID_OPTION', async () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('t', (p, m) => { got.push(m.id); });
  let reads = 0;
  const flip = { get id() { reads++; return reads === 1 ? 'once' : 42; } };
  assert.equal(bus.publish('t', 1, flip), true);
  assert.equal(reads, 1);
  assert.deepEqual(got, ['once']);

  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const throwing = { get id() { throw new Error('boom'); } };
  const badKeys = new Proxy({}, { ownKeys() { throw new TypeError('no keys'); } });
  for (const bad of [proxy, throwing, badKeys]) {
    throwsCode(() => bus.publish('t', 1, bad), 'INVALID_OPTION');
    throwsCode(() => bus.publishBatch('t', [1], bad), 'INVALID_OPTION');
    await rejectsCode(bus.publishAsync('t', 1, bad), 'INVALID_OPTION');
    throwsCode(() => bus.subscribe('t', () => {}, bad), 'INVALID_OPTION');
    throwsCode(() => new Bus(bad), 'INVALID_OPTION');
  }
  throwsCode(() => bus.publish('t', 1, { headers: proxy }), 'INVALID_OPTION');
  throwsCode(() => bus.publishBatch('t', [1], { ids: proxy }), 'INVALID_OPTION');
  throwsCode(() => bus.subscribe('t', () => {}, { batch: proxy }), 'INVALID_OPTION');
  throwsCode(() => bus.subscribe('t', () => {}, { group: 'g', backoff: throwing }), 'INVALID_OPTION');
  assert.deepEqual(got, ['once']);
  assertStillWorks(bus);
});

test('options: headers are copied at the call', async () => {
  const bus = new Bus();
  const seen = [];
  const gate = deferred();
  bus.subscribe('t', async (p, m) => { seen.push(m.headers); await gate.promise; });
  const headers = { a: '1' };
  bus.publish('t', 1, { headers }); // runs
  bus.publish('t', 2, { headers }); // queued
  headers.a = 'changed';
  gate.resolve();
  await bus.drain();
  assert.deepEqual(seen, [{ a: '1' }, { a: '1' }]);
});

// ----- 4. long durations are armed in steps -------------------------------------------------------

test('durations beyond 2^31-1 ms arm the timer in steps, never with a longer delay', async () => {
  const long = 2 ** 32 + 5;
  const host = new FakeHost();
  const bus = new Bus({ clock: host, onError: () => {} });
  const got = [];
  bus.subscribe('late', (p) => { got.push(p); });
  bus.publish('late', 'x', { notBefore: host.now() + long });
  assert.ok(host.delays.length >= 1);
  assert.ok(host.delays.every((d) => d <= MAX_DELAY), `delays ${host.delays}`);
  host.advance(long - 1);
  assert.deepEqual(got, []);
  host.advance(1);
  assert.deepEqual(got, ['x']);
  assert.ok(host.delays.length <= 4, `armed ${host.delays.length} times`);

  // A handler timeout, an ack timeout and a batch wait beyond the limit.
  const failures = [];
  const h2 = new FakeHost();
  const bus2 = new Bus({ clock: h2, onError: (e) => failures.push(e.code) });
  bus2.subscribe('slow', () => new Promise(() => {}), { timeoutMs: long });
  bus2.subscribe('wq', () => new Promise(() => {}), { group: 'g', ackTimeoutMs: long, maxAttempts: 1 });
  const batches = [];
  bus2.subscribe('b', (items) => { batches.push(items.length); }, { batch: { maxWaitMs: long } });
  bus2.publish('slow', 1);
  bus2.publish('wq', 1);
  bus2.publish('b', 1);
  h2.advance(long - 1);
  assert.deepEqual(failures, []);
  assert.deepEqual(batches, []);
  h2.advance(1);
  await settle();
  assert.deepEqual(failures.sort(), ['HANDLER_TIMEOUT', 'HANDLER_TIMEOUT']);
  assert.deepEqual(batches, [1]);
  assert.ok(h2.delays.every((d) => d <= MAX_DELAY), `delays ${h2.delays}`);
  assert.ok(h2.delays.length <= 12, `armed ${h2.delays.length} times`);
});

test('a long timeout on the real clock emits no TimeoutOverflowWarning', async () => {
  const warnings = [];
  const onWarning = (w) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const bus = new Bus();
    bus.subscribe('t', () => new Promise((r) => setTimeout(r, 30)), { timeoutMs: 2 ** 32 });
    bus.publish('t', 1);
    await bus.drain();
    await settle();
    assert.equal(bus.stats().failed, 0);
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings.filter((n) => n === 'TimeoutOverflowWarning'), []);
});

// ----- 5. waits on a group with no member settle ------------------------------------------------

test('publishAsync waiting on a group whose members all left: drain resolves, close lists it and settles the wait', async () => {
  const bus = new Bus();
  let release;
  const member = bus.subscribe('q', () => new Promise((r) => { release = r; }), {
    group: 'g', maxQueue: 1, overflow: 'wait',
  });
  assert.equal(await bus.publishAsync('q', 1, { id: 'm1' }), true); // claimed, running
  const p2 = bus.publishAsync('q', 2, { id: 'm2' });                   // waits for room
  member.unsubscribe();
  release();
  assert.equal(await within(p2, 1000, 'p2'), true); // m1 done: room for m2, kept for a next member
  const p3 = bus.publishAsync('q', 3, { id: 'm3' }); // no member will ever make room
  await within(bus.drain(), 1000, 'drain');
  const { remaining } = await within(bus.close(), 1000, 'close');
  await rejectsCode(within(p3, 1000, 'p3'), 'CLOSED');
  assert.deepEqual(remaining.map((r) => [r.message.payload, r.message.id, r.group, r.state]), [
    [2, 'm2', 'g', 'pending'],
    [3, 'm3', 'g', 'waiting'],
  ]);
});

// ----- 6. publishBatch under reject is atomic ---------------------------------------------------------

test('publishBatch under reject: QUEUE_FULL with nothing delivered', async () => {
  const bus = new Bus();
  const started = [];
  const gate = deferred();
  bus.subscribe('t', (p) => { started.push(p); return gate.promise; }, { maxQueue: 1, overflow: 'reject' });
  throwsCode(() => bus.publishBatch('t', [1, 2, 3]), 'QUEUE_FULL');
  assert.deepEqual(started, []);
  assert.equal(bus.stats().published, 0);
  assert.equal(bus.publishBatch('t', [1]), 1);
  assert.deepEqual(started, [1]);
  gate.resolve();
  await bus.drain();
});

// ----- 8. maxQueue 0 where it cannot work ---------------------------------------------------------

test('maxQueue 0 is refused for batch subscriptions and work queues', () => {
  const bus = new Bus();
  throwsCode(() => bus.subscribe('b', () => {}, { batch: true, maxQueue: 0 }), 'INVALID_OPTION', /maxQueue/);
  throwsCode(() => bus.subscribe('q', () => {}, { group: 'g', maxQueue: 0 }), 'INVALID_OPTION', /maxQueue/);
  const zero = new Bus({ maxQueue: 0 });
  throwsCode(() => zero.subscribe('b', () => {}, { batch: { maxSize: 2 } }), 'INVALID_OPTION', /maxQueue/);
  throwsCode(() => zero.subscribe('q', () => {}, { group: 'g' }), 'INVALID_OPTION', /maxQueue/);
  // A plain subscription still works with maxQueue 0: it takes what it can start at once.
  const got = [];
  zero.subscribe('p', (x) => { got.push(x); });
  zero.publish('p', 1);
  assert.deepEqual(got, [1]);
  // and a batch subscription or a group with room works on that bus.
  zero.subscribe('b', () => {}, { batch: true, maxQueue: 10 });
  zero.subscribe('q', () => {}, { group: 'g', maxQueue: 10 });
  assertStillWorks(zero);
});

// ----- Low items ----------------------------------------------------------------------------------

test('a subscription removed during a dispatch counts that message as cancelled (direct and core paths)', async () => {
  const bus = new Bus();
  let second;
  bus.subscribe('t', () => { second.unsubscribe(); });
  second = bus.subscribe('t', () => { throw new Error('never called'); });
  bus.publish('t', 1);
  assert.equal(second.stats().cancelled, 1);
  assert.equal(second.stats().delivered, 0);
  assert.equal(bus.stats().cancelled, 1);

  const clock = new ManualClock();
  const bus2 = new Bus({ clock });
  let b;
  bus2.subscribe('t', () => { b.unsubscribe(); });
  b = bus2.subscribe('t', () => { throw new Error('never called'); });
  bus2.publish('t', 1, { notBefore: 5 }); // goes through the core
  clock.advance(5);
  await bus2.drain();
  const st = b.stats();
  assert.equal(st.delivered, 0);
  assert.equal(st.cancelled, 1);
  assert.equal(st.inFlight, 0);
  const all = bus2.stats();
  assert.equal(all.delivered, 1);
  assert.equal(all.cancelled, 1);
});

test('a handler that unsubscribes itself then throws is counted failed', async () => {
  const bus = new Bus({ onError: () => {} });
  let sub;
  sub = bus.subscribe('t', () => { sub.unsubscribe(); throw new Error('after leaving'); });
  bus.publish('t', 1);
  assert.equal(sub.stats().failed, 1);
  assert.equal(sub.stats().delivered, 1);
  assert.equal(bus.stats().failed, 1);

  let async;
  async = bus.subscribe('u', async () => { async.unsubscribe(); throw new Error('after leaving'); });
  bus.publish('u', 1);
  await bus.drain();
  await settle();
  assert.equal(async.stats().failed, 1);
  assert.equal(async.stats().inFlight, 0);
  assert.equal(bus.stats().failed, 2);
});

test('final stats of an unsubscribed subscription reflect an in-flight delivery that settles later', async () => {
  const bus = new Bus();
  const gate = deferred();
  const sub = bus.subscribe('t', () => gate.promise);
  bus.publish('t', 1);
  bus.publish('t', 2); // queued: cancelled by unsubscribing
  assert.equal(sub.stats().inFlight, 1);
  sub.unsubscribe();
  assert.equal(sub.stats().inFlight, 1);
  gate.resolve();
  await bus.drain();
  await settle();
  const st = sub.stats();
  assert.equal(st.inFlight, 0);
  assert.equal(st.delivered, 1);
  assert.equal(st.cancelled, 1);
  assert.equal(st.queued, 0);
  assert.equal(bus.stats().inFlight, 0);
});

test('the empty string is an id for publish and publishBatch alike', () => {
  const bus = new Bus({ dedupe: true });
  const got = [];
  bus.subscribe('t', (p, m) => { got.push([p, m.id]); });
  assert.equal(bus.publish('t', 1, { id: '' }), true);
  assert.equal(bus.publish('t', 2, { id: '' }), false);
  assert.equal(bus.publishBatch('t', [3, 4], { ids: ['', 'x'] }), 1);
  assert.equal(bus.publishBatch('t', [5, 6], { ids: [undefined, undefined] }), 2);
  assert.deepEqual(got, [[1, ''], [4, 'x'], [5, undefined], [6, undefined]]);
  assert.equal(bus.stats().duplicates, 2);

  // Through the core (notBefore), the same.
  const clock = new ManualClock();
  const bus2 = new Bus({ dedupe: true, clock });
  const got2 = [];
  bus2.subscribe('t', (p) => { got2.push(p); });
  assert.equal(bus2.publishBatch('t', [1, 2], { ids: ['', ''], notBefore: 1 }), 1);
  clock.advance(1);
  assert.deepEqual(got2, [1]);
});

test('control characters U+007F..U+009F are refused in topics and patterns', () => {
  const bus = new Bus();
  for (const c of ['\u007f', '\u0080', '\u0085', '\u009f']) {
    throwsCode(() => bus.publish(`a.b${c}c`, 1), 'INVALID_TOPIC', /control character|whitespace/);
    throwsCode(() => bus.subscribe(`a${c}`, () => {}), 'INVALID_PATTERN', /control character|whitespace/);
  }
  // Just outside the range: accepted.
  const got = [];
  bus.subscribe('a.\u00a1', (p) => got.push(p));
  bus.publish('a.\u00a1', 1);
  assert.deepEqual(got, [1]);
  assert.ok(EdgebusError);
});
