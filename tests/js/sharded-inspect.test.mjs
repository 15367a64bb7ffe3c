// How the package's objects print: console.log / util.inspect and JSON.stringify show their public
// state (Bus, Subscription, ShardedBus, the remote client and its subscriptions, Batcher,
// IdempotenceFilter), never the private fields, the core's pointers, or the bus a subscription
// belongs to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { Bus, Batcher, IdempotenceFilter, ShardedBus, connect } from 'edgebus';

const handlers = new URL('./fixtures/order-handlers.mjs', import.meta.url);

/** No private field (`_x`) and no long number (a pointer) in what is printed. */
function clean(text) {
  assert.doesNotMatch(text, /\b_[a-zA-Z]+:/, text);
  assert.ok(text.length < 200, `short: ${text}`);
}

test('Bus and Subscription print their public state', async () => {
  const bus = new Bus();
  const a = bus.subscribe('a.*', () => {});
  bus.subscribe('b.>', () => {}, { group: 'workers' });
  bus.subscribe('c', () => {});
  assert.equal(inspect(bus), 'Bus { subscriptions: 3, closed: false }');
  assert.equal(inspect(a), `Subscription { pattern: 'a.*', id: ${a.id}, active: true }`);
  a.unsubscribe();
  assert.equal(inspect(a), `Subscription { pattern: 'a.*', id: ${a.id}, active: false }`);
  assert.equal(inspect(bus), 'Bus { subscriptions: 2, closed: false }');
  assert.deepEqual(JSON.parse(JSON.stringify({ bus, sub: a })), {
    bus: { subscriptions: 2, closed: false }, sub: { pattern: 'a.*', id: a.id, active: false },
  });
  const grouped = bus.subscribe('d.*', () => {}, { group: 'g' });
  assert.match(inspect(grouped), /^Subscription \{ pattern: 'd\.\*', id: \d+, active: true, group: 'g' \}$/);
  await bus.close();
  assert.equal(inspect(bus), 'Bus { subscriptions: 3, closed: true }');
  clean(inspect(bus, { depth: 10 }));
  clean(inspect([bus, a], { depth: 10 }));
});

test('Batcher and IdempotenceFilter print their public state', async () => {
  const batcher = new Batcher(() => {}, { maxSize: 10 });
  assert.equal(inspect(batcher), 'Batcher { closed: false }');
  await batcher.close();
  assert.equal(JSON.stringify(batcher), '{"closed":true}');
  const filter = new IdempotenceFilter({ maxIds: 100, maxAgeMs: 60_000 });
  filter.check('a');
  filter.check('b');
  assert.equal(inspect(filter), 'IdempotenceFilter { maxIds: 100, maxAgeMs: 60000, size: 2 }');
  assert.equal(JSON.stringify(new IdempotenceFilter()), '{"maxIds":10000,"maxAgeMs":null,"size":0}');
});

test('ShardedBus prints its workers and whether it is closed', async () => {
  const bus = new ShardedBus({ workers: 2, handlers, data: { counts: new SharedArrayBuffer(16) } });
  assert.equal(inspect(bus), 'ShardedBus { workers: 2, closed: false }');
  await bus.close();
  assert.equal(JSON.stringify(bus), '{"workers":2,"closed":true}');
  clean(inspect(bus, { depth: 10 }));
});

test('the remote client and its subscriptions print their public state, the URL without its query', async () => {
  class Socket {
    constructor() { this.readyState = 0; }
    send() {}
    close() { this.readyState = 3; }
  }
  const bus = connect('https://edge.example.com/path?secret=1', { token: 't0k', WebSocket: Socket, hub: 'orders' });
  const sub = bus.subscribe('orders.*', () => {});
  assert.equal(inspect(bus),
    "RemoteBus {\n  url: 'https://edge.example.com/path',\n  connected: false,\n  closed: false,\n  subscriptions: 1,\n  hub: 'orders'\n}");
  assert.equal(inspect(sub), `RemoteSubscription { pattern: 'orders.*', id: ${sub.id}, active: true }`);
  assert.doesNotMatch(inspect(bus) + JSON.stringify(bus), /t0k|secret/);
  await bus.close();
  assert.equal(bus.toJSON().closed, true);
});
