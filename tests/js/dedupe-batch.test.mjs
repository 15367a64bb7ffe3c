import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Bus, Batcher, IdempotenceFilter, ManualClock, EdgebusError } from 'edgebus';
import { settle, deferred, throwsCode, assertStillWorks } from './support/helpers.mjs';

describe('bus dedupe', () => {
  test('a repeated id is dropped (publish → false), counted in duplicates; no id is never deduped', () => {
    const bus = new Bus({ dedupe: { maxIds: 100, maxAgeMs: 60_000 } });
    const got = [];
    bus.subscribe('t', (p) => got.push(p));
    assert.equal(bus.publish('t', 1, { id: 'a' }), true);
    assert.equal(bus.publish('t', 2, { id: 'a' }), false);
    assert.equal(bus.publish('t', 3, { id: 'b' }), true);
    assert.equal(bus.publish('t', 4), true);
    assert.equal(bus.publish('t', 5), true);
    assert.equal(bus.publish('t', 6, { id: 'b' }), false);
    assert.deepEqual(got, [1, 3, 4, 5]);
    const st = bus.stats();
    assert.equal(st.duplicates, 2);
    assert.equal(st.published, 4);
  });

  test('ids are deduped across topics and across the queued path', async () => {
    const bus = new Bus({ dedupe: true });
    const got = [];
    bus.subscribe('>', async (p) => { got.push(p); await null; });
    assert.equal(bus.publish('x', 'first', { id: 'same' }), true);
    assert.equal(bus.publish('y', 'second', { id: 'same' }), false); // subscriber busy: through the core
    assert.equal(bus.publish('y', 'third', { id: 'other' }), true);
    await bus.drain();
    assert.equal(bus.publish('z', 'fourth', { id: 'same' }), false); // idle again: direct path
    await bus.drain();
    assert.deepEqual(got, ['first', 'third']);
    assert.equal(bus.stats().duplicates, 2);
  });

  test('without dedupe, repeated ids are delivered', () => {
    const bus = new Bus();
    const got = [];
    bus.subscribe('t', (p) => got.push(p));
    assert.equal(bus.publish('t', 1, { id: 'a' }), true);
    assert.equal(bus.publish('t', 2, { id: 'a' }), true);
    assert.deepEqual(got, [1, 2]);
    assert.equal(bus.stats().duplicates, 0);
  });

  test('the window is bounded by count (maxIds)', () => {
    const bus = new Bus({ dedupe: { maxIds: 2 } });
    const got = [];
    bus.subscribe('t', (p) => got.push(p));
    bus.publish('t', 'a1', { id: 'a' });
    bus.publish('t', 'b1', { id: 'b' });
    assert.equal(bus.publish('t', 'a2', { id: 'a' }), false);
    bus.publish('t', 'c1', { id: 'c' }); // evicts a
    assert.equal(bus.publish('t', 'a3', { id: 'a' }), true);
    assert.deepEqual(got, ['a1', 'b1', 'c1', 'a3']);
  });

  test('the window is bounded by age (maxAgeMs)', () => {
    const clock = new ManualClock(0);
    const bus = new Bus({ clock, dedupe: { maxIds: 1000, maxAgeMs: 1000 } });
    const got = [];
    bus.subscribe('t', (p) => got.push(p));
    bus.publish('t', 1, { id: 'a' });
    clock.advance(500);
    assert.equal(bus.publish('t', 2, { id: 'a' }), false);
    clock.advance(600);
    assert.equal(bus.publish('t', 3, { id: 'a' }), true);
    assert.deepEqual(got, [1, 3]);
  });

  test('publishBatch with ids dedupes per id and returns the number accepted', () => {
    const bus = new Bus({ dedupe: true });
    const got = [];
    bus.subscribe('t', (p, m) => got.push([p, m.id]));
    bus.publish('t', 'pre', { id: 'x' });
    assert.equal(bus.publishBatch('t', ['a', 'b', 'c', 'd'], { ids: ['1', 'x', '1', '2'] }), 2);
    assert.deepEqual(got, [['pre', 'x'], ['a', '1'], ['d', '2']]);
    assert.equal(bus.stats().duplicates, 2);
  });
});

