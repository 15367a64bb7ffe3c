// Retained values, history and replay through the JavaScript API (README "Retained values and
// replay"): what a late subscription is given first, message.seq, gaps (onGap and `$gap`),
// listing, clearing, restore, the route cache when a topic becomes tracked, and bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock, EdgebusError, checkReplay } from 'edgebus';

const code = (c) => (e) => e instanceof EdgebusError && e.code === c;
// Replayed messages are handed over once subscribe has returned (a pump on the next microtask).
const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a late subscription gets the retained values its wildcard matches first, then live ones', async () => {
  const bus = new Bus();
  bus.publish('room.a.temp', 20, { retain: true });
  bus.publish('room.b.temp', 21, { retain: true });
  bus.publish('room.a.temp', 22, { retain: true });
  bus.publish('room.c.temp', 99); // not retained
  const got = [];
  bus.subscribe('room.*.temp', (p, m) => got.push([m.topic, p, m.seq]), { replay: 'retained' });
  await tick();
  bus.publish('room.b.temp', 23);
  // Numbers are consecutive per topic, from 1.
  assert.deepEqual(got, [['room.b.temp', 21, 1], ['room.a.temp', 22, 2], ['room.b.temp', 23, 2]]);
  assert.deepEqual(bus.retained('room.>').map((m) => m.payload), [21, 22]);
  const plain = [];
  bus.subscribe('room.>', (p) => plain.push(p));
  assert.deepEqual(plain, [], 'a plain subscription gets nothing old');
  assert.equal(bus.stats().logs.retained, 2);
});

test('publishing undefined with retain, or clearRetained, clears a value; the message is still delivered', async () => {
  const bus = new Bus();
  bus.publish('cfg', { v: 1 }, { retain: true });
  const live = [];
  bus.subscribe('cfg', (p) => live.push(p));
  bus.publish('cfg', undefined, { retain: true });
  assert.deepEqual(live, [undefined]);
  assert.deepEqual(bus.retained(), []);
  bus.publish('cfg', { v: 2 }, { retain: true });
  assert.equal(bus.clearRetained('cfg'), true);
  assert.equal(bus.clearRetained('cfg'), false);
  const late = [];
  bus.subscribe('cfg', (p) => late.push(p), { replay: 'retained' });
  await tick();
  assert.deepEqual(late, []);
});

test('history: numbers per topic, replay since a number or the last N, then live, no gap and no duplicate', async () => {
  const bus = new Bus({ history: { topics: ['chat.>'], maxMessages: 10 } });
  for (let i = 1; i <= 5; i++) bus.publish('chat.general', i);
  const got = [];
  bus.subscribe('chat.>', (p, m) => got.push([p, m.seq]), { replay: { sinceSeq: 3 } });
  await tick();
  bus.publish('chat.general', 6);
  assert.deepEqual(got, [[4, 4], [5, 5], [6, 6]]);
  const last = [];
  bus.subscribe('chat.general', (p) => last.push(p), { replay: { last: 2 } });
  await tick();
  assert.deepEqual(last, [5, 6]);
  assert.deepEqual(bus.logOf('chat.general'), { topic: 'chat.general', firstSeq: 1, lastSeq: 6, retainedSeq: undefined, held: 6 });
  assert.equal(bus.logOf('other'), undefined);
});

test('a position older than the history reports a gap to onGap and on $gap, never a silent hole', async () => {
  const bus = new Bus({ history: { topics: ['t'], maxMessages: 2 } });
  for (let i = 1; i <= 5; i++) bus.publish('t', i);
  const onGap = [];
  const onTopic = [];
  bus.subscribe('$gap', (g) => onTopic.push(g));
  const got = [];
  const sub = bus.subscribe('t', (p) => got.push(p), { replay: { sinceSeq: 0 }, onGap: (g) => onGap.push(g) });
  await tick();
  assert.deepEqual(got, [4, 5]);
  const gap = { topic: 't', fromSeq: 1, toSeq: 3, pattern: 't', subscription: sub.id };
  assert.deepEqual(onGap, [gap]);
  assert.deepEqual(onTopic, [gap]);
  assert.equal(bus.stats().logs.gaps, 1);
  assert.equal(bus.stats().logs.evicted, 3);
});

