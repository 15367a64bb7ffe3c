// Property tests of the tools beside Bus under hostile input: IdempotenceFilter, RequestTracker,
// Batcher, ShardedBus's main-thread API (worker_threads) and the remote client (a scripted
// WebSocket). Random operation sequences whose arguments are drawn from hostile values (Proxies,
// revoked Proxies, Symbols, BigInts, NaN, -0, ±Infinity, 2**53 + 1, fractions, lone surrogates,
// huge strings, frozen objects, arrays for objects, `__proto__` keys, getters that throw or
// re-enter the object), and whose clocks, sizeOf, onError and handlers throw, answer junk or
// re-enter (add, flush, close, publish, check) in the middle of a call. After every operation:
//   - a throw or rejection is an EdgebusError with a code of the ErrorCode union, or the hostile
//     callback's own error where the API documents it passes through (Batcher's sizeOf);
//   - a canary call still works, and what the object counts agrees with a small model (the ids a
//     filter holds, the requests a tracker has pending and those due, what a ShardedBus and a
//     remote client took);
// and at the end every promise made (drain, close, flush, request, publishAsync) settles.
// Runs are seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override.
import { test } from 'node:test';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { IdempotenceFilter, RequestTracker, Batcher, ShardedBus, EdgebusError, connect } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 300);

const CODES = new Set(
  [...readFileSync(new URL('../../src/js/index.d.ts', import.meta.url), 'utf8')
    .match(/export type ErrorCode =([\s\S]*?);/)[1].matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]),
);

class Failure extends Error {}
/** What the hostile callbacks throw: their own errors, told apart from the API's. */
class Hostile extends Error {}

function check(cond, what) {
  if (!cond) throw new Failure(what);
}

function show(v) {
  if (typeof v === 'symbol' || typeof v === 'bigint' || typeof v === 'function') return `a ${typeof v}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…(${v.length})` : v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return 'an unprintable value';
  }
}

/** `e` is an EdgebusError with a code of the union (of `codes`, when given), or (when `hostile`) a Hostile. */
function typed(e, where, { codes, hostile = false } = {}) {
  if (e instanceof Failure) throw e;
  if (hostile && e instanceof Hostile) return;
  check(e instanceof EdgebusError && CODES.has(e.code), `${where}: threw ${e?.constructor?.name} ${e?.code}: ${e?.message}`);
  if (codes !== undefined) check(codes.includes(e.code), `${where}: threw ${e.code} (${e.message}), expected one of ${codes}`);
}

/** Calls `fn`: its result, or undefined once its typed throw is checked. */
function attempt(fn, where, opts) {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    typed(e, where, opts);
    return { ok: false, error: e };
  }
}

/** Resolves with the outcome of `p`, or fails the run when it does not settle within `ms`. */
function within(p, ms, what) {
  let timer;
  return Promise.race([
    Promise.resolve(p).then((value) => ({ ok: true, value }), (error) => ({ ok: false, error })),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Failure(`${what} did not settle within ${ms} ms`)), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const tick = () => new Promise((r) => setImmediate(r));

/** Runs `fn` with console.error muted (clocks gone bad, failures without onError are said there). */
async function muted(fn) {
  const error = console.error;
  console.error = () => {};
  try {
    return await fn();
  } finally {
    console.error = error;
  }
}

// ----- hostile values ------------------------------------------------------------------------

const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};

/** Values no argument of these APIs takes where they want a number, a string or an object (`i` picks). */
function oddValue(i) {
  const list = [
    undefined, null, true, NaN, -0, Infinity, -Infinity, 2 ** 53 + 1, 1.5, -1, 2 ** 32, '', '\uD800', 'x'.repeat(70_000),
    Symbol('s'), 10n, [], [1], Object.freeze({}), JSON.parse('{"__proto__":{"a":1}}'), () => 1, revoked(),
    Object.defineProperty({}, 'x', { enumerable: true, get() { throw new Hostile('getter'); } }),
    new Proxy({}, { ownKeys() { throw new Hostile('ownKeys'); } }),
  ];
  return list[i % list.length];
}
const odd = fc.nat(1000);

/** A clock whose readings the run controls: `mode` ok, or throw / junk, or re-entering via `onRead`. */
function hostileClock() {
  const c = { t: 0, mode: 'ok', onRead: undefined, reads: 0 };
  c.clock = {
    now() {
      c.reads++;
      switch (c.mode) {
        case 'throw': throw new Hostile('now() throws');
        case 'symbol': return Symbol('t');
        case 'bigint': return 10n;
        case 'nan': return NaN;
        case 'inf': return c.reads % 2 === 0 ? Infinity : -Infinity;
        case 'string': return '5';
        case 'reenter': {
          const f = c.onRead;
          c.onRead = undefined; // once: the call it makes reads the clock too
          if (f !== undefined) f();
          return c.t;
        }
        default: return c.t;
      }
    },
  };
  return c;
}
const CLOCK_MODES = ['ok', 'ok', 'ok', 'throw', 'symbol', 'bigint', 'nan', 'inf', 'string', 'reenter'];

// ----- IdempotenceFilter ---------------------------------------------------------------------

const ID_POOL = ['a', 'b', 'c', '', 'é', '\u{1F600}', 'x'.repeat(15), 'y'.repeat(16), 'z'.repeat(300), 'a\0'];

const filterOp = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('check'), id: fc.nat(ID_POOL.length - 1) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('has'), id: fc.nat(ID_POOL.length - 1) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom('checkOdd', 'hasOdd'), v: odd }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('clock'), mode: fc.constantFrom(...CLOCK_MODES), id: fc.nat(ID_POOL.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('time'), ms: fc.nat(50) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('size', 'clear', 'json') }) },
);

