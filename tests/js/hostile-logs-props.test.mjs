// Property test of the log APIs (retained values, history, replay, restore, logStats) and of the
// calls that wait (request, requestMany, once, stream, with a signal) under hostile input: random
// operation sequences whose arguments are drawn from hostile values (Proxies, Symbols, BigInts,
// NaN, -0, ±Infinity, 2**53 + 1, fractions, lone surrogates, empty and wildcard tokens, frozen
// objects, arrays for objects, `__proto__` keys) and whose option getters, sizeOf and clock may
// throw or re-enter the bus (publish, subscribe, unsubscribe, clearRetained, close) in the middle
// of a call. After every operation:
//   - a throw is an EdgebusError with a code of the ErrorCode union (or the hostile callback's own
//     error, where the bus documents it passes through: sizeOf);
//   - a canary subscription still receives a canary publish, once;
//   - `logStats()` equals `stats().logs`, its counts are whole numbers ≥ 0, `retained()` holds no
//     more than it counts, and the core counts the subscriptions the driver holds active.
// At the end, close() settles every promise made (requests, once, streams, publishAsync). Runs are
// seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { Bus, EdgebusError, ManualClock } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261206);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 300);

// The codes of the ErrorCode union, read from the declarations.
const CODES = new Set(
  [...readFileSync(new URL('../../src/js/index.d.ts', import.meta.url), 'utf8')
    .match(/export type ErrorCode =([\s\S]*?);/)[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]),
);

/** What the hostile callbacks throw: their own errors, told apart from the bus's. */
class Hostile extends Error {}

const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};

// ----- hostile values ------------------------------------------------------------------------

const NUMBERS = [NaN, -0, 0, 1, 2, 3, -1, 1.5, 0.1, Infinity, -Infinity, 2 ** 53 + 1, 2 ** 53, 2 ** 32, 2 ** 50, 1e308, Number.MIN_VALUE];
// (A revoked Proxy is made at the call, from REVOKED: fast-check cannot handle one.)
const REVOKED = Symbol('revoked');
const ODD = [undefined, null, true, 'x', '', Symbol('s'), 10n, [], [1], {}, () => 1, Object.freeze({}), REVOKED];

/** A generated value as the bus is given it: REVOKED made a revoked Proxy, in a record's values too. */
function live(v) {
  if (v === REVOKED) return revoked();
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype && !Object.isFrozen(v)) {
    const o = {};
    for (const k of Object.keys(v)) o[k] = v[k] === REVOKED ? revoked() : v[k];
    return o;
  }
  return v;
}
const TOPICS = ['h.a', 'h.b', 'r.a', 'r.b', 'p.a'];
const BAD_TOPICS = ['', '.', 'h..a', 'h.', '.h', 'h.*', 'h.>', '*', '>', '$sys', 'h.\uD800', 'h.' + 'x'.repeat(5000), ' ', 'h a'];
const PATTERNS = ['>', 'h.*', 'h.>', '*.a', 'r.a', 'h.b'];
const BAD_PATTERNS = ['', 'h..*', '>.h', 'h.>.a', '\uDC00', 'x'.repeat(5000)];

const anyOf = (list) => fc.constantFrom(...list);
const number = fc.oneof(anyOf(NUMBERS), fc.integer({ min: -3, max: 8 }), fc.double());
const odd = fc.oneof(anyOf(ODD), number);
const topic = fc.oneof({ weight: 6, arbitrary: anyOf(TOPICS) }, { weight: 1, arbitrary: anyOf(BAD_TOPICS) }, { weight: 1, arbitrary: odd });
const pattern = fc.oneof({ weight: 5, arbitrary: anyOf(PATTERNS) }, { weight: 1, arbitrary: anyOf(BAD_PATTERNS) }, { weight: 1, arbitrary: odd });
const payload = fc.oneof(fc.integer(), fc.string({ maxLength: 6 }), anyOf(ODD), anyOf(['P-throw', 'P-reenter']));

