import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus, ManualClock } from 'edgebus';
import { settle, deferred, throwsCode, assertStillWorks } from './support/helpers.mjs';

/** A handler whose calls wait until the test settles them by name. */
function gates() {
  const open = new Map();
  return {
    wait(name) {
      const d = deferred();
      open.set(name, d);
      return d.promise;
    },
    ok(name) { const d = open.get(name); assert.ok(d, `${name} is waiting`); open.delete(name); d.resolve(); },
    fail(name, e) { const d = open.get(name); assert.ok(d, `${name} is waiting`); open.delete(name); d.reject(e); },
    waiting: () => [...open.keys()].sort(),
  };
}

test('work queue: each message goes to exactly one member, round-robin; plain subscribers get all', () => {
  const bus = new Bus();
  const seen = [];
  for (const name of ['a', 'b', 'c']) {
    const sub = bus.subscribe('jobs.>', (p) => { seen.push(`${name}${p}`); }, { group: 'workers' });
    assert.equal(sub.group, 'workers');
  }
  let all = 0;
  bus.subscribe('jobs.*', () => { all++; });
  for (let i = 0; i < 6; i++) bus.publish('jobs.email', i);
  assert.deepEqual(seen, ['a0', 'b1', 'c2', 'a3', 'b4', 'c5']);
  assert.equal(all, 6);
  const st = bus.stats();
  assert.equal(st.groups.length, 1);
  const g = st.groups[0];
  assert.deepEqual(
    [g.name, g.pattern, g.members, g.published, g.done, g.depth, g.inFlight],
    ['workers', 'jobs.>', 3, 6, 6, 0, 0],
  );
  assert.equal(st.subscriptions, 4);
  assert.deepEqual(st.perSubscription.filter((s) => s.group === 'workers').map((s) => s.delivered), [2, 2, 2]);
});

test('work queue: busy members are skipped; free capacity gets the next message', async () => {
  const bus = new Bus();
  const g = gates();
  for (const name of ['a', 'b']) {
    bus.subscribe('q', (p) => g.wait(`${name}${p}`), { group: 'w' });
  }
  for (let i = 0; i < 4; i++) bus.publish('q', i);
  assert.deepEqual(g.waiting(), ['a0', 'b1']);
  g.ok('b1');
  await settle();
  assert.deepEqual(g.waiting(), ['a0', 'b2']);
  g.ok('a0');
  await settle();
  assert.deepEqual(g.waiting(), ['a3', 'b2']);
  g.ok('a3');
  g.ok('b2');
  await bus.drain();
  assert.equal(bus.stats().groups[0].done, 4);
});

test('work queue: a failure is retried with exponential backoff and jitter; message.attempt counts tries', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  const tries = [];
  bus.subscribe('q', (p, m) => {
    tries.push([m.attempt, clock.now()]);
    if (m.attempt < 4) throw new Error('not yet');
  }, { group: 'w', maxAttempts: 5, backoff: { initialMs: 100, maxMs: 250 } });
  bus.publish('q', 'job', { id: 'job-1' });
  assert.deepEqual(bus.status('job-1'), { state: 'failed', attempts: 1, group: 'w' });
  // The three retries are due within 100 + 200 + 250 ms at most; go well past that.
  for (let i = 0; i < 20; i++) clock.advance(50);
  await settle();
  assert.deepEqual(tries.map((t) => t[0]), [1, 2, 3, 4]);
  [100, 200, 250].forEach((base, i) => {
    const gap = tries[i + 1][1] - tries[i][1];
    // Jittered into [base/2, base], seen through a clock advanced in 50 ms steps.
    assert.ok(gap >= base / 2 && gap <= base + 50, `retry ${i + 1} after ${gap} ms (base ${base})`);
  });
  assert.deepEqual(bus.status('job-1'), { state: 'done', attempts: 4, group: 'w' });
  const g = bus.stats().groups[0];
  assert.deepEqual([g.done, g.retried, g.dead], [1, 3, 0]);
  assert.equal(bus.stats().failed, 0);
});