async function runFilter(maxIds, ops) {
  const c = hostileClock();
  // Aged (the clock is read on every call), with an age no run reaches: the window is by count.
  const f = new IdempotenceFilter({ maxIds, maxAgeMs: 1e12, clock: c.clock });
  let held = []; // the model: distinct ids recorded, oldest first
  const record = (id) => {
    if (held.includes(id)) return false;
    held.push(id);
    if (held.length > maxIds) held.shift();
    return true;
  };
  let canary = 0;
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    switch (op.op) {
      case 'check': {
        const id = ID_POOL[op.id];
        const r = attempt(() => f.check(id), where);
        check(r.ok, `${where}: check refused a string id`);
        // A re-entering clock checked its own id first (it is read before the id is written).
        if (c.pending !== undefined) { record(c.pending); c.pending = undefined; }
        check(r.value === record(id), `${where}: check gave ${r.value}`);
        break;
      }
      case 'has': {
        const id = ID_POOL[op.id];
        const r = attempt(() => f.has(id), where);
        if (c.pending !== undefined) { record(c.pending); c.pending = undefined; }
        check(r.ok && r.value === held.includes(id), `${where}: has gave ${r.value}, model ${held.includes(id)}`);
        break;
      }
      case 'checkOdd': case 'hasOdd': {
        const v = oddValue(op.v);
        const method = op.op === 'checkOdd' ? 'check' : 'has';
        const r = attempt(() => f[method](v), `${where} (${show(v)})`, { codes: ['INVALID_ARGUMENT'] });
        if (c.pending !== undefined) { record(c.pending); c.pending = undefined; }
        if (r.ok) {
          // Only strings are ids (a long one takes the string path).
          check(typeof v === 'string', `${where}: ${method}(${show(v)}) accepted`);
          check(r.value === (method === 'check' ? record(v) : held.includes(v)), `${where}: ${method} gave ${r.value}`);
        }
        break;
      }
      case 'clock':
        c.mode = op.mode;
        if (op.mode === 'reenter') {
          const inner = `r${step}`;
          c.onRead = () => { f.check(inner); c.pending = inner; };
        }
        break;
      case 'time': c.t += op.ms; break;
      case 'size': check(f.size === held.length, `${where}: size ${f.size}, model ${held.length}`); break;
      case 'clear': f.clear(); held = []; break;
      case 'json': check(JSON.stringify(f) === JSON.stringify({ maxIds, maxAgeMs: 1e12, size: held.length }), `${where}: toJSON ${JSON.stringify(f)}`); break;
    }
    // Canary: a fresh id goes through once.
    const id = `canary-${canary++}`;
    if (c.pending !== undefined) { record(c.pending); c.pending = undefined; }
    const first = f.check(id);
    if (c.pending !== undefined) { record(c.pending); c.pending = undefined; }
    check(first === true && record(id) && f.has(id) === true && f.check(id) === false, `${where}: the canary id was not recorded once`);
    check(f.size === held.length, `${where}: size ${f.size}, model ${held.length} (${held.join(',')})`);
  }
}

