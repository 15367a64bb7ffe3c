// Every kind of bad input is refused with the right code, and the bus keeps working afterwards.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus, Batcher, IdempotenceFilter, ManualClock, EdgebusError } from 'edgebus';
import { throwsCode, rejectsCode, assertStillWorks } from './support/helpers.mjs';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'data', 'topics.json'), 'utf8'));

const show = (v) => {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'symbol' || typeof v === 'bigint') return `a ${typeof v}`;
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
};

const NON_STRINGS = [['number', 42], ['undefined', undefined], ['null', null], ['object', { topic: 'a' }],
  ['symbol', Symbol('a')], ['array', ['a']], ['bigint', 1n], ['function', () => 'a'], ['boolean', true]];

describe('topics', () => {
  for (const [label, value] of NON_STRINGS) {
    test(`non-string topic (${label}) → INVALID_TOPIC for publish, publishBatch and publishAsync`, async () => {
      const bus = new Bus();
      throwsCode(() => bus.publish(value, 1), 'INVALID_TOPIC', /topic/);
      throwsCode(() => bus.publish(value, 1, { key: 'k' }), 'INVALID_TOPIC', /topic/);
      throwsCode(() => bus.publishBatch(value, [1]), 'INVALID_TOPIC', /topic/);
      await rejectsCode(bus.publishAsync(value, 1), 'INVALID_TOPIC');
      assertStillWorks(bus);
    });
  }

  for (const topic of vectors.invalid_topics) {
    test(`invalid topic ${show(topic)} → INVALID_TOPIC`, async () => {
      const bus = new Bus();
      const got = [];
      bus.subscribe('>', (p) => got.push(p));
      throwsCode(() => bus.publish(topic, 1), 'INVALID_TOPIC');
      throwsCode(() => bus.publish(topic, 1), 'INVALID_TOPIC'); // twice: no cached route
      throwsCode(() => bus.publishBatch(topic, [1, 2]), 'INVALID_TOPIC');
      await rejectsCode(bus.publishAsync(topic, 1), 'INVALID_TOPIC');
      assert.deepEqual(got, []);
      assertStillWorks(bus);
    });
  }

  for (const topic of ['a.\uD800', '\uDC00', 'a.\uDC00b', 'x.\uD83D']) {
    test(`topic with a lone surrogate ${show(topic)} → INVALID_TOPIC`, () => {
      const bus = new Bus();
      throwsCode(() => bus.publish(topic, 1), 'INVALID_TOPIC');
      throwsCode(() => bus.publishBatch(topic, [1]), 'INVALID_TOPIC');
      assertStillWorks(bus);
    });
  }

  test('a topic with a proper surrogate pair is accepted', () => {
    const bus = new Bus();
    const got = [];
    bus.subscribe('emoji.*', (p) => got.push(p));
    bus.publish('emoji.\uD83D\uDE00', 1);
    assert.deepEqual(got, [1]);
  });

  test('topic length limits: 4096 bytes and 256 tokens accepted; 4097 bytes and 257 tokens refused', () => {
    const bus = new Bus();
    const got = [];
    bus.subscribe('>', (_p, m) => got.push(m.topic));
    const bytes4096 = 'a'.repeat(4096);
    const multi4096 = 'é'.repeat(2048); // 2 bytes each
    const tokens256 = Array(256).fill('t').join('.');
    // both limits at once: 256 tokens, 255 × 15 + 255 dots + 16 = 4096 bytes
    const both = Array(255).fill('x'.repeat(15)).join('.') + '.' + 'y'.repeat(16);
    assert.equal(Buffer.byteLength(both), 4096);
    assert.equal(both.split('.').length, 256);
    for (const ok of [bytes4096, multi4096, tokens256, both]) {
      assert.equal(bus.publish(ok, 1), true);
    }
    assert.deepEqual(got, [bytes4096, multi4096, tokens256, both]);
    for (const bad of ['a'.repeat(4097), 'é'.repeat(2048) + 'a', Array(257).fill('t').join('.'), both + 'y']) {
      throwsCode(() => bus.publish(bad, 1), 'INVALID_TOPIC');
      throwsCode(() => bus.publishBatch(bad, [1]), 'INVALID_TOPIC');
    }
    assert.equal(got.length, 4);
    assertStillWorks(bus);
  });
});