test('work queue: a message that fails every attempt is published on $dead.<group>', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, onError: (err, msg) => errors.push([err.message, msg.attempt]) });
  bus.subscribe('orders.*', async () => { throw new Error('card declined'); },
    { group: 'billing', maxAttempts: 3, backoff: { initialMs: 10, maxMs: 10 } });
  const dead = [];
  bus.subscribe('$dead.billing', (letter, msg) => { dead.push([letter, msg.topic]); });
  bus.publish('orders.eu', { n: 1 }, { id: 'o-1', key: 'cust-7', headers: { trace: 'x' } });
  for (let i = 0; i < 5; i++) {
    await settle();
    clock.advance(10);
  }
  await bus.drain();
  assert.equal(dead.length, 1);
  const [letter, topic] = dead[0];
  assert.equal(topic, '$dead.billing');
  assert.equal(letter.group, 'billing');
  assert.equal(letter.topic, 'orders.eu');
  assert.equal(letter.attempts, 3);
  assert.deepEqual(letter.error, { code: 'HANDLER_FAILED', message: 'card declined' });
  assert.deepEqual(letter.message.payload, { n: 1 });
  assert.equal(letter.message.id, 'o-1');
  assert.equal(letter.message.key, 'cust-7');
  assert.deepEqual(letter.message.headers, { trace: 'x' });
  assert.deepEqual(bus.status('o-1'), { state: 'dead', attempts: 3, group: 'billing' });
  const g = bus.stats().groups[0];
  assert.deepEqual([g.retried, g.dead, g.depth], [2, 1, 0]);
  assert.equal(bus.stats().failed, 1);
  // onError hears the final failure once.
  assert.deepEqual(errors, [['card declined', 3]]);
});

test('work queue: ackTimeoutMs redelivers a message whose handler never settles; the late result is ignored', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  const g = gates();
  bus.subscribe('q', (p, m) => g.wait(`try${m.attempt}`),
    { group: 'w', ackTimeoutMs: 50, maxAttempts: 3, backoff: { initialMs: 10, maxMs: 10 } });
  bus.publish('q', 1, { id: 'j' });
  assert.deepEqual(g.waiting(), ['try1']);
  assert.equal(bus.status('j').state, 'in-flight');
  clock.advance(50);
  assert.equal(bus.status('j').state, 'failed');
  clock.advance(10);
  assert.deepEqual(g.waiting(), ['try1', 'try2']);
  g.ok('try2');
  await settle();
  assert.deepEqual(bus.status('j'), { state: 'done', attempts: 2, group: 'w' });
  g.fail('try1', new Error('late'));
  await settle();
  const st = bus.stats().groups[0];
  assert.deepEqual([st.done, st.retried, st.dead, st.inFlight], [1, 1, 0, 0]);
});

test('work queue: a member that misses its last ack deadline reports HANDLER_TIMEOUT and the message dies', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, onError: (e) => errors.push(e.code) });
  bus.subscribe('q', () => new Promise(() => {}), { group: 'w', ackTimeoutMs: 20, maxAttempts: 1 });
  const dead = [];
  bus.subscribe('$dead.w', (l) => dead.push(l.error.code));
  bus.publish('q', 1);
  clock.advance(20);
  await settle();
  assert.deepEqual(errors, ['HANDLER_TIMEOUT']);
  assert.deepEqual(dead, ['HANDLER_TIMEOUT']);
});

test('work queue: higher priority first, FIFO within a priority', async () => {
  const bus = new Bus();
  const g = gates();
  const order = [];
  bus.subscribe('q', (p) => { order.push(p); return g.wait(p); }, { group: 'w' });
  bus.publish('q', 'first');
  for (const [p, priority] of [['low1', 0], ['high1', 5], ['low2', 0], ['high2', 5], ['mid', 2]]) {
    bus.publish('q', p, { priority });
  }
  for (const name of ['first', 'high1', 'high2', 'mid', 'low1', 'low2']) {
    g.ok(name);
    await settle();
  }
  assert.deepEqual(order, ['first', 'high1', 'high2', 'mid', 'low1', 'low2']);
});

test('work queue: notBefore holds a message until then (on the injected clock), for everyone', () => {
  const clock = new ManualClock(1000);
  const bus = new Bus({ clock });
  const got = [];
  bus.subscribe('q', (p) => { got.push(`group ${p} at ${clock.now()}`); }, { group: 'w' });
  bus.subscribe('q', (p) => { got.push(`plain ${p}`); });
  bus.publish('q', 'later', { id: 'later', notBefore: 1100 });
  bus.publish('q', 'now');
  assert.deepEqual(got, ['group now at 1000', 'plain now']);
  assert.deepEqual(bus.status('later'), { state: 'delayed', attempts: 0, group: undefined });
  assert.equal(bus.stats().delayed, 1);
  clock.advance(99);
  assert.equal(got.length, 2);
  clock.advance(1);
  assert.deepEqual(got.slice(2), ['group later at 1100', 'plain later']);
  assert.equal(bus.status('later').state, 'done');
  assert.equal(bus.stats().delayed, 0);
  // A time already past delivers at once.
  bus.publish('q', 'past', { notBefore: 5 });
  assert.deepEqual(got.slice(4), ['group past at 1100', 'plain past']);
});

