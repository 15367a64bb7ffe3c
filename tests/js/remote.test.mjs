// The remote client's own logic against a scripted WebSocket (no server): duplicates dropped by
// id, a redelivered work-queue message acknowledged without running twice, acknowledgements and
// refusals, resubscription and resending after a reconnect. The real server is in tests/edge/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';

class FakeSocket {
  static all = [];
  constructor(url, options) {
    this.url = url;
    this.options = options;
    this.sent = [];
    this.readyState = 0;
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(...[JSON.parse(text)].flat()); }
  close() { this.readyState = 3; }
  /** The hub's side. */
  hello() { this.readyState = 1; this.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0 }) }); }
  deliver(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
  drop() { this.readyState = 3; this.onclose({ code: 1006 }); }
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function open(options = {}) {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't0k', WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 }, ...options });
  return { bus, ws: () => FakeSocket.all.at(-1) };
}

test('the URL: wss, /connect and hub; in Node the token goes in a header, not the URL', async () => {
  const { bus, ws } = open({ hub: 'orders' });
  assert.equal(ws().url, 'wss://edge.example.com/connect?hub=orders');
  assert.deepEqual(ws().options, { headers: { authorization: 'Bearer t0k' } });
  assert.deepEqual(await bus.close(), { remaining: [] });
});

test('plain subscriptions: a message id seen before is dropped and counted', async () => {
  const { bus, ws } = open();
  const got = [];
  const sub = bus.subscribe('a.*', (p, m) => got.push([p, m.id, m.attempt]));
  ws().hello();
  assert.deepEqual(ws().sent, [{ op: 'sub', id: sub.id, pattern: 'a.*' }]);
  const msg = { topic: 'a.b', payload: 1, id: 'm1', publishedAt: 1 };
  ws().deliver({ t: 'msg', m: [[[sub.id], msg], [[sub.id], { ...msg, payload: 2, id: 'm2' }]] });
  ws().deliver({ t: 'msg', m: [[[sub.id], msg]] });
  assert.deepEqual(got, [[1, 'm1', 1], [2, 'm2', 1]]);
  assert.equal(bus.stats().duplicates, 1);
  // The same id on another topic is another message (the hubs dedupe ids per topic).
  ws().deliver({ t: 'msg', m: [[[sub.id], { ...msg, topic: 'a.c', payload: 3 }]] });
  assert.deepEqual(got.at(-1), [3, 'm1', 1]);
  assert.equal(bus.stats().duplicates, 1);
  await bus.close();
});

test('an id is remembered as long as the hubs remember it (hello\'s dedupeMaxAgeMs), on their clock: taken again after that, it is a new message', async () => {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't0k', WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 } });
  const ws = FakeSocket.all.at(-1);
  const got = [];
  const plain = bus.subscribe('n.*', (p) => got.push(p));
  const runs = [];
  const work = bus.subscribe('w.x', (p) => { runs.push(p); }, { group: 'g' });
  ws.readyState = 1;
  ws.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0, limits: { dedupeMaxAgeMs: 600_000 } }) });
  const msg = { topic: 'n.a', payload: 1, id: 'same', publishedAt: 1_000_000, seq: 7 };
  ws.deliver({ t: 'msg', m: [[[plain.id], msg]] });
  // Within the window, even under a new number (published again after a hub answered UNAVAILABLE
  // and forgot the id): the copy the subscriber already had.
  ws.deliver({ t: 'msg', m: [[[plain.id], { ...msg, payload: 2, publishedAt: 1_599_999, seq: 8 }]] });
  // Once the window passed, the hub took the id as a new message: so is it here.
  ws.deliver({ t: 'msg', m: [[[plain.id], { ...msg, payload: 3, publishedAt: 1_600_000, seq: 9 }]] });
  assert.deepEqual(got, [1, 3]);
  assert.equal(bus.stats().duplicates, 1);

  const job = { topic: 'w.x', payload: 'a', id: 'j', publishedAt: 1_000_000 };
  ws.deliver({ t: 'msg', m: [[[work.id], job, 'd1', 1]] });
  await tick();
  ws.deliver({ t: 'msg', m: [[[work.id], job, 'd2', 2]] }); // its ack lost: acked again, not run
  ws.deliver({ t: 'msg', m: [[[work.id], { ...job, payload: 'b', publishedAt: 1_700_000 }, 'd3', 1]] });
  await tick();
  assert.deepEqual(runs, ['a', 'b'], 'the job published with the same id after the window ran');
  assert.deepEqual(ws.sent.filter((o) => o.op === 'ack').map((o) => o.d), [['d1'], ['d2'], ['d3']]);
  await bus.close();
});

