import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock, EdgebusError } from 'edgebus';
import { settle, assertStillWorks } from './support/helpers.mjs';

test('a throwing handler does not stop delivery to the others; onError gets (error, message, subscription)', () => {
  const calls = [];
  const bus = new Bus({ onError: (...args) => calls.push(args) });
  const got = [];
  bus.subscribe('t', (p) => { got.push(['before', p]); });
  const bad = bus.subscribe('t', () => { throw new Error('boom'); });
  bus.subscribe('t', (p) => { got.push(['after', p]); });
  assert.equal(bus.publish('t', 1, { id: 'i1' }), true);
  assert.deepEqual(got, [['before', 1], ['after', 1]]);
  assert.equal(calls.length, 1);
  const [err, msg, sub] = calls[0];
  assert.ok(err instanceof Error);
  assert.equal(err.message, 'boom');
  assert.equal(msg.topic, 't');
  assert.equal(msg.payload, 1);
  assert.equal(msg.id, 'i1');
  assert.equal(sub, bad);
  assert.equal(bad.stats().failed, 1);
  assert.equal(bus.stats().failed, 1);
  bus.publish('t', 2);
  assert.deepEqual(got.slice(2), [['before', 2], ['after', 2]]);
  assert.equal(bus.stats().failed, 2);
});

test('a one-parameter throwing handler still gets a full message in onError', () => {
  const calls = [];
  const bus = new Bus({ onError: (e, m) => calls.push(m) });
  bus.subscribe('x.y', (p) => { throw new Error(String(p)); });
  bus.publish('x.y', 'pay', { key: 'k' });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].topic, 'x.y');
  assert.equal(calls[0].payload, 'pay');
  assert.equal(calls[0].key, 'k');
});

test('a rejecting async handler is isolated, reported once and counted', async () => {
  const calls = [];
  const bus = new Bus({ onError: (e, m, s) => calls.push([e, m, s]) });
  const got = [];
  const bad = bus.subscribe('t', async (p) => { await null; throw new Error(`rejected ${p}`); });
  bus.subscribe('t', (p) => { got.push(p); });
  bus.publish('t', 1);
  bus.publish('t', 2);
  assert.deepEqual(got, [1, 2]);
  await bus.drain();
  await settle();
  assert.equal(calls.length, 2);
  assert.deepEqual(calls.map((c) => c[0].message), ['rejected 1', 'rejected 2']);
  assert.deepEqual(calls.map((c) => c[1].payload), [1, 2]);
  assert.ok(calls.every((c) => c[2] === bad));
  assert.equal(bad.stats().failed, 2);
  assert.equal(bus.stats().failed, 2);
});

test('failures are published on $errors with {error, message, subscription: {id, pattern}}', () => {
  const bus = new Bus();
  const reports = [];
  bus.subscribe('$errors', (p) => { reports.push(p); });
  const wildcard = [];
  bus.subscribe('>', (p, m) => { wildcard.push(m.topic); });
  const bad = bus.subscribe('orders.*', () => { throw new TypeError('bad order'); });
  bus.publish('orders.eu', { n: 1 });
  assert.equal(reports.length, 1);
  const r = reports[0];
  assert.ok(r.error instanceof TypeError);
  assert.equal(r.error.message, 'bad order');
  assert.equal(r.message.topic, 'orders.eu');
  assert.deepEqual(r.message.payload, { n: 1 });
  assert.deepEqual(r.subscription, { id: bad.id, pattern: 'orders.*' });
  assert.deepEqual(wildcard, ['orders.eu'], '`>` does not receive $errors');
});

test('onError and $errors both receive the failure', () => {
  const viaOnError = [];
  const bus = new Bus({ onError: (e) => viaOnError.push(e) });
  const viaTopic = [];
  bus.subscribe('$errors', (p) => { viaTopic.push(p.error); });
  bus.subscribe('t', () => { throw new Error('x'); });
  bus.publish('t', 0);
  assert.equal(viaOnError.length, 1);
  assert.equal(viaTopic.length, 1);
  assert.equal(viaOnError[0], viaTopic[0]);
});