describe('publishBatch', () => {
  test('delivers every payload in order with key/headers/ttlMs and returns the count', async () => {
    const bus = new Bus();
    const got = [];
    const asyncGot = [];
    bus.subscribe('t', (p, m) => got.push([p, m.key, m.headers, m.ttlMs]));
    bus.subscribe('t', async (p) => { asyncGot.push(p); await null; });
    const headers = { h: 'v' };
    assert.equal(bus.publishBatch('t', [1, 2, 3], { key: 'k', headers, ttlMs: 1000 }), 3);
    assert.deepEqual(got, [[1, 'k', headers, 1000], [2, 'k', headers, 1000], [3, 'k', headers, 1000]]);
    await bus.drain();
    assert.deepEqual(asyncGot, [1, 2, 3]);
    assert.equal(bus.publishBatch('t', []), 0);
    assert.equal(bus.stats().published, 3);
  });
});

describe('IdempotenceFilter', () => {
  test('check: true the first time (records), false after; has does not record; size; clear', () => {
    const f = new IdempotenceFilter({ maxIds: 10 });
    assert.equal(f.size, 0);
    assert.equal(f.has('a'), false);
    assert.equal(f.size, 0);
    assert.equal(f.check('a'), true);
    assert.equal(f.has('a'), true);
    assert.equal(f.check('a'), false);
    assert.equal(f.check('b'), true);
    assert.equal(f.size, 2);
    f.clear();
    assert.equal(f.size, 0);
    assert.equal(f.has('a'), false);
    assert.equal(f.check('a'), true);
  });

  test('count window: the oldest id leaves when maxIds is exceeded', () => {
    const f = new IdempotenceFilter({ maxIds: 3 });
    for (const id of ['a', 'b', 'c']) assert.equal(f.check(id), true);
    assert.equal(f.check('d'), true);
    assert.equal(f.size, 3);
    assert.equal(f.has('a'), false);
    assert.equal(f.has('b'), true);
    assert.equal(f.check('a'), true);
  });

  test('age window (ManualClock)', () => {
    const clock = new ManualClock(100);
    const f = new IdempotenceFilter({ maxAgeMs: 50, clock });
    assert.equal(f.check('x'), true);
    clock.advance(30);
    assert.equal(f.check('y'), true);
    assert.equal(f.has('x'), true);
    clock.advance(25); // x is 55 ms old, y 25 ms
    assert.equal(f.has('x'), false);
    assert.equal(f.has('y'), true);
    assert.equal(f.size, 1);
    assert.equal(f.check('x'), true);
  });

  test('exact: many random and near-identical distinct ids are never reported as seen', () => {
    const n = 30_000;
    const f = new IdempotenceFilter({ maxIds: 4 * n });
    const ids = new Set();
    for (let i = 0; ids.size < n; i++) ids.add(randomBytes(4 + (i % 16)).toString('base64'));
    for (let i = 0; i < n; i++) ids.add(`id-${i}`);
    for (let i = 0; i < 200; i++) ids.add('x'.repeat(i + 1));
    ids.add('');
    ids.add('é');
    ids.add('e\u0301');
    let firstTimeTrue = 0;
    for (const id of ids) if (f.check(id)) firstTimeTrue++;
    assert.equal(firstTimeTrue, ids.size);
    assert.equal(f.size, ids.size);
    let secondTimeFalse = 0;
    for (const id of ids) if (!f.check(id)) secondTimeFalse++;
    assert.equal(secondTimeFalse, ids.size);
    // ids never checked are not in the filter
    let unseen = 0;
    for (let i = 0; i < 5000; i++) if (!f.has(`never-${i}-${randomBytes(6).toString('hex')}`)) unseen++;
    assert.equal(unseen, 5000);
  });

  test('short ASCII ids (written into the core\'s buffer) and every other id agree with a model', () => {
    // A window of 50 over ids of every kind: ASCII of length 0 to 300 (the buffer holds 256
    // bytes), non-ASCII, and the same text in both forms, checked in a seeded random order.
    const window = 50;
    const f = new IdempotenceFilter({ maxIds: window });
    const pool = [];
    for (let i = 0; i < 40; i++) pool.push(`id-${i}`);
    for (const len of [0, 1, 255, 256, 257, 300]) pool.push('a'.repeat(len), 'b'.repeat(len));
    pool.push('é', 'e\u0301', 'id-1é', '\u{1F600}', 'é'.repeat(200), `${'x'.repeat(255)}é`);
    let seed = 7;
    const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
    const seen = new Set();
    const order = [];
    for (let i = 0; i < 5000; i++) {
      const id = pool[next() % pool.length];
      const expected = !seen.has(id);
      if (next() % 4 === 0) {
        assert.equal(f.has(id), !expected, `has(${JSON.stringify(id.slice(0, 20))}) at step ${i}`);
        continue;
      }
      assert.equal(f.check(id), expected, `check(${JSON.stringify(id.slice(0, 20))}) at step ${i}`);
      if (expected) {
        seen.add(id);
        order.push(id);
        if (order.length > window) seen.delete(order.shift());
      }
    }
    assert.equal(f.size, seen.size);
  });

  test('ids still match after the core\'s memory grows (the byte view is renewed)', () => {
    const f = new IdempotenceFilter({ maxIds: 10 });
    assert.equal(f.check('before'), true);
    // Grow the instance's memory by many pages.
    const big = new IdempotenceFilter({ maxIds: 400_000 });
    for (let i = 0; i < 300_000; i++) big.check(`grow-${i}-${'z'.repeat(20)}`);
    assert.equal(f.check('before'), false);
    assert.equal(f.check('after'), true);
    assert.equal(f.has('after'), true);
    assert.equal(big.has('grow-0-' + 'z'.repeat(20)), true);
  });

  test('without an age limit the clock is not read; with one it is', () => {
    let reads = 0;
    const clock = { now: () => { reads++; return 0; } };
    const f = new IdempotenceFilter({ maxIds: 10, clock });
    f.check('a');
    f.has('a');
    void f.size;
    assert.equal(reads, 0);
    const aged = new IdempotenceFilter({ maxIds: 10, maxAgeMs: 1000, clock });
    aged.check('a');
    assert.ok(reads >= 1);
  });

  test('bad ids are refused with a code on both paths and change nothing', () => {
    const f = new IdempotenceFilter({ maxIds: 10 });
    f.check('kept');
    for (const bad of [undefined, null, 42, {}, ['a'], '\uD800', `${'a'.repeat(10)}\uDC00`]) {
      throwsCode(() => f.check(bad), 'INVALID_ARGUMENT');
      throwsCode(() => f.has(bad), 'INVALID_ARGUMENT');
    }
    assert.equal(f.size, 1);
    assert.equal(f.check('kept'), false);
  });
});

