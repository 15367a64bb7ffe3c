// Property test of ShardedBus (worker_threads): random sequences of valid and hostile operations on
// a bus with random options, its handlers (fixtures/prop-handlers.mjs) succeeding, throwing,
// rejecting, waiting, spinning, never settling or looping forever, checked against a small
// reference model.
//
// - every error thrown or rejected by the API is an EdgebusError with a string `code`; a refused
//   call publishes nothing, and the bus still delivers afterwards;
// - what publish / publishAsync / publishBatch return is what the model predicts from the ids seen
//   (dedupe) and the room of the message's shard (`shardOf(key ?? topic)`, read from stats() just
//   before the call), per overflow policy;
// - after drain(): each accepted message ran on its own shard, once (a looping one once per time
//   out, while it may be redelivered), in publish order per key (or topic); each failure was
//   reported once to onError, with the subscription or the HANDLER_TIMEOUT / DATA_CLONE the
//   README gives, and to every `$errors` subscriber subscribed then; published, duplicates, done,
//   failed, dropped, expired, timedOut, restarts, redelivered and latency add up with the model;
// - publishAsync, drain(), close() settle within a bound (a hang fails with the operation list);
//   close() leaves nothing queued, terminate() returns what it abandoned; afterwards every call
//   is refused with CLOSED and every worker thread the bus started has exited.
//
// Runs are seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override the defaults; a failure
// prints the seed, the options and the operations, and EDGEBUS_PROP_PATH (with the seed) replays
// it. Without EDGEBUS_PROP_SHRINK=1 a failing run is reported as found (shrinking starts many
// worker pools).
import { test } from 'node:test';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { ShardedBus, EdgebusError, shardOf } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261206);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 80); // ~10-15 s on 2 cores
const SHRINK = process.env.EDGEBUS_PROP_SHRINK === '1';
const PATH = process.env.EDGEBUS_PROP_PATH; // replays the run of a report's `path`
const BOUND_MS = 20_000; // how long publishAsync, drain() and close() may take to settle

const handlers = new URL('./fixtures/prop-handlers.mjs', import.meta.url);
const shardScript = new URL('./fixtures/prop-shard.mjs', import.meta.url);

const KEYS = ['k0', 'k1', 'k2'];
const TOPICS = ['t.a', 't.b', 't.a.fan', 't.b.fan', '$u.z']; // `$u.z`: no worker subscription matches
const MAX_MESSAGES = 512;
const STRIDE = MAX_MESSAGES + 1;
const LANES = KEYS.length + TOPICS.length;

// ----- generators ------------------------------------------------------------------------------

const cfgArb = fc.record({
  workers: fc.integer({ min: 1, max: 3 }),
  maxInFlight: fc.constantFrom(1, 2, 4, 64),
  maxQueue: fc.constantFrom(0, 1, 3, Infinity),
  overflow: fc.constantFrom('dropOldest', 'dropNewest', 'reject', 'wait'),
  dedupe: fc.boolean(),
  timeoutMs: fc.option(fc.constantFrom(100, 150), { freq: 2 }),
  maxRedeliveries: fc.constantFrom(0, 1, 2),
  own: fc.boolean(), // the `worker` option (this test's script) instead of `handlers`
});

function actArb(cfg) {
  const acts = [
    { weight: 8, arbitrary: fc.constant({ act: 'ok' }) },
    { weight: 2, arbitrary: fc.constant({ act: 'throw' }) },
    { weight: 2, arbitrary: fc.constant({ act: 'reject' }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 6 }).map((ms) => ({ act: 'slow', ms })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }).map((ms) => ({ act: 'spin', ms })) },
  ];
  if (cfg.timeoutMs !== null) {
    acts.push({ weight: 1, arbitrary: fc.constant({ act: 'never' }) });
    acts.push({ weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }).map((j) => ({ act: 'loop', j })) });
  }
  return fc.oneof(...acts);
}

function opsArb(cfg) {
  const act = actArb(cfg);
  const msg = {
    topic: fc.nat(TOPICS.length - 1),
    key: fc.option(fc.nat(KEYS.length - 1)),
    id: fc.option(fc.nat(5)),
    ttl: fc.option(fc.constantFrom(1, 3, 60_000), { freq: 4 }),
    what: act,
  };
  return fc.array(fc.oneof(
    { weight: 10, arbitrary: fc.record({ op: fc.constant('pub'), ...msg }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('pubAsync'), ...msg }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('batch'), topic: fc.nat(TOPICS.length - 1), key: fc.option(fc.nat(KEYS.length - 1)),
      items: fc.array(fc.record({ id: fc.option(fc.nat(5)), what: act }), { minLength: 1, maxLength: 3 }), ids: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('mutate'), topic: fc.nat(3), key: fc.option(fc.nat(KEYS.length - 1)) }) },
    { weight: 4, arbitrary: fc.record({ op: fc.constant('hostile'), h: fc.nat(), v: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('errSub') }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('errUnsub'), i: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('stats') }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('pause'), ms: fc.integer({ min: 0, max: 15 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('drain') }) },
  ), { minLength: 1, maxLength: 30 });
}