/**
 * A record made hostile: frozen, an array, a `__proto__` key, a Proxy, a getter that throws or
 * re-enters the bus (`act` names what it does), or as it is.
 */
const shaped = (r) => fc.constantFrom('plain', 'plain', 'plain', 'frozen', 'array', 'proto', 'proxy', 'throw', 'reenter', 'revoked')
  .map((how) => ({ r, how }));

function build(shape, bus, act) {
  const { how } = shape;
  if (shape.r === REVOKED) return revoked();
  const r = live(shape.r);
  if (r === null || typeof r !== 'object') return r;
  switch (how) {
    case 'frozen': return Object.freeze({ ...r });
    case 'array': return Object.assign([], r);
    case 'proto': return Object.assign(JSON.parse('{"__proto__":{"last":1}}'), r); // an own `__proto__` key
    case 'proxy': return new Proxy({ ...r }, { get: (t, k) => Reflect.get(t, k), ownKeys: (t) => Reflect.ownKeys(t) });
    case 'throw': {
      const o = { ...r };
      const k = Object.keys(o)[0] ?? 'x';
      Object.defineProperty(o, k, { enumerable: true, get() { throw new Hostile(`getter ${k}`); } });
      return o;
    }
    case 'reenter': {
      const o = { ...r };
      const k = Object.keys(o)[0];
      if (k === undefined) return o;
      const v = o[k];
      Object.defineProperty(o, k, { enumerable: true, get() { act(); return v; } });
      return o;
    }
    case 'revoked': return revoked();
    default: return r;
  }
}

const replayValue = fc.oneof(
  fc.constant('retained'),
  fc.record({ last: number }),
  fc.record({ sinceSeq: number }),
  fc.record({ sinceMs: number }),
  fc.record({ sinceSeq: fc.dictionary(topic.filter((t) => typeof t === 'string'), number, { maxKeys: 2 }), sinceMs: fc.option(number, { nil: undefined }) }),
  fc.record({ last: number, sinceMs: number }),
  odd,
).chain((r) => shaped(r));

const replayOptions = fc.option(fc.oneof(
  fc.record({ maxMessages: number }, { requiredKeys: [] }),
  fc.record({ maxBytes: number }, { requiredKeys: [] }),
  fc.record({ maxMessages: number, maxBytes: number, colour: fc.constant(1) }, { requiredKeys: ['maxMessages'] }),
  odd,
).chain((r) => shaped(r)), { nil: undefined });

const publishOptions = fc.option(fc.oneof(
  fc.record({ retain: fc.oneof(fc.boolean(), odd) }),
  fc.record({ retain: fc.constant(true), ttlMs: number }),
  fc.record({ retain: fc.constant(true), id: fc.oneof(fc.constantFrom('a', 'b', '\uD800'), odd), key: fc.constantFrom('k', undefined) }),
  fc.record({ retain: fc.boolean(), headers: fc.oneof(fc.constant({ a: 'b' }), odd) }),
  odd,
).chain((r) => shaped(r)), { nil: undefined });

const restoreEntry = fc.record({
  topic,
  seq: fc.oneof(fc.integer({ min: 1, max: 6 }), number),
  payload: fc.option(payload, { nil: undefined }),
  publishedAt: fc.option(number, { nil: undefined }),
  retained: fc.option(fc.oneof(fc.boolean(), odd), { nil: undefined }),
  ttlMs: fc.option(number, { nil: undefined }),
}, { requiredKeys: ['topic', 'seq'] }).chain((r) => shaped(r));

const signalKind = fc.constantFrom('none', 'none', 'live', 'aborted', 'abortSoon', 'fake');
const reentry = fc.constantFrom('publish', 'subscribe', 'unsubscribe', 'clearRetained', 'replay', 'logStats', 'close', 'restore', 'retain');