test('without onError and without a $errors subscriber, failures are logged with console.error', (t) => {
  const logged = [];
  t.mock.method(console, 'error', (...args) => { logged.push(args); });
  const bus = new Bus();
  const got = [];
  bus.subscribe('t', () => { throw new Error('logged failure'); });
  bus.subscribe('t', (p) => { got.push(p); });
  bus.publish('t', 1);
  assert.deepEqual(got, [1]);
  assert.equal(logged.length, 1);
  assert.ok(logged[0].some((a) => a instanceof Error && a.message === 'logged failure'));
  assert.equal(bus.stats().failed, 1);
});

test('with onError, failures are not logged to the console', (t) => {
  const logged = [];
  t.mock.method(console, 'error', (...args) => { logged.push(args); });
  const bus = new Bus({ onError: () => {} });
  bus.subscribe('t', () => { throw new Error('quiet'); });
  bus.publish('t', 1);
  assert.equal(logged.length, 0);
});

test('handlers throwing non-Error values (string, undefined, null, number) are isolated and reported', async () => {
  const reports = [];
  const bus = new Bus({ onError: (e, m) => reports.push([e, m.payload]) });
  const values = ['a string', undefined, null, 42];
  const after = [];
  bus.subscribe('t', (p) => { throw values[p]; });
  bus.subscribe('t', (p) => { after.push(p); });
  for (let i = 0; i < values.length; i++) bus.publish('t', i);
  assert.deepEqual(after, [0, 1, 2, 3]);
  assert.equal(reports.length, values.length);
  for (let i = 0; i < values.length; i++) {
    assert.ok(Object.is(reports[i][0], values[i]), `thrown value ${i}`);
    assert.equal(reports[i][1], i);
  }
  // rejections with non-Error values too
  const rej = [];
  const bus2 = new Bus({ onError: (e) => rej.push(e) });
  bus2.subscribe('t', async () => { throw 'rejected string'; });
  bus2.subscribe('t', () => Promise.reject(undefined));
  bus2.publish('t', 1);
  await bus2.drain();
  await settle();
  assert.equal(rej.length, 2);
  assert.ok(rej.includes('rejected string'));
  assert.ok(rej.includes(undefined));
  assert.equal(bus2.stats().failed, 2);
  assertStillWorks(bus);
});

test('a non-Error throw with no onError reaches $errors', () => {
  const bus = new Bus();
  const reports = [];
  bus.subscribe('$errors', (p) => reports.push(p));
  bus.subscribe('t', () => { throw undefined; });
  bus.publish('t', 1);
  assert.equal(reports.length, 1);
  assert.equal(reports[0].error, undefined);
  assert.ok('error' in reports[0]);
  assert.equal(reports[0].message.payload, 1);
});

test('an onError that throws does not break the bus', (t) => {
  t.mock.method(console, 'error', () => {});
  const bus = new Bus({ onError: () => { throw new Error('onError broke'); } });
  const got = [];
  bus.subscribe('t', () => { throw new Error('x'); });
  bus.subscribe('t', (p) => { got.push(p); });
  bus.publish('t', 1);
  assert.deepEqual(got, [1]);
  assertStillWorks(bus);
});

test('a failing $errors handler is not republished on $errors (no loop)', (t) => {
  t.mock.method(console, 'error', () => {});
  const bus = new Bus();
  let calls = 0;
  bus.subscribe('$errors', () => { calls++; throw new Error('errors handler fails'); });
  bus.subscribe('t', () => { throw new Error('first'); });
  bus.publish('t', 1);
  assert.equal(calls, 1);
  assertStillWorks(bus);
});

test('HANDLER_TIMEOUT is published on $errors too', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  const reports = [];
  bus.subscribe('$errors', (p) => reports.push(p));
  const sub = bus.subscribe('slow', () => new Promise(() => {}), { timeoutMs: 5 });
  bus.publish('slow', 'x');
  bus.publish('slow', 'y');
  clock.advance(5);
  await settle();
  assert.ok(reports.length >= 1);
  assert.ok(reports[0].error instanceof EdgebusError);
  assert.equal(reports[0].error.code, 'HANDLER_TIMEOUT');
  assert.equal(reports[0].message.payload, 'x');
  assert.deepEqual(reports[0].subscription, { id: sub.id, pattern: 'slow' });
});
