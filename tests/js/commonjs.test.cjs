'use strict';
// The CommonJS entry: same classes as the ESM one, and the core behaviours work through require().
const { test } = require('node:test');
const assert = require('node:assert/strict');
const edgebus = require('edgebus');
const { Bus, Batcher, IdempotenceFilter, ManualClock, EdgebusError, Subscription } = edgebus;

function throwsCode(fn, code) {
  assert.throws(fn, (e) => e instanceof EdgebusError && e instanceof Error && e.code === code);
}

test('require and import give the very same classes', async () => {
  const esm = await import('edgebus');
  for (const name of ['Bus', 'Batcher', 'IdempotenceFilter', 'ManualClock', 'EdgebusError', 'Subscription']) {
    assert.equal(typeof edgebus[name], 'function', name);
    assert.equal(esm[name], edgebus[name], name);
  }
  // an error thrown by a bus made through one entry is an instance of the other entry's class
  const bus = new esm.Bus();
  throwsCode(() => bus.publish('', 1), 'INVALID_TOPIC');
});

test('publish/subscribe: sync delivery, order, envelope, wildcards', () => {
  const clock = new ManualClock(5);
  const bus = new Bus({ clock });
  const log = [];
  const sub = bus.subscribe('a.*', (p, m) => log.push(['star', p, m.topic, m.publishedAt]));
  bus.subscribe('a.>', (p) => log.push(['rest', p]));
  assert.ok(sub instanceof Subscription);
  assert.equal(bus.publish('a.b', 1), true);
  bus.publish('a.b.c', 2);
  assert.deepEqual(log, [['star', 1, 'a.b', 5], ['rest', 1], ['rest', 2]]);
  assert.equal(sub.unsubscribe(), true);
  assert.equal(sub.unsubscribe(), false);
  bus.publish('a.b', 3);
  assert.deepEqual(log.slice(3), [['rest', 3]]);
});

test('errors: isolation, onError, $errors, codes', async () => {
  const seen = [];
  const bus = new Bus({ onError: (e, m) => seen.push([e.message, m.payload]) });
  const reports = [];
  bus.subscribe('$errors', (p) => reports.push(p.subscription.pattern));
  const after = [];
  bus.subscribe('t', () => { throw new Error('bad'); });
  bus.subscribe('t', (p) => after.push(p));
  bus.publish('t', 'x');
  assert.deepEqual(after, ['x']);
  assert.deepEqual(seen, [['bad', 'x']]);
  assert.deepEqual(reports, ['t']);
  assert.equal(bus.stats().failed, 1);
  throwsCode(() => bus.publish(1, 1), 'INVALID_TOPIC');
  throwsCode(() => bus.subscribe('a..b', () => {}), 'INVALID_PATTERN');
  throwsCode(() => bus.subscribe('a', 'nope'), 'INVALID_HANDLER');
  throwsCode(() => bus.subscribe('a', () => {}, { concurrency: 0 }), 'INVALID_OPTION');
  throwsCode(() => bus.publishBatch('t', 'x'), 'INVALID_ARGUMENT');
  throwsCode(() => new Bus({ nope: 1 }), 'INVALID_OPTION');
  bus.publish('t', 'y');
  assert.deepEqual(after, ['x', 'y']);
  await bus.close();
  throwsCode(() => bus.publish('t', 'z'), 'CLOSED');
  await assert.rejects(bus.publishAsync('t', 'z'), (e) => e.code === 'CLOSED');
});

test('async handlers, dedupe, IdempotenceFilter and Batcher through require()', async () => {
  const bus = new Bus({ dedupe: true });
  const got = [];
  bus.subscribe('j', async (p) => { await null; got.push(p); });
  bus.publish('j', 1, { id: 'a' });
  assert.equal(bus.publish('j', 2, { id: 'a' }), false);
  bus.publish('j', 3);
  await bus.drain();
  assert.deepEqual(got, [1, 3]);
  assert.equal(bus.stats().duplicates, 1);

  const f = new IdempotenceFilter({ maxIds: 2 });
  assert.equal(f.check('x'), true);
  assert.equal(f.check('x'), false);
  throwsCode(() => f.check(1), 'INVALID_ARGUMENT');

  const batches = [];
  const b = new Batcher((items) => { batches.push(items); }, { maxSize: 2, clock: new ManualClock(0) });
  b.add('a');
  b.add('b');
  b.add('c');
  await b.close();
  assert.deepEqual(batches, [['a', 'b'], ['c']]);
  throwsCode(() => b.add('d'), 'CLOSED');
});