test('replay by time and the age limit, on the bus clock', async () => {
  const clock = new ManualClock();
  const bus = new Bus({ clock, history: { topics: ['m'], maxAgeMs: 50 } });
  bus.publish('m', 1);
  clock.advance(20);
  bus.publish('m', 2);
  clock.advance(20);
  bus.publish('m', 3);
  const got = [];
  bus.subscribe('m', (p) => got.push(p), { replay: { sinceMs: 20 } });
  await tick();
  assert.deepEqual(got, [2, 3]);
  clock.advance(20); // 60 ms: message 1 is older than 50 ms
  const gaps = [];
  const again = [];
  bus.subscribe('m', (p) => again.push(p), { replay: { sinceMs: 0 }, onGap: (g) => gaps.push(g) });
  await tick();
  assert.deepEqual(again, [2, 3]);
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].toSeq, 1);
  assert.equal(gaps[0].fromSeq, undefined);
});

test('per-topic positions with sinceMs for the topics not named', async () => {
  const bus = new Bus({ history: { topics: ['x.*'] } });
  bus.publish('x.a', 'a1');
  bus.publish('x.a', 'a2');
  bus.publish('x.b', 'b1');
  const got = [];
  bus.subscribe('x.*', (p) => got.push(p), { replay: { sinceSeq: { 'x.a': 1 }, sinceMs: 0 } });
  await tick();
  assert.deepEqual(got, ['a2', 'b1']);
});

test('replay() answers without subscribing; restore() puts durable copies back with their numbers', async () => {
  const bus = new Bus({ history: { topics: ['h.>'], maxMessages: 5 } });
  bus.restore([
    { topic: 'h.a', seq: 7, payload: 'seven', publishedAt: 0 },
    { topic: 'h.a', seq: 8, payload: 'eight', publishedAt: 0, retained: true, id: 'm8', headers: { trace: 'x' } },
  ]);
  bus.publish('h.a', 'nine');
  const r = bus.replay('h.*', { sinceSeq: 5 });
  assert.deepEqual(r.messages.map((m) => [m.payload, m.seq]), [['seven', 7], ['eight', 8], ['nine', 9]]);
  assert.deepEqual(r.gaps, [{ topic: 'h.a', fromSeq: 6, toSeq: 6, pattern: 'h.*', subscription: undefined }]);
  assert.equal(bus.retained()[0].id, 'm8');
  assert.deepEqual(bus.retained()[0].headers, { trace: 'x' });
  assert.equal(bus.stats().subscriptions, 0);
  assert.throws(() => bus.restore([{ topic: 'h.a', seq: 9, payload: 'again' }]), code('INVALID_ARGUMENT'));
  bus.restore([{ topic: 'h.b', seq: 40 }]); // numbering only
  bus.publish('h.b', 'b');
  assert.equal(bus.logOf('h.b').lastSeq, 41);
});

test('a cached direct route becomes tracked when its topic gets a retained value, and direct again when cleared', async () => {
  const bus = new Bus();
  const seen = [];
  bus.subscribe('t', (p, m) => seen.push([p, m.seq]));
  for (let i = 0; i < 3; i++) bus.publish('t', i); // cached, delivered directly
  bus.publish('t', 'kept', { retain: true });
  bus.publish('t', 'after');
  assert.deepEqual(seen.slice(3), [['kept', 1], ['after', 2]]);
  bus.clearRetained('t');
  bus.publish('t', 'plain');
  assert.deepEqual(seen.at(-1), ['plain', undefined]);
  assert.equal(seen.length, 6);
  const batchBus = new Bus({ history: { topics: ['b'] } });
  const batch = [];
  batchBus.subscribe('b', (p, m) => batch.push(m.seq));
  batchBus.publishBatch('b', [1, 2, 3]);
  assert.deepEqual(batch, [1, 2, 3]);
});

test('bounds by count and bytes evict the oldest and count it', async () => {
  const bus = new Bus({ retain: { maxTopics: 2 }, history: { topics: ['h'], maxBytes: 10 }, sizeOf: () => 4 });
  bus.publish('a', 1, { retain: true });
  bus.publish('b', 2, { retain: true });
  bus.publish('c', 3, { retain: true });
  assert.deepEqual(bus.retained().map((m) => m.topic), ['b', 'c']);
  for (let i = 0; i < 4; i++) bus.publish('h', i);
  const s = bus.stats().logs;
  assert.equal(s.history, 2);
  assert.equal(s.evicted, 1 + 2);
});

