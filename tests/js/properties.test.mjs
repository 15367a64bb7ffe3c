// Property tests of the JS Bus: random sequences of valid and hostile operations on a ManualClock,
// checked against a small reference model after every step.
//
// - every error thrown (or rejected) is an EdgebusError with a string `code`: no raw TypeError,
//   no wasm RuntimeError;
// - after every refused call the bus still delivers;
// - routing follows the core's own `matches`: a plain subscription receives exactly what was
//   accepted on a matching topic while it was subscribed, at most once, in publish order (per key
//   when keys are used), and its counters account for every routed message:
//   routed = delivered + dropped + expired + cancelled + queued, delivered = handler calls,
//   failed = failures reported to onError, inFlight = unsettled calls;
// - bus totals: published, duplicates (an exact model of the id window), delivered, subscriptions;
// - every work-queue message ends done, dead or expired exactly once: attempts numbered 1..k
//   (a..k after a publish with `attempts: a - 1`, which count towards maxAttempts), done after
//   exactly one successful call (the last), dead after maxAttempts failures (or fewer, when its
//   TTL ends before its retry; without a call when published with all of them made) with one
//   letter on `$dead.<group>`, expired only when never tried;
// - nothing hangs: every publishAsync, drain() and close() settles once handlers settle and
//   virtual time moves on.
//
// Runs are bounded and seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override the defaults; a
// failure prints the seed, the shrunk counterexample and its path (EDGEBUS_PROP_PATH replays it).
import { test } from 'node:test';
import fc from 'fast-check';
import { Bus, ManualClock, EdgebusError, IdempotenceFilter, matches } from 'edgebus';
import { settle } from './support/helpers.mjs';
import { KNOWN_DEFECTS } from './support/known-defects.mjs';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261204);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 1000);
/** A failure's `path` (printed with it) replays that one case alone. */
const PATH = process.env.EDGEBUS_PROP_PATH;

// ----- generators ------------------------------------------------------------------------------

const token = fc.constantFrom('a', 'b');
const topicArb = fc.array(token, { minLength: 1, maxLength: 2 }).map((t) => t.join('.'));
const patternArb = fc.tuple(fc.array(fc.constantFrom('a', 'b', '*'), { minLength: 1, maxLength: 2 }), fc.boolean())
  .map(([t, tail]) => (tail ? [...t.slice(0, -1), '>'] : t).join('.'));
const overflowArb = fc.constantFrom('dropOldest', 'dropNewest', 'reject', 'wait');
/** A failure rule: the call for message n (attempt a) fails when (n + a) % mod === 0; 0 never fails. */
const failModArb = fc.constantFrom(0, 0, 2, 3);

const subOptionsArb = fc.record({
  concurrency: fc.integer({ min: 1, max: 3 }),
  maxQueue: fc.integer({ min: 0, max: 4 }),
  overflow: overflowArb,
  timeoutMs: fc.integer({ min: 1, max: 60 }),
}, { requiredKeys: [] });

const opArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('sub'), pattern: patternArb, gated: fc.boolean(), failMod: failModArb, options: subOptionsArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('member'), group: fc.integer({ min: 0, max: 1 }), gated: fc.boolean(), failMod: failModArb, concurrency: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unsub'), i: fc.nat() }) },
  { weight: 8, arbitrary: fc.record({ t: fc.constant('pub'), topic: topicArb, key: fc.option(fc.constantFrom('k1', 'k2')), ttlMs: fc.option(fc.integer({ min: 1, max: 40 })), priority: fc.option(fc.integer({ min: 0, max: 2 })), attempts: fc.option(fc.integer({ min: 0, max: 3 }), { freq: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('pubAsync'), topic: topicArb, key: fc.option(fc.constantFrom('k1', 'k2')), mutate: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('dup'), i: fc.nat(), topic: topicArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('batch'), topic: topicArb, size: fc.integer({ min: 1, max: 3 }), key: fc.option(fc.constantFrom('k1', 'k2')) }) },
  { weight: 6, arbitrary: fc.record({ t: fc.constant('settle'), i: fc.nat(), ok: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('advance'), ms: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hostile'), h: fc.nat(), v: fc.nat() }) },
);

const runArb = fc.record({
  groups: fc.array(fc.record({
    pattern: patternArb,
    maxAttempts: fc.integer({ min: 1, max: 3 }),
    initialMs: fc.integer({ min: 1, max: 10 }),
    maxQueue: fc.option(fc.integer({ min: KNOWN_DEFECTS.maxQueueZero ? 1 : 0, max: 3 })),
    overflow: KNOWN_DEFECTS.groupDropUncounted ? fc.constantFrom('reject', 'wait') : overflowArb,
    ackTimeoutMs: fc.option(fc.integer({ min: 5, max: 40 })),
  }), { minLength: 2, maxLength: 2 }),
  ops: fc.array(opArb, { minLength: 5, maxLength: 60, size: 'max' }),
  // What Math.random gives the Bus for its core's seed (retry jitter), so a case replays exactly.
  jitter: fc.nat({ max: 2 ** 31 - 1 }),
});

// ----- hostile inputs --------------------------------------------------------------------------

const BAD_TOPICS = ['', 'a..b', '.a', 'a.', 'a.*', '>', 'a.>', 'a b', 'a\tb', 'a\u0000', '\ud800', 'x'.repeat(5000),
  Array(300).fill('a').join('.'), 42, null, undefined, {}, ['a'], Symbol('s'), () => 'a', new String('a')];
const BAD_PATTERNS = ['', 'a..b', '>.a', 'a*', '*a', 'a.>b', ' a', 42, null, undefined, {}, Symbol('p')];
const ODD_VALUES = [NaN, Infinity, -Infinity, -1, -0.5, 0.5, 0, -0, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, '5', '', true, false,
  null, {}, [], [1], Symbol('v'), 10n, () => 1, new Number(3), new Date(0)];
const PUBLISH_KEYS = ['id', 'key', 'ttlMs', 'priority', 'notBefore', 'attempts', 'headers', 'ids', 'bogus'];
const SUB_KEYS = ['concurrency', 'maxQueue', 'overflow', 'timeoutMs', 'batch', 'group', 'maxAttempts', 'backoff', 'ackTimeoutMs', 'bogus'];
const NOT_OBJECTS = [42, 'x', true, Symbol('o'), () => ({}), 5n];
const BAD_HANDLERS = [null, undefined, 42, 'f', {}, [], Promise.resolve()];

function pick(list, v) { return list[v % list.length]; }

/** An object whose every read of `key` yields the next of `values` (valid first, then not). */
function shifty(key, values) {
  let reads = 0;
  return Object.defineProperty({}, key, { enumerable: true, get: () => values[Math.min(reads++, values.length - 1)] });
}

function proxyOf(target, onGet) {
  return new Proxy(target, { get: (t, k, r) => (onGet ? onGet(k) : Reflect.get(t, k, r)) });
}

/**
 * Hostile calls, each with what its result means to the model: `publish` (true: one more
 * published), `publishAsync` (resolves true: one more), `batch` (how many were accepted),
 * `subscribe` (a Subscription, unsubscribed at once) or `other`. Each touches only the reserved
 * topic `$h` (no generated pattern matches a `$` topic), so an accepted call changes nothing else
 * the model tracks.
 */
const HOSTILE = [
  ['publish', (bus, v) => bus.publish(pick(BAD_TOPICS, v), 1)],
  ['subscribe', (bus, v) => bus.subscribe(pick(BAD_PATTERNS, v), () => {})],
  ['publish', (bus, v) => bus.publish('$h', 1, { [pick(PUBLISH_KEYS, v)]: pick(ODD_VALUES, v >> 3) })],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, { [pick(SUB_KEYS, v)]: pick(ODD_VALUES, v >> 4) })],
  ['publish', (bus, v) => bus.publish('$h', 1, pick(NOT_OBJECTS, v))],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, pick(NOT_OBJECTS, v))],
  ['subscribe', (bus, v) => bus.subscribe('$h', pick(BAD_HANDLERS, v))],
  ['publish', (bus, v) => bus.publish('$h', 1, shifty(pick(['ttlMs', 'priority', 'key', 'id', 'notBefore', 'attempts'], v), [1, NaN, -1, {}]))],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, shifty(pick(['concurrency', 'maxQueue', 'timeoutMs', 'overflow'], v), [1, NaN, 'dropOldest', -1]))],
  ['publish', (bus, v) => bus.publish('$h', 1, proxyOf({ ttlMs: 5 }, (k) => (k === 'ttlMs' ? pick(ODD_VALUES, v) : undefined)))],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, proxyOf({ concurrency: 1 }, (k) => (k === 'concurrency' ? pick(ODD_VALUES, v) : undefined)))],
  ['publish', (bus, v) => (KNOWN_DEFECTS.throwingOptionReads ? undefined
    : bus.publish('$h', 1, Object.defineProperty({}, pick(['ttlMs', 'key'], v), { enumerable: true, get() { throw new Error('getter throws'); } })))],
  [v => (v % 2 ? 'publish' : 'subscribe'), (bus, v) => {
    if (KNOWN_DEFECTS.throwingOptionReads) return undefined;
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return v % 2 ? bus.publish('$h', 1, proxy) : bus.subscribe('$h', () => {}, proxy);
  }],
  ['batch', (bus, v) => bus.publishBatch('$h', pick([1, 'x', null, {}, [1, 2]], v), pick([undefined, { ids: ['a'] }, { ids: 'a' }, { ids: [1, 2] }, { bogus: 1 }], v >> 2))],
  ['publishAsync', (bus, v) => bus.publishAsync(pick(BAD_TOPICS, v), 1)],
  ['publishAsync', (bus, v) => bus.publishAsync('$h', 1, { [pick(PUBLISH_KEYS, v)]: pick(ODD_VALUES, v >> 3) })],
  ['other', (bus, v) => bus.status(pick([42, null, {}, Symbol('s'), undefined], v), pick([undefined, 42, '', {}], v >> 2))],
  ['other', (bus, v) => matches(pick(BAD_PATTERNS, v), pick(BAD_TOPICS, v >> 2))],
  // A clock is read once when given: a time that is not a finite number is refused there, with a code.
  ['other', (bus, v) => new Bus({ clock: { now: () => pick(ODD_VALUES, v) } }).close()],
  ['other', (bus, v) => new IdempotenceFilter({ maxAgeMs: 10, clock: { now: () => pick(ODD_VALUES, v) } }).check('x')],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, { group: pick(['', '$x', 'a b', 'a.*', 42, null, 'x'.repeat(5000)], v) })],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, { maxAttempts: 1 + (v % 3) })],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, { group: 'hg', maxAttempts: pick(ODD_VALUES, v), backoff: pick([{ initialMs: 10, maxMs: 1 }, { initialMs: NaN }, 5, { bogus: 1 }], v >> 3) })],
  ['subscribe', (bus, v) => bus.subscribe('$h', () => {}, { batch: pick([{ maxSize: 0 }, { maxSize: NaN }, { maxWaitMs: -1 }, { maxBytes: Infinity }, 7, { bogus: 1 }], v) })],
  // One options object reused after a mutation: the first publish stands, the second is judged alone.
  ['publish', (bus, v, model) => {
    const o = { ttlMs: 5 };
    if (bus.publish('$h', 1, o) === true) model.published++;
    o.ttlMs = pick(ODD_VALUES, v);
    return bus.publish('$h', 1, o);
  }],
];