const op = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('publish'), topic, payload, options: publishOptions }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('subscribe'), pattern, replay: replayValue, onGap: fc.boolean(), act: reentry, handler: fc.constantFrom('sync', 'sync', 'async', 'lengthThrows', 'notAFunction') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('unsubscribe'), which: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('replay'), pattern, replay: replayValue, options: replayOptions }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('restore'), entries: fc.oneof(fc.array(restoreEntry, { maxLength: 4 }), odd) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('retained'), pattern: fc.option(pattern, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('clearRetained'), topic }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('logOf'), topic }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constantFrom('request', 'requestMany', 'once', 'stream'), topic, pattern, signal: signalKind, timeoutMs: fc.option(number, { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('publishAsync'), topic, payload, signal: signalKind }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('mode'), sizeOf: fc.constantFrom('ok', 'ok', 'throw', 'reenter', 'nan', 'big'), clock: fc.constantFrom('ok', 'ok', 'throw', 'reenter', 'symbol') }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('advance'), ms: fc.constantFrom(0, 1, 10, 1000, 100000) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('close'), now: fc.nat(9) }).filter((o) => o.now === 0) },
);

// Mostly valid bounds (the runs are about what comes after), sometimes hostile ones.
const busOptions = fc.oneof(
  { weight: 6, arbitrary: fc.record({
    retain: fc.option(fc.record({ maxTopics: fc.integer({ min: 1, max: 3 }), maxBytes: fc.integer({ min: 0, max: 64 }) }, { requiredKeys: [] }), { nil: undefined }),
    history: fc.option(fc.record({
      topics: fc.constantFrom(['h.>'], ['h.*', 'r.a'], ['>']),
      maxMessages: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
      maxAgeMs: fc.option(fc.constantFrom(5, 50, 5000), { nil: undefined }),
      maxBytes: fc.option(fc.integer({ min: 0, max: 64 }), { nil: undefined }),
    }), { nil: undefined }),
  }) },
  { weight: 1, arbitrary: fc.record({
    retain: fc.option(fc.record({ maxTopics: number, maxBytes: number }, { requiredKeys: [] }), { nil: undefined }),
    history: fc.option(fc.record({
      topics: fc.constantFrom(['h.>'], ['h..a'], 'h.>', [5], []),
      maxMessages: fc.option(number, { nil: undefined }),
      maxAgeMs: fc.option(number, { nil: undefined }),
      maxBytes: fc.option(number, { nil: undefined }),
    }), { nil: undefined }),
  }) },
);

// ----- the run -------------------------------------------------------------------------------

function checkThrown(e, where) {
  if (e instanceof Hostile) return;
  assert.ok(e instanceof EdgebusError, `${where}: threw ${e?.name}: ${e?.message} (not an EdgebusError)`);
  assert.ok(CODES.has(e.code), `${where}: code ${e.code} is not an ErrorCode`);
  assert.equal(typeof e.message, 'string');
}

function makeSignal(kind, timers) {
  if (kind === 'none') return undefined;
  if (kind === 'fake') return { aborted: false, addEventListener() {}, removeEventListener() {} };
  const c = new AbortController();
  if (kind === 'aborted') c.abort(new Hostile('aborted before'));
  if (kind === 'abortSoon') timers.push(() => c.abort());
  return c.signal;
}