describe('patterns', () => {
  for (const [label, value] of NON_STRINGS) {
    test(`non-string pattern (${label}) → INVALID_PATTERN`, () => {
      const bus = new Bus();
      throwsCode(() => bus.subscribe(value, () => {}), 'INVALID_PATTERN', /pattern/);
      assertStillWorks(bus);
    });
  }

  for (const pattern of vectors.invalid_patterns) {
    test(`invalid pattern ${show(pattern)} → INVALID_PATTERN`, () => {
      const bus = new Bus();
      throwsCode(() => bus.subscribe(pattern, () => {}), 'INVALID_PATTERN');
      assert.equal(bus.stats().subscriptions, 0);
      assertStillWorks(bus);
    });
  }

  for (const pattern of ['a.\uD800', '\uDFFF.*', '*.\uD800']) {
    test(`pattern with a lone surrogate ${show(pattern)} → INVALID_PATTERN`, () => {
      const bus = new Bus();
      throwsCode(() => bus.subscribe(pattern, () => {}), 'INVALID_PATTERN');
      assertStillWorks(bus);
    });
  }

  test('pattern length limits: 4096 bytes / 256 tokens accepted; 4097 bytes / 257 tokens refused', () => {
    const bus = new Bus();
    assert.ok(bus.subscribe('a'.repeat(4096), () => {}));
    assert.ok(bus.subscribe(Array(255).fill('*').join('.') + '.>', () => {}));
    throwsCode(() => bus.subscribe('a'.repeat(4097), () => {}), 'INVALID_PATTERN');
    throwsCode(() => bus.subscribe(Array(257).fill('*').join('.'), () => {}), 'INVALID_PATTERN');
    assertStillWorks(bus);
  });
});

describe('handlers', () => {
  for (const [label, value] of [['undefined', undefined], ['null', null], ['string', 'fn'], ['number', 1],
    ['object', { handle() {} }], ['array', [() => {}]], ['symbol', Symbol('h')]]) {
    test(`handler that is not a function (${label}) → INVALID_HANDLER`, () => {
      const bus = new Bus();
      throwsCode(() => bus.subscribe('t', value), 'INVALID_HANDLER', /handler/);
      throwsCode(() => new Batcher(value), 'INVALID_HANDLER', /handler/);
      assert.equal(bus.stats().subscriptions, 0);
      assertStillWorks(bus);
    });
  }
});

describe('Bus options', () => {
  const cases = [
    ['unknown option', { maxQueu: 5 }, /maxQueu/],
    ['options not an object', 'fast', /options/],
    ['dedupe as a string', { dedupe: 'yes' }, /dedupe/],
    ['dedupe.maxIds 0', { dedupe: { maxIds: 0 } }, /maxIds/],
    ['dedupe.maxIds negative', { dedupe: { maxIds: -1 } }, /maxIds/],
    ['dedupe.maxIds fractional', { dedupe: { maxIds: 1.5 } }, /maxIds/],
    ['dedupe.maxIds string', { dedupe: { maxIds: '100' } }, /maxIds/],
    ['dedupe.maxAgeMs 0', { dedupe: { maxAgeMs: 0 } }, /maxAgeMs/],
    ['dedupe.maxAgeMs negative', { dedupe: { maxAgeMs: -10 } }, /maxAgeMs/],
    ['dedupe.maxAgeMs NaN', { dedupe: { maxAgeMs: NaN } }, /maxAgeMs/],
    ['dedupe unknown key', { dedupe: { size: 3 } }, /size/],
    ['maxQueue negative', { maxQueue: -1 }, /maxQueue/],
    ['maxQueue fractional', { maxQueue: 2.5 }, /maxQueue/],
    ['maxQueue NaN', { maxQueue: NaN }, /maxQueue/],
    ['maxQueue string', { maxQueue: '10' }, /maxQueue/],
    ['maxQueue -Infinity', { maxQueue: -Infinity }, /maxQueue/],
    ['overflow unknown name', { overflow: 'dropAll' }, /overflow/],
    ['overflow inherited name', { overflow: 'toString' }, /overflow/],
    ['overflow number', { overflow: 1 }, /overflow/],
    ['timeoutMs 0', { timeoutMs: 0 }, /timeoutMs/],
    ['timeoutMs negative', { timeoutMs: -5 }, /timeoutMs/],
    ['timeoutMs NaN', { timeoutMs: NaN }, /timeoutMs/],
    ['timeoutMs string', { timeoutMs: '100' }, /timeoutMs/],
    ['onError not a function', { onError: 'log' }, /onError/],
    ['clock without now()', { clock: {} }, /clock/],
    ['clock.now not a function', { clock: { now: 5 } }, /clock/],
    ['clock null', { clock: null }, /clock/],
    ['clock.now() returns a Symbol', { clock: { now: () => Symbol('t') } }, /clock.*now\(\) must return a finite number.*symbol/],
    ['clock.now() returns a BigInt', { clock: { now: () => 5n } }, /clock.*now\(\) must return a finite number/],
    ['clock.now() returns a string', { clock: { now: () => '5' } }, /clock.*now\(\) must return a finite number/],
    ['clock.now() returns NaN', { clock: { now: () => NaN } }, /clock.*now\(\) must return a finite number.*NaN/],
    ['clock.now() throws', { clock: { now: () => { throw new Error('no time'); } } }, /clock.*no time/],
    ['sizeOf not a function', { sizeOf: 8 }, /sizeOf/],
  ];
  for (const [label, options, re] of cases) {
    test(`new Bus: ${label} → INVALID_OPTION`, () => {
      throwsCode(() => new Bus(options), 'INVALID_OPTION', re);
    });
  }

  test('new Bus: valid edge values are accepted', () => {
    for (const o of [{}, { maxQueue: 0 }, { maxQueue: Infinity }, { timeoutMs: Infinity }, { dedupe: true },
      { dedupe: { maxIds: 1, maxAgeMs: Infinity } }, { clock: new ManualClock() }, { clock: { now: () => 0 } },
      { overflow: 'dropOldest' }, { overflow: 'dropNewest' }, { overflow: 'reject' }, { overflow: 'wait' }]) {
      assertStillWorks(new Bus(o));
    }
  });
});