const runArb = cfgArb.chain((cfg) => fc.record({
  cfg: fc.constant(cfg),
  ops: opsArb(cfg),
  end: fc.constantFrom('close', 'close', 'terminate'),
}));

// ----- hostile inputs --------------------------------------------------------------------------

const BAD_TOPICS = ['', 'a..b', '.a', 'a.', 't.*', '>', 't.>', 42, null, undefined, {}, ['t.a'], Symbol('s'), () => 't.a'];
const BAD_OPTIONS = [
  { key: 7 }, { key: {} }, { key: null }, { id: {} }, { id: NaN }, { ttlMs: -5 }, { ttlMs: NaN }, { ttlMs: 'x' },
  { headers: { a: 1 } }, { headers: 'x' }, { transfer: 'x' }, { transfer: [1] }, { priority: 1 }, { bogus: 1 }, { ids: ['a'] },
];
const NOT_OBJECTS = [42, 'x', true, Symbol('o'), 5n];
function revoked() {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}
const UNCLONEABLE = [
  () => () => 1, () => ({ n: 0, f() {} }), () => Symbol('p'), () => ({ n: 0, w: new WeakMap() }), () => new Proxy({ n: 0 }, {}),
  () => ({ n: 0, deep: [{ s: Symbol('x') }] }), () => ({ n: 0, get x() { throw new Error('getter says no'); } }), revoked,
];
const throwingOptions = () => ({ get key() { throw new Error('no key'); } });
function pick(list, v) { return list[v % list.length]; }

/**
 * Hostile calls on topics the handlers subscribe ('t.a'), or bad ones: [what is called, the call,
 * the codes it may fail with]. None of them may publish anything.
 */
const HOSTILE = [
  ['publish', (bus, v) => bus.publish(pick(BAD_TOPICS, v), { n: -1 }), ['INVALID_TOPIC']],
  ['publish', (bus, v) => bus.publish('t.a', { n: -1 }, pick(BAD_OPTIONS, v)), ['INVALID_OPTION']],
  ['publish', (bus, v) => bus.publish('t.a', { n: -1 }, pick(NOT_OBJECTS, v)), ['INVALID_OPTION']],
  ['publish', (bus, v) => bus.publish('t.a', pick(UNCLONEABLE, v)()), ['DATA_CLONE']],
  ['publish', (bus, v) => bus.publish('t.a', { n: -1 }, v % 2 ? throwingOptions() : revoked()), ['INVALID_OPTION']],
  ['batch', (bus) => bus.publishBatch('t.a', { length: 1, 0: { n: -1 } }), ['INVALID_ARGUMENT']],
  ['batch', (bus, v) => bus.publishBatch('t.a', [{ n: -1 }, pick(UNCLONEABLE, v)()]), ['DATA_CLONE']],
  ['batch', (bus) => bus.publishBatch('t.a', [{ n: -1 }, { n: -1 }], { ids: ['x'] }), ['INVALID_OPTION']],
  ['batch', (bus, v) => bus.publishBatch(pick(BAD_TOPICS, v), [{ n: -1 }]), ['INVALID_TOPIC']],
  ['batch', (bus, v) => bus.publishBatch('t.a', [{ n: -1 }], v % 2 ? { id: 'x' } : throwingOptions()), ['INVALID_OPTION']],
  ['async', (bus, v) => bus.publishAsync(pick(BAD_TOPICS, v), { n: -1 }), ['INVALID_TOPIC']],
  ['async', (bus, v) => bus.publishAsync('t.a', { n: -1 }, pick(BAD_OPTIONS, v)), ['INVALID_OPTION']],
  ['async', (bus, v) => bus.publishAsync('t.a', pick(UNCLONEABLE, v)()), ['DATA_CLONE']],
  ['async', (bus, v) => bus.publishAsync('t.a', { n: -1 }, v % 2 ? throwingOptions() : revoked()), ['INVALID_OPTION']],
  ['subscribe', (bus, v) => bus.subscribe(pick(['t.a', 't.>', '>', '*.a', 42, null, undefined, Symbol('p')], v), () => {}), ['INVALID_PATTERN']],
  ['subscribe', (bus, v) => bus.subscribe('$errors', pick([null, undefined, 42, 'f', {}], v)), ['INVALID_HANDLER']],
  ['subscribe', (bus, v) => bus.subscribe('$errors', () => {}, pick([{ concurrency: -1 }, { maxQueue: -1 }, { bogus: 1 }, 42], v)), ['INVALID_OPTION']],
];

// ----- one run ---------------------------------------------------------------------------------