test('IdempotenceFilter: hostile ids and a clock that throws, answers junk or re-enters the filter', async () => {
  await muted(() => fc.assert(
    fc.asyncProperty(fc.constantFrom(3, 1000), fc.array(filterOp, { minLength: 1, maxLength: 40, size: 'max' }), (maxIds, ops) => runFilter(maxIds, ops)),
    { seed: SEED, numRuns: RUNS * 2, endOnFailure: true, includeErrorInReport: true },
  ));
});

// ----- RequestTracker ------------------------------------------------------------------------

const trackerOp = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('open'), max: fc.integer({ min: 1, max: 3 }), reports: fc.nat(2), timeoutMs: fc.constantFrom(1, 5, 20, Infinity, undefined) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('openOdd'), key: fc.constantFrom('max', 'reports', 'timeoutMs', 'whole'), v: odd }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('reached'), i: fc.nat(), reports: fc.constantFrom(0, 1, 2, 2 ** 32 - 1), responders: fc.constantFrom(0, 1, 2, 2 ** 32 - 1) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('answer'), i: fc.nat(), responder: fc.nat(3), kind: fc.constantFrom('reply', 'failure', 'decline') }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('reachedOdd', 'answerOdd', 'cancelOdd'), v: odd, w: fc.nat(2) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('cancel'), i: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('due') }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('clock'), mode: fc.constantFrom(...CLOCK_MODES) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('time'), ms: fc.nat(15) }) },
);

async function runTracker(ops) {
  const c = hostileClock();
  c.t = 1000;
  const t = new RequestTracker({ clock: c.clock });
  let last = 1000; // the clock's last good reading, as the tracker reads it
  const read = () => {
    if (c.mode === 'ok' || c.mode === 'reenter') last = c.t;
    return last;
  };
  const pending = new Map(); // id → deadline (Infinity: none)
  const opened = [];
  let sent = 0;
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const idOf = (i) => (opened.length === 0 ? 0 : opened[i % opened.length]);
    switch (op.op) {
      case 'open': {
        const o = { max: op.max, reports: op.reports };
        if (op.timeoutMs !== undefined) o.timeoutMs = op.timeoutMs;
        const timeout = op.timeoutMs ?? 5000;
        if (c.mode === 'reenter') c.onRead = () => t.stats();
        const deadline = timeout === Infinity ? Infinity : read() + timeout;
        const r = attempt(() => t.open(o), where);
        check(r.ok, `${where}: open refused`);
        sent++;
        opened.push(r.value);
        pending.set(r.value, deadline);
        break;
      }
      case 'openOdd': {
        const v = oddValue(op.v);
        const r = attempt(() => t.open(op.key === 'whole' ? v : { [op.key]: v }), `${where} (${show(v)})`, { codes: ['INVALID_OPTION'] });
        if (r.ok) {
          // Some odd values are valid here (undefined, 1, 2^32 reports…): the model learns of it.
          const timeout = op.key === 'timeoutMs' && v !== undefined ? v : 5000;
          sent++;
          opened.push(r.value);
          pending.set(r.value, timeout === Infinity ? Infinity : read() + timeout);
        }
        break;
      }
      case 'reached': {
        const id = idOf(op.i);
        const r = attempt(() => t.reached(id, op.reports, op.responders), where);
        check(r.ok, `${where}: reached refused`);
        check((r.value === 'gone') === !pending.has(id), `${where}: reached gave ${r.value}, pending ${pending.has(id)}`);
        if (r.value !== 'pending') pending.delete(id);
        break;
      }
      case 'answer': {
        const id = idOf(op.i);
        const r = attempt(() => t.answer(id, op.responder, op.kind), where);
        check(r.ok, `${where}: answer refused`);
        if (!pending.has(id)) check(r.value === 'late', `${where}: an ended request answered ${r.value}`);
        if (r.value.endsWith('Last')) pending.delete(id);
        break;
      }
      case 'reachedOdd': case 'answerOdd': case 'cancelOdd': {
        const v = oddValue(op.v);
        const id = idOf(op.w);
        const call = op.op === 'reachedOdd' ? () => t.reached(id, v, op.w === 0 ? v : 1)
          : op.op === 'answerOdd' ? () => (op.w === 0 ? t.answer(id, v, 'reply') : t.answer(id, 1, v))
            : () => t.cancel(v);
        const before = t.stats();
        const r = attempt(call, `${where} (${show(v)})`, { codes: ['INVALID_ARGUMENT'] });
        // Only whole numbers in range are taken (-0 is 0); a kind is one of three strings.
        const whole = typeof v === 'number' && Number.isInteger(v) && v >= 0;
        const valid = op.op === 'cancelOdd' || (op.op === 'answerOdd' && op.w === 0) ? whole && v <= Number.MAX_SAFE_INTEGER
          : op.op === 'reachedOdd' ? whole && v <= 2 ** 32 - 1 : false;
        check(r.ok === valid, `${where}: ${op.op} ${r.ok ? 'took' : 'refused'} ${show(v)}`);
        if (!r.ok) {
          check(JSON.stringify(t.stats()) === JSON.stringify(before), `${where}: a refused call changed the counts`);
        } else if (op.op === 'cancelOdd') {
          check(r.value === pending.has(v), `${where}: cancel(${v}) gave ${r.value}`);
          pending.delete(v);
        } else if (op.op === 'reachedOdd') {
          if (r.value !== 'pending') pending.delete(id);
        } else if (r.value.endsWith('Last')) {
          pending.delete(id);
        }
        break;
      }
      case 'cancel': {
        const id = idOf(op.i);
        const r = attempt(() => t.cancel(id), where);
        check(r.ok && r.value === pending.has(id), `${where}: cancel gave ${r.value}, pending ${pending.has(id)}`);
        pending.delete(id);
        break;
      }
      case 'due': {
        if (c.mode === 'reenter') c.onRead = () => t.nextDeadline();
        const now = read();
        const r = attempt(() => t.due(), where);
        check(r.ok, `${where}: due refused`);
        const want = [...pending].filter(([, d]) => d <= now).map(([id]) => id).sort((a, b) => a - b);
        check(JSON.stringify([...r.value].sort((a, b) => a - b)) === JSON.stringify(want), `${where}: due gave ${r.value}, model ${want} (at ${now})`);
        for (const id of r.value) pending.delete(id);
        break;
      }
      case 'clock': c.mode = op.mode; break;
      case 'time': c.t += op.ms; break;
    }
    // Consistent counts, and a canary request that opens and cancels.
    const st = t.stats();
    for (const [k, v] of Object.entries(st)) check(Number.isInteger(v) && v >= 0, `${where}: stats.${k} is ${v}`);
    check(st.pending === pending.size && t.pending === pending.size, `${where}: pending ${st.pending}, model ${pending.size}`);
    check(st.sent === sent, `${where}: sent ${st.sent}, model ${sent}`);
    const finite = [...pending.values()].filter((d) => d !== Infinity);
    const next = finite.length === 0 ? undefined : Math.min(...finite);
    const got = t.nextDeadline();
    // (The core keeps microseconds: a deadline near 2^53 ms comes back rounded.)
    check(got === next || (got !== undefined && next !== undefined && Math.abs(got - next) <= Math.abs(next) * 1e-12 + 1e-3),
      `${where}: nextDeadline ${got}, model ${next}`);
    const canary = t.open({ timeoutMs: Infinity });
    check(t.cancel(canary) === true, `${where}: the canary request could not be cancelled`);
    sent++;
  }
}