test('work queue: batch claim hands out up to maxSize at once and waits at most maxWaitMs', () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  const batches = [];
  bus.subscribe('q', (items) => { batches.push([items.map((m) => m.payload), clock.now()]); },
    { group: 'w', batch: { maxSize: 4, maxWaitMs: 20 } });
  for (let i = 0; i < 4; i++) bus.publish('q', i);
  // Woken by the publish that filled the batch, not by a timer.
  assert.deepEqual(batches, [[[0, 1, 2, 3], 0]]);
  bus.publish('q', 4);
  bus.publish('q', 5);
  assert.equal(batches.length, 1);
  clock.advance(20);
  assert.deepEqual(batches[1], [[4, 5], 20]);
  bus.publish('q', 6);
  bus.flush();
  assert.deepEqual(batches[2], [[6], 20]);
  assert.equal(bus.stats().groups[0].done, 7);
});

test('work queue: a failed batch retries each message alone, so a poison message holds back nobody', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  const calls = [];
  bus.subscribe('q', (items) => {
    calls.push(items.map((m) => `${m.payload}@${m.attempt}`).join(','));
    if (items.some((m) => m.payload === 13)) throw new Error('poison');
  }, { group: 'w', batch: { maxSize: 10, maxWaitMs: 0 }, maxAttempts: 3, backoff: { initialMs: 10, maxMs: 10 } });
  let dead = 0;
  bus.subscribe('$dead.w', () => { dead++; });
  assert.equal(bus.publishBatch('q', [11, 12, 13, 14]), 4);
  for (let i = 0; i < 4; i++) clock.advance(10);
  await bus.drain();
  assert.equal(calls[0], '11@1,12@1,13@1,14@1');
  assert.deepEqual(calls.slice(1).sort(), ['11@2', '12@2', '13@2', '13@3', '14@2']);
  assert.equal(dead, 1);
  const g = bus.stats().groups[0];
  assert.deepEqual([g.done, g.dead, g.retried], [3, 1, 5]);
});

test('work queue: one key is never with two members at once and keeps its order across retries', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  const g = gates();
  const started = [];
  for (const name of ['a', 'b']) {
    bus.subscribe('q', (p) => { started.push(p); return g.wait(`${name}:${p}`); },
      { group: 'w', concurrency: 2, backoff: { initialMs: 10, maxMs: 10 } });
  }
  for (const [p, key] of [['k1-1', 'k1'], ['k1-2', 'k1'], ['k2-1', 'k2'], ['k1-3', 'k1']]) {
    bus.publish('q', p, { key });
  }
  assert.deepEqual(g.waiting(), ['a:k1-1', 'b:k2-1']);
  g.fail('a:k1-1', new Error('retry me'));
  await settle();
  assert.deepEqual(g.waiting(), ['b:k2-1']);
  clock.advance(10);
  assert.equal(g.waiting().length, 2);
  for (let round = 0; round < 4; round++) {
    for (const w of g.waiting()) g.ok(w);
    await settle();
  }
  await bus.drain();
  assert.deepEqual(started, ['k1-1', 'k2-1', 'k1-1', 'k1-2', 'k1-3']);
});

test('work queue: publishBatch reaches groups and crosses into the core once', () => {
  const bus = new Bus();
  let sum = 0;
  for (let i = 0; i < 2; i++) bus.subscribe('q', (p) => { sum += p; }, { group: 'w' });
  const core = bus._core;
  const calls = { publish: 0, publish_batch: 0 };
  for (const name of Object.keys(calls)) {
    const original = core[name].bind(core);
    core[name] = (...args) => { calls[name]++; return original(...args); };
  }
  const payloads = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(bus.publishBatch('q', payloads), 100);
  assert.deepEqual(calls, { publish: 0, publish_batch: 1 });
  assert.equal(sum, 5050);
  assert.equal(bus.stats().groups[0].done, 100);
});

test('work queue: waiting messages go to a member that joins later; drain does not wait for a group with no member', async () => {
  const bus = new Bus();
  const g = gates();
  const member = bus.subscribe('q', (p) => g.wait(String(p)), { group: 'w' });
  bus.publish('q', 1);
  bus.publish('q', 2);
  assert.deepEqual(g.waiting(), ['1']);
  member.unsubscribe();
  g.ok('1');
  await bus.drain();
  const st = bus.stats().groups[0];
  assert.deepEqual([st.members, st.depth, st.done], [0, 1, 1]);
  const got = [];
  bus.subscribe('q', (p) => { got.push(p); }, { group: 'w' });
  assert.deepEqual(got, [2]);
});