describe('subscribe options', () => {
  const cases = [
    ['unknown option', { concurency: 2 }, /concurency/],
    ['options not an object', 7, /options/],
    ['concurrency 0', { concurrency: 0 }, /concurrency/],
    ['concurrency negative', { concurrency: -1 }, /concurrency/],
    ['concurrency fractional', { concurrency: 1.5 }, /concurrency/],
    ['concurrency Infinity', { concurrency: Infinity }, /concurrency/],
    ['concurrency NaN', { concurrency: NaN }, /concurrency/],
    ['concurrency string', { concurrency: '2' }, /concurrency/],
    ['maxQueue negative', { maxQueue: -3 }, /maxQueue/],
    ['maxQueue NaN', { maxQueue: NaN }, /maxQueue/],
    ['maxQueue string', { maxQueue: '3' }, /maxQueue/],
    ['overflow unknown name', { overflow: 'block' }, /overflow/],
    ['overflow null', { overflow: null }, /overflow/],
    ['timeoutMs 0', { timeoutMs: 0 }, /timeoutMs/],
    ['timeoutMs negative', { timeoutMs: -1 }, /timeoutMs/],
    ['timeoutMs NaN', { timeoutMs: NaN }, /timeoutMs/],
    ['timeoutMs string', { timeoutMs: '1s' }, /timeoutMs/],
    ['batch as a string', { batch: 'yes' }, /batch/],
    ['batch as a number', { batch: 10 }, /batch/],
    ['batch.maxSize 0', { batch: { maxSize: 0 } }, /maxSize/],
    ['batch.maxSize negative', { batch: { maxSize: -2 } }, /maxSize/],
    ['batch.maxSize fractional', { batch: { maxSize: 2.5 } }, /maxSize/],
    ['batch.maxSize NaN', { batch: { maxSize: NaN } }, /maxSize/],
    ['batch.maxSize string', { batch: { maxSize: '5' } }, /maxSize/],
    ['batch.maxBytes 0', { batch: { maxBytes: 0 } }, /maxBytes/],
    ['batch.maxBytes negative', { batch: { maxBytes: -1 } }, /maxBytes/],
    ['batch.maxWaitMs negative', { batch: { maxWaitMs: -1 } }, /maxWaitMs/],
    ['batch.maxWaitMs NaN', { batch: { maxWaitMs: NaN } }, /maxWaitMs/],
    ['batch.maxWaitMs string', { batch: { maxWaitMs: '10' } }, /maxWaitMs/],
    ['batch.maxAttempts 0', { batch: { maxAttempts: 0 } }, /maxAttempts/],
    ['batch.maxAttempts negative', { batch: { maxAttempts: -1 } }, /maxAttempts/],
    ['batch.maxAttempts fractional', { batch: { maxAttempts: 1.5 } }, /maxAttempts/],
    ['batch unknown key', { batch: { size: 3 } }, /size/],
    ['batch.backoff not an object', { batch: { backoff: 5 } }, /backoff/],
    ['batch.backoff.initialMs negative', { batch: { backoff: { initialMs: -1 } } }, /initialMs/],
    ['batch.backoff.maxMs NaN', { batch: { backoff: { maxMs: NaN } } }, /maxMs/],
    ['batch.backoff unknown key', { batch: { backoff: { factor: 2 } } }, /factor/],
    ['batch.backoff.maxMs below initialMs', { batch: { backoff: { initialMs: 100, maxMs: 10 } } }, /maxMs/],
  ];
  for (const [label, options, re] of cases) {
    test(`subscribe: ${label} → INVALID_OPTION`, () => {
      const bus = new Bus();
      throwsCode(() => bus.subscribe('t', () => {}, options), 'INVALID_OPTION', re);
      assert.equal(bus.stats().subscriptions, 0);
      assertStillWorks(bus);
    });
  }

  test('subscribe: valid edge values are accepted', () => {
    const bus = new Bus();
    for (const o of [{ concurrency: 1 }, { concurrency: 1000 }, { maxQueue: 0 }, { maxQueue: Infinity },
      { timeoutMs: Infinity }, { timeoutMs: 0.5 }, { batch: true }, { batch: { maxWaitMs: 0 } },
      { batch: { maxSize: 1, maxBytes: 1, maxAttempts: 1, backoff: { initialMs: 0, maxMs: 0 } } }]) {
      assert.equal(bus.subscribe('ok', () => {}, o).active, true);
    }
    assertStillWorks(bus);
  });
});