test('RequestTracker: hostile ids, counts and options, and a clock that throws, answers junk or re-enters', async () => {
  await muted(() => fc.assert(
    fc.asyncProperty(fc.array(trackerOp, { minLength: 1, maxLength: 40, size: 'max' }), (ops) => runTracker(ops)),
    { seed: SEED, numRuns: RUNS * 2, endOnFailure: true, includeErrorInReport: true },
  ));
});

// ----- Batcher -------------------------------------------------------------------------------

const batcherCfg = fc.record({
  maxSize: fc.integer({ min: 1, max: 4 }),
  maxAttempts: fc.integer({ min: 1, max: 2 }),
  onError: fc.constantFrom('record', 'throws', 'reenter', 'none'),
});
const batcherOp = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('add'), size: fc.constantFrom('ok', 'ok', 'ok', 'throw', 'junk', 'add', 'flush', 'close') }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('addOdd'), v: odd }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('handler'), then: fc.constantFrom('ok', 'throw', 'reject', 'add', 'flush', 'close', 'junk') }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('flush', 'drain', 'stats') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close') }) },
);

async function runBatcher(cfg, ops) {
  const accepted = new Set();
  const handled = new Set();
  const reported = [];
  const waits = [];
  let next = 0;
  let then = 'ok';
  let b;
  let budget = 20; // calls from callbacks (a handler adding an item for each batch would never end)
  const inner = (what) => {
    if (budget-- <= 0) return;
    // From inside a callback: each call either works or is refused with a code.
    try {
      if (what === 'add') { const n = next++; b.add({ n, size: 'ok' }); accepted.add(n); }
      else if (what === 'flush') b.flush();
      else if (what === 'close') waits.push(within(b.close(), 5000, 'close() from a callback'));
    } catch (e) {
      typed(e, `${what} from a callback`, { codes: ['CLOSED'] });
    }
  };
  const handler = (items) => {
    for (const it of items) {
      try { handled.add(it.n); } catch { /* an odd item */ }
    }
    const now = then;
    switch (now) {
      case 'throw': throw new Hostile('handler throws');
      case 'reject': return Promise.reject(new Hostile('handler rejects'));
      case 'junk': return { then: 5 };
      case 'add': case 'flush': case 'close': inner(now); return undefined;
      default: return undefined;
    }
  };
  const options = {
    maxSize: cfg.maxSize, maxAttempts: cfg.maxAttempts, backoff: { initialMs: 0, maxMs: 0 },
    sizeOf: (it) => {
      let size;
      try {
        size = it === null || it === undefined ? 'ok' : it.size;
      } catch {
        throw new Hostile('the item cannot be read');
      }
      switch (size) {
        case 'throw': throw new Hostile('sizeOf throws');
        case 'junk': return Symbol('n');
        case 'add': case 'flush': case 'close': it.size = 'ok'; inner(it.was ?? (it.was = 'x')); return 1;
        default: return 1;
      }
    },
  };
  if (cfg.onError === 'record') options.onError = (e, items) => reported.push(...items);
  if (cfg.onError === 'throws') options.onError = (e, items) => { reported.push(...items); throw new Hostile('onError throws'); };
  if (cfg.onError === 'reenter') options.onError = (e, items) => { reported.push(...items); inner('add'); };
  b = new Batcher(handler, options);
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    switch (op.op) {
      case 'add': {
        const n = next++;
        const item = { n, size: op.size };
        if (op.size === 'add' || op.size === 'flush' || op.size === 'close') item.was = op.size;
        const r = attempt(() => b.add(item), where, { hostile: true });
        if (r.ok) accepted.add(n);
        else check(op.size !== 'ok' || b.toJSON().closed, `${where}: add refused ${r.error?.code}`);
        break;
      }
      case 'addOdd': {
        // Any value is an item (the default sizeOf is not used here: ours reads `size`).
        const v = oddValue(op.v);
        attempt(() => b.add(v), `${where} (${show(v)})`, { hostile: true });
        break;
      }
      case 'handler': then = op.then; break;
      case 'flush': attempt(() => b.flush(), where); break;
      case 'drain': waits.push(within(b.drain(), 5000, 'drain()')); break;
      case 'stats': break;
      case 'close': waits.push(within(b.close(), 5000, 'close()')); break;
    }
    const st = b.stats();
    for (const k of ['delivered', 'failed', 'queued', 'inFlight', 'dropped']) check(Number.isInteger(st[k]) && st[k] >= 0, `${where}: stats.${k} ${st[k]}`);
    await tick();
  }
  then = 'ok';
  const closed = await within(b.close(), 5000, 'the final close()');
  check(closed.ok, `close() rejected: ${closed.error?.message}`);
  for (const w of await Promise.all(waits)) check(w.ok || w.error instanceof EdgebusError, `a drain/close rejected ${w.error?.message}`);
  const st = b.stats();
  check(st.queued === 0 && st.inFlight === 0, `after close: queued ${st.queued}, inFlight ${st.inFlight}`);
  for (const n of accepted) check(handled.has(n), `item ${n} was accepted and never handed to the handler`);
  if (cfg.onError !== 'none') check(st.failed === reported.length, `failed ${st.failed}, reported ${reported.length}`);
  const late = attempt(() => b.add({ n: -1, size: 'ok' }), 'add after close', { codes: ['CLOSED'] });
  check(!late.ok, 'add after close was accepted');
}

