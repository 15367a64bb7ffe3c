import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock } from 'edgebus';
import { settle, deferred, rejectsCode, assertStillWorks } from './support/helpers.mjs';

test('a handler return value is the reply; a promise resolves to it', async () => {
  const bus = new Bus();
  bus.subscribe('math.double', (n) => n * 2);
  bus.subscribe('math.inc', async (n) => n + 1);
  assert.equal(await bus.request('math.double', 21), 42);
  assert.equal(await bus.request('math.inc', 1), 2);
  const r = bus.stats().requests;
  assert.deepEqual([r.sent, r.replies, r.pending, r.late], [2, 2, 0, 0]);
});

test('message.reply answers while the delivery lasts; a second answer is late and ignored', async () => {
  const bus = new Bus();
  const answered = [];
  bus.subscribe('later', (p, m) => new Promise((done) => {
    setTimeout(() => {
      answered.push(m.reply(p * 10));
      answered.push(m.reply(p * 100));
      done();
    }, 1);
  }));
  assert.equal(await bus.request('later', 4), 40);
  assert.deepEqual(answered, [true, false]);
  assert.equal(bus.stats().requests.late, 1);
  // An arrow handler that returns what reply() returned does not answer twice.
  bus.subscribe('arrow', (p, m) => m.reply(p));
  assert.equal(await bus.request('arrow', 7), 7);
  assert.equal(bus.stats().requests.late, 1);
});

test('no responder rejects at once with NO_RESPONDERS and publishes nothing', async () => {
  const bus = new Bus();
  const e = await rejectsCode(bus.request('nobody.home', 1), 'NO_RESPONDERS');
  assert.match(e.message, /"nobody\.home"/);
  const st = bus.stats();
  assert.equal(st.published, 0);
  assert.equal(st.requests.noResponders, 1);
  assertStillWorks(bus);
});

test('a request without a reply times out on the bus clock; a late reply is counted', async () => {
  const clock = new ManualClock(1000);
  const bus = new Bus({ clock });
  const gate = deferred();
  bus.subscribe('slow', async (n) => { await gate.promise; return n; });
  const p = bus.request('slow', 1, { timeoutMs: 250 });
  let settled = false;
  p.then(() => { settled = true; }, () => { settled = true; });
  clock.advance(249);
  await settle();
  assert.equal(settled, false);
  clock.advance(1);
  const e = await rejectsCode(p, 'TIMEOUT');
  assert.match(e.message, /250 ms/);
  gate.resolve();
  await settle();
  const r = bus.stats().requests;
  assert.deepEqual([r.timedOut, r.late, r.pending], [1, 1, 0]);
});

test('a failing responder rejects with HANDLER_FAILED and its error as the cause', async () => {
  const errors = [];
  const bus = new Bus({ onError: (e) => errors.push(e) });
  const boom = new Error('division by zero');
  bus.subscribe('div', (n) => { if (n === 0) throw boom; return 100 / n; });
  assert.equal(await bus.request('div', 4), 25);
  const e = await rejectsCode(bus.request('div', 0), 'HANDLER_FAILED');
  assert.equal(e.cause, boom);
  assert.match(e.message, /division by zero/);
  assert.equal(errors.length, 1, 'still reported as a handler failure');
  const st = bus.stats();
  assert.deepEqual([st.failed, st.requests.failed], [1, 1]);
});

test('with several responders, one failure waits for the others; all failing rejects', async () => {
  const bus = new Bus({ onError: () => {} });
  bus.subscribe('mixed', () => { throw new Error('first'); });
  bus.subscribe('mixed', (n) => n + 1);
  assert.equal(await bus.request('mixed', 1), 2);
  bus.subscribe('bad', () => { throw new Error('a'); });
  bus.subscribe('bad', async () => { throw new Error('b'); });
  const e = await rejectsCode(bus.request('bad', 1), 'HANDLER_FAILED');
  assert.match(e.message, /: b$/);
});