test('logStats() is stats().logs alone, after the same expiry pass, with or without subscriptions', async () => {
  const clock = new ManualClock();
  const bus = new Bus({ clock, retain: { maxTopics: 2 }, history: { topics: ['h.>'], maxMessages: 2, maxAgeMs: 50 }, sizeOf: () => 3 });
  const zero = { topics: 0, retained: 0, history: 0, bytes: 0, evicted: 0, expired: 0, replayed: 0, gaps: 0 };
  assert.deepEqual(bus.logStats(), zero);
  bus.subscribe('h.>', () => {});
  bus.publish('a', 1, { retain: true });
  bus.publish('b', 2, { retain: true, ttlMs: 10 });
  for (let i = 0; i < 3; i++) bus.publish('h.x', i);
  bus.subscribe('h.x', () => {}, { replay: { sinceSeq: 0 }, onGap: () => {} });
  await tick();
  const s = bus.logStats();
  assert.deepEqual(s, { topics: 3, retained: 2, history: 2, bytes: 12, evicted: 1, expired: 0, replayed: 2, gaps: 1 });
  assert.deepEqual(s, bus.stats().logs);
  clock.advance(60); // the retained value's TTL and the history's age limit pass
  assert.deepEqual(bus.logStats(), bus.stats().logs);
  assert.deepEqual(bus.logStats(), { ...s, retained: 1, history: 0, bytes: 3, evicted: 3, expired: 1 });
  await bus.close();
  assert.deepEqual(bus.logStats(), bus.stats().logs);
});

test('bad options are refused with INVALID_OPTION naming them, and nothing is left behind', async () => {
  const bus = new Bus();
  for (const replay of ['all', 5, null, {}, { last: -1 }, { last: 1.5 }, { last: 2, sinceSeq: 1 }, { sinceSeq: -1 },
    { sinceSeq: { t: 'x' } }, { sinceMs: NaN }, { since: 1 }]) {
    assert.throws(() => bus.subscribe('t', () => {}, { replay }), code('INVALID_OPTION'), JSON.stringify(replay));
    assert.throws(() => checkReplay(replay), code('INVALID_OPTION'), `checkReplay: ${JSON.stringify(replay)}`);
  }
  assert.throws(() => bus.subscribe('t', () => {}, { onGap: 1 }), code('INVALID_OPTION'));
  assert.throws(() => bus.subscribe('t', () => {}, { group: 'g', replay: 'retained' }), (e) => e.code === 'INVALID_OPTION' && /replay/.test(e.message));
  assert.equal(bus.stats().subscriptions, 0);
  assert.throws(() => bus.publish('t', 1, { retain: 'yes' }), code('INVALID_OPTION'));
  assert.throws(() => bus.publishBatch('t', [1], { retain: true }), code('INVALID_OPTION'));
  assert.throws(() => new Bus({ history: { maxMessages: 3 } }), (e) => e.code === 'INVALID_OPTION' && /history\.topics/.test(e.message));
  assert.throws(() => new Bus({ history: { topics: ['a b'] } }), code('INVALID_PATTERN'));
  assert.throws(() => new Bus({ history: { topics: ['a'], maxMessages: 0 } }), code('INVALID_OPTION'));
  assert.throws(() => new Bus({ retain: { maxTopics: 'many' } }), code('INVALID_OPTION'));
  assert.throws(() => bus.retained('a..b'), code('INVALID_PATTERN'));
  assert.throws(() => bus.clearRetained('a.*'), code('INVALID_TOPIC'));
  assert.throws(() => bus.restore([{ topic: 't', seq: 0, payload: 1 }]), code('INVALID_OPTION'));
  assert.throws(() => bus.restore('nope'), code('INVALID_OPTION'));
  assert.equal(bus.stats().published, 0);
});

test('checkReplay: a plain copy of a valid replay, read once, by the rule subscribe applies', () => {
  assert.equal(checkReplay('retained'), 'retained');
  assert.deepEqual(checkReplay({ last: 3 }), { last: 3 });
  assert.deepEqual(checkReplay({ sinceSeq: 4 }), { sinceSeq: 4 });
  assert.deepEqual(checkReplay({ sinceMs: 20 }), { sinceMs: 20 });
  assert.deepEqual(checkReplay({ sinceSeq: 4, sinceMs: 20, last: undefined }), { sinceSeq: 4, sinceMs: 20 });
  const positions = JSON.parse('{"a.b":2,"__proto__":5}');
  const copy = checkReplay({ sinceSeq: positions });
  assert.deepEqual(Object.entries(copy.sinceSeq), [['a.b', 2], ['__proto__', 5]]);
  assert.notEqual(copy.sinceSeq, positions);
  let reads = 0;
  const once = { get sinceSeq() { reads++; return 1; } };
  assert.deepEqual(checkReplay(once), { sinceSeq: 1 });
  assert.equal(reads, 1);
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  for (const replay of [revoked.proxy, { sinceSeq: revoked.proxy }, { sinceSeq: [1] }, { sinceSeq: { t: 2 ** 53 } }, undefined]) {
    assert.throws(() => checkReplay(replay), code('INVALID_OPTION'));
  }
});

