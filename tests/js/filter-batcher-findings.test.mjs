// Minimal reproducers of what the IdempotenceFilter and Batcher property suite
// (filter-batcher-props.test.mjs) found, each asserting the documented behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, Bus, IdempotenceFilter, ManualClock, EdgebusError } from 'edgebus';
import { settle, throwsCode } from './support/helpers.mjs';

test('Batcher reads its options once: a backoff getter answering differently later changes nothing', async () => {
  let reads = 0;
  const backoff = Object.defineProperty({ maxMs: 0 }, 'initialMs', {
    enumerable: true,
    get() { reads++; return reads === 1 ? 0 : NaN; },
  });
  const clock = new ManualClock(0);
  let calls = 0;
  const b = new Batcher(() => { calls++; if (calls === 1) throw new Error('first try fails'); },
    { maxSize: 1, backoff, clock, onError() {} });
  assert.equal(reads, 1);
  b.add('x');
  await settle();
  // Retried after the 0 ms read at construction.
  assert.equal(calls, 2);
  await b.close();
});

test('sizeOf answering something other than a number ≥ 0 is INVALID_OPTION, and nothing is added', async () => {
  const got = [];
  const b = new Batcher((items) => { got.push(...items); },
    { maxBytes: 5, sizeOf: (x) => x.size, clock: new ManualClock(0) });
  for (const size of [NaN, -1, -0.5, '5', null, undefined, true, [], {}, Symbol('s'), 10n, new Number(1)]) {
    throwsCode(() => b.add({ size }), 'INVALID_OPTION', /sizeOf/);
  }
  assert.equal(b.stats().queued, 0);
  // Infinity is over any limit.
  throwsCode(() => b.add({ size: Infinity }), 'MESSAGE_TOO_LARGE');
  b.add({ size: 0, ok: true });
  await b.close();
  assert.deepEqual(got, [{ size: 0, ok: true }]);
  // The bus itself, one message and a batch of them (none published when one is refused).
  const bus = new Bus({ clock: new ManualClock(0), sizeOf: (x) => x.size });
  const seen = [];
  bus.subscribe('t', (msgs) => { seen.push(...msgs.map((m) => m.payload.size)); }, { batch: { maxWaitMs: 60_000 } });
  throwsCode(() => bus.publish('t', { size: 'five' }), 'INVALID_OPTION');
  throwsCode(() => bus.publishBatch('t', [{ size: 1 }, { size: -1 }]), 'INVALID_OPTION');
  assert.equal(bus.stats().published, 0);
  await bus.close();
  assert.deepEqual(seen, []);
});

test('a fractional size counts as the next whole byte: a batch never holds more than maxBytes', async () => {
  const got = [];
  const b = new Batcher((items) => { got.push(items.map((x) => x.size)); },
    { maxBytes: 1, sizeOf: (x) => x.size, clock: new ManualClock(0) });
  b.add({ size: 0.5 });
  b.add({ size: 0.75 }); // 0.5 + 0.75 > 1: its own batch
  throwsCode(() => b.add({ size: 1.01 }), 'MESSAGE_TOO_LARGE');
  await b.close();
  assert.deepEqual(got, [[0.5], [0.75]]);
});

test('maxBytes above 4 GiB holds as given (sizes are not capped at 32 bits)', async () => {
  const got = [];
  const b = new Batcher((items) => { got.push(items.map((x) => x.size)); },
    { maxBytes: 6e9, sizeOf: (x) => x.size, clock: new ManualClock(0) });
  throwsCode(() => b.add({ size: 6e9 + 1 }), 'MESSAGE_TOO_LARGE');
  b.add({ size: 3e9 });
  b.add({ size: 3e9 + 1 }); // 6,000,000,001 bytes together: over the limit
  b.add({ size: 2e9 });
  await b.close();
  assert.deepEqual(got, [[3e9], [3e9 + 1, 2e9]]);
  const huge = new Batcher(() => {}, { maxBytes: Number.MAX_SAFE_INTEGER, sizeOf: (x) => x, clock: new ManualClock(0) });
  throwsCode(() => huge.add(2 ** 53), 'MESSAGE_TOO_LARGE');
  await huge.close();
});