class Hang extends Error {}

// Buses of the current run: stopped after it, whatever happened, so that a failing run leaves no
// worker keeping the process alive.
const live = new Set();

function within(promise, what, trace) {
  let timer;
  const bound = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Hang(`${what} did not settle within ${BOUND_MS} ms ${trace()}`)), BOUND_MS);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const turns = async (n = 3) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

async function runOne({ cfg, ops, end }) {
  let bus;
  const state = () => {
    if (bus === undefined) return '';
    const st = bus.stats();
    const perShard = st.perShard.map((p) => ({ ...p, latency: undefined }));
    return `\n  stats ${JSON.stringify({ ...st, perShard: undefined, latency: undefined })}\n  perShard ${JSON.stringify(perShard)}`;
  };
  const trace = () => `\n  options ${JSON.stringify(cfg)}\n  end ${end}\n  ops ${JSON.stringify(ops)}${state()}`;
  const check = (ok, what) => {
    if (!ok) throw new Error(`${what}${trace()}`);
  };
  // Inside callbacks the bus calls (onError, `$errors`), a throw would only be logged: kept here.
  const faults = [];
  const note = (ok, what) => {
    if (!ok) faults.push(what);
  };
  const isTyped = (e, codes, what) => {
    check(e instanceof EdgebusError && typeof e.code === 'string' && e instanceof Error,
      `${what}: expected an EdgebusError with a code, got ${e && e.name}: ${e && e.message}`);
    check(codes.includes(e.code), `${what}: code ${e.code} (${e.message}), expected one of ${codes}`);
  };

  const mem = {
    calls: new SharedArrayBuffer(4 * 2 * MAX_MESSAGES),
    shards: new SharedArrayBuffer(4 * MAX_MESSAGES),
    lanes: new SharedArrayBuffer(4 * LANES * STRIDE),
  };
  const calls = new Int32Array(mem.calls);
  const shards = new Int32Array(mem.shards);
  const lanes = new Int32Array(mem.lanes);
  const R = cfg.maxRedeliveries;

  // ----- the model
  const msgs = [];          // accepted messages (and those of pending publishAsync): see message()
  const seenIds = new Set();
  let accepted = 0;
  let duplicates = 0;
  let droppedHere = 0;      // dropped on the main thread: refused by dropNewest, evicted by dropOldest…
  let evicted = 0;          // …of them, accepted messages evicted later (which ones is not observable)
  let pending = 0;          // publishAsync not settled
  let seq = 0;              // call order
  const errors = new Map(); // n → reports to onError
  const reports = [];       // every report, in order
  const errSubs = [];       // { sub, active, expected: [], got: [] }
  const started = [];       // worker threads the `worker` option started
  const exited = new Set();
  const asyncs = [];        // publishAsync promises, with what the model learns when they settle

  const options = {
    workers: cfg.workers, maxInFlight: cfg.maxInFlight, maxQueue: cfg.maxQueue, overflow: cfg.overflow,
    maxRedeliveries: R, data: { ...mem, stride: STRIDE },
    onError: (error, message, info) => {
      const n = message.payload !== null && typeof message.payload === 'object' ? message.payload.n : undefined;
      note(Number.isInteger(n) && n >= 0 && n < msgs.length, `onError for an unknown message ${JSON.stringify(message)}`);
      const r = {
        n, code: error.code, message: error.message, redelivered: error.redelivered, shard: info.shard,
        pattern: info.subscription === undefined ? undefined : info.subscription.pattern, typed: error instanceof Error,
      };
      reports.push(r);
      if (!errors.has(n)) errors.set(n, []);
      errors.get(n).push(r);
      for (const s of errSubs) if (s.active) s.expected.push(`${n}:${error.message}`);
    },
  };
  if (cfg.dedupe) options.dedupe = { maxIds: 1000 };
  if (cfg.timeoutMs !== null) options.timeoutMs = cfg.timeoutMs;
  if (cfg.own) {
    options.worker = () => {
      const w = new Worker(shardScript);
      started.push(w);
      w.once('exit', () => exited.add(w));
      return w;
    };
  } else {
    options.handlers = handlers;
  }
  bus = new ShardedBus(options);
  live.add(bus);
  await within(bus.ready, 'ready', trace);

  function lane(topic, key) {
    return key !== undefined ? KEYS.indexOf(key) : KEYS.length + TOPICS.indexOf(topic);
  }
  function message(topic, key, id, ttl, what) {
    const n = msgs.length;
    check(n < MAX_MESSAGES, 'too many messages for the shared memory');
    const m = { n, topic, key, id, ttl, ...what, seq: seq++, state: 'called', fan: topic.endsWith('.fan'), obs: !topic.startsWith('$') };
    msgs.push(m);
    return m;
  }
  const payloadOf = (m) => ({ n: m.n, l: lane(m.topic, m.key), act: m.act, j: m.j, ms: m.ms });
  const accept = (m) => {
    m.state = 'accepted';
    accepted++;
    if (m.id !== undefined && cfg.dedupe) seenIds.add(m.id);
  };
  const isDuplicate = (id) => cfg.dedupe && id !== undefined && seenIds.has(id);
  /** Room in the shard of (topic, key), as the README defines it, from stats() read now. */
  function roomOf(topic, key) {
    const st = bus.stats();
    const sh = st.perShard[shardOf(key ?? topic, cfg.workers)];
    return { room: cfg.maxInFlight - sh.inFlight + cfg.maxQueue - sh.queued, queued: sh.queued, waiting: st.waiting };
  }
  /** What the overflow policy does to one more message in a shard with this room. */
  function predictOne({ room, queued }) {
    if (room >= 1) return 'accept';
    switch (cfg.overflow) {
      case 'dropNewest': return 'drop';
      case 'dropOldest': {
        const out = Math.min(queued, 1 - room);
        return room + out >= 1 ? { evict: out } : 'drop';
      }
      default: return 'full';
    }
  }

  function publishSync(m, publish) {
    if (isDuplicate(m.id)) {
      check(publish() === false, `publish of duplicate id ${m.id} did not return false`);
      duplicates++;
      m.state = 'duplicate';
      return;
    }
    const p = predictOne(roomOf(m.topic, m.key));
    if (p === 'full') {
      let thrown;
      try { publish(); } catch (e) { thrown = e; }
      check(thrown !== undefined, `publish into a full shard under ${cfg.overflow} did not throw`);
      isTyped(thrown, ['QUEUE_FULL'], 'publish into a full shard');
      m.state = 'refused';
      return;
    }
    const r = publish();
    if (p === 'drop') {
      check(r === false, `publish into a full shard under ${cfg.overflow} returned ${r}, expected false`);
      droppedHere++;
      m.state = 'dropped';
      return;
    }
    check(r === true, `publish ${m.n} returned ${r}, expected true`);
    if (p.evict !== undefined) {
      droppedHere += p.evict;
      evicted += p.evict;
    }
    accept(m);
  }

  function publishAsync(m) {
    const payload = payloadOf(m);
    const o = {};
    if (m.key !== undefined) o.key = m.key;
    if (m.id !== undefined) o.id = m.id;
    if (m.ttl !== undefined) o.ttlMs = m.ttl;
    const r = roomOf(m.topic, m.key);
    let expect;
    if (r.waiting > 0 || (cfg.overflow === 'wait' && r.room < 1)) expect = 'wait';
    else if (isDuplicate(m.id)) expect = 'duplicate';
    else expect = predictOne(r);
    pending++;
    const p = bus.publishAsync(m.topic, payload, o);
    if (expect === 'duplicate') duplicates++;
    else if (expect === 'drop') droppedHere++;
    else if (expect !== 'wait' && expect !== 'full') {
      if (expect.evict !== undefined) {
        droppedHere += expect.evict;
        evicted += expect.evict;
      }
      accept(m);
    }
    const settled = p.then((v) => {
      pending--;
      if (expect === 'wait') {
        // Admitted when there was room, in call order: the model learns the outcome now.
        if (v === true) check(!isDuplicate(m.id), `publishAsync ${m.n} admitted with an id already seen`);
        else check(v === false && isDuplicate(m.id), `publishAsync ${m.n} resolved ${v} (not a duplicate)`);
        if (v === true) accept(m);
        else {
          duplicates++;
          m.state = 'duplicate';
        }
        return;
      }
      check(expect !== 'full', `publishAsync ${m.n} into a full shard under reject resolved ${v}`);
      const want = expect === 'duplicate' || expect === 'drop' ? false : true;
      check(v === want, `publishAsync ${m.n} resolved ${v}, expected ${want} (${JSON.stringify(expect)})`);
      if (!want) m.state = expect === 'drop' ? 'dropped' : 'duplicate';
    }, (e) => {
      pending--;
      if (expect === 'full') {
        isTyped(e, ['QUEUE_FULL'], `publishAsync ${m.n} into a full shard`);
        m.state = 'refused';
        return;
      }
      // A waiting call is refused only when the bus stops under it.
      check(expect === 'wait' && terminated, `publishAsync ${m.n} rejected: ${e && e.code} ${e && e.message}`);
      isTyped(e, ['CLOSED'], `publishAsync ${m.n} waiting when terminated`);
      m.state = 'abandoned';
    });
    asyncs.push(settled);
  }

  function publishBatch(op) {
    const topic = TOPICS[op.topic];
    const key = op.key === null ? undefined : KEYS[op.key];
    const ids = op.ids ? op.items.map((it) => (it.id === null ? undefined : `id${it.id}`)) : undefined;
    const ms = op.items.map((it, i) => message(topic, key, ids === undefined ? undefined : ids[i], undefined, it.what));
    const o = {};
    if (key !== undefined) o.key = key;
    if (ids !== undefined) o.ids = ids;
    // Duplicates: ids seen, and ids repeated within the batch.
    const fresh = [];
    const inBatch = new Set();
    let dups = 0;
    for (const m of ms) {
      if (cfg.dedupe && m.id !== undefined && (seenIds.has(m.id) || inBatch.has(m.id))) {
        dups++;
        m.state = 'duplicate';
        continue;
      }
      if (m.id !== undefined) inBatch.add(m.id);
      fresh.push(m);
    }
    const { room, queued } = roomOf(topic, key);
    const call = () => bus.publishBatch(topic, ms.map(payloadOf), o);
    if (room < fresh.length && (cfg.overflow === 'reject' || cfg.overflow === 'wait')) {
      let thrown;
      try { call(); } catch (e) { thrown = e; }
      check(thrown !== undefined, `publishBatch of ${fresh.length} into a shard with room ${room} under ${cfg.overflow} did not throw`);
      isTyped(thrown, ['QUEUE_FULL'], 'publishBatch into a full shard');
      for (const m of fresh) m.state = 'refused';
      // All or nothing: a refused batch changes nothing, its duplicates are not counted either.
      for (const m of ms) if (m.state === 'duplicate') m.state = 'refused';
      return;
    }
    duplicates += dups;
    let keep = fresh;
    if (room < fresh.length) {
      let r = room;
      if (cfg.overflow === 'dropOldest') {
        const out = Math.min(queued, fresh.length - r);
        r += out;
        droppedHere += out;
        evicted += out;
      }
      const fit = Math.max(0, Math.min(r, fresh.length));
      keep = cfg.overflow === 'dropOldest' ? fresh.slice(fresh.length - fit) : fresh.slice(0, fit);
      droppedHere += fresh.length - fit;
      for (const m of fresh) if (!keep.includes(m)) m.state = 'dropped';
    }
    const n = call();
    check(n === keep.length, `publishBatch returned ${n}, expected ${keep.length}`);
    for (const m of keep) accept(m);
  }

  let terminated = false;
  let checks = 0;

  /** Everything published has been handled (after drain or close): the model's full check. */
  function quiescent(where) {
    checks++;
    const st = bus.stats();
    const at = `${where}: `;
    check(faults.length === 0, `${at}${faults.join('; ')}`);
    check(pending === 0, `${at}${pending} publishAsync still pending after drain`);
    check(st.queued === 0 && st.inFlight === 0 && st.waiting === 0, `${at}queued ${st.queued}, inFlight ${st.inFlight}, waiting ${st.waiting}`);
    check(st.published === accepted, `${at}published ${st.published}, model ${accepted}`);
    check(st.duplicates === duplicates, `${at}duplicates ${st.duplicates}, model ${duplicates}`);

    let complete = 0;      // ran in every subscription it matches (and not given up)
    let incomplete = 0;    // observable, accepted, some subscription never ran it (evicted, expired, swept)
    let noTtlIncomplete = 0;
    let dollar = 0;        // accepted on `$u.z`: nothing observes them
    let ttlAccepted = 0;
    const restartsOf = st.perShard.map((p) => p.restarts);
    for (const m of msgs) {
      const errs = errors.get(m.n) ?? [];
      if (m.state !== 'accepted') {
        check(errs.length === 0 && calls[2 * m.n] === 0 && calls[2 * m.n + 1] === 0,
          `${at}message ${m.n} (${m.state}) ran or failed: calls ${calls[2 * m.n]}/${calls[2 * m.n + 1]}, errors ${JSON.stringify(errs)}`);
        continue;
      }
      if (m.ttl !== undefined) ttlAccepted++;
      if (!m.obs) {
        dollar++;
        check(errs.length === 0, `${at}message ${m.n} on ${m.topic} failed: ${JSON.stringify(errs)}`);
        continue;
      }
      const a = calls[2 * m.n];
      const b = calls[2 * m.n + 1];
      const shard = shardOf(m.key ?? m.topic, cfg.workers);
      const name = `${at}message ${m.n} (${m.act}${m.j ? ` ${m.j}` : ''}, ${m.topic}, key ${m.key}, ttl ${m.ttl})`;
      if (m.mutated && !(a === 0 && errs.length === 0)) {
        check(a === 0 && b === 0, `${name}: uncloneable, yet handled`);
        check(errs.length === 1 && errs[0].code === 'DATA_CLONE' && errs[0].shard === shard,
          `${name}: made uncloneable after publish, expected one DATA_CLONE report, got ${JSON.stringify(errs)}`);
        continue;
      }
      // A looping message given up (its `t.>` handler timed out maxRedeliveries + 1 times) need
      // not have reached its other subscription: it is failed, not lost.
      const givenUp = m.act === 'loop' && m.j > R && a === R + 1;
      // A looping message with a ttl may expire while it waits to be sent again (the README's TTL
      // rule applies to redelivered messages too): fewer calls, each reported as sent again, and
      // then lost like any expired message.
      const expiredLoop = m.act === 'loop' && m.ttl !== undefined && a > 0 && a < (m.j > R ? R + 1 : m.j + 1);
      if (!givenUp && (a === 0 || expiredLoop || (m.fan && b === 0))) {
        incomplete++;
        if (m.ttl === undefined) noTtlIncomplete++;
      }
      if (b > 0) {
        check(m.fan, `${name}: the fan handler ran`);
        check(b <= 1 + restartsOf[shard], `${name}: the fan handler ran ${b} times, ${restartsOf[shard]} restarts`);
      }
      if (a === 0) {
        check(errs.length === 0, `${name}: never ran, yet reported ${JSON.stringify(errs)}`);
        continue;
      }
      check(shards[m.n] === shard + 1, `${name}: ran on shard ${shards[m.n] - 1}, its shard is ${shard}`);
      let wantCalls = 1;
      let want = [];
      switch (m.act) {
        case 'throw':
        case 'reject':
          // A failure is marked finished only once reported (README, Crashes): one whose worker
          // died before its report left (a loop later in the same turn) runs again, once per
          // replacement at most, and is reported by the run that gets its report out.
          if (a > 1 && a <= 1 + restartsOf[shard]) wantCalls = a;
          want = [{ message: `m${m.n} ${m.act}s`, code: undefined, pattern: 't.>' }];
          while (want.length < Math.min(errs.length, a)) want.push(want[0]);
          break;
        case 'never':
          want = [{ code: 'HANDLER_TIMEOUT', pattern: 't.>', redelivered: undefined }];
          break;
        case 'loop': {
          const k = expiredLoop ? a : Math.min(m.j, R + 1);
          wantCalls = expiredLoop ? a : givenUp ? R + 1 : m.j + 1;
          want = Array.from({ length: k }, (_, i) => ({ code: 'HANDLER_TIMEOUT', pattern: undefined, redelivered: !(givenUp && i === k - 1) }));
          break;
        }
        default:
      }
      check(a === wantCalls, `${name}: ran ${a} times, expected ${wantCalls}`);
      const got = errs.map((e) => ({ message: e.message, code: e.code, pattern: e.pattern, redelivered: e.redelivered }));
      const same = got.length === want.length && want.every((w, i) => Object.keys(w).every((k) => got[i][k] === w[k])
        && errs[i].shard === shard && errs[i].typed);
      check(same, `${name}: reports ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
      if (!givenUp && !expiredLoop && !(m.fan && b === 0)) complete++;
    }

    // Reports: failed counts every report but the HANDLER_TIMEOUTs of messages sent again.
    const redeliveredTimeouts = reports.filter((r) => r.redelivered === true).length;
    const watchdog = reports.filter((r) => r.code === 'HANDLER_TIMEOUT' && r.redelivered !== undefined).length;
    check(st.failed === reports.length - redeliveredTimeouts, `${at}failed ${st.failed}, reports ${reports.length} (${redeliveredTimeouts} redelivered)`);
    check(st.timedOut === watchdog, `${at}timedOut ${st.timedOut}, blocked-worker reports ${watchdog}`);
    check(st.restarts === watchdog, `${at}restarts ${st.restarts}, blocked-worker reports ${watchdog}`);
    check(st.redelivered >= redeliveredTimeouts && (st.restarts > 0 || st.redelivered === 0),
      `${at}redelivered ${st.redelivered}, ${redeliveredTimeouts} timed out and sent again, ${st.restarts} restarts`);
    // Lost before running: evicted (dropOldest), expired here (ttl), or swept in the worker (ttl).
    const swept = st.dropped - droppedHere;
    check(swept >= 0 && swept <= ttlAccepted, `${at}dropped ${st.dropped}, model ${droppedHere} here (+ at most ${ttlAccepted} with a ttl in workers)`);
    check(st.expired <= ttlAccepted, `${at}expired ${st.expired}, only ${ttlAccepted} have a ttl`);
    check(noTtlIncomplete <= evicted, `${at}${noTtlIncomplete} messages without a ttl never ran, ${evicted} evicted`);
    const lost = evicted + st.expired + swept; // the incomplete observable ones, and some `$u.z` ones
    check(incomplete <= lost && lost - incomplete <= dollar,
      `${at}${incomplete} observable messages never ran fully; evicted ${evicted} + expired ${st.expired} + swept ${swept}, ${dollar} unobservable`);
    const lostDollar = lost - incomplete;
    check(st.done === complete + swept + dollar - lostDollar,
      `${at}done ${st.done}, model ${complete} complete + ${swept} swept + ${dollar - lostDollar} on $u.z`);
    check(st.latency.count === st.done, `${at}latency.count ${st.latency.count}, done ${st.done}`);

    // Per lane (key, or topic without a key): the `t.>` starts in call order. A message runs again
    // only while it loops, or after its worker was replaced: unfinished messages (one that failed
    // with its report not yet out included) are sent again first, in their order. So first runs
    // are in call order, and the log is runs in call order, each after the first starting with a
    // message run again.
    for (let l = 0; l < LANES; l++) {
      const count = lanes[l * STRIDE];
      const log = Array.from(lanes.subarray(l * STRIDE + 1, l * STRIDE + 1 + count));
      const seen = new Set();
      let last = -1;
      let lastFirst = -1;
      for (const n of log) {
        const m = msgs[n];
        check(m !== undefined && lane(m.topic, m.key) === l, `${at}lane ${l} ran message ${n} of another lane: ${JSON.stringify(log)}`);
        if (seen.has(n)) {
          const again = m.act === 'loop' || ((m.act === 'throw' || m.act === 'reject') && restartsOf[shardOf(m.key ?? m.topic, cfg.workers)] > 0);
          check(again, `${at}lane ${l}: message ${n} (${m.act}) ran more than once: ${JSON.stringify(log)}`);
        } else {
          check(m.seq > lastFirst && m.seq > last, `${at}lane ${l} out of call order: ${JSON.stringify(log.map((x) => [x, msgs[x].seq]))}`);
          seen.add(n);
          lastFirst = m.seq;
        }
        check(m.seq > last || seen.has(n), `${at}lane ${l} out of call order: ${JSON.stringify(log.map((x) => [x, msgs[x].seq]))}`);
        last = m.seq;
      }
    }

    // `$errors` subscribers: each got the reports made while it was subscribed (a prefix of them if it left).
    for (const [i, s] of errSubs.entries()) {
      const prefix = s.got.every((g, j) => g === s.expected[j]);
      check(prefix && (!s.active || s.got.length === s.expected.length),
        `${at}$errors subscriber ${i} (active ${s.active}) got ${JSON.stringify(s.got)}, expected ${JSON.stringify(s.expected)}`);
    }
  }

  function hostile(op) {
    const [kind, call, codes] = HOSTILE[op.h % HOSTILE.length];
    const before = bus.stats();
    const what = `hostile #${op.h % HOSTILE.length} (${kind}, v ${op.v})`;
    if (kind === 'async') {
      let p;
      try {
        p = call(bus, op.v);
      } catch (e) {
        check(false, `${what}: publishAsync threw instead of rejecting: ${e && e.message}`);
      }
      check(p instanceof Promise, `${what}: publishAsync did not return a promise`);
      pending++;
      asyncs.push(p.then((v) => check(false, `${what}: resolved ${v}`), (e) => {
        pending--;
        isTyped(e, codes, what);
      }));
    } else {
      let thrown;
      let r;
      try { r = call(bus, op.v); } catch (e) { thrown = e; }
      check(thrown !== undefined, `${what}: accepted (returned ${r && typeof r === 'object' ? 'an object' : String(r)})`);
      isTyped(thrown, codes, what);
    }
    const after = bus.stats();
    check(after.published === before.published && after.duplicates === before.duplicates && after.dropped === before.dropped,
      `${what}: changed published/duplicates/dropped`);
  }

  // ----- the operations
  for (const op of ops) {
    switch (op.op) {
      case 'pub': {
        const topic = TOPICS[op.topic];
        const key = op.key === null ? undefined : KEYS[op.key];
        const m = message(topic, key, op.id === null ? undefined : `id${op.id}`, op.ttl ?? undefined, op.what);
        const o = {};
        if (key !== undefined) o.key = key;
        if (m.id !== undefined) o.id = m.id;
        if (m.ttl !== undefined) o.ttlMs = m.ttl;
        publishSync(m, () => bus.publish(topic, payloadOf(m), o));
        break;
      }
      case 'pubAsync': {
        const topic = TOPICS[op.topic];
        const key = op.key === null ? undefined : KEYS[op.key];
        publishAsync(message(topic, key, op.id === null ? undefined : `id${op.id}`, op.ttl ?? undefined, op.what));
        break;
      }
      case 'batch':
        publishBatch(op);
        break;
      case 'mutate': {
        // Cloneable at publish, not when its batch is sent: reported as DATA_CLONE, alone.
        const topic = TOPICS[op.topic];
        const key = op.key === null ? undefined : KEYS[op.key];
        const m = message(topic, key, undefined, undefined, { act: 'ok' });
        const payload = payloadOf(m);
        publishSync(m, () => bus.publish(topic, payload, key === undefined ? undefined : { key }));
        if (m.state === 'accepted') {
          m.mutated = true;
          payload.f = () => 1;
        }
        break;
      }
      case 'hostile':
        hostile(op);
        break;
      case 'errSub': {
        const s = { sub: undefined, active: true, expected: [], got: [] };
        s.sub = bus.subscribe('$errors', (ev) => {
          note(ev.error instanceof Error && typeof ev.shard === 'number', `$errors event ${JSON.stringify(ev)}`);
          s.got.push(`${ev.message.payload.n}:${ev.error.message}`);
        });
        errSubs.push(s);
        break;
      }
      case 'errUnsub': {
        const live = errSubs.filter((s) => s.active);
        if (live.length > 0) {
          const s = live[op.i % live.length];
          s.active = false;
          check(s.sub.unsubscribe() === true, 'unsubscribing a $errors subscriber returned false');
          check(s.sub.unsubscribe() === false, 'a second unsubscribe returned true');
        }
        break;
      }
      case 'stats': {
        const st = bus.stats();
        check(st.published >= accepted && st.published <= accepted + pending, `stats: published ${st.published}, model ${accepted} (+${pending} pending)`);
        check(st.waiting <= pending, `stats: waiting ${st.waiting}, ${pending} publishAsync pending`);
        check(st.perShard.length === cfg.workers && st.workers === cfg.workers, 'stats: workers');
        for (const p of st.perShard) check(p.inFlight <= cfg.maxInFlight, `stats: shard ${p.shard} inFlight ${p.inFlight} > maxInFlight`);
        break;
      }
      case 'pause':
        await sleep(op.ms);
        break;
      case 'drain':
        await within(bus.drain(), 'drain()', trace);
        await turns();
        await within(Promise.all(asyncs), 'publishAsync', trace);
        quiescent('after drain()');
        break;
      default:
        throw new Error(`unknown op ${op.op}`);
    }
  }

  // ----- the end: close (everything handled) or terminate (what is left is counted)
  if (end === 'close') {
    const r = await within(bus.close(), 'close()', trace);
    check(r === undefined, `close() resolved ${r}`);
    await turns();
    await within(Promise.all(asyncs), 'publishAsync', trace);
    quiescent('after close()');
  } else {
    await turns();
    const st = bus.stats();
    terminated = true;
    const n = bus.terminate();
    check(n === st.queued + st.inFlight + st.waiting, `terminate() returned ${n}, stats said queued ${st.queued} + inFlight ${st.inFlight} + waiting ${st.waiting}`);
    check(bus.stats().abandoned === n, `abandoned ${bus.stats().abandoned}, terminate() returned ${n}`);
    await within(Promise.all(asyncs), 'publishAsync after terminate()', trace);
    await within(bus.drain(), 'drain() after terminate()', trace);
  }
  check(bus.closed === true, 'closed is not true');
  for (const [what, call] of [
    ['publish', () => bus.publish('t.a', { n: -1 })],
    ['publishBatch', () => bus.publishBatch('t.a', [{ n: -1 }])],
    ['subscribe', () => bus.subscribe('$errors', () => {})],
  ]) {
    let thrown;
    try { call(); } catch (e) { thrown = e; }
    check(thrown !== undefined, `${what} after ${end} was accepted`);
    isTyped(thrown, ['CLOSED'], `${what} after ${end}`);
  }
  let rejected;
  await within(bus.publishAsync('t.a', { n: -1 }).catch((e) => { rejected = e; }), 'publishAsync after close', trace);
  isTyped(rejected, ['CLOSED'], `publishAsync after ${end}`);
  await within(bus.close(), 'a second close()', trace);
  check(faults.length === 0, faults.join('; '));
  // No worker left running: every thread the bus started has exited.
  if (cfg.own) {
    const deadline = Date.now() + BOUND_MS;
    while (exited.size < started.length && Date.now() < deadline) await sleep(5);
    check(exited.size === started.length, `${started.length - exited.size} of ${started.length} worker threads still running after ${end}`);
  }
  return checks;
}

test('ShardedBus: random operations and hostile input against the model', { timeout: 30 * 60_000 }, async () => {
  let runs = 0;
  let checked = 0;
  const report = await fc.check(fc.asyncProperty(runArb, async (run) => {
    runs++;
    try {
      checked += await runOne(run);
    } finally {
      for (const bus of live) bus.terminate();
      live.clear();
    }
  }), { seed: SEED, numRuns: RUNS, path: PATH, endOnFailure: !SHRINK, includeErrorInReport: true });
  if (report.failed) {
    throw new Error(`ShardedBus property failed (EDGEBUS_PROP_SEED=${SEED} EDGEBUS_PROP_RUNS=${RUNS}): ${fc.defaultReportMessage(report)}`);
  }
  // The runs did check something: a run ends with close() (a full check) two times in three.
  if (RUNS >= 6 && checked === 0) throw new Error(`no run reached a full check (seed ${SEED})`);
  console.log(`${runs} runs, ${checked} full checks (seed ${SEED})`);
});