async function run(options, ops) {
  const clock = new ManualClock(1000);
  const mode = { sizeOf: 'ok', clock: 'ok' };
  let bus;
  let inHook = false;
  const subs = [];
  const promises = [];
  const timers = [];
  /** A call into the bus from inside a getter, sizeOf or the clock: whatever it throws is fine if typed. */
  const reenter = (what) => {
    if (inHook || bus === undefined) return;
    inHook = true;
    try {
      switch (what) {
        case 'publish': bus.publish('h.b', 'inner'); break;
        case 'retain': bus.publish('r.b', 'inner', { retain: true }); break;
        case 'subscribe': subs.push(bus.subscribe('h.*', () => {}, { replay: { last: 2 } })); break;
        case 'unsubscribe': subs.at(-1)?.unsubscribe(); break;
        case 'clearRetained': bus.clearRetained('r.a'); break;
        case 'replay': bus.replay('>', { sinceSeq: 0 }); break;
        case 'logStats': bus.logStats(); break;
        case 'restore': bus.restore([{ topic: 'h.z', seq: (bus.logOf('h.z')?.lastSeq ?? 0) + 1, payload: 'r' }]); break;
        case 'close': promises.push(bus.close()); break;
        default: break;
      }
    } catch (e) {
      checkThrown(e, `re-entered ${what}`);
    } finally {
      inHook = false;
    }
  };
  const hostileClock = {
    now() {
      if (mode.clock === 'throw') throw new Hostile('clock');
      if (mode.clock === 'symbol') return Symbol('t');
      // Once: a clock publishing at every reading feeds the pump a message per round, a loop of
      // the caller's making (as a handler that always publishes to its own topic).
      if (mode.clock === 'reenter') {
        mode.clock = 'ok';
        reenter('publish');
      }
      return clock.now();
    },
    setTimeout: (f, ms) => clock.setTimeout(f, ms),
    clearTimeout: (h) => clock.clearTimeout(h),
  };
  const sizeOf = (p) => {
    if (p === 'P-throw' || mode.sizeOf === 'throw') throw new Hostile('sizeOf');
    if (p === 'P-reenter' || mode.sizeOf === 'reenter') reenter('subscribe');
    if (mode.sizeOf === 'nan') return NaN;
    if (mode.sizeOf === 'big') return 2 ** 53 + 1;
    return 8;
  };
  try {
    bus = new Bus({ clock: hostileClock, sizeOf, ...options, onError: () => {} });
  } catch (e) {
    checkThrown(e, 'new Bus');
    return;
  }
  const consoleError = console.error;
  const consoleWarn = console.warn;
  console.error = () => {};
  console.warn = () => {};
  let canarySent = 0;
  let canaryGot = 0;
  const canary = bus.subscribe('canary.x', () => { canaryGot++; });
  try {
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i];
      const where = `op ${i} ${o.k}`;
      const act = () => reenter(o.act ?? 'publish');
      try {
        switch (o.k) {
          case 'publish':
            bus.publish(live(o.topic), live(o.payload), o.options === undefined ? undefined : build(o.options, bus, act));
            break;
          case 'subscribe': {
            const opts = build({ r: { replay: build(o.replay, bus, act), onGap: o.onGap ? () => {} : undefined }, how: 'plain' }, bus, act);
            const handler = o.handler === 'sync' ? () => {}
              : o.handler === 'async' ? async () => {}
                : o.handler === 'lengthThrows' ? new Proxy(() => {}, { get: (t, k) => { if (k === 'length') throw new Hostile('length'); return t[k]; } })
                  : { handler: true };
            subs.push(bus.subscribe(live(o.pattern), handler, opts));
            break;
          }
          case 'unsubscribe':
            if (subs.length > 0) subs[o.which % subs.length].unsubscribe();
            break;
          case 'replay': {
            const r = bus.replay(live(o.pattern), build(o.replay, bus, act), o.options === undefined ? undefined : build(o.options, bus, act));
            assert.ok(Array.isArray(r.messages) && Array.isArray(r.gaps), where);
            for (const m of r.messages) assert.ok(Number.isSafeInteger(m.seq) && m.seq > 0, `${where}: seq ${m.seq}`);
            break;
          }
          case 'restore':
            bus.restore(Array.isArray(o.entries) ? o.entries.map((e) => build(e, bus, act)) : live(o.entries));
            break;
          case 'retained':
            bus.retained(live(o.pattern));
            break;
          case 'clearRetained':
            bus.clearRetained(live(o.topic));
            break;
          case 'logOf': {
            const l = bus.logOf(live(o.topic));
            if (l !== undefined) assert.ok(l.firstSeq <= l.lastSeq + 1 && l.held >= 0, `${where}: ${JSON.stringify(l)}`);
            break;
          }
          case 'request':
          case 'requestMany':
          case 'once':
          case 'stream': {
            const signal = makeSignal(o.signal, timers);
            const opts = { signal };
            if (o.k !== 'stream' && o.timeoutMs !== undefined) opts.timeoutMs = o.timeoutMs;
            const t = live(o.topic);
            const p = live(o.pattern);
            if (o.k === 'request') promises.push(bus.request(t, 1, opts));
            else if (o.k === 'requestMany') {
              const it = bus.requestMany(t, 1, opts);
              promises.push((async () => { for await (const r of it) void r; })());
            } else if (o.k === 'once') promises.push(bus.once(p, opts));
            else {
              const s = bus.stream(p, opts);
              promises.push(s.next());
            }
            break;
          }
          case 'publishAsync':
            promises.push(bus.publishAsync(live(o.topic), live(o.payload), { signal: makeSignal(o.signal, timers) }));
            break;
          case 'mode':
            mode.sizeOf = o.sizeOf;
            mode.clock = o.clock;
            break;
          case 'advance':
            clock.advance(o.ms);
            for (const t of timers.splice(0)) t();
            break;
          case 'close':
            promises.push(bus.close());
            break;
          default:
            break;
        }
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        checkThrown(e, where);
      }
      // Promises made must reject with typed errors (checked when they settle).
      await Promise.resolve();
      if (bus.closed) continue; // calls after close: typed errors only
      const saved = { ...mode };
      mode.sizeOf = 'ok';
      mode.clock = 'ok';
      try {
        canarySent++;
        bus.publish('canary.x', i);
        assert.equal(canaryGot, canarySent, `${where}: the canary missed a publish`);
        const l = bus.logStats();
        const st = bus.stats();
        assert.deepEqual(st.logs, l, `${where}: stats().logs differs from logStats()`);
        for (const [k, v] of Object.entries(l)) assert.ok(Number.isSafeInteger(v) && v >= 0, `${where}: logStats().${k} = ${v}`);
        assert.ok(bus.retained().length <= l.retained, `${where}: retained() holds more than logStats().retained`);
        // The core's count and the driver's (once and stream subscribe too).
        assert.equal(st.subscriptions, bus.toJSON().subscriptions, `${where}: subscriptions counted`);
        assert.ok(st.subscriptions >= 1 + subs.filter((s) => s.active).length, `${where}: subscriptions counted`);
        assert.ok(st.queued >= 0 && st.inFlight >= 0, where);
      } finally {
        Object.assign(mode, saved);
      }
    }
    mode.sizeOf = 'ok';
    mode.clock = 'ok';
    canary.unsubscribe();
    // Every promise settles once the bus is closed (and time passes for the timeouts).
    promises.push(bus.close());
    for (const t of timers.splice(0)) t();
    clock.advance(10 ** 7);
    const outcomes = await Promise.race([
      Promise.allSettled(promises),
      new Promise((resolve) => setTimeout(() => resolve('hung'), 2000)),
    ]);
    assert.notEqual(outcomes, 'hung', 'a promise never settled after close()');
    for (const o of outcomes) if (o.status === 'rejected') checkThrown(o.reason, 'a promise');
  } finally {
    console.error = consoleError;
    console.warn = consoleWarn;
  }
}

test('log APIs and waiting calls under hostile input: typed errors, the canary still heard, consistent statistics, every promise settled', async () => {
  await fc.assert(
    fc.asyncProperty(busOptions, fc.array(op, { minLength: 5, maxLength: 40, size: 'max' }), (options, ops) => run(options, ops)),
    { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true },
  );
});