describe('publish options', () => {
  const cases = [
    ['unknown option', { ttl: 5 }, /ttl/],
    ['options not an object', 'opts', /options/],
    ['options null', null, /options/],
    ['ttlMs 0', { ttlMs: 0 }, /ttlMs/],
    ['ttlMs negative', { ttlMs: -1 }, /ttlMs/],
    ['ttlMs NaN', { ttlMs: NaN }, /ttlMs/],
    ['ttlMs string', { ttlMs: '100' }, /ttlMs/],
    ['id not a string', { id: 5 }, /id/],
    ['id with a lone surrogate', { id: '\uD800' }, /id/],
    ['key not a string', { key: {} }, /key/],
    ['headers not an object', { headers: 'h' }, /headers/],
    ['headers with a non-string value', { headers: { n: 1 } }, /\bn\b/],
    ['ids (publishBatch only)', { ids: ['a'] }, /ids/],
  ];
  for (const [label, options, re] of cases) {
    test(`publish: ${label} → INVALID_OPTION`, async () => {
      const bus = new Bus();
      const got = [];
      bus.subscribe('t', (p) => got.push(p));
      throwsCode(() => bus.publish('t', 1, options), 'INVALID_OPTION', re);
      await rejectsCode(bus.publishAsync('t', 1, options), 'INVALID_OPTION');
      assert.deepEqual(got, []);
      assertStillWorks(bus);
      bus.publish('t', 2);
      assert.deepEqual(got, [2]);
    });
  }
});

describe('publishBatch', () => {
  const cases = [
    ['unknown option', { idz: [] }, /idz/],
    ['id (publish only)', { id: 'x' }, /\bid\b/],
    ['ttlMs 0', { ttlMs: 0 }, /ttlMs/],
    ['ttlMs negative', { ttlMs: -5 }, /ttlMs/],
    ['ttlMs NaN', { ttlMs: NaN }, /ttlMs/],
    ['key not a string', { key: 3 }, /key/],
    ['headers with a non-string value', { headers: { a: null } }, /\ba\b/],
    ['ids shorter than payloads', { ids: ['a'] }, /ids/],
    ['ids longer than payloads', { ids: ['a', 'b', 'c'] }, /ids/],
    ['ids not an array', { ids: 'ab' }, /ids/],
    ['ids with a non-string id', { ids: ['a', 7] }, /ids/],
  ];
  for (const [label, options, re] of cases) {
    test(`publishBatch: ${label} → INVALID_OPTION`, () => {
      const bus = new Bus({ dedupe: true });
      const got = [];
      bus.subscribe('t', (p) => got.push(p));
      throwsCode(() => bus.publishBatch('t', [1, 2], options), 'INVALID_OPTION', re);
      assert.deepEqual(got, []);
      assertStillWorks(bus);
    });
  }

  for (const [label, value] of [['undefined', undefined], ['object', { 0: 1, length: 1 }], ['string', 'ab'],
    ['number', 2], ['null', null], ['Set', new Set([1])]]) {
    test(`publishBatch with a non-array (${label}) → INVALID_ARGUMENT`, () => {
      const bus = new Bus();
      const got = [];
      bus.subscribe('t', (p) => got.push(p));
      throwsCode(() => bus.publishBatch('t', value), 'INVALID_ARGUMENT', /payloads/);
      assert.deepEqual(got, []);
      assertStillWorks(bus);
    });
  }
});

