// The remote client's recovery against a scripted WebSocket: a plain subscription remembers the last
// seq per topic (bounded by the hub's replayMaxPositions) and when the hub first took it, and
// subscribes again with `replay: { sinceSeq, sinceMs }` after a reconnect; a work queue does not;
// the first subscription carries the caller's `replay`; gap frames reach onGap (else onError) and
// stats().gaps; `recover: false` turns it off; `retain` goes out on publishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.sent = [];
    this.url = url;
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(...[JSON.parse(text)].flat()); }
  close() {}
  hello(now, limits = {}) { this.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0, now, limits }) }); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
  drop(code = 1006) { this.onclose({ code, reason: '' }); }
}

const until = async (pred) => {
  const guard = Date.now() + 10000; // a hang guard
  while (!pred()) {
    if (Date.now() > guard) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
};

function open(options = {}) {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't0k', WebSocket: FakeSocket, reconnect: { initialMs: 5, maxMs: 20 }, ...options });
  return { bus, ws: () => FakeSocket.all.at(-1) };
}

const subOps = (ws) => ws.sent.filter((o) => o.op === 'sub');

test('a plain subscription subscribes again with the last seq of each topic and the hub time it began; a work queue without replay', async () => {
  const { bus, ws } = open();
  const hubNow = Date.now() + 3_600_000; // the hub's clock, an hour ahead of this one
  ws().hello(hubNow);
  const got = [];
  const plain = bus.subscribe('a.>', (p, m) => got.push([m.topic, m.seq]), { replay: 'retained' });
  const work = bus.subscribe('jobs', () => {}, { group: 'g' });
  await until(() => subOps(ws()).length === 2);
  assert.deepEqual(subOps(ws())[0], { op: 'sub', id: plain.id, pattern: 'a.>', replay: 'retained' }, 'the caller\'s replay first');
  ws().deliver([{ t: 'ok', op: 'sub', ref: plain.id }, { t: 'ok', op: 'sub', ref: work.id }]);
  await plain.ready;
  ws().deliver({ t: 'msg', m: [[[plain.id], { topic: 'a.x', payload: 1, id: 'i1', seq: 4, publishedAt: hubNow }],
    [[plain.id], { topic: 'a.y', payload: 2, id: 'i2', seq: 9, publishedAt: hubNow }],
    [[plain.id], { topic: 'a.x', payload: 3, id: 'i3', seq: 5, publishedAt: hubNow }],
    [[plain.id], { topic: 'a.z', payload: 4, id: 'i4', publishedAt: hubNow }]] });
  assert.deepEqual(got, [['a.x', 4], ['a.y', 9], ['a.x', 5], ['a.z', undefined]]);
  ws().drop();
  await until(() => FakeSocket.all.length === 2);
  ws().hello(hubNow + 5000);
  const [again, queue] = subOps(ws());
  assert.deepEqual(again.replay.sinceSeq, { 'a.y': 9, 'a.x': 5 });
  // When it was first sent, on the hub's clock (early by hello's latency, never later).
  assert.ok(again.replay.sinceMs >= hubNow - 1000 && again.replay.sinceMs <= hubNow + 1000, `${again.replay.sinceMs} vs ${hubNow}`);
  assert.deepEqual(queue, { op: 'sub', id: work.id, pattern: 'jobs', group: 'g' });
  await bus.close();
});

test('positions are bounded by the hub\'s replayMaxPositions: the most recent topics are kept', async () => {
  const { bus, ws } = open();
  ws().hello(1000, { replayMaxPositions: 3 });
  const s = bus.subscribe('t.*', () => {});
  await until(() => subOps(ws()).length === 1);
  ws().deliver({ t: 'ok', op: 'sub', ref: s.id });
  const m = (topic, seq) => [[s.id], { topic, payload: 0, id: `${topic}-${seq}`, seq, publishedAt: 1000 }];
  ws().deliver({ t: 'msg', m: [m('t.a', 1), m('t.b', 1), m('t.c', 1), m('t.a', 2), m('t.d', 1)] });
  ws().drop();
  await until(() => FakeSocket.all.length === 2);
  ws().hello(2000);
  assert.deepEqual(subOps(ws())[0].replay.sinceSeq, { 't.c': 1, 't.a': 2, 't.d': 1 });
  await bus.close();
});

test('gap frames reach onGap, or onError as MESSAGES_MISSED, and count in stats().gaps', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e, ctx) => errors.push([e.code, ctx.gap.topic]) });
  ws().hello(1000);
  const gaps = [];
  const a = bus.subscribe('a', () => {}, { onGap: (g) => gaps.push(g) });
  const b = bus.subscribe('b', () => {});
  await until(() => subOps(ws()).length === 2);
  const gap = { topic: 'a', fromSeq: 3, toSeq: 7, pattern: 'a' };
  ws().deliver({ t: 'gap', sub: a.id, gaps: [gap] });
  ws().deliver({ t: 'gap', sub: b.id, gaps: [{ topic: 'b', toSeq: 2, pattern: 'b' }] });
  assert.deepEqual(gaps, [gap]);
  assert.deepEqual(errors, [['MESSAGES_MISSED', 'b']]);
  assert.equal(bus.stats().gaps, 2);
  await bus.close();
});

test('recover: false subscribes again without replay; retain goes out on publishes, and undefined with it clears', async () => {
  const { bus, ws } = open({ recover: false });
  ws().hello(1000);
  const s = bus.subscribe('a', () => {});
  bus.publish('a', 1, { retain: true });
  bus.publish('a', undefined, { retain: true });
  assert.throws(() => bus.publish('a', undefined), (e) => e.code === 'INVALID_ARGUMENT');
  assert.throws(() => bus.publish('a', 1, { retain: 1 }), (e) => e.code === 'INVALID_OPTION');
  assert.throws(() => bus.subscribe('a', () => {}, { replay: { last: 1, other: 2 } }), (e) => e.code === 'INVALID_OPTION');
  assert.throws(() => connect('https://x.example', { token: 't', WebSocket: FakeSocket, recover: 'yes' }), (e) => e.code === 'INVALID_OPTION');
  await until(() => ws().sent.length === 3);
  const pubs = ws().sent.filter((o) => o.op === 'pub');
  assert.deepEqual(pubs.map((o) => [o.retain, 'payload' in o]), [[true, true], [true, false]]);
  ws().deliver({ t: 'ok', op: 'sub', ref: s.id });
  ws().drop();
  await until(() => FakeSocket.all.length === 2);
  ws().hello(2000);
  assert.deepEqual(subOps(ws())[0], { op: 'sub', id: s.id, pattern: 'a' });
  await bus.close({ timeoutMs: 0 });
});
