// The remote client's persistent outbox (`persist`) against a scripted WebSocket (no server):
// what an earlier session left is sent first with its ids and deleted once acknowledged, a
// publish is stored before it is sent, a failing store loses nothing, the bound counts restored
// entries, close() lists them and leaves them in the store. The real hub: tests/edge/outbox*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';

class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    FakeSocket.all.push(this);
  }
  send(text) { this.sent.push(...[JSON.parse(text)].flat()); }
  close() {}
  hello() { this.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0 }) }); }
  ack(...ops) { this.onmessage({ data: JSON.stringify(ops.map((op) => ({ t: 'ok', op: 'pub', ref: op.ref }))) }); }
  pubs() { return this.sent.filter((op) => op.op === 'pub'); }
}

/** A store that records every call; `entries` is what it holds, oldest first. */
class RecordingStore {
  constructor(entries = [], { async = false } = {}) {
    this.entries = entries.slice();
    this.calls = [];
    this.async = async;
    this.gate = undefined;
  }
  answer(value) { return this.async ? Promise.resolve(value) : value; }
  load() {
    this.calls.push(['load']);
    const copy = this.entries.slice();
    if (this.gate !== undefined) return this.gate.then(() => copy);
    return this.answer(copy);
  }
  put(entry) {
    this.calls.push(['put', entry.id]);
    this.entries.push(entry);
    return this.answer(undefined);
  }
  delete(ids) {
    this.calls.push(['delete', ids.slice()]);
    this.entries = this.entries.filter((e) => !ids.includes(e.id));
    return this.answer(undefined);
  }
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const left = (n, prefix = 'old') => Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, topic: 'jobs.x', payload: i, at: 1000 + i }));

function open(options) {
  FakeSocket.all.length = 0;
  const bus = connect('https://edge.example.com', { token: 't', WebSocket: FakeSocket, reconnect: { initialMs: 1, maxMs: 2 }, ...options });
  return { bus, ws: () => FakeSocket.all.at(-1) };
}

test('entries an earlier session left go first, with their ids, and are deleted (in one call) once acknowledged', async () => {
  const store = new RecordingStore([...left(2), { id: 'old-k', topic: 'jobs.y', payload: { a: 1 }, key: 'k1', headers: { h: 'v' }, at: 5 }]);
  const { bus, ws } = open({ persist: store });
  assert.equal(bus.stats().restored, 3);
  bus.publish('jobs.x', 'new', { id: 'new-1' });
  assert.deepEqual(store.calls, [['load'], ['put', 'new-1']]);
  assert.equal(store.entries.at(-1).topic, 'jobs.x');
  assert.equal(typeof store.entries.at(-1).at, 'number');
  await tick();
  ws().hello();
  await tick();
  const pubs = ws().pubs();
  assert.deepEqual(pubs.map((p) => p.id), ['old-0', 'old-1', 'old-k', 'new-1']);
  assert.deepEqual([pubs[2].key, pubs[2].headers, pubs[2].payload], ['k1', { h: 'v' }, { a: 1 }]);
  ws().ack(...pubs);
  assert.equal(store.calls.length, 2, 'deletes wait for the end of the turn');
  await tick();
  assert.deepEqual(store.calls.slice(2), [['delete', ['old-0', 'old-1', 'old-k', 'new-1']]]);
  assert.deepEqual(store.entries, []);
  assert.equal(bus.stats().acknowledged, 4);
  assert.deepEqual(await bus.close(), { remaining: [] });
});

test('an async store: publishes made while it loads go after the restored ones, stored only once loading is done', async () => {
  const store = new RecordingStore(left(2), { async: true });
  let release;
  store.gate = new Promise((r) => { release = r; });
  const { bus, ws } = open({ persist: store });
  ws().hello();
  bus.publish('jobs.x', 'a', { id: 'a' });
  const b = bus.publishAsync('jobs.x', 'b', { id: 'b' });
  await tick();
  assert.deepEqual(ws().pubs(), [], 'nothing is sent before the earlier session is loaded');
  assert.deepEqual(store.calls, [['load']], 'no put before load is done');
  release();
  await tick();
  assert.deepEqual(store.calls, [['load'], ['put', 'a'], ['put', 'b']]);
  assert.deepEqual(ws().pubs().map((p) => p.id), ['old-0', 'old-1', 'a', 'b']);
  assert.equal(bus.stats().restored, 2);
  ws().ack(...ws().pubs());
  assert.equal(await b, true);
  await bus.flush();
  await tick();
  assert.deepEqual(store.entries, []);
  await bus.close();
});