test('work queue: a member unsubscribed before its claimed delivery starts gives the message back', () => {
  const bus = new Bus();
  const got = [];
  let other;
  // The first member's handler unsubscribes the second while the second's claim is pending.
  bus.subscribe('q', (p) => { got.push(`a${p}`); other?.unsubscribe(); }, { group: 'w' });
  other = bus.subscribe('q', (p) => { got.push(`b${p}`); }, { group: 'w' });
  bus.publishBatch('q', [1, 2, 3]);
  assert.deepEqual(got, ['a1', 'a2', 'a3']);
  assert.equal(bus.stats().groups[0].done, 3);
});

test('work queue: close() reports what remains instead of dropping it', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  const member = bus.subscribe('q', () => { throw new Error('down'); },
    { group: 'w', backoff: { initialMs: 1000, maxMs: 1000 } });
  bus.subscribe('other', () => {}, { group: 'v' });
  bus.publish('other', 'later', { id: 'delayed', notBefore: 3_600_000 });
  bus.publish('q', 'stuck', { id: 'stuck' });
  assert.equal(bus.status('stuck').state, 'failed');
  member.unsubscribe();
  const summary = await bus.close();
  assert.deepEqual(summary.remaining.map((r) => [r.message.id, r.message.payload, r.group, r.state, r.attempts]), [
    ['delayed', 'later', undefined, 'delayed', 0],
    ['stuck', 'stuck', 'w', 'failed', 1],
  ]);
  throwsCode(() => bus.publish('q', 1), 'CLOSED');
  assert.deepEqual(await bus.close(), summary);
});

test('work queue: finished ids are remembered within the retention window only', () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, retention: { maxIds: 2, maxAgeMs: 60_000 } });
  bus.subscribe('q', () => {}, { group: 'w' });
  for (const id of ['a', 'b', 'c']) bus.publish('q', 0, { id });
  assert.equal(bus.status('a'), undefined);
  assert.equal(bus.status('b').state, 'done');
  assert.equal(bus.stats().groups[0].remembered, 2);
  clock.advance(60_000);
  assert.equal(bus.status('c'), undefined);
  assert.equal(bus.status('never'), undefined);
});

test('work queue: full group queues follow the overflow policy', async () => {
  const bus = new Bus();
  const g = gates();
  bus.subscribe('q', (p) => g.wait(String(p)), { group: 'w', maxQueue: 2, overflow: 'reject' });
  bus.publish('q', 1);
  bus.publish('q', 2);
  bus.publish('q', 3);
  throwsCode(() => bus.publish('q', 4), 'QUEUE_FULL');
  const bus2 = new Bus();
  bus2.subscribe('q', (p) => g.wait(`x${p}`), { group: 'w', maxQueue: 2, overflow: 'wait' });
  bus2.publish('q', 1);
  bus2.publish('q', 2);
  bus2.publish('q', 3);
  let admitted = false;
  const p = bus2.publishAsync('q', 4).then((r) => { admitted = r; });
  await settle();
  assert.equal(admitted, false);
  g.ok('x1');
  await p;
  assert.equal(admitted, true);
  assert.equal(bus2.stats().groups[0].depth, 2);
});