test('work queues: ack when the handler resolves, nack when it throws; a redelivery of a handled message is acked, not run', async () => {
  const { bus, ws } = open({ onError: () => {} });
  const runs = [];
  const sub = bus.subscribe('jobs.x', async (p, m) => {
    runs.push([m.id, m.attempt]);
    if (p === 'bad') throw new Error('broken');
  }, { group: 'g', maxAttempts: 2 });
  ws().hello();
  assert.deepEqual(ws().sent[0], { op: 'sub', id: sub.id, pattern: 'jobs.x', group: 'g', maxAttempts: 2 });
  const job = { topic: 'jobs.x', payload: 'ok', id: 'j1', publishedAt: 1 };
  ws().deliver({ t: 'msg', m: [[[sub.id], job, 'd1', 1], [[sub.id], { ...job, id: 'j2', payload: 'bad' }, 'd2', 1]] });
  await tick();
  assert.deepEqual(ws().sent.slice(1), [
    { op: 'ack', sub: sub.id, d: ['d1'] },
    { op: 'nack', sub: sub.id, d: ['d2'], error: 'broken' },
  ]);
  // j1 again (an ack lost with a connection): acknowledged at once, the handler is not called.
  ws().deliver({ t: 'msg', m: [[[sub.id], job, 'd3', 2]] });
  await tick();
  assert.deepEqual(ws().sent.at(-1), { op: 'ack', sub: sub.id, d: ['d3'] });
  assert.deepEqual(runs, [['j1', 1], ['j2', 1]]);
  // j1 on another topic of the queue is another job: run, not taken for the handled one.
  ws().deliver({ t: 'msg', m: [[[sub.id], { ...job, topic: 'jobs.y' }, 'd4', 1]] });
  await tick();
  assert.deepEqual(ws().sent.at(-1), { op: 'ack', sub: sub.id, d: ['d4'] });
  assert.deepEqual(runs, [['j1', 1], ['j2', 1], ['j1', 1]]);
  await bus.close();
});

test('after a reconnect: subscriptions are sent again, unacknowledged publishes resent with the same id', async () => {
  const { bus, ws } = open();
  const sub = bus.subscribe('x.>', () => {});
  ws().hello();
  const acked = bus.publishAsync('x.1', 'a');
  const lost = bus.publishAsync('x.2', 'b', { id: 'mine' });
  await tick();
  const [, p1, p2] = ws().sent;
  ws().deliver({ t: 'ok', op: 'pub', ref: p1.ref });
  assert.equal(await acked, true);
  const first = ws();
  first.drop();
  bus.publish('x.3', 'c'); // offline
  assert.equal(bus.stats().buffered, 2);
  while (FakeSocket.all.at(-1) === first) await new Promise((r) => setTimeout(r, 2));
  ws().hello();
  assert.deepEqual(ws().sent.map((o) => [o.op, o.id ?? o.pattern, o.payload]), [
    ['sub', sub.id, undefined], ['pub', 'mine', 'b'], ['pub', ws().sent[2].id, 'c'],
  ]);
  assert.equal(ws().sent[1].ref, p2.ref, 'the same publish, sent again');
  ws().deliver([{ t: 'ok', op: 'pub', ref: p2.ref, dup: true }, { t: 'ok', op: 'pub', ref: ws().sent[2].ref }]);
  assert.equal(await lost, false, 'the hub had it already: a duplicate');
  assert.equal(bus.stats().reconnects, 1);
  assert.deepEqual(await bus.close(), { remaining: [] });
});

test('a refused subscription rejects its ready promise with the hub\'s code', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e) => errors.push(e.code) });
  const sub = bus.subscribe('secret.*', () => {});
  ws().hello();
  ws().deliver({ t: 'err', op: 'sub', ref: sub.id, code: 'FORBIDDEN', message: 'no' });
  await assert.rejects(sub.ready, (e) => e.code === 'FORBIDDEN');
  assert.equal(sub.active, false);
  assert.deepEqual(errors, ['FORBIDDEN']);
  await bus.close();
});

test('an acknowledgement refused FORBIDDEN reaches onError with its subscription; the connection, the subscription and publishes carry on', async () => {
  const errors = [];
  const { bus, ws } = open({ onError: (e, context) => errors.push([e.code, e.message, context]) });
  const runs = [];
  const sub = bus.subscribe('jobs.x', (p, m) => { runs.push(m.id); }, { group: 'g' });
  ws().hello();
  const socket = ws();
  const job = { topic: 'jobs.x', payload: 1, id: 'j1', publishedAt: 1 };
  socket.deliver({ t: 'msg', m: [[[sub.id], job, 'd1', 1]] });
  await tick();
  assert.deepEqual(socket.sent.at(-1), { op: 'ack', sub: sub.id, d: ['d1'] });
  socket.deliver({ t: 'err', op: 'ack', sub: sub.id, code: 'FORBIDDEN', refused: 1, message: '1 delivery token(s) refused' });
  assert.equal(errors.length, 1);
  const [code, message, context] = errors[0];
  assert.deepEqual([code, message, context.op, context.subscription], ['FORBIDDEN', '1 delivery token(s) refused', 'ack', sub]);
  // The same for a nack, and for a subscription the client no longer has.
  socket.deliver({ t: 'err', op: 'nack', sub: sub.id, code: 'FORBIDDEN', refused: 2, message: 'x' });
  socket.deliver({ t: 'err', op: 'ack', sub: 999, code: 'FORBIDDEN', refused: 1, message: 'y' });
  assert.deepEqual(errors.slice(1).map(([c, , ctx]) => [c, ctx.op, ctx.subscription]), [['FORBIDDEN', 'nack', sub], ['FORBIDDEN', 'ack', undefined]]);
  assert.equal(bus.stats().errors, 3);
  // Nothing else changed: same socket, the subscription active, the next job runs and is acked,
  // a publish is answered.
  assert.equal(ws(), socket);
  assert.equal(bus.connected, true);
  assert.equal(sub.active, true);
  socket.deliver({ t: 'msg', m: [[[sub.id], { ...job, id: 'j2' }, 'd2', 1]] });
  await tick();
  assert.deepEqual(socket.sent.at(-1), { op: 'ack', sub: sub.id, d: ['d2'] });
  assert.deepEqual(runs, ['j1', 'j2']);
  const published = bus.publishAsync('jobs.x', 'next');
  await tick();
  socket.deliver({ t: 'ok', op: 'pub', ref: socket.sent.at(-1).ref });
  assert.equal(await published, true);
  assert.deepEqual(await bus.close(), { remaining: [] });
});