test('a publish waits for its put: sent once the store has it', async () => {
  const store = new RecordingStore();
  let release;
  store.put = function put(entry) {
    this.entries.push(entry);
    return new Promise((r) => { release = r; });
  };
  const { bus, ws } = open({ persist: store });
  ws().hello();
  bus.publish('jobs.x', 1, { id: 'one' });
  await tick();
  assert.deepEqual(ws().pubs(), []);
  release();
  await tick();
  assert.deepEqual(ws().pubs().map((p) => p.id), ['one']);
  await bus.close({ timeoutMs: 0 });
});

test('a store that throws or rejects is reported (PERSIST_FAILED) and counted; nothing is lost in memory', async () => {
  for (const fails of [(e) => { throw e; }, (e) => Promise.reject(e)]) {
    const errors = [];
    const store = {
      load: () => fails(new Error('no load')),
      put: () => fails(new Error('disk full')),
      delete: () => fails(new Error('no delete')),
    };
    const { bus, ws } = open({ persist: store, onError: (e, ctx) => errors.push([e.code, e.cause?.message, ctx?.outbox]) });
    ws().hello();
    await tick();
    const sent = bus.publishAsync('jobs.x', 1, { id: 'p1' });
    await tick();
    const pubs = ws().pubs();
    assert.deepEqual(pubs.map((p) => p.id), ['p1'], 'sent although the store refused it');
    ws().ack(...pubs);
    assert.equal(await sent, true);
    await tick();
    await tick();
    assert.deepEqual(errors, [
      ['PERSIST_FAILED', 'no load', 'load'], ['PERSIST_FAILED', 'disk full', 'put'], ['PERSIST_FAILED', 'no delete', 'delete'],
    ]);
    assert.equal(bus.stats().persistFailed, 3);
    assert.equal(bus.stats().restored, 0);
    assert.deepEqual(await bus.close(), { remaining: [] });
  }
});

test('entries the store cannot give back as publishes are reported and skipped', async () => {
  const errors = [];
  const store = new RecordingStore([{ id: '', topic: 'a', payload: 1 }, null, { id: 'ok', topic: 'jobs.x', payload: 2, at: 1 }, { id: 'x', topic: 'a' }]);
  const { bus } = open({ persist: store, onError: (e) => errors.push(e.code) });
  assert.equal(bus.stats().restored, 1);
  assert.deepEqual(errors, ['PERSIST_FAILED', 'PERSIST_FAILED', 'PERSIST_FAILED']);
  assert.deepEqual((await bus.close({ timeoutMs: 0 })).remaining.map((r) => r.id), ['ok']);
});

test('maxBuffer counts restored entries: dropOldest drops the oldest, deleted from the store, counted and reported', async () => {
  const errors = [];
  const store = new RecordingStore(left(3));
  const { bus } = open({ persist: store, maxBuffer: 2, onError: (e, ctx) => errors.push([e.code, ctx.id]) });
  assert.deepEqual([bus.stats().restored, bus.stats().dropped, bus.stats().buffered], [3, 1, 2]);
  bus.publish('jobs.x', 'new', { id: 'new' });
  assert.deepEqual(errors, [['QUEUE_FULL', 'old-0'], ['QUEUE_FULL', 'old-1']]);
  await tick();
  assert.deepEqual(store.entries.map((e) => e.id), ['old-2', 'new']);
  assert.deepEqual((await bus.close({ timeoutMs: 0 })).remaining.map((r) => r.id), ['old-2', 'new']);
});

test('maxBuffer with overflow reject: what this session accepted stays; the restored entries that do not fit are dropped', async () => {
  const store = new RecordingStore(left(3), { async: true });
  const errors = [];
  const { bus } = open({ persist: store, maxBuffer: 2, overflow: 'reject', onError: (e, ctx) => errors.push([e.code, ctx.id]) });
  bus.publish('jobs.x', 'new', { id: 'new' });
  await bus.close({ timeoutMs: 0 }).then((r) => assert.deepEqual(r.remaining.map((x) => x.id), ['old-0', 'new']));
  assert.deepEqual(errors, [['QUEUE_FULL', 'old-1'], ['QUEUE_FULL', 'old-2']]);
  assert.deepEqual(bus.stats().dropped, 2);
  assert.deepEqual(store.entries.map((e) => e.id), ['old-0', 'new']);
});