test('work queue: bad options and arguments get named errors and change nothing', () => {
  const bus = new Bus();
  const h = () => {};
  const bad = [
    [{ group: 5 }, /group/],
    [{ group: '' }, /group/],
    [{ group: '$sys' }, /group/],
    [{ group: 'a.*' }, /group/],
    [{ group: 'w', maxAttempts: 0 }, /maxAttempts/],
    [{ group: 'w', maxAttempts: 1.5 }, /maxAttempts/],
    [{ group: 'w', maxAttempts: 'many' }, /maxAttempts/],
    [{ group: 'w', backoff: { initialMs: 10, maxMs: 5 } }, /backoff\.maxMs/],
    [{ group: 'w', backoff: { startMs: 10 } }, /startMs/],
    [{ group: 'w', backoff: { initialMs: -1 } }, /initialMs/],
    [{ group: 'w', ackTimeoutMs: 0 }, /ackTimeoutMs/],
    [{ group: 'w', ackTimeoutMs: NaN }, /ackTimeoutMs/],
    [{ group: 'w', timeoutMs: 10 }, /ackTimeoutMs/],
    [{ group: 'w', batch: { maxBytes: 10 } }, /maxBytes/],
    [{ group: 'w', batch: { maxAttempts: 2 } }, /maxAttempts/],
    [{ group: 'w', batch: { maxSize: 0 } }, /maxSize/],
    [{ maxAttempts: 3 }, /only with `group`/],
    [{ ackTimeoutMs: 10 }, /only with `group`/],
    [{ backoff: { initialMs: 1 } }, /only with `group`/],
    [{ group: 'w', priority: 1 }, /priority/],
  ];
  for (const [options, re] of bad) {
    throwsCode(() => bus.subscribe('q', h, options), 'INVALID_OPTION', re);
  }
  assert.equal(bus.stats().subscriptions, 0);
  assert.equal(bus.stats().groups.length, 0);
  bus.subscribe('q', h, { group: 'w', maxAttempts: 3 });
  throwsCode(() => bus.subscribe('q', h, { group: 'w', maxAttempts: 4 }), 'INVALID_OPTION', /already has maxAttempts 3/);
  throwsCode(() => bus.subscribe('q', h, { group: 'w', maxQueue: 7 }), 'INVALID_OPTION', /maxQueue/);
  const badPublish = [
    [{ priority: -1 }, /priority/],
    [{ priority: 1.5 }, /priority/],
    [{ priority: '1' }, /priority/],
    [{ priority: 2 ** 32 }, /priority/],
    [{ notBefore: NaN }, /notBefore/],
    [{ notBefore: Infinity }, /notBefore/],
    [{ notBefore: -1 }, /notBefore/],
    [{ notBefore: '10' }, /notBefore/],
    [{ attempts: -1 }, /attempts/],
    [{ attempts: 1.5 }, /attempts/],
    [{ attempts: 1001 }, /attempts/],
    [{ attempts: 2 ** 32 }, /attempts/],
    [{ attempts: NaN }, /attempts/],
    [{ attempts: Infinity }, /attempts/],
    [{ attempts: '2' }, /attempts/],
    [{ attempts: null }, /attempts/],
    [{ attempts: 2n }, /attempts/],
  ];
  for (const [options, re] of badPublish) {
    throwsCode(() => bus.publish('q', 1, options), 'INVALID_OPTION', re);
    throwsCode(() => bus.publishBatch('q', [1], options), 'INVALID_OPTION', re);
  }
  throwsCode(() => bus.status(5), 'INVALID_ARGUMENT', /id/);
  throwsCode(() => bus.status('x', 5), 'INVALID_ARGUMENT', /group/);
  assert.equal(bus.stats().groups[0].published, 0);
  assertStillWorks(bus);
  bus.publish('q', 'fine');
  assert.equal(bus.stats().groups[0].done, 1);
});

test('work queue: a message published with attempts made counts from there; one with all of them made is dead without a delivery', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e, msg, sub) => reported.push([e.code, msg.payload, sub.group]) });
  const calls = [];
  const g = gates();
  bus.subscribe('q', (p, msg) => { calls.push(`${p}#${msg.attempt}`); return g.wait(p); },
    { group: 'w', maxAttempts: 3, concurrency: 4, backoff: { initialMs: 10, maxMs: 10 } });
  const plain = [];
  bus.subscribe('q', (p, msg) => { plain.push(`${p}#${msg.attempt}`); });
  const dead = [];
  bus.subscribe('$dead.w', (l) => dead.push([l.message.payload, l.attempts, l.error.code]));
  // One key: the first message had two attempts before, the third had all three.
  bus.publish('q', 'a', { id: 'a', key: 'k', attempts: 2 });
  bus.publish('q', 'b', { id: 'b', key: 'k' });
  bus.publish('q', 'c', { id: 'c', key: 'k', attempts: 3 });
  bus.publish('q', 'd', { id: 'd', key: 'k', attempts: 0 });
  await settle();
  assert.deepEqual(calls, ['a#3'], 'one message of the key at a time, counted from its attempts');
  assert.deepEqual(plain, ['a#1', 'b#1', 'c#1', 'd#1'], 'plain subscriptions ignore attempts');
  assert.deepEqual(bus.status('a'), { state: 'in-flight', attempts: 3, group: 'w' });
  g.ok('a');
  await settle();
  assert.deepEqual(calls, ['a#3', 'b#1']);
  g.ok('b');
  await settle();
  // `c` died in its turn, without a delivery, as the member's failure; `d` comes after it.
  assert.deepEqual(calls, ['a#3', 'b#1', 'd#1']);
  assert.deepEqual(dead, [['c', 3, 'HANDLER_TIMEOUT']]);
  assert.deepEqual(reported, [['HANDLER_TIMEOUT', 'c', 'w']]);
  assert.deepEqual(bus.status('c'), { state: 'dead', attempts: 3, group: 'w' });
  g.ok('d');
  // publishAsync takes it too.
  await bus.publishAsync('q', 'e', { id: 'e', attempts: 2 });
  await settle();
  assert.deepEqual(calls.at(-1), 'e#3');
  g.fail('e', new Error('no'));
  await settle();
  assert.deepEqual(dead.at(-1), ['e', 3, 'HANDLER_FAILED']);
  const st = bus.stats().groups[0];
  assert.deepEqual([st.published, st.done, st.dead, st.retried], [5, 3, 2, 0]);
});