test('a queue group answers as a load-balanced service: exactly one member per request', async () => {
  const bus = new Bus();
  const calls = [];
  for (const member of ['a', 'b', 'c']) {
    bus.subscribe('svc.id', () => { calls.push(member); return member; }, { group: 'ids' });
  }
  const replies = [];
  for (let i = 0; i < 9; i++) replies.push(await bus.request('svc.id', i));
  assert.equal(calls.length, 9);
  assert.deepEqual(replies, calls);
  assert.ok(new Set(calls).size > 1, `load spread over members: ${calls}`);
  const all = [];
  for await (const r of bus.requestMany('svc.id', 0)) all.push(r);
  assert.equal(all.length, 1, 'a group answers once');
});

test('requestMany gathers every responder, honours max, and ends at its timeout', async () => {
  const clock = new ManualClock();
  const bus = new Bus({ clock });
  for (const k of [1, 2, 3]) bus.subscribe('quote', (n) => n * k);
  const all = [];
  for await (const r of bus.requestMany('quote', 10)) all.push(r);
  assert.deepEqual(all.sort((a, b) => a - b), [10, 20, 30]);
  const two = [];
  for await (const r of bus.requestMany('quote', 1, { max: 2 })) two.push(r);
  assert.deepEqual(two, [1, 2]);
  // A responder that never answers: the gathering ends at the timeout, without an error.
  bus.subscribe('quote', () => new Promise(() => {}));
  const it = bus.requestMany('quote', 5, { timeoutMs: 100 });
  const got = [];
  const done = (async () => { for await (const r of it) got.push(r); })();
  await settle();
  assert.deepEqual(got, [5, 10, 15]);
  clock.advance(100);
  await done;
  assert.equal(bus.stats().requests.timedOut, 1);
});

test('requestMany: leaving the loop gives the request up; its errors surface from the loop', async () => {
  const bus = new Bus();
  bus.subscribe('q', (n) => n);
  bus.subscribe('q', (n) => new Promise((r) => setTimeout(() => r(n + 1), 5)));
  for await (const r of bus.requestMany('q', 1)) {
    assert.equal(r, 1);
    break;
  }
  assert.equal(bus.stats().requests.cancelled, 1);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(bus.stats().requests.late, 1);
  await assert.rejects(async () => {
    for await (const r of bus.requestMany('none', 1)) assert.fail(`got ${r}`);
  }, { code: 'NO_RESPONDERS' });
  await assert.rejects(async () => {
    for await (const r of bus.requestMany('q', 1, { max: 0 })) assert.fail(`got ${r}`);
  }, { code: 'INVALID_OPTION' });
});

test('an AbortSignal gives a request up with ABORTED, before or while it waits', async () => {
  const bus = new Bus();
  const gate = deferred();
  bus.subscribe('slow', async (n) => { await gate.promise; return n; });
  const before = AbortSignal.abort(new Error('never mind'));
  const e1 = await rejectsCode(bus.request('slow', 1, { signal: before }), 'ABORTED');
  assert.equal(e1.cause.message, 'never mind');
  assert.equal(bus.stats().requests.sent, 0, 'nothing was published');
  const ac = new AbortController();
  const p = bus.request('slow', 2, { signal: ac.signal });
  ac.abort(new Error('user left'));
  const e2 = await rejectsCode(p, 'ABORTED');
  assert.equal(e2.cause.message, 'user left');
  const it = bus.requestMany('slow', 3, { signal: AbortSignal.timeout(5) });
  await assert.rejects(async () => { for await (const r of it) assert.fail(`got ${r}`); }, { code: 'ABORTED' });
  gate.resolve();
  await settle();
  const r = bus.stats().requests;
  assert.deepEqual([r.cancelled, r.late, r.pending], [2, 2, 0]);
});