test('close() lists restored and new publishes never acknowledged; they stay in the store, unless `discard`', async () => {
  const store = new RecordingStore(left(2));
  const first = open({ persist: store });
  first.bus.publish('jobs.x', 'n', { id: 'n' });
  const { remaining } = await first.bus.close({ timeoutMs: 0 });
  assert.deepEqual(remaining.map((r) => r.id), ['old-0', 'old-1', 'n']);
  assert.deepEqual(store.entries.map((e) => e.id), ['old-0', 'old-1', 'n'], 'kept for the next session');

  const second = open({ persist: store });
  assert.equal(second.bus.stats().restored, 3);
  assert.deepEqual((await second.bus.close({ timeoutMs: 0, discard: true })).remaining.map((r) => r.id), ['old-0', 'old-1', 'n']);
  assert.deepEqual(store.entries, []);
  const third = open({ persist: store });
  await assert.rejects(third.bus.close({ discard: 'yes' }), (e) => e.code === 'INVALID_OPTION');
  await third.bus.close();
});

test('a store with close() has it called once, at the client\'s close, after the calls made before it settled; a failing close is PERSIST_FAILED', async () => {
  const store = new RecordingStore([], { async: true });
  store.close = function () { this.calls.push(['close']); };
  const { bus, ws } = open({ persist: store });
  ws().hello();
  bus.publish('jobs.x', 1, { id: 'a' });
  await bus.close({ timeoutMs: 1000 });
  assert.deepEqual(store.calls.map((c) => c[0]), ['load', 'put', 'close']);

  const failing = new RecordingStore();
  failing.close = () => Promise.reject(new Error('disk gone'));
  const errors = [];
  const second = open({ persist: failing, onError: (e) => errors.push(e.code) });
  await second.bus.close({ timeoutMs: 1000 });
  assert.deepEqual([errors, second.bus.stats().persistFailed], [['PERSIST_FAILED'], 1]);
  assert.throws(() => connect('https://edge.example.com', { token: 't', WebSocket: FakeSocket, persist: { load() {}, put() {}, delete() {}, close: 1 } }),
    (e) => e.code === 'INVALID_OPTION' && e.message.includes('`persist.close`'));
});

test('no store call after close(), not even from a load that ends later; close() comes after a permanent refusal too', async () => {
  let release;
  const gate = new Promise((r) => { release = r; });
  const store = new RecordingStore(left(1));
  store.gate = gate;
  store.close = function () { this.calls.push(['close']); };
  const { bus, ws } = open({ persist: store });
  ws().hello();
  bus.publish('jobs.x', 'n', { id: 'n' });
  const { remaining } = await bus.close({ timeoutMs: 20 });
  assert.deepEqual(remaining.map((r) => r.id), ['n'], 'listed, never stored: the load had not ended');
  release();
  await tick();
  await tick();
  assert.deepEqual(store.calls.map((c) => c[0]), ['load', 'close'], 'nothing written after close');

  const refused = new RecordingStore();
  refused.close = function () { this.calls.push(['close']); };
  const errors = [];
  const second = open({ persist: refused, onError: (e) => errors.push(e.code) });
  second.bus.ready.catch(() => {});
  await tick();
  second.ws().onclose({ code: 4403, reason: 'forbidden' });
  await tick();
  await second.bus.close({ timeoutMs: 20 });
  assert.deepEqual([errors, refused.calls.map((c) => c[0])], [['CONNECT_REFUSED'], ['load', 'close']]);
});

test('the same id published twice: its entry goes when the last of them is acknowledged', async () => {
  const store = new RecordingStore();
  const { bus, ws } = open({ persist: store });
  ws().hello();
  bus.publish('jobs.x', 1, { id: 'same' });
  bus.publish('jobs.y', 2, { id: 'same' });
  await tick();
  const [a, b] = ws().pubs();
  ws().ack(a);
  await tick();
  assert.deepEqual(store.entries.map((e) => e.topic), ['jobs.x', 'jobs.y']);
  ws().ack(b);
  await tick();
  assert.deepEqual(store.entries, []);
  await bus.close();
});

test('bad `persist` values are refused at the call with INVALID_OPTION naming the option', () => {
  const refused = (options, what) => assert.throws(() => connect('https://edge.example.com', { token: 't', WebSocket: FakeSocket, ...options }),
    (e) => e.code === 'INVALID_OPTION' && e.message.includes(what), JSON.stringify(Object.keys(options)));
  refused({ persist: 'disk' }, '`persist`');
  refused({ persist: null }, '`persist`');
  refused({ persist: 1 }, '`persist`');
  refused({ persist: { load() {}, put() {} } }, '`persist.delete`');
  refused({ persist: { load: 1, put() {}, delete() {} } }, '`persist.load`');
  refused({ persist: new Proxy({}, { get() { throw new Error('trap'); } }) }, '`persist`');
  refused({ persist: 'indexeddb' }, 'IndexedDB');
  refused({ persistName: 'app' }, '`persistName`');
  refused({ persist: 'indexeddb', persistName: '' }, '`persistName`');
  refused({ persist: 'memory', persistName: 'app' }, '`persistName`');
  const memory = connect('https://edge.example.com', { token: 't', WebSocket: FakeSocket, persist: 'memory' });
  assert.equal(memory.stats().restored, 0);
  return memory.close();
});