test('work queue: an unknown status is undefined; status can name the group', () => {
  const bus = new Bus();
  bus.subscribe('q', () => {}, { group: 'a' });
  bus.subscribe('q', () => { throw new Error('x'); }, { group: 'b', maxAttempts: 1 });
  const bus2 = bus;
  bus2.subscribe('$dead.b', () => {});
  bus.publish('q', 1, { id: 'm' });
  assert.deepEqual(bus.status('m'), { state: 'done', attempts: 1, group: 'a' });
  assert.deepEqual(bus.status('m', 'b'), { state: 'dead', attempts: 1, group: 'b' });
  assert.equal(bus.status('m', 'nope'), undefined);
});

const deadLetters = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'data', 'dead-letters.json'), 'utf8'));

/** A dead letter's message as the shared data writes it. */
function shownMessage(m) {
  const shown = { topic: m.topic, payload: m.payload, attempt: m.attempt };
  if (m.id !== undefined) shown.id = m.id;
  if (m.key !== undefined) shown.key = m.key;
  return shown;
}

for (const c of deadLetters.cases) {
  test(`work queue: the one dead-letter shape (tests/data): ${c.name}`, async () => {
    const clock = new ManualClock(0);
    const reported = [];
    const bus = new Bus({ clock, onError: (e) => reported.push({ code: e.code ?? 'HANDLER_FAILED', message: e.message }) });
    const { pattern, ...options } = c.subscribe;
    const handler = c.handler.throws !== undefined
      ? () => { throw new Error(c.handler.throws); }
      : () => new Promise(() => {});
    bus.subscribe(pattern, handler, options);
    const letters = [];
    bus.subscribe('$dead.>', (letter, msg) => letters.push([msg.topic, letter]));
    const errors = [];
    bus.subscribe('$errors', (e) => errors.push(e.error.message));
    const { topic, payload, ...publish } = c.publish;
    bus.publish(topic, payload, publish);
    for (let i = 0; i < 1000 && letters.length === 0; i++) {
      await settle(1);
      clock.advance(5);
    }
    await bus.drain();
    assert.equal(letters.length, 1);
    const [deadTopic, letter] = letters[0];
    assert.equal(deadTopic, c.deadTopic);
    assert.deepEqual(Object.keys(letter).sort(), Object.keys(c.letter).sort());
    assert.deepEqual({ ...letter, message: shownMessage(letter.message) }, c.letter);
    assert.deepEqual(reported, [c.reported]);
    assert.deepEqual(errors, [c.reported.message]);
  });
}

test('work queue: a plain handler timeout reports the shared message (tests/data)', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e) => reported.push({ code: e.code, message: e.message }) });
  bus.subscribe('t', () => new Promise(() => {}), { timeoutMs: deadLetters.plainTimeout.timeoutMs });
  bus.publish('t', 'x');
  clock.advance(deadLetters.plainTimeout.timeoutMs);
  await settle();
  assert.deepEqual(reported, [deadLetters.plainTimeout.reported]);
});