describe('batch subscriptions', () => {
  test('flush on maxSize: the handler gets arrays of messages; drain delivers the partial batch', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const got = [];
    bus.subscribe('b.*', (msgs) => { got.push(msgs); }, { batch: { maxSize: 2 } });
    for (let i = 0; i < 5; i++) bus.publish('b.x', i, { key: `k${i}` });
    await settle();
    assert.deepEqual(got.map((b) => b.map((m) => m.payload)), [[0, 1], [2, 3]]);
    const m = got[0][0];
    assert.equal(m.topic, 'b.x');
    assert.equal(m.key, 'k0');
    assert.equal(typeof m.publishedAt, 'number');
    await bus.drain();
    assert.deepEqual(got.map((b) => b.map((x) => x.payload)), [[0, 1], [2, 3], [4]]);
  });

  test('flush() delivers a partial batch now', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload)); }, { batch: { maxSize: 10 } });
    bus.publish('b', 'a');
    bus.publish('b', 'b');
    await settle();
    assert.deepEqual(got, []);
    bus.flush();
    await settle();
    assert.deepEqual(got, [['a', 'b']]);
  });

  test('flush on maxBytes with the default sizeOf (UTF-8 bytes of strings)', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload)); }, { batch: { maxBytes: 8 } });
    for (const p of ['aaaa', 'éé', 'bbb', 'cc', 'dddd', 'e']) bus.publish('b', p);
    await settle();
    // 'aaaa' + 'éé' is 8 bytes (é is 2 bytes in UTF-8), not 6 UTF-16 units
    assert.deepEqual(got[0], ['aaaa', 'éé']);
    await bus.drain();
    const all = got.flat();
    assert.deepEqual(all, ['aaaa', 'éé', 'bbb', 'cc', 'dddd', 'e']);
    for (const batch of got) {
      assert.ok(batch.reduce((n, s) => n + Buffer.byteLength(s), 0) <= 8, JSON.stringify(batch));
    }
  });

  test('default sizeOf: typed arrays and ArrayBuffers by byteLength, objects by JSON length', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload)); }, { batch: { maxBytes: 16 } });
    const u = new Uint8Array(10);
    const ab = new ArrayBuffer(6);
    const f64 = new Float64Array(2); // 16 bytes, 2 elements
    bus.publish('b', u);
    bus.publish('b', ab); // 10 + 6 = 16: full
    await settle();
    assert.equal(got.length, 1);
    assert.deepEqual(got[0].length, 2);
    bus.publish('b', f64); // 16 bytes alone: full
    await settle();
    assert.equal(got.length, 2);
    assert.equal(got[1][0], f64);
    const obj = { a: 'xxxxxx' }; // {"a":"xxxxxx"} is 14 bytes
    assert.equal(JSON.stringify(obj).length, 14);
    bus.publish('b', obj);
    bus.publish('b', 'yyy'); // 14 + 3 > 16: obj goes alone
    await bus.drain();
    assert.deepEqual(got.slice(2), [[obj], ['yyy']]);
    throwsCode(() => bus.publish('b', new Uint8Array(17)), 'MESSAGE_TOO_LARGE');
    throwsCode(() => bus.publish('b', { s: 'x'.repeat(20) }), 'MESSAGE_TOO_LARGE');
  });

  test('a custom sizeOf on the bus is used for maxBytes', async () => {
    const bus = new Bus({ clock: new ManualClock(0), sizeOf: (p) => p.weight });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload.n)); }, { batch: { maxBytes: 10 } });
    bus.publish('b', { n: 1, weight: 6 });
    bus.publish('b', { n: 2, weight: 4 });
    bus.publish('b', { n: 3, weight: 1 });
    await bus.drain();
    assert.deepEqual(got, [[1, 2], [3]]);
    throwsCode(() => bus.publish('b', { n: 4, weight: 11 }), 'MESSAGE_TOO_LARGE');
  });

  test('a single message larger than maxBytes → MESSAGE_TOO_LARGE, nothing delivered, bus keeps working', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const plain = [];
    const batches = [];
    bus.subscribe('b', (p) => plain.push(p));
    bus.subscribe('b', (msgs) => { batches.push(msgs.map((m) => m.payload)); }, { batch: { maxBytes: 4 } });
    throwsCode(() => bus.publish('b', 'x'.repeat(5)), 'MESSAGE_TOO_LARGE');
    throwsCode(() => bus.publish('b', 'ééé'), 'MESSAGE_TOO_LARGE'); // 3 chars, 6 bytes
    assert.deepEqual(plain, []);
    bus.publish('b', 'ok');
    await bus.drain();
    assert.deepEqual(plain, ['ok']);
    assert.deepEqual(batches, [['ok']]);
    assertStillWorks(bus);
  });

  test('flush on maxWaitMs (ManualClock), counted from the first message of the batch', async () => {
    const clock = new ManualClock(0);
    const bus = new Bus({ clock });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push([clock.now(), msgs.map((m) => m.payload)]); }, { batch: { maxWaitMs: 100 } });
    clock.advance(30);
    bus.publish('b', 1);
    clock.advance(50);
    bus.publish('b', 2);
    clock.advance(49);
    await settle();
    assert.deepEqual(got, []);
    clock.advance(1);
    await settle();
    assert.deepEqual(got, [[130, [1, 2]]]);
  });

  test('whichever limit comes first flushes', async () => {
    const clock = new ManualClock(0);
    const bus = new Bus({ clock });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload)); },
      { batch: { maxSize: 3, maxBytes: 5, maxWaitMs: 10 } });
    bus.publish('b', 'a');
    bus.publish('b', 'b');
    bus.publish('b', 'c'); // size
    bus.publish('b', 'dddd');
    bus.publish('b', 'e'); // bytes
    bus.publish('b', 'f');
    clock.advance(10); // time
    await settle();
    assert.deepEqual(got, [['a', 'b', 'c'], ['dddd', 'e'], ['f']]);
  });

  test('batches of one subscription run one at a time, in order', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const started = [];
    const gates = [];
    let active = 0;
    let maxActive = 0;
    bus.subscribe('b', (msgs) => {
      active++;
      maxActive = Math.max(maxActive, active);
      started.push(msgs.map((m) => m.payload));
      const d = deferred();
      gates.push(() => { active--; d.resolve(); });
      return d.promise;
    }, { batch: { maxSize: 2 } });
    for (let i = 0; i < 6; i++) bus.publish('b', i);
    await settle();
    assert.deepEqual(started, [[0, 1]]);
    gates.shift()();
    await settle();
    assert.deepEqual(started, [[0, 1], [2, 3]]);
    gates.shift()();
    await settle();
    gates.shift()();
    await bus.drain();
    assert.deepEqual(started, [[0, 1], [2, 3], [4, 5]]);
    assert.equal(maxActive, 1);
  });

  test('a failed batch is retried with exponential backoff up to maxAttempts, then reported once', async () => {
    const clock = new ManualClock(0);
    const reports = [];
    const topicReports = [];
    const bus = new Bus({ clock, onError: (e, msgs, sub) => reports.push([clock.now(), e, msgs, sub]) });
    bus.subscribe('$errors', (p) => topicReports.push(p));
    const attempts = [];
    const sub = bus.subscribe('b', (msgs) => {
      attempts.push([clock.now(), msgs.map((m) => m.payload)]);
      throw new Error('batch failed');
    }, { batch: { maxSize: 2, maxAttempts: 5, backoff: { initialMs: 100, maxMs: 300 } } });
    bus.publish('b', 'x');
    bus.publish('b', 'y');
    for (let i = 0; i < 40; i++) {
      clock.advance(25);
      await settle(1);
    }
    await settle();
    assert.deepEqual(attempts.map((a) => a[0]), [0, 100, 300, 600, 900]);
    assert.ok(attempts.every((a) => JSON.stringify(a[1]) === '["x","y"]'));
    assert.equal(reports.length, 1);
    const [at, err, msgs, s] = reports[0];
    assert.equal(at, 900);
    assert.equal(err.message, 'batch failed');
    assert.ok(Array.isArray(msgs));
    assert.deepEqual(msgs.map((m) => m.payload), ['x', 'y']);
    assert.equal(s, sub);
    assert.equal(topicReports.length, 1);
    assert.deepEqual(topicReports[0].messages.map((m) => m.payload), ['x', 'y']);
    assert.equal(topicReports[0].message, undefined);
    assert.deepEqual(topicReports[0].subscription, { id: sub.id, pattern: 'b' });
    assert.ok(sub.stats().failed >= 1);
  });

  test('a batch that fails then succeeds is not reported', async () => {
    const clock = new ManualClock(0);
    const reports = [];
    const bus = new Bus({ clock, onError: (e) => reports.push(e) });
    let calls = 0;
    const delivered = [];
    bus.subscribe('b', async (msgs) => {
      calls++;
      if (calls < 3) throw new Error('transient');
      delivered.push(...msgs.map((m) => m.payload));
    }, { batch: { maxSize: 1, maxAttempts: 3, backoff: { initialMs: 10, maxMs: 10 } } });
    bus.publish('b', 'p');
    for (let i = 0; i < 5; i++) { await settle(1); clock.advance(10); }
    await bus.drain();
    assert.equal(calls, 3);
    assert.deepEqual(delivered, ['p']);
    assert.equal(reports.length, 0);
  });

  test('close delivers partial batches, then refuses publishes', async () => {
    const bus = new Bus({ clock: new ManualClock(0) });
    const got = [];
    bus.subscribe('b', (msgs) => { got.push(msgs.map((m) => m.payload)); }, { batch: { maxSize: 100, maxWaitMs: 1e9 } });
    bus.publish('b', 1);
    bus.publish('b', 2);
    await bus.close();
    assert.deepEqual(got, [[1, 2]]);
    throwsCode(() => bus.publish('b', 3), 'CLOSED');
  });
});