test('Batcher: sizeOf, onError and handlers that throw, answer junk or re-enter (add, flush, close); hostile items', async () => {
  await muted(() => fc.assert(
    fc.asyncProperty(batcherCfg, fc.array(batcherOp, { minLength: 1, maxLength: 25, size: 'max' }), (cfg, ops) => runBatcher(cfg, ops)),
    { seed: SEED, numRuns: Math.ceil(RUNS / 2), endOnFailure: true, includeErrorInReport: true },
  ));
});

// ----- ShardedBus (main thread) ------------------------------------------------------------------

const handlers = new URL('./fixtures/hostile-tools-handlers.mjs', import.meta.url);

const shardedOp = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom('publish', 'publishAsync', 'request', 'batch'), id: fc.option(fc.nat(3), { nil: undefined }),
    shape: fc.constantFrom('plain', 'plain', 'frozen', 'proto', 'proxy', 'throw', 'reenter', 'array', 'revoked'), v: odd, bad: fc.constantFrom('none', 'none', 'topic', 'option', 'payload') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('drain', 'stats', 'subscribe') }) },
);

/** Options for a ShardedBus publish, made hostile (`shape`); `act` is what a re-entering getter does. */
function shardedOptions(op, act, request = false) {
  const o = { key: 'k' };
  if (request) o.timeoutMs = op.bad === 'option' ? oddValue(op.v) : 2000;
  else if (op.id !== undefined) o.id = `id${op.id}`;
  if (op.bad === 'option' && !request) o.ttlMs = oddValue(op.v);
  switch (op.shape) {
    case 'frozen': return Object.freeze(o);
    case 'proto': return Object.assign(JSON.parse('{"__proto__":{"key":1}}'), o);
    case 'proxy': return new Proxy(o, {});
    case 'throw': return Object.defineProperty(o, 'key', { enumerable: true, get() { throw new Hostile('key getter'); } });
    case 'reenter': return Object.defineProperty(o, 'key', { enumerable: true, get() { act(); return 'k'; } });
    case 'array': return Object.assign([], o);
    case 'revoked': return revoked();
    default: return o;
  }
}