test('a handler that completes without a reply declines; all declining is NO_RESPONDERS', async () => {
  const bus = new Bus();
  const seen = [];
  bus.subscribe('log.>', (p) => { seen.push(p); });
  bus.subscribe('log.>', async () => {});
  const e = await rejectsCode(bus.request('log.x', 1, { timeoutMs: Infinity }), 'NO_RESPONDERS');
  assert.match(e.message, /without a reply/);
  assert.deepEqual(seen, [1], 'the message was delivered');
  bus.subscribe('log.x', (p) => p * 2);
  assert.equal(await bus.request('log.x', 2), 4, 'one responder among observers answers');
  const all = [];
  for await (const r of bus.requestMany('log.x', 3, { timeoutMs: Infinity })) all.push(r);
  assert.deepEqual(all, [6], 'the gathering ends once every subscription answered');
  const r = bus.stats().requests;
  // The async observer's decline to the second request came after its reply ended it: late.
  assert.deepEqual([r.sent, r.replies, r.declined, r.noResponders, r.late], [3, 2, 5, 1, 1]);
});

test('close() ends waiting requests with CLOSED after handlers settle; later requests are refused', async () => {
  const bus = new Bus();
  const gate = deferred();
  const sub = bus.subscribe('a', async (n) => { await gate.promise; return n; });
  const first = bus.request('a', 1, { timeoutMs: Infinity });
  // Queued behind the first; its subscription leaves before it starts: nobody will answer.
  const queued = bus.request('a', 2, { timeoutMs: Infinity });
  bus.subscribe('b', async (n) => { await gate.promise; return n; });
  const running = bus.request('b', 3, { timeoutMs: Infinity });
  sub.unsubscribe();
  const closing = bus.close();
  gate.resolve();
  await closing;
  assert.equal(await first, 1, 'a handler still running at close() answers');
  assert.equal(await running, 3);
  await rejectsCode(queued, 'CLOSED');
  await rejectsCode(bus.request('b', 1), 'CLOSED');
  assert.equal(bus.stats().requests.pending, 0);
});

test('request options are read once and checked', async () => {
  const bus = new Bus();
  bus.subscribe('echo', (p, m) => ({ p, key: m.key, headers: m.headers }));
  const o = { key: 'k1', headers: { trace: 't1' } };
  const p = bus.request('echo', 1, o);
  o.key = 'changed';
  assert.deepEqual(await p, { p: 1, key: 'k1', headers: { trace: 't1' } });
  for (const [bad, re] of [
    [{ timeoutMs: 0 }, /timeoutMs/], [{ timeoutMs: -1 }, /timeoutMs/], [{ timeoutMs: 'x' }, /timeoutMs/],
    [{ signal: {} }, /signal/], [{ max: 2 }, /unknown option `max`/], [{ id: 'x' }, /unknown option `id`/],
    [{ headers: { a: 1 } }, /header/], [null, /options/],
  ]) {
    const e = await rejectsCode(bus.request('echo', 1, bad), 'INVALID_OPTION');
    assert.match(e.message, re);
  }
  await rejectsCode(bus.request('bad..topic', 1), 'INVALID_TOPIC');
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  await rejectsCode(bus.request('echo', 1, revoked.proxy), 'INVALID_OPTION');
  assert.equal(bus.stats().requests.sent, 1);
});

test('a request to a full reject subscription fails with QUEUE_FULL and leaves nothing pending', async () => {
  const bus = new Bus();
  const gate = deferred();
  bus.subscribe('busy', async () => { await gate.promise; return 1; }, { maxQueue: 1, overflow: 'reject' });
  const first = bus.request('busy', 1);
  const second = bus.request('busy', 2);
  await rejectsCode(bus.request('busy', 3), 'QUEUE_FULL');
  gate.resolve();
  assert.deepEqual([await first, await second], [1, 1]);
  const r = bus.stats().requests;
  assert.deepEqual([r.sent, r.replies, r.cancelled, r.pending], [3, 2, 1, 0]);
});

test('batch subscriptions answer each request with message.reply', async () => {
  const bus = new Bus();
  bus.subscribe('sum', (items) => { for (const m of items) m.reply(m.payload * 2); }, { batch: { maxSize: 3, maxWaitMs: 1 } });
  const replies = await Promise.all([1, 2, 3].map((n) => bus.request('sum', n)));
  assert.deepEqual(replies, [2, 4, 6]);
});