test('the default sizeOf never throws: a payload that cannot be read is added (0 bytes)', async () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  const odd = [
    proxy,
    Object.defineProperty({}, 'byteLength', { get() { throw new Error('byteLength throws'); } }),
    new Proxy({}, { get() { throw new Error('get throws'); } }),
    { toJSON() { throw new Error('toJSON throws'); } },
  ];
  const got = [];
  const b = new Batcher((items) => { got.push(...items); }, { clock: new ManualClock(0) });
  for (const p of odd) b.add(p);
  await b.close();
  assert.equal(got.length, odd.length);
  odd.forEach((p, i) => assert.equal(got[i], p));
});

test('the default sizeOf counts a lone surrogate as 3 bytes (as TextEncoder writes it)', async () => {
  const got = [];
  // '\uD800\uD800' is 6 bytes in UTF-8 (two U+FFFD), not 4.
  const b = new Batcher((items) => { got.push(items); }, { maxBytes: 6, clock: new ManualClock(0) });
  b.add('\uD800\uD800'); // 6 bytes: the batch is full
  b.add('a');
  b.add('\uD800a'); // 4 bytes: with 'a', 5
  await settle();
  assert.deepEqual(got, [['\uD800\uD800']]);
  await b.close();
  assert.deepEqual(got, [['\uD800\uD800'], ['a', '\uD800a']]);
});

test('a handler returning a thenable whose then() throws fails as a rejection would: reported, retried, never stuck', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  let calls = 0;
  const boom = new Error('then throws');
  const b = new Batcher(() => {
    calls++;
    return { then() { throw boom; } };
  }, { maxSize: 1, maxAttempts: 2, backoff: { initialMs: 5, maxMs: 5 }, clock, onError: (e, items) => errors.push([e, items]) });
  b.add('x'); // nothing escapes add()
  assert.equal(calls, 1);
  clock.advance(5); // nor the timer that runs the retry
  assert.equal(calls, 2);
  await b.close();
  assert.deepEqual(errors, [[boom, ['x']]]);
  assert.equal(b.stats().failed, 1);
  // The same on a bus, on each of its paths (handlers taking the payload only or the message too,
  // called directly or by the core), also for a result whose `then` cannot even be read.
  const reports = [];
  const bus = new Bus({ clock, onError: (e) => reports.push(e) });
  const throwingThen = () => ({ then() { throw boom; } });
  const unreadableThen = () => Object.defineProperty({}, 'then', { get() { throw boom; } });
  bus.subscribe('a', (p) => throwingThen(p));
  bus.subscribe('b', (p) => unreadableThen(p));
  bus.subscribe('c', () => throwingThen(), { concurrency: 2 });
  bus.subscribe('d', () => unreadableThen(), { maxQueue: 5, timeoutMs: 100 });
  bus.subscribe('e', (msgs) => (msgs.length ? unreadableThen() : undefined), { batch: { maxSize: 1, maxAttempts: 1 } });
  for (const topic of ['a', 'b', 'c', 'd', 'e']) bus.publish(topic, 1);
  // A busy subscription's next message goes through the core.
  let release;
  bus.subscribe('f', (p) => (p === 1 ? new Promise((resolve) => { release = resolve; }) : unreadableThen()));
  bus.publish('f', 1);
  bus.publish('f', 2);
  release();
  await settle();
  assert.equal(reports.length, 6);
  assert.ok(reports.every((e) => e === boom));
  assert.equal(bus.stats().failed, 6);
  assert.ok(reports.every((e) => !(e instanceof EdgebusError)));
});

test('a ManualClock starts at 0 or later (the core keeps time from 0)', () => {
  for (const start of [-1, -0.5, -1e12, -Infinity, NaN]) throwsCode(() => new ManualClock(start), 'INVALID_ARGUMENT');
  // From 0 up, ids age as the window says.
  const clock = new ManualClock(0);
  const f = new IdempotenceFilter({ maxAgeMs: 0.5, clock });
  assert.equal(f.check('a'), true);
  clock.advance(0.5);
  assert.equal(f.has('a'), false);
});

test('Batcher.close() and drain() resolve to nothing, as their types say', async () => {
  const b = new Batcher(() => {}, { clock: new ManualClock(0) });
  b.add(1);
  assert.equal(await b.drain(), undefined);
  b.add(2);
  assert.equal(await b.close(), undefined);
  assert.equal(await b.close(), undefined);
});