async function runSharded(cfg, ops) {
  const bus = new ShardedBus({ handlers, workers: 1, dedupe: cfg.dedupe, maxQueue: Infinity, onError: () => {} });
  await bus.ready;
  let accepted = 0;
  const waits = [];
  const counted = (r, what) => {
    check(r === true || r === false, `${what} returned ${show(r)}`);
    if (r) accepted++;
  };
  const inner = () => {
    // A getter publishing from inside a publish: it works, or is refused with a code.
    try { counted(bus.publish('t.inner', 1), 'an inner publish'); } catch (e) { typed(e, 'an inner publish'); }
  };
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    const topic = op.bad === 'topic' ? oddValue(op.v) : 't.a';
    const payload = op.bad === 'payload' ? oddValue(op.v) : { step };
    const before = bus.stats();
    const beforeAccepted = accepted;
    let refused = false;
    switch (op.op) {
      case 'publish': case 'batch': {
        const options = shardedOptions(op, inner);
        const r = attempt(() => (op.op === 'publish' ? bus.publish(topic, payload, options)
          : bus.publishBatch(topic, [payload, payload], options)), where, { hostile: true });
        if (r.ok) {
          if (op.op === 'publish') counted(r.value, where);
          else { check(Number.isInteger(r.value) && r.value >= 0 && r.value <= 2, `${where}: publishBatch gave ${show(r.value)}`); accepted += r.value; }
        } else refused = true;
        break;
      }
      case 'publishAsync': case 'request': {
        const options = shardedOptions(op, inner, op.op === 'request');
        let p;
        try {
          p = op.op === 'request' ? bus.request(topic, payload, options) : bus.publishAsync(topic, payload, options);
        } catch (e) {
          throw new Failure(`${where}: threw instead of rejecting: ${e?.message}`);
        }
        const r = await within(p, 5000, `${where} promise`);
        if (r.ok) {
          if (op.op === 'publishAsync') counted(r.value, where);
          else { check(r.value !== undefined, `${where}: request resolved ${show(r.value)}`); accepted++; }
        } else {
          typed(r.error, where);
          // A request that ended this way was published (its handler declined, failed or took too long).
          const published = op.op === 'request' && ['NO_RESPONDERS', 'HANDLER_FAILED', 'TIMEOUT', 'WORKER_CRASHED'].includes(r.error.code);
          if (published) accepted++;
          else refused = true;
        }
        break;
      }
      case 'drain': waits.push(within(bus.drain(), 10_000, 'drain()')); break;
      case 'stats': break;
      case 'subscribe': {
        const r = attempt(() => bus.subscribe(oddValue(step), () => {}), where);
        if (r.ok) r.value.unsubscribe();
        break;
      }
    }
    const st = bus.stats();
    if (refused) {
      // A refused call takes nothing (a publish made from its getters is counted on its own).
      check(st.published - before.published === accepted - beforeAccepted, `${where}: refused, yet published went ${before.published} → ${st.published} (accepted ${accepted - beforeAccepted} inside)`);
    }
    check(st.published === accepted, `${where}: published ${st.published}, accepted ${accepted}`);
    check(st.published + st.duplicates >= accepted, `${where}: counts`);
    // Canary.
    counted(bus.publish('t.canary', step), `${where}: the canary publish`);
  }
  // A getter that closes the bus in the middle of a publish: refused, nothing taken.
  const before = bus.stats().published;
  const closing = [];
  const r = attempt(() => bus.publish('t.a', 1, { get key() { closing.push(bus.close()); return 'k'; } }), 'a publish closing the bus', { codes: ['CLOSED'] });
  check(!r.ok, 'a publish whose getter closed the bus was accepted');
  check(bus.stats().published === before, 'a publish refused CLOSED was counted');
  for (const w of await Promise.all([...waits, within(closing[0], 10_000, 'close()')])) check(w.ok, `drain/close rejected ${w.error?.message}`);
  await within(bus.close(), 10_000, 'the final close()');
  const st = bus.stats();
  check(st.queued === 0 && st.inFlight === 0 && st.waiting === 0, `after close: queued ${st.queued}, inFlight ${st.inFlight}`);
  check(st.done + st.expired + st.failed === st.published, `after close: done ${st.done} + expired ${st.expired} + failed ${st.failed} ≠ published ${st.published}`);
  const q = st.requests;
  check(q.pending === 0 && q.sent === q.replies + q.failed + q.timedOut + q.noResponders + q.cancelled, `requests ${JSON.stringify(q)}`);
  await within(bus.publishAsync('t.a', 1).then(() => { throw new Failure('publishAsync after close resolved'); }, (e) => typed(e, 'publishAsync after close', { codes: ['CLOSED'] })), 1000, 'publishAsync after close');
}