test('work queue: a message of a failed batch claim is retried alone, never with fresh messages, and its death is reported', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e, items) => reported.push([e.message, items.map((m) => m.payload).join(',')]) });
  const calls = [];
  bus.subscribe('q', (items) => {
    calls.push(`[${items.map((m) => `${m.payload}#${m.attempt}`).join(',')}]`);
    if (items.some((m) => m.payload === 'X')) throw new Error('X is poison');
  }, { group: 'w', batch: { maxSize: 10, maxWaitMs: 100 }, maxAttempts: 2, backoff: { initialMs: 10, maxMs: 10 } });
  const dead = [];
  bus.subscribe('$dead.w', (l) => dead.push(l.message.payload));
  const errors = [];
  bus.subscribe('$errors', (e) => errors.push(e.messages.map((m) => m.payload).join(',')));
  bus.publish('q', 'X');
  clock.advance(100);
  await settle();
  assert.deepEqual(calls, ['[X#1]']);
  // Y arrives while X waits for its retry; X's retry must not take Y down with it.
  clock.advance(2);
  bus.publish('q', 'Y');
  for (let i = 0; i < 30; i++) {
    clock.advance(5);
    await settle(1);
  }
  await bus.drain();
  assert.deepEqual(calls, ['[X#1]', '[X#2]', '[Y#1]']);
  assert.deepEqual(dead, ['X']);
  assert.deepEqual(reported, [['X is poison', 'X']]);
  assert.deepEqual(errors, ['X']);
  const g = bus.stats().groups[0];
  assert.deepEqual([g.done, g.dead, g.retried], [1, 1, 1]);
});

test('work queue: a failed message whose TTL ends before its retry is dead at once and reported once', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e, items) => reported.push([e.message, items.length]) });
  let calls = 0;
  bus.subscribe('q', () => { calls++; throw new Error('down'); },
    { group: 'w', batch: { maxSize: 10, maxWaitMs: 0 }, maxAttempts: 5, backoff: { initialMs: 100, maxMs: 100 } });
  const dead = [];
  bus.subscribe('$dead.w', (l) => dead.push([l.message.payload, l.attempts, l.error.message]));
  // Its TTL (40 ms) ends before the earliest retry (50 ms, the jittered 100 ms backoff).
  bus.publish('q', 7, { id: 'm', ttlMs: 40 });
  await settle();
  await bus.drain();
  assert.equal(calls, 1);
  assert.deepEqual(dead, [[7, 1, 'down']]);
  assert.deepEqual(reported, [['down', 1]]);
  const st = bus.stats();
  assert.deepEqual([st.failed, st.expired], [1, 0]);
  const g = st.groups[0];
  assert.deepEqual([g.dead, g.expired, g.retried], [1, 0, 0]);
  assert.equal(bus.status('m').state, 'dead');
});

test('work queue: a failed message whose TTL ends while every member is busy is dead, not expired', async () => {
  const clock = new ManualClock(0);
  const reported = [];
  const bus = new Bus({ clock, onError: (e, m) => reported.push([e.message, m.payload, m.attempt]) });
  const g = gates();
  bus.subscribe('q', (p) => (p === 7 ? Promise.reject(new Error('down')) : g.wait(String(p))),
    { group: 'w', concurrency: 2, maxAttempts: 5, backoff: { initialMs: 10, maxMs: 10 } });
  const dead = [];
  bus.subscribe('$dead.w', (l) => dead.push(l.message.payload));
  bus.publish('q', 7, { id: 'm', ttlMs: 500 });
  bus.publish('q', 1);
  await settle();
  bus.publish('q', 2);
  await settle();
  assert.equal(bus.status('m').state, 'failed');
  clock.advance(600);
  await settle();
  assert.equal(bus.status('m').state, 'pending');
  g.ok('1');
  await settle();
  assert.equal(bus.status('m').state, 'dead');
  assert.deepEqual(dead, [7]);
  assert.deepEqual(reported, [['down', 7, 1]]);
  g.ok('2');
  await bus.drain();
  const st = bus.stats();
  assert.deepEqual([st.failed, st.expired], [1, 0]);
  const q = st.groups[0];
  assert.deepEqual([q.done, q.dead, q.expired, q.retried], [2, 1, 0, 1]);
});

test('work queue: dropNewest on a full group counts the message published and dropped, as dropOldest does', async () => {
  const bus = new Bus();
  const g = gates();
  bus.subscribe('q', (p) => g.wait(String(p)), { group: 'w', maxQueue: 1, overflow: 'dropNewest' });
  bus.publish('q', 1, { id: 'a' });
  bus.publish('q', 2, { id: 'b' });
  bus.publish('q', 3, { id: 'c' });
  const st = bus.stats().groups[0];
  assert.deepEqual([st.published, st.depth, st.dropped], [3, 1, 1]);
  assert.deepEqual(bus.status('c'), { state: 'dropped', attempts: 0, group: 'w' });
  assert.equal(bus.status('b').state, 'pending');
  g.ok('1');
  await settle();
  g.ok('2');
  await bus.drain();
  assert.equal(bus.stats().groups[0].done, 2);
});

