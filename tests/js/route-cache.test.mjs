// The route cache and the core's topic table share one lifecycle: a subscription change drops the
// cached routes of exactly the topics its pattern reaches (the core finds them), so publishing to
// other topics keeps its cached route and does not cross into the core again. White-box: counts
// the core's route look-ups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, ManualClock } from 'edgebus';

function countingResolves(bus) {
  const core = bus._core;
  const count = { n: 0 };
  // Every way the driver asks for a route: a topic as a string, through the core's topic
  // buffer, and a stale cached route by its topic's handle.
  for (const name of ['resolve', 'resolve_scratch', 'reroute']) {
    const resolve = core[name].bind(core);
    core[name] = (...args) => {
      count.n++;
      return resolve(...args);
    };
  }
  return count;
}

const topics = Array.from({ length: 50 }, (_, i) => `orders.${i}.created`);

test('a subscribe or unsubscribe re-resolves only the topics its pattern reaches', () => {
  const bus = new Bus();
  const seen = new Map();
  const count = (name) => (p, m) => seen.set(name, [...(seen.get(name) ?? []), m.topic]);
  for (const t of topics) bus.subscribe(t, count(t));
  // Routes are cached from a topic's second publish on: publish each twice.
  for (let round = 0; round < 2; round++) {
    bus.publish('$errors.x', 0);
    bus.publish('other', 0);
    for (const t of topics) bus.publish(t, 0);
  }
  const resolves = countingResolves(bus);

  // Exact pattern: one topic's route goes.
  const one = bus.subscribe('orders.7.created', count('seven'));
  for (const t of topics) bus.publish(t, 0);
  bus.publish('other', 0);
  assert.equal(resolves.n, 1);
  assert.deepEqual(seen.get('seven'), ['orders.7.created']);

  // `*` in the middle: the 50 orders topics, not `other`, not `$errors.x`.
  const star = bus.subscribe('orders.*.created', count('star'));
  for (const t of topics) bus.publish(t, 0);
  bus.publish('other', 0);
  bus.publish('$errors.x', 0);
  assert.equal(resolves.n, 1 + 50);
  assert.equal(seen.get('star').length, 50);

  // `>` at the top reaches every topic but the system's.
  const all = bus.subscribe('>', count('all'));
  bus.publish('$errors.x', 0);
  assert.equal(resolves.n, 1 + 50);
  bus.publish('other', 0);
  assert.equal(resolves.n, 1 + 50 + 1);
  assert.deepEqual(seen.get('all'), ['other']);

  // Unsubscribing is targeted the same way, and the subscription receives nothing more. (The
  // orders topics' routes went with the `>` subscription and were not published to since.)
  bus.publish('orders.8.created', 0);
  assert.equal(resolves.n, 1 + 50 + 1 + 1);
  one.unsubscribe();
  bus.publish('orders.8.created', 0);
  assert.equal(resolves.n, 1 + 50 + 1 + 1);
  bus.publish('orders.7.created', 0);
  assert.equal(resolves.n, 1 + 50 + 1 + 2);
  // Two: the publish after it subscribed and the round after `orders.*.created`; none since.
  assert.deepEqual(seen.get('seven'), ['orders.7.created', 'orders.7.created']);
  star.unsubscribe();
  all.unsubscribe();
  for (const t of topics) bus.publish(t, 0);
  assert.equal(seen.get('star').length, 50 + 3);
  assert.deepEqual(seen.get('all'), ['other', 'orders.8.created', 'orders.8.created', 'orders.7.created']);
  for (const t of topics) {
    const extra = { 'orders.7.created': 1, 'orders.8.created': 2 }[t] ?? 0;
    assert.equal(seen.get(t).length, 5 + extra, t);
  }
});

test('short ASCII topics (through the core\'s buffer), long and non-ASCII ones (as strings) route alike', () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('t.>', (p, m) => got.push(m.topic));
  const long = `t.${'x'.repeat(300)}`;
  const topics = ['t.a', 't.é', long, `t.${'y'.repeat(253)}`, 't.\u{1F600}.z'];
  for (const t of topics) bus.publish(t, 0);
  for (const t of topics) bus.publish(t, 0);
  assert.deepEqual(got, [...topics, ...topics]);
  for (const bad of ['t..a', '', 't.a.', 'a b', `t.${'z'.repeat(300)}.`, 't.é.']) {
    assert.throws(() => bus.publish(bad, 0), (e) => e.code === 'INVALID_TOPIC', JSON.stringify(bad));
  }
  bus.publish('t.after', 0);
  assert.equal(got.at(-1), 't.after');
});

test('a route is cached from its topic\'s second publish on: topics published once leave no entry', () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('u.*', (p) => got.push(p));
  const resolves = countingResolves(bus);
  // Every topic unique: each is resolved by the core, none is kept by the driver.
  for (let i = 0; i < 1000; i++) bus.publish(`u.${i}`, i);
  assert.equal(resolves.n, 1000);
  assert.equal(bus._routes.size, 0);
  // The second publish of a topic finds it known to the core and caches its route; later ones
  // do not cross.
  bus.publish('u.7', 'a');
  assert.equal(resolves.n, 1001);
  assert.equal(bus._routes.size, 1);
  bus.publish('u.7', 'b');
  bus.publish('u.7', 'c');
  assert.equal(resolves.n, 1001);
  assert.deepEqual(got.slice(-3), ['a', 'b', 'c']);
  assert.equal(got.length, 1003);
  // A subscription change still reaches a topic seen only once: the next publish delivers to it.
  const late = [];
  bus.subscribe('u.999', (p) => late.push(p));
  bus.publish('u.999', 'x');
  bus.publish('u.7', 'y');
  assert.deepEqual(late, ['x']);
  assert.deepEqual(got.slice(-2), ['x', 'y']);
  assert.equal(bus.stats().published, 1005);
});

