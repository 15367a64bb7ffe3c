import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock, Subscription, EdgebusError } from 'edgebus';
import { settle } from './support/helpers.mjs';

test('publish delivers synchronously, in subscription order, before returning', () => {
  const bus = new Bus();
  const log = [];
  bus.subscribe('a.b', (p) => { log.push(['exact', p]); });
  bus.subscribe('a.*', (p) => { log.push(['star', p]); });
  bus.subscribe('a.>', (p) => { log.push(['rest', p]); });
  bus.subscribe('x.y', (p) => { log.push(['other', p]); });
  assert.equal(bus.publish('a.b', 1), true);
  assert.deepEqual(log, [['exact', 1], ['star', 1], ['rest', 1]]);
  assert.equal(bus.publish('a.b.c', 2), true);
  assert.deepEqual(log.slice(3), [['rest', 2]]);
  assert.equal(bus.publish('nobody.listens', 3), true);
  assert.equal(log.length, 4);
});

test('subscribe returns a Subscription with id, pattern, active', () => {
  const bus = new Bus();
  const s1 = bus.subscribe('a.*', () => {});
  const s2 = bus.subscribe('b.>', () => {});
  assert.ok(s1 instanceof Subscription);
  assert.equal(s1.pattern, 'a.*');
  assert.equal(s2.pattern, 'b.>');
  assert.notEqual(s1.id, s2.id);
  assert.equal(s1.active, true);
  assert.equal(s1.unsubscribe(), true);
  assert.equal(s1.active, false);
  assert.equal(s2.active, true);
});

test('a handler with two parameters gets the message envelope', () => {
  const clock = new ManualClock(12345);
  const bus = new Bus({ clock });
  const got = [];
  bus.subscribe('orders.*', (payload, msg) => { got.push([payload, msg]); });
  const payload = { n: 1 };
  const headers = { trace: 'abc' };
  bus.publish('orders.eu', payload, { id: 'm1', key: 'k1', ttlMs: 5000, headers });
  assert.equal(got.length, 1);
  const [p, msg] = got[0];
  assert.equal(p, payload);
  assert.equal(msg.topic, 'orders.eu');
  assert.equal(msg.payload, payload);
  assert.equal(msg.publishedAt, 12345);
  assert.equal(msg.id, 'm1');
  assert.equal(msg.key, 'k1');
  assert.equal(msg.ttlMs, 5000);
  assert.deepEqual(msg.headers, { trace: 'abc' });
});

test('envelope without options has no id/key/headers/ttlMs', () => {
  const clock = new ManualClock(7);
  const bus = new Bus({ clock });
  let msg;
  bus.subscribe('t', (_p, m) => { msg = m; });
  bus.publish('t', 'x');
  assert.equal(msg.topic, 't');
  assert.equal(msg.payload, 'x');
  assert.equal(msg.publishedAt, 7);
  for (const k of ['id', 'key', 'headers', 'ttlMs']) assert.equal(msg[k], undefined, k);
});

test('handler arity: one parameter gets only the payload; zero or rest parameters get the envelope', () => {
  const bus = new Bus();
  let oneArgs;
  let zeroArgs;
  let restArgs;
  let threeArgs;
  bus.subscribe('t', function one(p) { oneArgs = arguments.length; void p; });
  bus.subscribe('t', function zero() { zeroArgs = [...arguments]; });
  bus.subscribe('t', (...args) => { restArgs = args; });
  bus.subscribe('t', function three(a, b, c) { threeArgs = [a, b, c]; });
  bus.publish('t', 'payload');
  assert.equal(oneArgs, 1);
  assert.equal(zeroArgs.length, 2);
  assert.equal(zeroArgs[0], 'payload');
  assert.equal(zeroArgs[1].topic, 't');
  assert.equal(restArgs.length, 2);
  assert.equal(restArgs[1].payload, 'payload');
  assert.equal(threeArgs[0], 'payload');
  assert.equal(threeArgs[1].topic, 't');
});

test('payloads of every JS type are delivered as the same value (identity, no cloning)', () => {
  const cyclic = { name: 'c' };
  cyclic.self = cyclic;
  const fn = () => 42;
  const sym = Symbol('s');
  const arr = [1, 2, 3];
  const buf = new Uint8Array([1, 2]);
  const payloads = [undefined, null, 0, -0, NaN, 1.5, '', 'text', true, false, sym, fn, 10n ** 30n,
    cyclic, arr, buf, new Map([[1, 2]]), new Date(0), new Error('e'), Object.create(null)];
  const bus = new Bus();
  const gotOne = [];
  const gotTwo = [];
  const gotEnv = [];
  bus.subscribe('p.*', (p) => { gotOne.push(p); });
  bus.subscribe('p.>', (p, m) => { gotTwo.push(p); gotEnv.push(m.payload); });
  for (const p of payloads) assert.equal(bus.publish('p.x', p), true);
  assert.equal(gotOne.length, payloads.length);
  assert.equal(gotTwo.length, payloads.length);
  for (let i = 0; i < payloads.length; i++) {
    assert.ok(Object.is(gotOne[i], payloads[i]), `one-arg payload ${i}`);
    assert.ok(Object.is(gotTwo[i], payloads[i]), `two-arg payload ${i}`);
    assert.ok(Object.is(gotEnv[i], payloads[i]), `envelope payload ${i}`);
  }
});

test('payload identity also holds through the queue (busy async subscriber)', async () => {
  const bus = new Bus();
  const cyclic = {};
  cyclic.me = cyclic;
  const payloads = [undefined, Symbol('q'), () => 1, 5n, null, cyclic];
  const got = [];
  bus.subscribe('q', async (p) => { got.push(p); await null; });
  for (const p of payloads) bus.publish('q', p);
  await bus.drain();
  assert.equal(got.length, payloads.length);
  for (let i = 0; i < payloads.length; i++) assert.ok(Object.is(got[i], payloads[i]), `payload ${i}`);
});