describe('IdempotenceFilter options and arguments', () => {
  const cases = [
    ['unknown option', { maxID: 3 }, /maxID/],
    ['options not an object', 12, /options/],
    ['maxIds 0', { maxIds: 0 }, /maxIds/],
    ['maxIds negative', { maxIds: -1 }, /maxIds/],
    ['maxIds NaN', { maxIds: NaN }, /maxIds/],
    ['maxIds string', { maxIds: '10' }, /maxIds/],
    ['maxIds fractional', { maxIds: 2.5 }, /maxIds/],
    ['maxAgeMs 0', { maxAgeMs: 0 }, /maxAgeMs/],
    ['maxAgeMs negative', { maxAgeMs: -1 }, /maxAgeMs/],
    ['maxAgeMs string', { maxAgeMs: '1m' }, /maxAgeMs/],
    ['clock without now()', { clock: { time: () => 0 } }, /clock/],
    ['clock.now() returns a Symbol (with an age limit)', { maxAgeMs: 10, clock: { now: () => Symbol('t') } }, /clock.*now\(\) must return a finite number/],
  ];
  for (const [label, options, re] of cases) {
    test(`IdempotenceFilter: ${label} → INVALID_OPTION`, () => {
      throwsCode(() => new IdempotenceFilter(options), 'INVALID_OPTION', re);
    });
  }

  for (const [label, value] of [['number', 1], ['undefined', undefined], ['null', null], ['object', {}],
    ['symbol', Symbol('id')], ['lone surrogate', '\uD800']]) {
    test(`IdempotenceFilter: check/has with a ${label} id → INVALID_ARGUMENT`, () => {
      const f = new IdempotenceFilter();
      throwsCode(() => f.check(value), 'INVALID_ARGUMENT', /id/);
      throwsCode(() => f.has(value), 'INVALID_ARGUMENT', /id/);
      assert.equal(f.size, 0);
      assert.equal(f.check('fine'), true);
      assert.equal(f.check('fine'), false);
    });
  }
});

describe('Batcher options', () => {
  const cases = [
    ['unknown option', { maxSise: 3 }, /maxSise/],
    ['options not an object', 'x', /options/],
    ['maxSize 0', { maxSize: 0 }, /maxSize/],
    ['maxSize NaN', { maxSize: NaN }, /maxSize/],
    ['maxSize Infinity', { maxSize: Infinity }, /maxSize/],
    ['maxSize string', { maxSize: '3' }, /maxSize/],
    ['maxBytes negative', { maxBytes: -1 }, /maxBytes/],
    ['maxWaitMs negative', { maxWaitMs: -1 }, /maxWaitMs/],
    ['maxAttempts 0', { maxAttempts: 0 }, /maxAttempts/],
    ['backoff.initialMs string', { backoff: { initialMs: '5' } }, /initialMs/],
    ['backoff unknown key', { backoff: { jitter: true } }, /jitter/],
    ['sizeOf not a function', { sizeOf: 'len' }, /sizeOf/],
    ['onError not a function', { onError: {} }, /onError/],
    ['clock without now()', { clock: {} }, /clock/],
    ['clock.now() returns a BigInt', { clock: { now: () => 1n } }, /clock.*now\(\) must return a finite number/],
  ];
  for (const [label, options, re] of cases) {
    test(`Batcher: ${label} → INVALID_OPTION`, async () => {
      throwsCode(() => new Batcher(() => {}, options), 'INVALID_OPTION', re);
      // a valid batcher still works
      const got = [];
      // A wait far beyond the test's run: the batch is made by size alone, whatever the load
      // (the default wait is 10 ms, which a pause between the two adds can pass).
      const b = new Batcher((items) => { got.push(items); }, { maxSize: 2, maxWaitMs: 60_000 });
      b.add(1);
      b.add(2);
      await b.drain();
      assert.deepEqual(got, [[1, 2]]);
    });
  }
});