test('a topic that is not a string is refused even when its text names a cached route', () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('v.1', (p) => got.push(p));
  bus.subscribe('1', (p) => got.push(p));
  // Cached (second publish on) and published to last: both ways publish finds a route first.
  for (let i = 0; i < 3; i++) bus.publish('1', i);
  for (let i = 0; i < 3; i++) bus.publish('v.1', i);
  let read = 0;
  const named = { toString() { read++; return 'v.1'; } };
  assert.throws(() => bus.publish(named, 'x'), (e) => e.code === 'INVALID_TOPIC');
  assert.throws(() => bus.publish(1, 'y'), (e) => e.code === 'INVALID_TOPIC');
  assert.throws(() => bus.publish(new String('v.1'), 'z'), (e) => e.code === 'INVALID_TOPIC');
  assert.equal(read, 0);
  assert.deepEqual(got, [0, 1, 2, 0, 1, 2]);
  assert.equal(bus.stats().published, 6);
});

test('a stale route is asked for again by its topic\'s handle; when the core\'s table started anew meanwhile, the topic is resolved', () => {
  const bus = new Bus();
  const got = [];
  bus.subscribe('a.b', (p) => got.push(['first', p]));
  bus.publish('a.b', 1);
  bus.publish('a.b', 2); // cached from here on
  const calls = { resolve: 0, resolve_scratch: 0, reroute: [] };
  const core = bus._core;
  for (const name of ['resolve', 'resolve_scratch']) {
    const f = core[name].bind(core);
    core[name] = (...args) => { calls[name]++; return f(...args); };
  }
  const reroute = core.reroute.bind(core);
  core.reroute = (...args) => { const n = reroute(...args); calls.reroute.push(n); return n; };

  const second = bus.subscribe('a.b', (p) => got.push(['second', p]));
  bus.publish('a.b', 3);
  bus.publish('a.b', 4);
  // One look-up, by handle: [handle, gen, known, 2 × (index, gen)].
  assert.deepEqual(calls.reroute, [7]);
  assert.equal(calls.resolve + calls.resolve_scratch, 0);

  // Stale again; then the core's table fills up and starts anew (topics the driver never saw,
  // as delayed messages resolve them): the old handle is refused and the topic resolved.
  second.unsubscribe();
  for (let i = 0; i < 16_400; i++) core.resolve(`z.${i}`);
  const resolvesBefore = calls.resolve + calls.resolve_scratch;
  bus.publish('a.b', 5);
  assert.deepEqual(calls.reroute, [7, 0]);
  assert.equal(calls.resolve + calls.resolve_scratch, resolvesBefore + 1);
  bus.publish('a.b', 6);
  bus.publish('z.1', 7); // nobody subscribed: delivered nowhere
  assert.deepEqual(got, [
    ['first', 1], ['first', 2], ['first', 3], ['second', 3], ['first', 4], ['second', 4], ['first', 5], ['first', 6],
  ]);
  const s = bus.stats();
  assert.equal(s.published, 7);
  assert.equal(s.delivered, 8);
});

test('a route going stale while its handlers run: the publish goes on to the subscriptions it was routed to, and the next one is routed anew', () => {
  const bus = new Bus();
  const got = [];
  let late;
  bus.subscribe('a.b', (p) => {
    got.push(['first', p]);
    if (p === 3) {
      // Subscribes on the very topic, and publishes to it, from inside the delivery.
      late = bus.subscribe('a.b', (q) => got.push(['late', q]));
      bus.publish('a.b', 'nested');
    }
  });
  bus.subscribe('a.b', (p) => got.push(['second', p]));
  for (const p of [1, 2, 3, 4]) bus.publish('a.b', p);
  assert.deepEqual(got, [
    ['first', 1], ['second', 1], ['first', 2], ['second', 2],
    ['first', 3], ['second', 3],
    ['first', 'nested'], ['second', 'nested'], ['late', 'nested'],
    ['first', 4], ['second', 4], ['late', 4],
  ]);
  assert.equal(late.stats().delivered, 2);
  assert.equal(bus.stats().delivered, got.length);
  assert.equal(bus.stats().published, 5);
});

test('a topic whose retained value went by its TTL is delivered directly again (its route is no longer tracked)', () => {
  const clock = new ManualClock();
  const bus = new Bus({ clock });
  let n = 0;
  bus.subscribe('cfg', () => { n++; });
  bus.publish('cfg', 1, { retain: true, ttlMs: 5 });
  bus.publish('cfg', 2);
  assert.equal(bus._route('cfg').tracked, true);
  clock.advance(5);
  bus.publish('cfg', 3); // numbered no more; the core tells the route is stale
  bus.publish('cfg', 4);
  assert.equal(bus._route('cfg').tracked, false);
  assert.deepEqual([n, bus.retained().length, bus.logOf('cfg')?.retainedSeq], [4, 0, undefined]);
});