test('hostile replay options are INVALID_OPTION; a position per topic for many topics is one look-up each', async () => {
  const bus = new Bus({ history: { topics: ['h.>'] } });
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const throwing = { get 'h.a'() { throw new Error('boom'); } };
  for (const sinceSeq of [revoked.proxy, throwing, [1], null, 'x']) {
    assert.throws(() => bus.subscribe('h.>', () => {}, { replay: { sinceSeq } }), code('INVALID_OPTION'));
  }
  const replayProxy = new Proxy({}, { ownKeys() { throw new Error('no keys'); } });
  assert.throws(() => bus.subscribe('h.>', () => {}, { replay: replayProxy }), code('INVALID_OPTION'));
  assert.equal(bus.stats().subscriptions, 0);
  for (let i = 0; i < 200; i++) bus.publish(`h.t${i}`, i);
  const positions = {};
  for (let i = 0; i < 50_000; i++) positions[`h.t${i}`] = 0;
  const got = [];
  bus.subscribe('h.>', (p) => got.push(p), { replay: { sinceSeq: positions } });
  await tick();
  assert.equal(got.length, 200);
});

test('a sizeOf that throws on a retained publish leaves its id free for the retry', async () => {
  let refuse = true;
  const bus = new Bus({ dedupe: true, sizeOf: () => { if (refuse) throw new Error('no size'); return 1; } });
  const got = [];
  bus.subscribe('t', (p) => got.push(p));
  assert.throws(() => bus.publish('t', 'v', { id: 'm1', retain: true }));
  refuse = false;
  assert.equal(bus.publish('t', 'v', { id: 'm1', retain: true }), true);
  assert.deepEqual(got, ['v']);
  assert.equal(bus.retained()[0].id, 'm1');
});

test('a replaying handler can use its subscription; what is published after subscribe comes after the replay', async () => {
  const bus = new Bus({ history: { topics: ['h'] } });
  for (let i = 1; i <= 3; i++) bus.publish('h', i);
  const got = [];
  const sub = bus.subscribe('h', (p) => {
    got.push(p);
    if (p === 2) sub.unsubscribe();
  }, { replay: { sinceSeq: 0 } });
  assert.deepEqual(got, [], 'nothing before subscribe returns');
  const later = [];
  bus.subscribe('h', (p) => later.push(p), { replay: { last: 1 } });
  bus.publish('h', 4); // published after: behind the replayed 3
  await tick();
  assert.deepEqual(got, [1, 2]);
  assert.deepEqual(later, [3, 4]);
});

test('slots of values no longer kept are freed without any subscriber; an expired retained value leaves and is counted', async () => {
  const bus = new Bus();
  for (let i = 0; i < 20_000; i++) bus.publish('state', { i }, { retain: true });
  assert.ok(bus._slots.length - bus._freeSlots.length < 100, `live slots: ${bus._slots.length - bus._freeSlots.length}`);
  const clock = new ManualClock();
  const b2 = new Bus({ clock, retain: { maxTopics: 2 }, history: { topics: ['h'] } });
  b2.publish('a', 'live-a', { retain: true });
  b2.publish('b', 'dead-b', { retain: true, ttlMs: 10 });
  b2.publish('h', 'short', { ttlMs: 10 });
  clock.advance(100);
  assert.equal(b2.stats().logs.expired, 2);
  assert.equal(b2.stats().logs.retained, 1);
  assert.equal(b2.stats().logs.history, 0);
  b2.publish('c', 'live-c', { retain: true });
  assert.deepEqual(b2.retained().map((m) => m.payload), ['live-a', 'live-c']);
  assert.equal(b2.stats().logs.evicted, 0);
});