describe('lifecycle misuse', () => {
  test('publish, publishBatch, subscribe after close → CLOSED; publishAsync rejects CLOSED', async () => {
    const bus = new Bus();
    const got = [];
    bus.subscribe('t', (p) => got.push(p));
    await bus.close();
    throwsCode(() => bus.publish('t', 1), 'CLOSED');
    throwsCode(() => bus.publish('t', 1, { id: 'x' }), 'CLOSED');
    throwsCode(() => bus.publishBatch('t', [1]), 'CLOSED');
    throwsCode(() => bus.subscribe('t', () => {}), 'CLOSED');
    await rejectsCode(bus.publishAsync('t', 1), 'CLOSED');
    assert.deepEqual(got, []);
  });

  test('unsubscribing twice: second returns false, no throw, others unaffected', () => {
    const bus = new Bus();
    const sub = bus.subscribe('t', () => {});
    assert.equal(sub.unsubscribe(), true);
    assert.equal(sub.unsubscribe(), false);
    assert.equal(sub.unsubscribe(), false);
    assertStillWorks(bus);
  });

  test('a handler that throws a string or undefined is isolated and reported', (t) => {
    t.mock.method(console, 'error', () => {});
    const reported = [];
    const bus = new Bus({ onError: (e) => reported.push(e) });
    bus.subscribe('t', (p) => { throw p; });
    bus.publish('t', 'str');
    bus.publish('t', undefined);
    assert.deepEqual(reported, ['str', undefined]);
    assertStillWorks(bus);
  });

  test('errors are EdgebusError instances whose message names the problem', () => {
    const bus = new Bus();
    try {
      bus.subscribe('t', () => {}, { concurrency: 0 });
      assert.fail('expected a throw');
    } catch (e) {
      assert.ok(e instanceof EdgebusError && e instanceof Error);
      assert.equal(e.code, 'INVALID_OPTION');
      assert.match(e.message, /concurrency/);
    }
  });
});

test('signal options: only a genuine AbortSignal, read through the platform\'s accessors', async () => {
  const bus = new Bus();
  bus.subscribe('svc', (n) => n);
  const fakes = [
    {}, { aborted: false, addEventListener() {}, removeEventListener() {} }, 'signal', 1, null,
    new Proxy({}, { get() { throw new Error('trap'); } }), new EventTarget(),
    // instanceof AbortSignal, yet not one: the platform's accessor throws on it
    Object.create(AbortSignal.prototype),
  ];
  for (const signal of fakes) {
    throwsCode(() => bus.subscribe('a', () => {}, { signal }), 'INVALID_OPTION', /signal/);
    throwsCode(() => bus.stream('a', { signal }), 'INVALID_OPTION', /signal/);
    await rejectsCode(bus.request('svc', 1, { signal }), 'INVALID_OPTION');
    await rejectsCode(bus.once('a', { signal }), 'INVALID_OPTION');
    await rejectsCode(bus.publishAsync('a', 1, { signal }), 'INVALID_OPTION');
    await rejectsCode(bus.drain({ signal }), 'INVALID_OPTION');
  }
  // A genuine signal whose own properties lie or throw: the bus reads the real state.
  const ac = new AbortController();
  const s = ac.signal;
  Object.defineProperty(s, 'aborted', { get() { throw new Error('lying getter'); } });
  s.addEventListener = () => { throw new Error('lying listener'); };
  s.removeEventListener = () => { throw new Error('lying listener'); };
  assert.equal(await bus.request('svc', 7, { signal: s }), 7);
  const waiting = bus.once('later', { signal: s });
  ac.abort(new Error('real reason'));
  const e = await rejectsCode(waiting, 'ABORTED');
  assert.equal(e.cause.message, 'real reason');
  const st = bus.stats();
  assert.deepEqual([st.subscriptions, st.requests.sent, st.requests.pending], [1, 1, 0], 'nothing published or left by the refusals');
  assertStillWorks(bus);
});