// ----- the model and the run -------------------------------------------------------------------

class Failure extends Error {}

function check(cond, what) {
  if (!cond) throw new Failure(what);
}

function assertCoded(e, where) {
  check(e instanceof EdgebusError && typeof e.code === 'string' && e.code.length > 0,
    `${where}: threw ${e && e.constructor && e.constructor.name}: ${e && e.message} (no EdgebusError code)`);
}

async function runOne({ groups: groupSpecs, ops, jitter }) {
  const clock = new ManualClock(1000);
  const model = {
    msgs: [],            // n -> { n, topic, key, id, sync, accepted, plain: Set(sub), groups: Set(g) }
    subs: [],            // plain subscriptions and group members
    calls: [],           // every handler call: { sub, n, attempt, order, settled, ok }
    running: [],         // gated calls not settled by the run yet
    asyncPending: [],    // publishAsync promises: { n, done }
    published: 0,        // accepted publishes (including probes and hostile ones)
    duplicates: 0,
    ids: new Set(),      // ids the filter has recorded (accepted publishes)
    deadLetters: [0, 0],
    handlerCalls: 0,     // every handler call on the bus, probes and dead-letter subscribers included
    errors: new Map(),   // subscription id -> failures reported to onError
  };
  const random = Math.random;
  Math.random = () => jitter / 2 ** 31;
  let bus;
  try {
    bus = new Bus({
      clock,
      dedupe: { maxIds: 100_000 },
      // By subscription id: a member that joins takes waiting work (and may fail) before
      // subscribe() has returned its handle.
      onError: (error, message, sub) => { model.errors.set(sub.id, (model.errors.get(sub.id) ?? 0) + 1); },
    });
  } finally {
    Math.random = random;
  }
  const groups = groupSpecs.map((g, gi) => ({
    ...g, name: `g${gi}`, created: false,
    options: {
      group: `g${gi}`, maxAttempts: g.maxAttempts, backoff: { initialMs: g.initialMs, maxMs: 10 },
      ...(g.maxQueue === null ? {} : { maxQueue: g.maxQueue, overflow: g.overflow }),
      ...(g.ackTimeoutMs === null ? {} : { ackTimeoutMs: g.ackTimeoutMs }),
    },
  }));
  for (const [gi, g] of groups.entries()) {
    // A dead letter is a message published on `$dead.<group>`: it counts as published. This
    // subscriber is synchronous and never busy, so it receives each one as it is published.
    bus.subscribe(`$dead.${g.name}`, () => { model.handlerCalls++; model.deadLetters[gi]++; model.published++; });
  }
  let probes = 0;
  bus.subscribe('$probe', () => { model.handlerCalls++; probes++; });
  const liveCount = () => model.subs.filter((s) => s.live).length + groups.length + 1;

  function probe(where) {
    const before = probes;
    let ok;
    try {
      ok = bus.publish('$probe', null);
    } catch (e) {
      assertCoded(e, `${where}: probe`);
      throw new Failure(`${where}: the bus refused a plain publish afterwards (${e.code}: ${e.message})`);
    }
    check(ok === true && probes === before + 1, `${where}: the bus no longer delivers`);
    model.published++;
  }

  function handlerFor(s) {
    const call = (payload, msg) => {
      model.handlerCalls++;
      // A work-queue call not settled within ackTimeoutMs has failed; its late result is ignored.
      const ack = s.group === undefined ? undefined : s.options.ackTimeoutMs;
      const c = {
        sub: s, n: payload.n, attempt: msg.attempt, settled: false, ok: undefined, id: msg.id, key: msg.key, topic: msg.topic,
        deadline: ack === undefined ? Infinity : clock.now() + ack,
      };
      model.calls.push(c);
      s.calls.push(c);
      const fails = s.failMod > 0 && (payload.n + msg.attempt) % s.failMod === 0;
      if (!s.gated) {
        c.settled = true;
        c.ok = !fails;
        if (fails) throw new Error(`sync handler fails ${payload.n}`);
        return undefined;
      }
      return new Promise((resolve, reject) => {
        const late = () => clock.now() >= c.deadline;
        c.resolve = () => { c.settled = true; c.ok = !late(); resolve(); };
        c.reject = () => { c.settled = true; c.ok = false; reject(new Error(`gated handler fails ${payload.n}`)); };
        model.running.push(c);
      });
    };
    return call;
  }

  function subscribeModel(pattern, options, spec, group) {
    const s = { pattern, gated: spec.gated, failMod: spec.failMod, options, group, live: true, calls: [], routed: 0 };
    s.handle = bus.subscribe(pattern, handlerFor(s), options);
    model.subs.push(s);
    return s;
  }

  /** Where a message goes, by the core's matcher, given the subscriptions of now. */
  function route(m) {
    for (const s of model.subs) if (s.live && s.group === undefined && matches(s.pattern, m.topic)) m.plain.add(s);
    for (const [gi, g] of groups.entries()) if (g.created && matches(g.pattern, m.topic)) m.groups.add(gi);
  }

  /** Counts a message as accepted (publish returned, or publishAsync resolved). */
  function admit(m) {
    m.accepted = true;
    model.published++;
    model.ids.add(m.id);
    for (const s of m.plain) s.routed++;
  }

  function newMessage(topic, key, sync) {
    const n = model.msgs.length;
    // `prior`: attempts made before it was published (the publish option `attempts`).
    const m = { n, topic, key, id: `m${n}`, sync, accepted: false, plain: new Set(), groups: new Set(), prior: 0 };
    model.msgs.push(m);
    return m;
  }

  function checkInvariants(where) {
    const st = bus.stats();
    check(st.published === model.published, `${where}: stats().published ${st.published}, model ${model.published}`);
    check(st.duplicates === model.duplicates, `${where}: stats().duplicates ${st.duplicates}, model ${model.duplicates}`);
    check(st.delivered === model.handlerCalls, `${where}: stats().delivered ${st.delivered}, handler calls ${model.handlerCalls}`);
    check(st.subscriptions === liveCount(), `${where}: stats().subscriptions ${st.subscriptions}, model ${liveCount()}`);
    for (const s of model.subs) {
      if (!s.live) continue;
      const ss = s.handle.stats();
      const name = `${where}: subscription #${ss.id} ${s.group === undefined ? '' : `(group ${s.group}) `}${s.pattern}`;
      check(ss.delivered === s.calls.length, `${name}: delivered ${ss.delivered}, handler calls ${s.calls.length}`);
      const errors = model.errors.get(ss.id) ?? 0;
      check(ss.failed === errors, `${name}: failed ${ss.failed}, onError reports ${errors}`);
      check(ss.inFlight <= (s.options.concurrency ?? 1), `${name}: inFlight ${ss.inFlight} above concurrency`);
      if (s.group !== undefined) continue;
      const accounted = ss.delivered + ss.dropped + ss.expired + ss.cancelled + ss.queued;
      check(accounted === s.routed, `${name}: routed ${s.routed} but delivered+dropped+expired+cancelled+queued = ${accounted} (${JSON.stringify(ss)})`);
      if (s.options.timeoutMs === undefined) {
        const open = s.calls.filter((c) => !c.settled).length;
        check(ss.inFlight === open, `${name}: inFlight ${ss.inFlight}, unsettled handler calls ${open}`);
      }
      const seen = new Set();
      const lastByKey = new Map();
      let lastUnkeyed = -1;
      for (const c of s.calls) {
        const m = model.msgs[c.n];
        check(m.plain.has(s), `${name}: received message ${c.n} on ${m.topic}, which was not routed to it`);
        check(!seen.has(c.n), `${name}: received message ${c.n} twice`);
        seen.add(c.n);
        check(c.id === m.id && c.key === (m.key ?? undefined) && c.topic === m.topic,
          `${name}: message ${c.n} arrived with id ${c.id}, key ${c.key}, topic ${c.topic}; published with ${m.id}, ${m.key}, ${m.topic}`);
        if (!m.sync) continue;
        if (m.key === undefined) {
          check(c.n > lastUnkeyed, `${name}: message ${c.n} started after ${lastUnkeyed} (publish order)`);
          lastUnkeyed = c.n;
        } else {
          check(c.n > (lastByKey.get(m.key) ?? -1), `${name}: key ${m.key}: message ${c.n} started after ${lastByKey.get(m.key)}`);
          lastByKey.set(m.key, c.n);
        }
      }
    }
    // Work queues so far: attempts are numbered 1, 2, ... and no message succeeds twice; a key's
    // messages start in publish order, each after the previous one is finished, across members
    // and retries.
    for (const [gi, g] of groups.entries()) {
      const byMsg = new Map();
      const lastByKey = new Map();
      for (const c of model.calls) {
        if (c.sub.group !== g.name) continue;
        if (!byMsg.has(c.n)) byMsg.set(c.n, []);
        byMsg.get(c.n).push(c);
        const m = model.msgs[c.n];
        if (m.key !== undefined && m.sync) {
          const last = lastByKey.get(m.key) ?? -1;
          check(c.n >= last, `${where}: group ${g.name}, key ${m.key}: message ${c.n} started after ${last}`);
          lastByKey.set(m.key, c.n);
        }
      }
      for (const [n, cs] of byMsg) {
        const m = model.msgs[n];
        check(m.groups.has(gi), `${where}: group ${g.name} handled message ${n} on ${m.topic}, not routed to it`);
        cs.forEach((c, i) => check(c.attempt === m.prior + i + 1, `${where}: group ${g.name}, message ${n}: call ${i + 1} has attempt ${c.attempt} (${m.prior} made before)`));
        check(cs.filter((c) => c.ok === true).length <= 1, `${where}: group ${g.name}: message ${n} acknowledged twice`);
        const open = cs.filter((c) => !c.settled && clock.now() < c.deadline).length;
        check(open <= 1, `${where}: group ${g.name}: message ${n} in ${open} live deliveries at once`);
        check(m.prior + cs.length <= g.maxAttempts, `${where}: group ${g.name}: message ${n} tried ${cs.length} times after ${m.prior}, maxAttempts ${g.maxAttempts}`);
      }
    }
  }

  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const waiting = model.asyncPending.some((p) => !p.done);
    switch (op.t) {
      case 'sub':
        // While a publishAsync waits, its routing is decided at admission: keep the set stable.
        if (!waiting) {
          try {
            subscribeModel(op.pattern, op.options, op);
          } catch (e) {
            assertCoded(e, where);
            throw new Failure(`${where}: a valid subscribe was refused: ${e.code}: ${e.message}`);
          }
        }
        break;
      case 'member': {
        if (waiting) break;
        const g = groups[op.group];
        if (g.options.maxQueue === 0) {
          // A work queue's messages wait in it: maxQueue 0 cannot work and is refused.
          let refused;
          try {
            bus.subscribe(g.pattern, () => {}, { ...g.options, concurrency: op.concurrency });
          } catch (e) {
            refused = e;
          }
          if (refused === undefined) throw new Failure(`${where}: a work queue with maxQueue 0 was accepted`);
          assertCoded(refused, where);
          if (refused.code !== 'INVALID_OPTION') throw new Failure(`${where}: maxQueue 0 refused with ${refused.code}`);
          break;
        }
        subscribeModel(g.pattern, { ...g.options, concurrency: op.concurrency }, op, g.name);
        g.created = true;
        break;
      }
      case 'unsub': {
        const live = model.subs.filter((s) => s.live);
        if (waiting || live.length === 0) break;
        const s = live[op.i % live.length];
        if (KNOWN_DEFECTS.groupForgottenWhenEmpty && s.group !== undefined &&
            live.filter((x) => x.group === s.group).length === 1) break;
        // Its counters stop here: nothing more is checked for it.
        s.live = false;
        check(s.handle.unsubscribe() === true, `${where}: unsubscribe returned false`);
        check(s.handle.unsubscribe() === false, `${where}: a second unsubscribe returned true`);
        break;
      }
      case 'pub': {
        const m = newMessage(op.topic, op.key ?? undefined, true);
        const options = { id: m.id };
        if (op.key !== null) options.key = op.key;
        if (op.ttlMs !== null) options.ttlMs = m.ttlMs = op.ttlMs;
        if (op.priority !== null) options.priority = op.priority;
        if (op.attempts !== null) options.attempts = m.prior = op.attempts;
        let r;
        try {
          r = bus.publish(op.topic, { n: m.n }, options);
        } catch (e) {
          assertCoded(e, where);
          check(e.code === 'QUEUE_FULL', `${where}: a valid publish failed with ${e.code}: ${e.message}`);
          probe(where);
          break;
        }
        check(r === true, `${where}: a fresh id was reported as a duplicate`);
        route(m);
        admit(m);
        break;
      }
      case 'pubAsync': {
        if (KNOWN_DEFECTS.publishAsyncOptionsReuse && op.mutate) break;
        const m = newMessage(op.topic, op.key ?? undefined, false);
        const options = { id: m.id };
        if (op.key !== null) options.key = op.key;
        const p = { n: m.n, done: false };
        model.asyncPending.push(p);
        let promise;
        try {
          promise = bus.publishAsync(op.topic, { n: m.n }, options);
        } catch (e) {
          assertCoded(e, `${where} (thrown, not rejected)`);
          throw new Failure(`${where}: publishAsync threw synchronously: ${e.code}`);
        }
        if (op.mutate) {
          // The caller reuses its options object: what was published must not change.
          options.id = 42;
          options.key = { not: 'a key' };
        }
        // Routed now (no subscription changes while it waits), so a handler that receives it
        // before the promise resolves finds it; counted once it resolves.
        route(m);
        promise.then((r) => {
          p.done = true;
          p.result = r;
          check(r === true, `publishAsync of message ${m.n} (fresh id) resolved ${r}`);
          admit(m);
        }, (e) => {
          p.done = true;
          p.error = e;
        });
        break;
      }
      case 'dup': {
        const earlier = model.msgs.filter((m) => m.sync);
        if (earlier.length === 0) break;
        const prev = earlier[op.i % earlier.length];
        const m = newMessage(op.topic, undefined, true);
        m.id = prev.id;
        let r;
        try {
          r = bus.publish(op.topic, { n: m.n }, { id: prev.id });
        } catch (e) {
          assertCoded(e, where);
          check(e.code === 'QUEUE_FULL', `${where}: ${e.code}: ${e.message}`);
          check(!model.ids.has(prev.id), `${where}: a remembered id was refused with QUEUE_FULL rather than dropped as a duplicate`);
          break;
        }
        if (model.ids.has(prev.id)) {
          check(r === false, `${where}: id ${prev.id} was accepted again inside the dedupe window`);
          model.duplicates++;
        } else {
          // The earlier publish with this id was refused (QUEUE_FULL): the id was never recorded.
          check(r === true, `${where}: id ${prev.id} of a refused publish was treated as a duplicate`);
          route(m);
          admit(m);
        }
        break;
      }
      case 'batch': {
        const ms = Array.from({ length: op.size }, () => newMessage(op.topic, op.key ?? undefined, true));
        const options = { ids: ms.map((m) => m.id) };
        if (op.key !== null) options.key = op.key;
        let r;
        try {
          r = bus.publishBatch(op.topic, ms.map((m) => ({ n: m.n })), options);
        } catch (e) {
          assertCoded(e, where);
          check(e.code === 'QUEUE_FULL', `${where}: a valid publishBatch failed with ${e.code}: ${e.message}`);
          // Atomic: none of them was admitted, so none may ever be delivered (checked with the routing).
          probe(where);
          break;
        }
        check(r === op.size, `${where}: publishBatch of ${op.size} fresh ids accepted ${r}`);
        for (const m of ms) {
          route(m);
          admit(m);
        }
        break;
      }
      case 'settle': {
        const open = model.running.filter((c) => !c.settled);
        if (open.length === 0) break;
        const c = open[op.i % open.length];
        if (op.ok) c.resolve();
        else c.reject();
        break;
      }
      case 'advance':
        clock.advance(op.ms);
        break;
      case 'hostile': {
        const [kindOf, call] = HOSTILE[op.h % HOSTILE.length];
        const kind = typeof kindOf === 'function' ? kindOf(op.v) : kindOf;
        let r;
        let thrown = false;
        try {
          r = call(bus, op.v, model);
        } catch (e) {
          thrown = true;
          assertCoded(e, where);
        }
        if (!thrown) {
          if (kind === 'publishAsync') {
            check(r instanceof Promise, `${where}: publishAsync returned ${typeof r}`);
            // Not awaited here: it may queue behind a waiting publishAsync (admission is in call
            // order). It must settle like any other, with a coded error if it rejects.
            const p = { n: `hostile (${where})`, done: false, hostile: true };
            model.asyncPending.push(p);
            r.then((x) => {
              p.done = true;
              if (x === true) model.published++;
            }, (e) => {
              p.done = true;
              p.error = e;
            });
          } else if (kind === 'publish' && r === true) model.published++;
          else if (kind === 'batch' && typeof r === 'number') model.published += r;
          else if (kind === 'subscribe' && r !== undefined) r.unsubscribe();
        }
        probe(where);
        break;
      }
      default:
        throw new Error(`unknown op ${op.t}`);
    }
    await settle(2);
    for (const p of model.asyncPending) {
      if (p.done && p.error !== undefined && !p.seen) {
        p.seen = true;
        assertCoded(p.error, `${where}: publishAsync of message ${p.n} rejected`);
        if (p.hostile) continue;
        check(p.error.code === 'QUEUE_FULL', `${where}: a valid publishAsync rejected: ${p.error.code}: ${p.error.message}`);
        const m = model.msgs[p.n];
        check(m.plain.size === 0 || [...m.plain].every((s) => !s.calls.some((c) => c.n === p.n)),
          `${where}: message ${p.n} was delivered, yet its publishAsync rejected`);
        m.plain.clear();
        m.groups.clear();
      }
    }
    checkInvariants(where);
  }

  // ----- the end: every member returns, every handler settles, time moves on ------------------
  for (const g of groups) {
    if (g.created && !model.subs.some((s) => s.live && s.group === g.name)) {
      subscribeModel(g.pattern, g.options, { gated: false, failMod: 0 }, g.name);
    }
  }
  let drained = false;
  bus.drain().then(() => { drained = true; }, (e) => { assertCoded(e, 'drain()'); drained = true; });
  for (let round = 0; round < 400; round++) {
    if (drained && model.asyncPending.every((p) => p.done)) break;
    for (const c of model.running) if (!c.settled) c.resolve();
    await settle(2);
    clock.advance(25);
    await settle(2);
  }
  // Calls the bus gave up on (ack timeout) while the loop ran: their late results change nothing.
  for (const c of model.running) if (!c.settled) c.resolve();
  await settle(2);
  const hung = model.asyncPending.filter((p) => !p.done).map((p) => p.n);
  check(hung.length === 0, `publishAsync of messages ${hung.join(', ')} never settled (stats ${JSON.stringify(bus.stats())})`);
  check(drained, `drain() never resolved (stats ${JSON.stringify(bus.stats())})`);
  checkInvariants('after drain');
  const st = bus.stats();
  // A hostile subscribe may leave a work queue on `$h` without members: it keeps what a hostile
  // publish sent it (drain() does not wait for it) until its TTL ends. Nothing else may wait.
  const kept = st.groups.filter((g) => g.pattern === '$h' && g.members === 0).reduce((n, g) => n + g.depth, 0);
  check(st.queued === kept && st.inFlight === 0, `after drain: queued ${st.queued} (${kept} in work queues on $h without members), inFlight ${st.inFlight}`);

  for (const [gi, g] of groups.entries()) {
    if (!g.created) continue;
    let dead = 0;
    let finished = 0;
    for (const m of model.msgs) {
      if (!m.accepted || !m.groups.has(gi)) continue;
      const cs = model.calls.filter((c) => c.sub.group === g.name && c.n === m.n);
      const status = bus.status(m.id, g.name);
      const name = `group ${g.name}, message ${m.n} (${JSON.stringify(status)}, ${cs.length} calls)`;
      check(status !== undefined, `${name}: unknown to status()`);
      finished++;
      if (status.state === 'done') {
        check(cs.length > 0 && cs[cs.length - 1].ok === true, `${name}: done without a successful last call`);
        check(status.attempts === m.prior + cs.length, `${name}: attempts ${status.attempts}`);
      } else if (status.state === 'dead') {
        dead++;
        // After maxAttempts failed attempts (those made before it was published count, and one
        // published with all of them made is not called), or fewer when its TTL ended before
        // another try could run.
        const made = m.prior + cs.length;
        const tries = made === Math.max(g.maxAttempts, m.prior) || (m.ttlMs !== undefined && made >= 1 && made < g.maxAttempts);
        check(tries && cs.every((c) => c.ok === false), `${name}: dead without ${g.maxAttempts} failed attempts`);
        check(status.attempts === made, `${name}: attempts ${status.attempts}`);
      } else {
        // Expired (its TTL ended before any call: one that failed first is dead), or dropped by the
        // group's bounded stream (after failed calls only).
        check((status.state === 'expired' && cs.length === 0 && m.prior === 0) || (status.state === 'dropped' && cs.every((c) => c.ok === false)),
          `${name}: ended ${status.state}`);
      }
    }
    check(model.deadLetters[gi] === dead, `group ${g.name}: ${dead} dead messages, ${model.deadLetters[gi]} dead letters`);
    const gs = st.groups.find((x) => x.name === g.name);
    check(gs.done + gs.dead + gs.expired + gs.dropped === finished && gs.published === finished,
      `group ${g.name}: published ${gs.published}, done ${gs.done} + dead ${gs.dead} + expired ${gs.expired} + dropped ${gs.dropped}, model ${finished}`);
  }

  let closed;
  bus.close().then((r) => { closed = r; }, (e) => { assertCoded(e, 'close()'); closed = { remaining: [] }; });
  for (let round = 0; round < 50 && closed === undefined; round++) {
    await settle(2);
    clock.advance(25);
  }
  check(closed !== undefined, 'close() never resolved');
  // Only hostile publishes on `$h` may remain: one accepted with a far `notBefore` is delayed, one
  // in a work queue without members is pending (and its TTL has not ended: see above).
  const left = closed.remaining.filter((r) => !(r.message.topic === '$h' &&
    (r.state === 'delayed' || (r.state === 'pending' && r.group !== undefined &&
      (r.message.ttlMs === undefined || r.message.publishedAt + r.message.ttlMs > clock.now())))));
  check(left.length === 0, `close() after drain left ${JSON.stringify(left)}`);
  try {
    bus.publish('$probe', null);
    throw new Failure('publish after close() was accepted');
  } catch (e) {
    if (e instanceof Failure) throw e;
    assertCoded(e, 'publish after close');
    check(e.code === 'CLOSED', `publish after close: ${e.code}`);
  }
}

test('random operation sequences, valid and hostile, agree with the model', { timeout: 120_000 }, async () => {
  try {
    await fc.assert(fc.asyncProperty(runArb, runOne), { seed: SEED, numRuns: RUNS, includeErrorInReport: true, ...(PATH ? { path: PATH, endOnFailure: true } : {}) });
  } catch (e) {
    console.error(`property suite failed with EDGEBUS_PROP_SEED=${SEED} EDGEBUS_PROP_RUNS=${RUNS}`);
    throw e;
  }
});