test('restore checks every entry before applying any; replay() counts nothing; bad topics and late calls are refused', async () => {
  const bus = new Bus({ history: { topics: ['h'] } });
  const entries = [{ topic: 'h', seq: 1, payload: 'a' }, { topic: 'h', seq: 2, payload: 'b' }, { topic: 'h', seq: 3, payload: 'c', ttlMs: -5 }];
  assert.throws(() => bus.restore(entries), code('INVALID_OPTION'));
  assert.equal(bus.logOf('h'), undefined, 'nothing restored');
  entries[2].ttlMs = 5000;
  bus.restore(entries);
  assert.equal(bus.logOf('h').lastSeq, 3);
  assert.throws(() => bus.restore([{ topic: 'h', seq: 5, payload: 'e' }, { topic: 'h', seq: 4, payload: 'd' }]), code('INVALID_ARGUMENT'));
  assert.equal(bus.logOf('h').lastSeq, 3);
  // The core checks the whole batch first: a later entry going backwards, or a bad topic, and
  // nothing of it is applied (the entries before on other topics neither).
  assert.throws(() => bus.restore([{ topic: 'k', seq: 1, payload: 'k' }, { topic: 'h', seq: 4 }, { topic: 'h', seq: 4 }]),
    (e) => e.code === 'INVALID_ARGUMENT' && e.message.startsWith('entries[2]: number 4 on `h` is not after 4'));
  assert.throws(() => bus.restore([{ topic: 'k', seq: 1, payload: 'k' }, { topic: 'a..b', seq: 1 }]),
    (e) => e.code === 'INVALID_TOPIC' && e.message.startsWith('entries[1]: '));
  assert.equal(bus.logOf('k'), undefined);
  assert.equal(bus.logOf('h').lastSeq, 3);
  assert.throws(() => bus.restore([{ topic: 'x', seq: 2 ** 51, payload: 1 }]), code('INVALID_OPTION'));
  assert.throws(() => bus.restore([{ topic: 'x', seq: 1, retained: true, payload: undefined }]), code('INVALID_ARGUMENT'));
  const before = bus.stats().logs;
  bus.replay('h', { sinceSeq: 0 });
  assert.deepEqual(bus.stats().logs, before);
  assert.throws(() => bus.logOf('a.*'), code('INVALID_TOPIC'));
  assert.throws(() => bus.subscribe('h', () => {}, { replay: { sinceSeq: { 'a.*': 0 } } }), code('INVALID_TOPIC'));
  assert.throws(() => bus.subscribe('q', () => {}, { group: 'g', onGap: () => {} }), code('INVALID_OPTION'));
  await bus.close();
  assert.throws(() => bus.clearRetained('h'), code('CLOSED'));
  assert.throws(() => bus.restore([]), code('CLOSED'));
});

test('replay() with maxMessages or maxBytes keeps the newest that fit and reports the older as gaps', async () => {
  const bus = new Bus({ history: { topics: ['h.*'] }, sizeOf: () => 10 });
  for (const [topic, p] of [['h.a', 1], ['h.b', 2], ['h.a', 3], ['h.b', 4], ['h.a', 5]]) bus.publish(topic, p);
  const all = bus.replay('h.*', { sinceSeq: 0 });
  assert.deepEqual([all.messages.map((m) => m.payload), all.gaps], [[1, 2, 3, 4, 5], []]);
  const two = bus.replay('h.*', { sinceSeq: 0 }, { maxMessages: 2 });
  assert.deepEqual(two.messages.map((m) => m.payload), [4, 5]);
  assert.deepEqual(two.gaps.map((g) => [g.topic, g.fromSeq, g.toSeq]).sort(), [['h.a', 1, 2], ['h.b', 1, 1]]);
  assert.deepEqual(bus.replay('h.*', { sinceSeq: 0 }, { maxBytes: 35 }).messages.map((m) => m.payload), [3, 4, 5]);
  assert.deepEqual(bus.replay('h.*', { sinceSeq: 0 }, { maxBytes: 29.9 }).messages.map((m) => m.payload), [4, 5], 'no room made by a fraction');
  assert.deepEqual(bus.replay('h.*', { sinceSeq: 0 }, { maxMessages: Infinity, maxBytes: Infinity }).messages.length, 5);
  assert.throws(() => bus.replay('h.*', { sinceSeq: 0 }, { maxMessages: -1 }), code('INVALID_OPTION'));
  assert.throws(() => bus.replay('h.*', { sinceSeq: 0 }, { maxMessages: 1.5 }), code('INVALID_OPTION'));
  assert.throws(() => bus.replay('h.*', { sinceSeq: 0 }, { maxBytes: NaN }), code('INVALID_OPTION'));
  assert.throws(() => bus.replay('h.*', { sinceSeq: 0 }, { max: 1 }), code('INVALID_OPTION'));
});

test('a request on a topic with history is neither numbered nor replayed (its answers are over): no late answer from a later subscriber', async () => {
  const bus = new Bus({ history: { topics: ['svc.*'] } });
  bus.subscribe('svc.add', (p) => p + 1);
  assert.equal(await bus.request('svc.add', 1), 2);
  bus.publish('svc.add', 10);
  assert.deepEqual([bus.logOf('svc.add').lastSeq, bus.logOf('svc.add').held], [1, 1]);
  const got = [];
  bus.subscribe('svc.add', (p, m) => { got.push([p, m.seq]); }, { replay: { sinceSeq: 0 } });
  await bus.drain();
  assert.deepEqual(got, [[10, 1]]);
  assert.equal(bus.stats().requests.late, 0);
});