test('ShardedBus: hostile topics, payloads and options whose getters throw or re-enter (publish, close); every promise settles', { timeout: 120_000 }, async () => {
  await muted(() => fc.assert(
    fc.asyncProperty(fc.record({ dedupe: fc.boolean() }), fc.array(shardedOp, { minLength: 1, maxLength: 12, size: 'max' }), (cfg, ops) => runSharded(cfg, ops)),
    { seed: SEED, numRuns: Math.max(3, Math.ceil(RUNS / 20)), endOnFailure: true, includeErrorInReport: true },
  ));
});

// ----- the remote client ---------------------------------------------------------------------

/** A scripted hub: every frame must be JSON; publishes are acknowledged and requests ended at once. */
class Hub {
  static last;
  constructor(url) {
    this.url = url;
    this.frames = [];
    this.answers = [];
    Hub.last = this;
  }
  send(text) {
    const ops = [JSON.parse(text)].flat(); // throws on a frame that is not JSON
    this.frames.push(...ops);
    for (const op of ops) {
      if (op.op === 'pub') queueMicrotask(() => this.deliver({ t: 'ok', op: 'pub', ref: op.ref }));
      else if (op.op === 'req') queueMicrotask(() => this.deliver({ t: 'end', ref: op.ref, code: 'NO_RESPONDERS', reached: 0 }));
      else if (op.op === 'sub') queueMicrotask(() => this.deliver({ t: 'ok', op: 'sub', ref: op.id }));
      else if (op.op === 'answer') this.answers.push(op.to);
    }
  }
  close() {}
  deliver(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }
}

const remoteOp = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constantFrom('publish', 'publishAsync', 'request'), v: odd, bad: fc.constantFrom('none', 'none', 'topic', 'payload', 'option', 'reenter') }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('subscribe'), v: odd, group: fc.boolean(), bad: fc.constantFrom('none', 'pattern', 'option') }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('deliver'), v: odd, then: fc.constantFrom('value', 'junk', 'throw', 'throwOdd', 'reject', 'reply', 'close') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('flush', 'stats') }) },
);