test('publish inside a handler: delivered after the current handler, before the outer publish returns', () => {
  const bus = new Bus();
  const log = [];
  bus.subscribe('first', () => {
    log.push('first:start');
    bus.publish('second', 'inner');
    log.push('first:end');
  });
  bus.subscribe('first', () => { log.push('first-b'); });
  bus.subscribe('second', (p) => { log.push(`second:${p}`); });
  bus.publish('first', 'outer');
  log.push('returned');
  assert.deepEqual(log, ['first:start', 'first:end', 'first-b', 'second:inner', 'returned']);
});

test('a chain of 1,000,000 handler-to-handler publishes does not overflow the stack', () => {
  const bus = new Bus();
  const N = 1_000_000;
  let count = 0;
  let last = -1;
  bus.subscribe('chain', (n) => {
    count++;
    last = n;
    if (n < N) bus.publish('chain', n + 1);
  });
  bus.publish('chain', 1);
  assert.equal(count, N);
  assert.equal(last, N);
});

test('a publish chain through two topics keeps the run-to-completion order', () => {
  const bus = new Bus();
  const log = [];
  bus.subscribe('ping', (n) => { log.push(`ping${n}`); if (n < 3) bus.publish('pong', n); });
  bus.subscribe('pong', (n) => { log.push(`pong${n}`); bus.publish('ping', n + 1); });
  bus.publish('ping', 1);
  assert.deepEqual(log, ['ping1', 'pong1', 'ping2', 'pong2', 'ping3']);
});

test('unsubscribe: true the first time, false after, never throws; no more deliveries', () => {
  const bus = new Bus();
  const got = [];
  const sub = bus.subscribe('t', (p) => { got.push(p); });
  bus.publish('t', 1);
  assert.equal(sub.unsubscribe(), true);
  assert.equal(sub.unsubscribe(), false);
  assert.doesNotThrow(() => sub.unsubscribe());
  assert.equal(sub.active, false);
  bus.publish('t', 2);
  assert.deepEqual(got, [1]);
  // the bus keeps working
  const other = [];
  bus.subscribe('t', (p) => { other.push(p); });
  bus.publish('t', 3);
  assert.deepEqual(other, [3]);
  assert.deepEqual(got, [1]);
});

test('a handler may subscribe during dispatch; the new subscription gets later messages', () => {
  const bus = new Bus();
  const late = [];
  let subscribed = false;
  bus.subscribe('t', () => {
    if (!subscribed) {
      subscribed = true;
      bus.subscribe('t', (p) => { late.push(p); });
    }
  });
  bus.publish('t', 1);
  bus.publish('t', 2);
  // Whether the message being dispatched reaches the new subscription is unspecified; later ones must.
  assert.ok(JSON.stringify(late) === '[2]' || JSON.stringify(late) === '[1,2]', `got ${JSON.stringify(late)}`);
});

test('a handler may unsubscribe a later subscription during dispatch: it receives nothing not started', () => {
  const bus = new Bus();
  const gotB = [];
  let subB;
  bus.subscribe('t', (p) => { if (p === 1) subB.unsubscribe(); });
  subB = bus.subscribe('t', (p) => { gotB.push(p); });
  bus.publish('t', 1);
  bus.publish('t', 2);
  assert.deepEqual(gotB, []);
});

test('a handler may unsubscribe itself during dispatch', () => {
  const bus = new Bus();
  const got = [];
  const others = [];
  const sub = bus.subscribe('t', (p) => { got.push(p); sub.unsubscribe(); });
  bus.subscribe('t', (p) => { others.push(p); });
  bus.publish('t', 1);
  bus.publish('t', 2);
  assert.deepEqual(got, [1]);
  assert.deepEqual(others, [1, 2]);
});

test('unsubscribe cancels queued messages (counted as cancelled) and they are never delivered', async () => {
  const bus = new Bus();
  const started = [];
  const gates = [];
  const sub = bus.subscribe('work', (p) => {
    started.push(p);
    return new Promise((r) => gates.push(r));
  });
  for (let i = 0; i < 5; i++) bus.publish('work', i);
  assert.deepEqual(started, [0]);
  assert.equal(sub.stats().queued, 4);
  assert.equal(sub.unsubscribe(), true);
  const st = sub.stats();
  assert.equal(st.cancelled, 4);
  assert.equal(st.queued, 0);
  gates[0]();
  await settle();
  await bus.drain();
  assert.deepEqual(started, [0]);
  assert.equal(bus.stats().cancelled, 4);
});

test('unsubscribe of a later subscription from inside an async dispatch cancels its queue', async () => {
  const bus = new Bus();
  const gotB = [];
  const gate = [];
  let subB;
  bus.subscribe('t', (p) => { if (p === 'stop') subB.unsubscribe(); });
  subB = bus.subscribe('t', (p) => { gotB.push(p); return new Promise((r) => gate.push(r)); });
  bus.publish('t', 'a');
  bus.publish('t', 'b');
  bus.publish('t', 'stop');
  assert.deepEqual(gotB, ['a']);
  gate[0]();
  await settle();
  await bus.drain();
  assert.deepEqual(gotB, ['a']);
  assert.equal(subB.stats().cancelled, 2);
});

test('EdgebusError is an Error with a code', () => {
  const bus = new Bus();
  try {
    bus.publish('', 1);
    assert.fail('expected a throw');
  } catch (e) {
    assert.ok(e instanceof EdgebusError);
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'INVALID_TOPIC');
    assert.equal(e.name, 'EdgebusError');
  }
});