test('hostile store answers are PERSIST_FAILED, never thrown: an entry that cannot be read is skipped, the others restored', async () => {
  const unreadable = { get id() { throw new Error('unreadable'); }, topic: 'jobs.x', payload: 1 };
  for (const async of [false, true]) {
    const errors = [];
    const store = new RecordingStore([left(1)[0], unreadable, left(2)[1]], { async });
    const { bus, ws } = open({ persist: store, onError: (e, ctx) => errors.push([e.code, ctx?.outbox]) });
    await tick();
    assert.equal(bus.stats().restored, 2);
    assert.deepEqual(errors, [['PERSIST_FAILED', 'load']]);
    bus.publish('jobs.x', 'n', { id: 'n' });
    ws().hello();
    await tick();
    assert.deepEqual(ws().pubs().map((p) => p.id), ['old-0', 'old-1', 'n'], 'the held publish is written and sent');
    await bus.close({ timeoutMs: 0 });
  }
});

test('hostile store answers: one whose `then` cannot be read is a failed call; the publish is sent anyway', async () => {
  const noThen = () => ({ get then() { throw new Error('no then'); } });
  const errors = [];
  const store = { load: noThen, put: noThen, delete: noThen, close: noThen };
  const { bus, ws } = open({ persist: store, onError: (e, ctx) => errors.push([e.code, ctx?.outbox]) });
  ws().hello();
  const sent = bus.publishAsync('jobs.x', 1, { id: 'p1' });
  await tick();
  ws().ack(...ws().pubs());
  assert.equal(await sent, true);
  await tick();
  await bus.close({ timeoutMs: 10 });
  assert.deepEqual(errors, [['PERSIST_FAILED', 'load'], ['PERSIST_FAILED', 'put'], ['PERSIST_FAILED', 'delete'], ['PERSIST_FAILED', 'close']]);
  assert.equal(bus.stats().persistFailed, 4);
});

test('a load that gives back no list (a number, a plain object) is PERSIST_FAILED, not an empty outbox', async () => {
  for (const junk of [42, {}, true]) {
    const errors = [];
    const { bus } = open({ persist: { load: () => junk, put() {}, delete() {} }, onError: (e, ctx) => errors.push([e.code, ctx?.outbox]) });
    assert.deepEqual(errors, [['PERSIST_FAILED', 'load']], String(junk));
    assert.equal(bus.stats().restored, 0);
    await bus.close({ timeoutMs: 0 });
  }
  const empty = open({ persist: { load: () => undefined, put() {}, delete() {} }, onError: () => assert.fail('nothing to report') });
  await empty.bus.close({ timeoutMs: 0 });
});

test('a load that ends after close() restores nothing: not counted, nothing reported dropped, its entries left in the store', async () => {
  let release;
  const store = new RecordingStore(left(3));
  store.gate = new Promise((r) => { release = r; });
  const errors = [];
  const { bus } = open({ persist: store, maxBuffer: 1, onError: (e) => errors.push(e.code) });
  assert.deepEqual(await bus.close({ timeoutMs: 0 }), { remaining: [] });
  release();
  await tick();
  assert.deepEqual([bus.stats().restored, bus.stats().dropped, errors], [0, 0, []]);
  assert.deepEqual(store.entries.map((e) => e.id), ['old-0', 'old-1', 'old-2'], 'for the next session');
  assert.deepEqual(store.calls, [['load']]);
});

test('flush() settles when close() comes first: CLOSED with publishes left (also while the earlier entries still load), resolved with none', async () => {
  const hanging = new RecordingStore(left(1));
  hanging.gate = new Promise(() => {});
  for (const options of [{}, { persist: new RecordingStore() }, { persist: hanging }]) {
    const { bus } = open(options);
    bus.publish('jobs.x', 1, { id: 'a' });
    const flushed = assert.rejects(bus.flush(), (e) => e.code === 'CLOSED');
    const { remaining } = await bus.close({ timeoutMs: 0 });
    assert.deepEqual(remaining.map((r) => r.id), ['a']);
    await flushed;
    await assert.rejects(bus.flush(), (e) => e.code === 'CLOSED', 'also flush() after close()');
  }
  const idle = new RecordingStore(left(1));
  idle.gate = new Promise(() => {});
  const { bus } = open({ persist: idle });
  const flushed = bus.flush();
  await bus.close({ timeoutMs: 0 });
  await flushed;
  await bus.flush();
});