describe('Batcher', () => {
  test('handler gets arrays of items (payloads) on maxSize; drain delivers the rest', async () => {
    const got = [];
    const b = new Batcher((items) => { got.push(items); }, { maxSize: 3, clock: new ManualClock(0) });
    const obj = { o: 1 };
    for (const x of [obj, 2, 3, 4]) b.add(x);
    await settle();
    assert.equal(got.length, 1);
    assert.equal(got[0][0], obj);
    assert.deepEqual(got[0], [obj, 2, 3]);
    await b.drain();
    assert.deepEqual(got[1], [4]);
    const st = b.stats();
    assert.equal(typeof st.delivered, 'number');
    assert.equal(st.queued, 0);
  });

  test('flush() delivers a partial batch now; close() delivers partial batches; add after close → CLOSED', async () => {
    const got = [];
    const b = new Batcher((items) => { got.push(items); }, { maxSize: 10, clock: new ManualClock(0) });
    b.add('a');
    b.flush();
    await settle();
    assert.deepEqual(got, [['a']]);
    b.add('b');
    b.add('c');
    await b.close();
    assert.deepEqual(got, [['a'], ['b', 'c']]);
    throwsCode(() => b.add('d'), 'CLOSED');
  });

  test('maxWaitMs with a ManualClock; maxBytes with sizeOf', async () => {
    const clock = new ManualClock(0);
    const got = [];
    const b = new Batcher((items) => { got.push([clock.now(), items]); },
      { maxWaitMs: 20, maxBytes: 10, sizeOf: (x) => x.length, clock });
    b.add('12345');
    b.add('12345'); // 10: full
    b.add('abc');
    await settle();
    assert.deepEqual(got, [[0, ['12345', '12345']]]);
    clock.advance(19);
    await settle();
    assert.equal(got.length, 1);
    clock.advance(1);
    await settle();
    assert.deepEqual(got[1], [20, ['abc']]);
    throwsCode(() => b.add('x'.repeat(11)), 'MESSAGE_TOO_LARGE');
  });

  test('retries with backoff then reports the items once to onError', async () => {
    const clock = new ManualClock(0);
    const errors = [];
    let calls = 0;
    const b = new Batcher(() => { calls++; throw new Error('down'); },
      { maxSize: 2, maxAttempts: 3, backoff: { initialMs: 5, maxMs: 5 }, clock, onError: (e, items) => errors.push([e, items]) });
    b.add('i1');
    b.add('i2');
    for (let i = 0; i < 10; i++) { await settle(1); clock.advance(5); }
    await settle();
    assert.equal(calls, 3);
    assert.equal(errors.length, 1);
    assert.equal(errors[0][0].message, 'down');
    assert.deepEqual(errors[0][1], ['i1', 'i2']);
  });

  test('Batcher errors are EdgebusError', () => {
    try {
      new Batcher(() => {}, { maxSize: 0 });
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(e instanceof EdgebusError);
      assert.equal(e.code, 'INVALID_OPTION');
    }
  });
});

test('batch subscription: a message whose TTL ends before the retry fails for good, reported once, not expired', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e, items) => reported.push([e.code, e.message, items.map((m) => m.payload)]) });
  const calls = [];
  bus.subscribe('b', (items) => {
    calls.push(items.map((m) => m.payload).join(','));
    if (items.length > 1) throw new Error('too many');
  }, { batch: { maxSize: 2, maxWaitMs: 10, maxAttempts: 3, backoff: { initialMs: 100, maxMs: 100 } } });
  // 1's TTL (50 ms) ends before the retry (100 ms); 2 has none and is retried alone.
  bus.publishBatch('b', [1], { ttlMs: 50 });
  bus.publish('b', 2);
  bus.flush();
  await settle();
  clock.advance(100);
  await bus.drain();
  assert.deepEqual(calls, ['1,2', '2']);
  assert.deepEqual(reported, [['HANDLER_FAILED', 'too many', [1]]]);
  const st = bus.stats();
  assert.deepEqual([st.delivered, st.failed, st.expired], [2, 1, 0]);
});