async function runRemote(ops) {
  const errors = [];
  const bus = connect('https://edge.example.com', { token: 't', WebSocket: Hub, reconnect: { initialMs: 1, maxMs: 2 }, onError: (e, context) => errors.push({ e, context }) });
  await tick();
  Hub.last.deliver({ t: 'hello', conn: 'c', hub: 0 });
  const hub = Hub.last;
  let published = 0;
  const waits = [];
  let then = 'value';
  let rq = 0;
  const closes = [];
  // One subscription answering requests as the run says.
  const responder = bus.subscribe('rq.>', (p, m) => {
    switch (then) {
      case 'junk': return oddValue(p);
      case 'throw': throw new Hostile('handler throws');
      case 'throwOdd': throw Object.create(null);
      case 'reject': return Promise.reject(new Hostile('handler rejects'));
      case 'reply': m.reply(oddValue(p)); return undefined;
      case 'close': closes.push(bus.close({ timeoutMs: 100 })); return 1;
      default: return p;
    }
  });
  for (const [step, op] of ops.entries()) {
    const where = `step ${step} ${JSON.stringify(op)}`;
    if (bus.closed) break;
    switch (op.op) {
      case 'publish': case 'publishAsync': case 'request': {
        const topic = op.bad === 'topic' ? oddValue(op.v) : 'a.b';
        const payload = op.bad === 'payload' ? oddValue(op.v) : { step };
        let options;
        if (op.bad === 'option') options = op.op === 'request' ? { timeoutMs: oddValue(op.v) } : { id: oddValue(op.v) };
        if (op.bad === 'reenter') options = { get key() { bus.publish('a.inner', 1); published++; return 'k'; } };
        if (op.op === 'publish') {
          const r = attempt(() => bus.publish(topic, payload, options), where);
          if (r.ok) { check(r.value === true, `${where}: publish gave ${r.value}`); published++; }
        } else {
          let p;
          try {
            p = op.op === 'request' ? bus.request(topic, payload, options) : bus.publishAsync(topic, payload, options);
          } catch (e) {
            throw new Failure(`${where}: threw instead of rejecting: ${e?.message}`);
          }
          const r = await within(p, 2000, `${where} promise`);
          if (r.ok) { check(op.op === 'publishAsync', `${where}: a request with no responders resolved`); published++; }
          else typed(r.error, where);
        }
        break;
      }
      case 'subscribe': {
        const options = op.bad === 'option' ? { group: op.group ? 'g' : undefined, maxAttempts: oddValue(op.v) } : op.group ? { group: 'g' } : undefined;
        const r = attempt(() => bus.subscribe(op.bad === 'pattern' ? oddValue(op.v) : 's.>', () => {}, options), where);
        if (r.ok) r.value.unsubscribe();
        break;
      }
      case 'deliver': {
        then = op.then;
        rq++;
        hub.deliver({ t: 'msg', m: [[[responder.id], { topic: 'rq.x', payload: op.v, id: `m${rq}`, rq }]] });
        await tick();
        if (then !== 'close') check(hub.answers.includes(rq), `${where}: request ${rq} got no answer frame`);
        break;
      }
      case 'flush': waits.push(within(bus.flush(), 2000, 'flush()')); break;
      case 'stats': break;
    }
    await tick();
    if (bus.closed) break;
    const st = bus.stats();
    check(st.published === published, `${where}: published ${st.published}, model ${published}`);
    check(st.published === st.acknowledged + st.unacknowledged + st.buffered, `${where}: published ${st.published} ≠ acknowledged ${st.acknowledged} + unacknowledged ${st.unacknowledged} + buffered ${st.buffered}`);
    // Canary: a publish goes out and is acknowledged.
    const ok = await within(bus.publishAsync('a.canary', step), 2000, 'the canary publishAsync');
    check(ok.ok && ok.value === true, `${where}: the canary publish was not acknowledged (${ok.error?.message})`);
    published++;
  }
  for (const w of await Promise.all(waits)) check(w.ok || w.error instanceof EdgebusError, `flush rejected ${w.error?.message}`);
  const closed = await within(bus.close({ timeoutMs: 500 }), 3000, 'close()');
  check(closed.ok, `close() rejected ${closed.error?.message}`);
  for (const c of await Promise.all(closes.map((p) => within(p, 3000, 'close() from a handler')))) check(c.ok, 'a close() from a handler rejected');
  // The client's own errors are typed; a handler's failure (reported with its subscription) is its own.
  for (const { e, context } of errors) if (context?.subscription === undefined) typed(e, 'a reported error');
}

test('remote client: hostile topics, payloads, options and replies; handlers that throw odd values or close; every frame is JSON', async () => {
  await muted(() => fc.assert(
    fc.asyncProperty(fc.array(remoteOp, { minLength: 1, maxLength: 20, size: 'max' }), (ops) => runRemote(ops)),
    { seed: SEED, numRuns: Math.ceil(RUNS / 3), endOnFailure: true, includeErrorInReport: true },
  ));
});