test('work queue: close() lists a message waiting for its retry instead of waiting out the backoff', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  let calls = 0;
  bus.subscribe('q', () => { calls++; throw new Error('down'); },
    { group: 'w', maxAttempts: 5, backoff: { initialMs: 3_600_000, maxMs: 3_600_000 } });
  bus.publish('q', 1, { id: 'r' });
  await settle();
  assert.equal(bus.status('r').state, 'failed');
  // Resolves without the clock moving: the retry is listed, not run.
  const { remaining } = await bus.close();
  assert.equal(calls, 1);
  assert.deepEqual(remaining.map((r) => [r.message.id, r.group, r.state, r.attempts]), [['r', 'w', 'failed', 1]]);
  clock.advance(3_600_000);
  await settle();
  assert.equal(calls, 1);
});

test('a work queue without members expires a waiting message when its TTL ends, and that alone does not keep the Node process alive', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  bus.subscribe('jobs', () => {}, { group: 'w' }).unsubscribe();
  bus.publish('jobs', 'a', { id: 'a', ttlMs: 100 });
  bus.publish('jobs', 'b', { id: 'b' });
  clock.advance(99);
  assert.equal(bus.status('a').state, 'pending');
  clock.advance(1);
  await settle();
  assert.equal(bus.status('a').state, 'expired');
  assert.equal(bus.status('b').state, 'pending');
  const g = bus.stats().groups[0];
  assert.deepEqual([g.expired, g.depth, bus.stats().expired, bus.stats().queued], [1, 1, 1, 1]);
  const { remaining } = await bus.close();
  assert.deepEqual(remaining.map((r) => r.message.payload), ['b']);

  // Real clock: a TTL an hour away does not hold the process; a delayed message still does (it
  // is delivered before the process ends), also when it comes after the expiry watch was armed.
  for (const [mode, want] of [['watch', 'end'], ['delayed', 'end d'], ['later', 'end l']]) {
    const script = `
      const { Bus } = require('edgebus');
      const bus = new Bus();
      const got = [];
      bus.subscribe('x', (p) => { got.push(p); });
      bus.subscribe('jobs', () => {}, { group: 'w' }).unsubscribe();
      bus.publish('jobs', 1, { ttlMs: 3600000 });
      if ('${mode}' === 'delayed') bus.publish('x', 'd', { notBefore: Date.now() + 200 });
      if ('${mode}' === 'later') setTimeout(() => bus.publish('x', 'l', { notBefore: Date.now() + 200 }), 50);
      process.on('exit', () => console.log(['end', ...got].join(' ')));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { cwd: process.cwd(), encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.signal, null, `${mode}: the process was still alive after 20 s (the expiry watch held it)`);
    assert.equal(r.stdout.trim(), want, `${mode}: ${r.stderr}`);
  }
});

test('a publishAsync waiting on a full work queue without members is admitted when a waiting message expires', async () => {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock });
  bus.subscribe('jobs', () => {}, { group: 'w', maxQueue: 1, overflow: 'wait' }).unsubscribe();
  bus.publish('jobs', 'a', { ttlMs: 100 });
  let result = 'waiting';
  bus.publishAsync('jobs', 'b').then((r) => { result = r; }, (e) => { result = e; });
  await settle();
  assert.equal(result, 'waiting');
  clock.advance(100);
  await settle();
  assert.equal(result, true);
  const g = bus.stats().groups[0];
  assert.deepEqual([g.published, g.expired, g.depth], [2, 1, 1]);
  await bus.close();
});

test('in a work queue without members, a message tried only before it was published dies at its TTL as nobody\'s failure', async () => {
  const clock = new ManualClock(0);
  const errors = [];
  const bus = new Bus({ clock, onError: (e) => errors.push(e.code) });
  const letters = [];
  bus.subscribe('$dead.w', (p) => { letters.push([p.attempts, p.error.code]); });
  bus.subscribe('jobs', () => {}, { group: 'w', maxAttempts: 3 }).unsubscribe();
  bus.publish('jobs', 'a', { id: 'a', ttlMs: 10, attempts: 1 });
  clock.advance(10);
  await settle();
  assert.deepEqual(bus.status('a'), { state: 'dead', attempts: 1, group: 'w' });
  assert.deepEqual(letters, [[1, 'HANDLER_TIMEOUT']]);
  assert.deepEqual(errors, [], 'no handler here failed it');
  assert.deepEqual([bus.stats().failed, bus.stats().groups[0].dead], [0, 1]);
  await bus.close();
});
