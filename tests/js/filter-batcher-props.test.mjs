// Property tests of the two standalone classes, IdempotenceFilter and Batcher: random sequences of
// valid and hostile calls on a ManualClock, each checked against a small reference model after
// every step.
//
// IdempotenceFilter (README "API": `check(id)` true the first time and records it, `has(id)`,
// `size`, `clear()`; a window by count `maxIds` and by age `maxAgeMs`):
// - the filter holds exactly the last `maxIds` distinct ids recorded, less those recorded
//   `maxAgeMs` or more ago (by the clock's latest reading: a clock that goes back revives nothing);
//   a repeat neither refreshes an id's age nor its place;
// - ids of every shape agree: empty, short, exactly 15 and 16 UTF-8 bytes (where the core stops
//   keeping an id inline), around the 256 bytes of the buffer short ASCII ids are written into,
//   hundreds of bytes long (their bytes are compacted as old ones leave), non-ASCII, NUL, and
//   near-identical pairs; two filters side by side never see each other's ids;
// - hostile ids (not strings, lone surrogates) and hostile options (NaN, negative, fractional,
//   infinite or huge windows, wrong types, unknown keys, revoked Proxies, throwing getters, bad
//   clocks) throw an EdgebusError with a code and change nothing; no wasm RuntimeError escapes.
//
// Batcher (README "API" and "Batching" in the design notes: `add`, `flush`, `drain`, `close`,
// `stats`; flush on maxSize, maxBytes or maxWaitMs, whichever first; batches one at a time, in
// order; a failed batch retried with backoff, then reported; nothing lost on close):
// - the model predicts every handler call: which items, in which order, at which virtual time,
//   including retries (`initialMs · 2^(attempt−1)`, capped at `maxMs`) and time flushes
//   (a batch is handed over when the clock reaches `maxWaitMs` after its first item);
// - every item accepted before close() is in exactly one batch; no batch is over maxSize items or
//   maxBytes bytes; a batch that fails maxAttempts times is reported once to onError with its
//   items and the last error, and counted in stats().failed;
// - stats() agrees (delivered, failed, queued, inFlight); drain() and close() resolve once every
//   item added before them is handled, and close() always settles; add() after close() throws
//   CLOSED;
// - handlers that throw, reject (with Errors or other values), return thenables, add or flush
//   from inside; hostile options, sizes and items throw an EdgebusError with a code and change
//   nothing.
//
// Runs are bounded and seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override the defaults
// (EDGEBUS_PROP_RUNS is the Batcher's run count; the filter's runs are shorter and twice as many);
// a failure prints the seed and the shrunk counterexample.
import { test } from 'node:test';
import fc from 'fast-check';
import { IdempotenceFilter, Batcher, ManualClock, EdgebusError } from 'edgebus';
import { settle } from './support/helpers.mjs';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261219);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 2000);

class Failure extends Error {}

// The Batcher property mutes the console (see there); failures are printed with this.
const consoleError = console.error;
/** Calls to console.error while muted. */
let consoleCalls = 0;

function check(cond, what) {
  if (!cond) throw new Failure(what);
}

function show(v) {
  if (typeof v === 'string') return JSON.stringify(v.length > 24 ? `${v.slice(0, 24)}…(${v.length})` : v);
  if (typeof v === 'symbol' || typeof v === 'bigint' || typeof v === 'function') return `a ${typeof v}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return 'an unprintable value';
  }
}

/** Runs `fn`, which must throw an EdgebusError with a code (`code` when given). */
function refused(fn, where, code) {
  let r;
  try {
    r = fn();
  } catch (e) {
    check(e instanceof EdgebusError && typeof e.code === 'string' && e.code.length > 0,
      `${where}: threw ${e?.constructor?.name}: ${e?.message} (no EdgebusError code)`);
    if (code !== undefined) check(e.code === code, `${where}: threw ${e.code} (${e.message}), expected ${code}`);
    return e;
  }
  throw new Failure(`${where}: accepted (returned ${show(r)}), expected an error${code ? ` ${code}` : ''}`);
}

function pick(list, v) { return list[v % list.length]; }

function revokedProxy() {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
}

function throwingGetter(key) {
  return Object.defineProperty({}, key, { enumerable: true, get() { throw new Error(`reading ${key} throws`); } });
}

/** Values no number option takes (each refused by every option below). */
const BAD_NUMBERS = [NaN, -Infinity, -1, -0.5, '5', '', true, null, {}, [], [1], Symbol('n'), 10n, () => 1,
  new Number(3), new Date(0)];
const NOT_OBJECTS = [42, 'x', true, Symbol('o'), () => ({}), 5n, null, [], [{ maxIds: 1 }]];
const BAD_CLOCKS = [null, 42, 'now', {}, { now: 5 }, [], { now() { return 0; }, setTimeout() {} },
  { now() { return 0; }, clearTimeout() {} }, revokedProxy()];

// ----- IdempotenceFilter ---------------------------------------------------------------------------

const utf8 = (s) => Buffer.byteLength(s, 'utf8');

/** An id of exactly `bytes` UTF-8 bytes, from `unit` (1, 2, 3 or 4 bytes each) padded with ASCII. */
function ofBytes(bytes, unit, tag) {
  const w = utf8(unit);
  let s = '';
  while (utf8(s) + w <= bytes - 1) s += unit;
  s += tag;
  while (utf8(s) < bytes) s += 'z';
  return s;
}

/** Ids of every shape the core tells apart. */
const shapedId = fc.oneof(
  fc.constantFrom('', 'a', 'b', '\0', 'a\0', '\0a', 'A', 'é', 'e\u0301', '\u{1F600}', 'id-1', 'id-10', ' ', '\n'),
  // Short ASCII.
  fc.string({ unit: 'binary-ascii', maxLength: 12 }),
  // Exactly 14 to 17 UTF-8 bytes, ASCII or not: around the inline/spilled boundary (15/16 bytes).
  fc.tuple(fc.integer({ min: 14, max: 17 }), fc.constantFrom('a', 'é', '€', '\u{1F600}'), fc.constantFrom('0', '1', '2'))
    .map(([n, unit, tag]) => ofBytes(n, unit, tag)),
  // Around the 256-byte buffer of the short ASCII path.
  fc.tuple(fc.integer({ min: 254, max: 258 }), fc.constantFrom('a', 'é'), fc.constantFrom('0', '1'))
    .map(([n, unit, tag]) => ofBytes(n, unit, tag)),
  // Long: hundreds of bytes (spilled into the arena, compacted as old ones leave).
  fc.tuple(fc.integer({ min: 100, max: 1500 }), fc.constantFrom('x', 'ü', '\u{1F600}'), fc.nat(3))
    .map(([n, unit, tag]) => `${tag}`.padEnd(2, '-') + unit.repeat(Math.ceil(n / utf8(unit)))),
  // Any well-formed text.
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

/** A pool of ids a run draws from: shaped ids and their near-identical neighbours. */
const poolArb = fc.array(shapedId, { minLength: 1, maxLength: 10 }).map((ids) => {
  const pool = new Set(ids);
  for (const id of ids) {
    pool.add(`${id}x`);
    if (id.length > 0) pool.add(id.slice(0, -1) + String.fromCharCode(id.charCodeAt(id.length - 1) ^ 1));
  }
  return [...pool].filter((s) => s.isWellFormed());
});

/** Steps of the clock: small, at the window's edges, fractional, and huge. */
const stepArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 2, arbitrary: fc.constantFrom('age-1', 'age', 'age+1') },
  { weight: 1, arbitrary: fc.constantFrom(0.5, 1.25, 1000) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31, 2 ** 32 + 1, 1e12) },
);

const filterConfigArb = fc.record({
  maxIds: fc.constantFrom(undefined, 1, 1, 2, 3, 5, 8, 50, 2 ** 32 - 1),
  maxAgeMs: fc.constantFrom(undefined, undefined, Infinity, 0.5, 1, 2, 5, 10, 1000, 1e300),
  start: fc.constantFrom(0, 1000, 1.5, 1e12),
  // A ManualClock, or a clock of the caller's own whose readings may also go back.
  clock: fc.constantFrom('manual', 'manual', 'own'),
});

const filterOpArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({ t: fc.constant('check'), f: fc.nat(3), i: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('has'), f: fc.nat(3), i: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('size'), f: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('clear'), f: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('advance'), step: stepArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('back'), step: stepArb }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hostile'), f: fc.nat(3), h: fc.nat(), v: fc.nat() }) },
);

/** The reference: the ids recorded, oldest first, each with the clock reading it was recorded at. */
class FilterModel {
  constructor(maxIds, maxAgeMs) {
    this.maxIds = maxIds;
    this.maxAgeMs = maxAgeMs;
    this.ids = [];
    this.latest = -Infinity;
  }

  _at(now) {
    this.latest = Math.max(this.latest, now);
    while (this.ids.length > 0 && this.latest - this.ids[0].at >= this.maxAgeMs) this.ids.shift();
  }

  check(id, now) {
    this._at(now);
    if (this.ids.some((e) => e.id === id)) return false;
    this.ids.push({ id, at: this.latest });
    if (this.ids.length > this.maxIds) this.ids.shift();
    return true;
  }

  has(id, now) {
    this._at(now);
    return this.ids.some((e) => e.id === id);
  }

  size(now) {
    this._at(now);
    return this.ids.length;
  }

  clear() { this.ids = []; }
}

/** Ids no filter takes (INVALID_ARGUMENT), both on the short ASCII path and the string path. */
const BAD_IDS = [undefined, null, 42, 0, NaN, -1, 1.5, Infinity, true, {}, [], ['a'], Symbol('id'), 10n, () => 'a',
  new String('a'), { toString: () => 'a' }, revokedProxy(), '\uD800', '\uDC00', 'a\uD800', '\uDC00a', '\uDBFF\uDBFF',
  `${'a'.repeat(300)}\uD800`, `${'é'.repeat(10)}\uDFFF`, `\uD83D${'b'.repeat(14)}`];

/** Option objects no filter takes (INVALID_OPTION), from `v`. */
function badFilterOptions(v) {
  const pickOf = (list) => pick(list, v >> 3);
  switch (v % 8) {
    case 0: return { maxIds: pickOf([...BAD_NUMBERS, 0, 0.5, 1.5, Infinity, 2 ** 32, 2 ** 53, 1e300]) };
    case 1: return { maxAgeMs: pickOf([...BAD_NUMBERS, 0, -0]) };
    case 2: return { clock: pickOf(BAD_CLOCKS) };
    case 3: return pickOf(NOT_OBJECTS);
    case 4: return revokedProxy();
    case 5: return throwingGetter(pickOf(['maxIds', 'maxAgeMs', 'clock']));
    case 6: return { maxIds: 3, [pickOf(['bogus', 'maxids', 'max_ids', 'size', 'window'])]: 1 };
    default: return new Proxy({ maxIds: 2 }, { ownKeys() { throw new Error('ownKeys throws'); } });
  }
}

async function runFilter({ config, pool, ops }) {
  let reading = config.start;
  const clock = config.clock === 'manual' ? new ManualClock(config.start)
    : { now: () => reading, advance: (ms) => { reading += ms; } };
  const options = { clock };
  if (config.maxIds !== undefined) options.maxIds = config.maxIds;
  if (config.maxAgeMs !== undefined) options.maxAgeMs = config.maxAgeMs;
  // Filter 0 is under test; filter 1 shares the instance (its own window of 3, no age limit) and
  // must never see filter 0's ids.
  const filters = [new IdempotenceFilter(options), new IdempotenceFilter({ maxIds: 3, clock })];
  const models = [new FilterModel(config.maxIds ?? 10000, config.maxAgeMs ?? Infinity), new FilterModel(3, Infinity)];
  check(filters[0].maxIds === (config.maxIds ?? 10000) && filters[0].maxAgeMs === (config.maxAgeMs ?? Infinity),
    `window ${filters[0].maxIds} / ${filters[0].maxAgeMs}`);
  // Steps at the window's edges (a window of 1e300 ms is beyond what a clock's doubles tell apart:
  // steps around it stand for 10 ms).
  const age = config.maxAgeMs !== undefined && config.maxAgeMs < 1e6 ? config.maxAgeMs : 10;
  const log = [];
  for (const [step, op] of ops.entries()) {
    const at = clock.now();
    const fi = op.f === undefined ? 0 : (op.f === 3 ? 1 : 0);
    const f = filters[fi];
    const m = models[fi];
    const where = `step ${step} (${op.t} on filter ${fi} at ${at})`;
    log.push(op.t);
    switch (op.t) {
      case 'check': {
        const id = pick(pool, op.i);
        const want = m.check(id, at);
        const got = f.check(id);
        check(got === want, `${where}: check(${show(id)}) → ${got}, model ${want} (window ${show(m.ids.map((e) => e.id))})`);
        break;
      }
      case 'has': {
        const id = pick(pool, op.i);
        const want = m.has(id, at);
        const got = f.has(id);
        check(got === want, `${where}: has(${show(id)}) → ${got}, model ${want} (window ${show(m.ids.map((e) => e.id))})`);
        break;
      }
      case 'size': {
        const want = m.size(at);
        check(f.size === want, `${where}: size ${f.size}, model ${want}`);
        break;
      }
      case 'clear':
        m.clear();
        f.clear();
        // (size reads the clock, as the model's does.)
        check(f.size === 0 && m.size(at) === 0, `${where}: size ${f.size} after clear()`);
        break;
      case 'advance': {
        const ms = op.step === 'age-1' ? age - 1 : op.step === 'age' ? age : op.step === 'age+1' ? age + 1 : op.step;
        clock.advance(Math.max(0, ms));
        break;
      }
      case 'back': {
        // Only the caller's own clock goes back (to 0 at the least); a ManualClock stays.
        if (config.clock === 'own') reading = Math.max(0, reading - (typeof op.step === 'number' ? op.step : age));
        break;
      }
      case 'hostile': {
        const bad = pick(BAD_IDS, op.v);
        switch (op.h % 4) {
          case 0: refused(() => f.check(bad), `${where}: check(${show(bad)})`, 'INVALID_ARGUMENT'); break;
          case 1: refused(() => f.has(bad), `${where}: has(${show(bad)})`, 'INVALID_ARGUMENT'); break;
          case 2: {
            const o = badFilterOptions(op.v);
            refused(() => new IdempotenceFilter(o), `${where}: new IdempotenceFilter(${show(o)})`, 'INVALID_OPTION');
            break;
          }
          default: {
            // A bad id right after a good one of the same length: the buffer's stale bytes are
            // not taken for the bad id.
            const id = pick(pool, op.v);
            const want = m.has(id, at);
            check(f.has(id) === want, `${where}: has(${show(id)}) before a bad id`);
            refused(() => f.check(bad), `${where}: check(${show(bad)}) after has(${show(id)})`, 'INVALID_ARGUMENT');
          }
        }
        break;
      }
      default:
        throw new Error(`unknown op ${op.t}`);
    }
  }
  // Every id of the pool is where the model says, in both filters.
  const now = clock.now();
  for (const [fi, f] of filters.entries()) {
    for (const id of pool) {
      const want = models[fi].has(id, now);
      check(f.has(id) === want, `at the end, filter ${fi}: has(${show(id)}) → ${!want}, model ${want} (ops ${log.join(' ')})`);
    }
    check(f.size === models[fi].size(now), `at the end, filter ${fi}: size ${f.size}, model ${models[fi].size(now)}`);
  }
}

const filterRunArb = fc.record({
  config: filterConfigArb,
  pool: poolArb,
  ops: fc.array(filterOpArb, { minLength: 1, maxLength: 80, size: 'max' }),
});

async function assertProperty(name, arb, run, runs) {
  try {
    await fc.assert(fc.asyncProperty(arb, run), { seed: SEED, numRuns: runs, includeErrorInReport: true });
  } catch (e) {
    consoleError(`${name} failed with EDGEBUS_PROP_SEED=${SEED} EDGEBUS_PROP_RUNS=${RUNS}`);
    throw e;
  }
}

test('IdempotenceFilter: random checks, lookups, clears and clock steps agree with a model of the window', { timeout: 300_000 }, async () => {
  await assertProperty('IdempotenceFilter property', filterRunArb, runFilter, 2 * RUNS);
});

// ----- Batcher -------------------------------------------------------------------------------------

/** What the handler does on one call (the calls take the run's outcomes in turn). */
const OUTCOMES = ['ok', 'value', 'throw', 'throwValue', 'resolve', 'reject', 'rejectValue', 'gate', 'thenable',
  'thenableThrows', 'add', 'flush'];
/** Calls from this one on do not add from inside (a handler adding on every call never ends). */
const INSIDE_ADDS = 40;
/** Values handlers throw or reject with, other than Errors. */
const THROWN = [undefined, null, 0, 'a string', { reason: 'an object' }];

/** Characters of string items: ASCII, 2-, 3- and 4-byte UTF-8, lone surrogates. */
const CHARS = ['a', 'é', '€', '\u{1F600}', '\uD800', '\uDC00', '\0'];
const textArb = fc.array(fc.constantFrom(...CHARS), { maxLength: 6 }).map((cs) => cs.join(''));

const batcherConfigArb = fc.record({
  maxSize: fc.constantFrom(undefined, 1, 2, 3, 5, 2 ** 32 - 1),
  maxBytes: fc.constantFrom(undefined, 1, 2, 4, 10, 25, Number.MAX_SAFE_INTEGER),
  maxWaitMs: fc.constantFrom(undefined, 0, 0.5, 1, 3, 10, 2 ** 31 + 5, 1e300),
  maxAttempts: fc.constantFrom(undefined, 1, 2, 3),
  backoff: fc.constantFrom(undefined, { initialMs: 0, maxMs: 0 }, { initialMs: 1, maxMs: 4 }, { initialMs: 5 },
    { initialMs: 2, maxMs: 2 ** 31 + 1 }, { maxMs: 60 }),
  // The backoff object answers every later read of its keys with NaN: only the first read counts.
  shiftyBackoff: fc.boolean(),
  sizes: fc.constantFrom('custom', 'default'),
  onError: fc.constantFrom('record', 'record', 'throws', 'none'),
  start: fc.constantFrom(0, 1000, 1e12),
  outcomes: fc.array(fc.constantFrom(...OUTCOMES), { minLength: 1, maxLength: 6 }),
  // close() is also called this many steps before the end (besides once after the last), if at all.
  closeBeforeEnd: fc.option(fc.nat(8), { freq: 2 }),
  // String items (default sizeOf) are a few bytes each: their limits are ten times larger.
}).map((c) => (c.sizes === 'default' && c.maxBytes < 10 ? { ...c, maxBytes: c.maxBytes * 10 } : c));

const batcherOpArb = fc.oneof(
  { weight: 10, arbitrary: fc.record({ t: fc.constant('add'), size: fc.oneof({ weight: 5, arbitrary: fc.integer({ min: 0, max: 12 }) },
    fc.constantFrom(0.5, 1.25, 2.5)), text: textArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('flush') }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('advance'), step: fc.oneof(fc.integer({ min: 0, max: 12 }),
    fc.constantFrom('wait', 'wait-', 0.5, 60, 2 ** 31 + 5)) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('settle'), ok: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('drain') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('stats') }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('hostile'), h: fc.nat(), v: fc.nat() }) },
);

const batcherRunArb = fc.record({
  config: batcherConfigArb,
  ops: fc.array(batcherOpArb, { minLength: 1, maxLength: 60, size: 'max' }),
});

const DEFAULTS = { maxSize: 100, maxBytes: 1 << 20, maxWaitMs: 10, maxAttempts: 3, initialMs: 50, maxMs: 5000 };

/**
 * The reference: the open batch, the sealed ones, the batch in the handler (or waiting for its
 * retry), and every handler call and report that must have happened, with its virtual time.
 */
class BatcherModel {
  constructor(policy, start, outcomes) {
    this.p = policy;
    this.now = start;
    this.outcomes = outcomes;
    this.open = [];
    this.openBytes = 0;
    this.openAt = 0;
    this.sealed = [];
    this.cur = null;       // { batch, attempt, idx, state: 'running' | 'later' | 'gate' | 'ok' | 'fail' | 'retry', due }
    this.calls = [];       // { items, at, batch, attempt, kind }
    this.reports = [];     // { idx (the last call), items }
    this.accepted = [];    // items, in order of acceptance
    this.batches = [];     // every batch sealed, in order
    this.delivered = 0;
    this.failed = 0;
    this.closed = false;
    this.inside = undefined; // set by the run: the handler's own add() (an 'add' outcome)
  }

  backoff(attempt) { return Math.min(this.p.initialMs * 2 ** (attempt - 1), this.p.maxMs); }

  /** An item of `size` bytes: `undefined` when accepted, else the code add() throws. */
  add(item, measured) {
    if (this.closed) return 'CLOSED';
    // Sizes are whole bytes: a fraction counts as the next one.
    const size = Math.ceil(measured);
    if (size > this.p.maxBytes) return 'MESSAGE_TOO_LARGE';
    if (this.open.length > 0 && this.openBytes + size > this.p.maxBytes) this.seal();
    if (this.open.length === 0) this.openAt = this.now;
    this.open.push(item);
    this.openBytes += size;
    this.accepted.push(item);
    if (this.open.length >= this.p.maxSize || this.openBytes >= this.p.maxBytes) this.seal();
    return undefined;
  }

  seal() {
    if (this.open.length === 0) return;
    const batch = { items: this.open, bytes: this.openBytes, done: false };
    this.sealed.push(batch);
    this.batches.push(batch);
    this.open = [];
    this.openBytes = 0;
  }

  call(batch, attempt) {
    const idx = this.calls.length;
    const kind = this.outcomes[idx % this.outcomes.length];
    this.calls.push({ items: batch.items.slice(), at: this.now, batch, attempt, kind });
    this.cur = { batch, attempt, idx, state: 'running' };
    switch (kind) {
      case 'ok': case 'value': case 'thenable': case 'flush':
        if (kind === 'flush') this.seal();
        this.cur.state = 'ok';
        break;
      case 'throw': case 'throwValue': case 'thenableThrows':
        this.cur.state = 'fail';
        break;
      case 'add':
        // From inside the handler: refused once closed, and then the handler throws CLOSED.
        this.cur.state = idx >= INSIDE_ADDS || this.inside(this) === undefined ? 'ok' : 'fail';
        break;
      case 'gate':
        this.cur.state = 'gate';
        break;
      default:
        this.cur.state = 'later';
        this.cur.later = kind === 'resolve';
    }
  }

  /** What the bus does on a pump at `now`: seal what is due, settle, retry, start the next. */
  pump() {
    for (;;) {
      const cur = this.cur;
      if (cur !== null && (cur.state === 'ok' || cur.state === 'fail')) {
        if (cur.state === 'ok') {
          cur.batch.done = true;
          this.cur = null;
        } else if (cur.attempt < this.p.maxAttempts) {
          this.cur = { ...cur, state: 'retry', due: this.now + this.backoff(cur.attempt) };
        } else {
          this.failed += cur.batch.items.length;
          this.reports.push({ idx: cur.idx, items: cur.batch.items });
          cur.batch.done = true;
          this.cur = null;
        }
        continue;
      }
      if (this.open.length > 0 && this.now >= this.openAt + this.p.maxWaitMs) {
        this.seal();
        continue;
      }
      if (cur !== null && cur.state === 'retry' && this.now >= cur.due) {
        this.call(cur.batch, cur.attempt + 1);
        continue;
      }
      if (cur === null && this.sealed.length > 0) {
        const batch = this.sealed.shift();
        this.delivered += batch.items.length;
        this.call(batch, 1);
        continue;
      }
      return;
    }
  }

  /** The next time something is due (a batch's wait, a retry), or Infinity. */
  nextDue() {
    let t = Infinity;
    if (this.open.length > 0) t = this.openAt + this.p.maxWaitMs;
    if (this.cur !== null && this.cur.state === 'retry') t = Math.min(t, this.cur.due);
    return t;
  }

  advance(ms) {
    const end = this.now + ms;
    for (let t = this.nextDue(); t <= end; t = this.nextDue()) {
      this.now = Math.max(this.now, t);
      this.pump();
    }
    this.now = end;
  }

  /** Promise callbacks run: a handler's promise settles, then the bus pumps. */
  microtasks() {
    while (this.cur !== null && this.cur.state === 'later') {
      this.cur.state = this.cur.later ? 'ok' : 'fail';
      this.pump();
    }
  }

  settleGate(ok) {
    if (this.cur === null || this.cur.state !== 'gate') return false;
    this.cur.state = ok ? 'ok' : 'fail';
    this.pump();
    return true;
  }

  flush() {
    this.seal();
    this.pump();
  }

  get idle() { return this.open.length === 0 && this.sealed.length === 0 && this.cur === null; }
  get queued() { return this.open.length + this.sealed.reduce((n, b) => n + b.items.length, 0); }
}

/** An object whose every read of a key after the first answers NaN; `reads` counts them. */
function readOnce(values) {
  const o = { reads: 0 };
  const target = {};
  for (const [k, v] of Object.entries(values)) {
    let first = true;
    Object.defineProperty(target, k, {
      enumerable: true,
      get() {
        o.reads++;
        if (!first) return NaN;
        first = false;
        return v;
      },
    });
  }
  o.value = target;
  return o;
}

/** Batcher options no Batcher takes (INVALID_OPTION), from `v`. */
function badBatcherOptions(v) {
  const pickOf = (list) => pick(list, v >> 4);
  switch (v % 16) {
    case 0: return { maxSize: pickOf([...BAD_NUMBERS, 0, 0.5, 1.5, Infinity, 2 ** 32, 1e300]) };
    case 1: return { maxBytes: pickOf([...BAD_NUMBERS, 0, 0.5, Infinity, 2 ** 53, 1e300]) };
    case 2: return { maxWaitMs: pickOf([...BAD_NUMBERS, Infinity]) };
    case 3: return { maxAttempts: pickOf([...BAD_NUMBERS, 0, 1.5, 1001, Infinity]) };
    case 4: return { backoff: pickOf([...NOT_OBJECTS, revokedProxy(), throwingGetter('initialMs'), { bogus: 1 },
      { initialMs: 10, maxMs: 1 }, { initialMs: -1 }, { maxMs: NaN }, { initialMs: Infinity }, { maxMs: '5' }]) };
    case 5: return { sizeOf: pickOf([null, 42, 'x', {}, [], Symbol('f'), 1n]) };
    case 6: return { onError: pickOf([null, 42, 'x', {}, [], Symbol('f')]) };
    case 7: return { clock: pickOf(BAD_CLOCKS) };
    case 8: return pickOf(NOT_OBJECTS);
    case 9: return revokedProxy();
    case 10: return throwingGetter(pickOf(['maxSize', 'maxBytes', 'maxWaitMs', 'maxAttempts', 'backoff', 'sizeOf', 'clock', 'onError']));
    case 11: return { maxSize: 2, [pickOf(['bogus', 'maxQueue', 'overflow', 'concurrency', 'timeoutMs', 'group', 'batch', 'maxsize', 'dedupe'])]: 1 };
    case 12: return new Proxy({ maxSize: 2 }, { ownKeys() { throw new Error('ownKeys throws'); } });
    case 13: return { backoff: { initialMs: 5, [pickOf(['bogus', 'jitter', 'max'])]: 1 } };
    case 14: return { maxSize: 3, maxBytes: pickOf([-0, -1, NaN]) };
    default: return { maxWaitMs: 5, maxAttempts: pickOf([-1, NaN, 1e300, 2 ** 32]) };
  }
}

const BAD_HANDLERS = [null, undefined, 42, 'f', {}, [], Promise.resolve(), Symbol('h'), 1n];
/** Sizes no item may have (custom sizeOf): each refused with a code. */
const BAD_SIZES = [NaN, -1, -0.5, -Infinity, '5', '', null, undefined, {}, [], Symbol('s'), 10n, true, () => 1,
  new Number(1)];
/** Payloads of every kind: a Batcher holds any value (the default sizeOf never throws on one). */
function oddPayload(v) {
  const circular = {};
  circular.self = circular;
  return pick([undefined, null, 0, NaN, Symbol('p'), 10n, () => 1, revokedProxy(), circular, { big: 1n },
    Object.defineProperty({}, 'byteLength', { get() { throw new Error('byteLength throws'); } }),
    { toJSON() { throw new Error('toJSON throws'); } }, new Proxy({}, { get() { throw new Error('get throws'); } }),
    new Uint8Array(3), new ArrayBuffer(2), [1, [2]], new Map([[1, 2]])], v);
}

async function runBatcher({ config: c, ops }) {
  consoleCalls = 0;
  const clock = new ManualClock(c.start);
  const policy = {
    maxSize: c.maxSize ?? DEFAULTS.maxSize,
    maxBytes: c.maxBytes ?? DEFAULTS.maxBytes,
    maxWaitMs: c.maxWaitMs ?? DEFAULTS.maxWaitMs,
    maxAttempts: c.maxAttempts ?? DEFAULTS.maxAttempts,
    initialMs: c.backoff?.initialMs ?? DEFAULTS.initialMs,
    maxMs: c.backoff?.maxMs ?? DEFAULTS.maxMs,
  };
  // The core refuses a backoff whose maxMs is below its initialMs (also a default one).
  const refusedBackoff = policy.maxMs < policy.initialMs;
  const model = new BatcherModel(policy, c.start, c.outcomes);
  // Odd payloads only where their size cannot matter (the default sizeOf and 1 MiB).
  const oddOk = c.sizes === 'default' && policy.maxBytes >= DEFAULTS.maxBytes;
  let n = 0;
  const newItem = (size, text) => (c.sizes === 'custom' ? { n: n++, size } : `${n++}:${text}`);
  const sizeOfItem = (item) => (typeof item === 'string' ? utf8(item) : c.sizes === 'custom' ? item.size : 0);
  // The item the handler adds from inside call `idx` (the model adds the same one).
  const inside = new Map();
  const insideItem = (idx) => {
    if (!inside.has(idx)) inside.set(idx, c.sizes === 'custom' ? { n: `inside ${idx}`, size: 1 } : `inside ${idx}`);
    return inside.get(idx);
  };
  model.inside = (m) => {
    const item = insideItem(m.calls.length - 1);
    return m.add(item, sizeOfItem(item));
  };

  const calls = [];
  const reports = [];
  const gates = [];
  let batcher;
  const handler = (items) => {
    const idx = calls.length;
    const kind = c.outcomes[idx % c.outcomes.length];
    const call = { items, at: clock.now(), thrown: undefined };
    calls.push(call);
    const thrown = (k) => {
      call.thrown = k.endsWith('Value') ? pick(THROWN, idx) : new Error(`call ${idx} fails`);
      return call.thrown;
    };
    switch (kind) {
      case 'ok': return undefined;
      case 'value': return 42;
      case 'throw': case 'throwValue': throw thrown(kind);
      case 'resolve': return Promise.resolve('done');
      case 'reject': case 'rejectValue': return Promise.reject(thrown(kind));
      case 'gate': return new Promise((resolve, reject) => gates.push({ resolve, reject, call }));
      case 'thenable': return { then(onOk) { onOk(); } };
      case 'thenableThrows': return { then() { throw thrown('thenableThrows'); } };
      case 'add': {
        if (idx >= INSIDE_ADDS) return undefined;
        const item = insideItem(idx);
        try {
          batcher.add(item);
        } catch (e) {
          call.thrown = e;
          throw e;
        }
        return undefined;
      }
      case 'flush': batcher.flush(); return undefined;
      default: throw new Error(`unknown outcome ${kind}`);
    }
  };
  const options = { clock };
  for (const k of ['maxSize', 'maxBytes', 'maxWaitMs', 'maxAttempts']) if (c[k] !== undefined) options[k] = c[k];
  let backoffReads;
  if (c.backoff !== undefined) {
    if (c.shiftyBackoff) {
      backoffReads = readOnce(c.backoff);
      options.backoff = backoffReads.value;
    } else {
      options.backoff = { ...c.backoff };
    }
  }
  if (c.sizes === 'custom') options.sizeOf = (item) => {
    if (item.size === 'throw') throw new Error('sizeOf throws');
    return item.size;
  };
  if (c.onError !== 'none') options.onError = (error, items) => {
    reports.push({ error, items });
    if (c.onError === 'throws') throw new Error('onError throws');
  };
  if (refusedBackoff) {
    refused(() => new Batcher(handler, options), `new Batcher(backoff ${show(c.backoff)})`, 'INVALID_OPTION');
    return;
  }
  batcher = new Batcher(handler, options);
  if (backoffReads !== undefined) check(backoffReads.reads <= Object.keys(c.backoff).length, `backoff read ${backoffReads.reads} times`);

  const drains = [];      // { before: accepted count at the call, resolved, what }
  const log = [];

  /** The calls so far agree with the model's: same items (the same objects), same time. */
  function compare(where) {
    check(calls.length === model.calls.length,
      `${where}: ${calls.length} handler calls, model ${model.calls.length} (last real ${show(calls.at(-1)?.items)}, model ${show(model.calls.at(-1)?.items)}; ops ${log.join(' ')})`);
    for (let i = 0; i < calls.length; i++) {
      const real = calls[i];
      const want = model.calls[i];
      if (want.checked) continue;
      check(Array.isArray(real.items) && real.items.length === want.items.length && real.items.every((x, j) => Object.is(x, want.items[j])),
        `${where}: call ${i} got ${show(real.items)}, model ${show(want.items)} (ops ${log.join(' ')})`);
      check(real.at === want.at, `${where}: call ${i} at ${real.at}, model ${want.at} (ops ${log.join(' ')})`);
      want.checked = true;
    }
    check(reports.length === (c.onError === 'none' ? 0 : model.reports.length),
      `${where}: ${reports.length} reports, model ${model.reports.length} (ops ${log.join(' ')})`);
    for (let i = 0; i < reports.length; i++) {
      const want = model.reports[i];
      const items = want.items;
      check(Object.is(reports[i].error, calls[want.idx].thrown), `${where}: report ${i} has ${show(reports[i].error)}, not what call ${want.idx} threw`);
      check(reports[i].items.length === items.length && reports[i].items.every((x, j) => Object.is(x, items[j])),
        `${where}: report ${i} has items ${show(reports[i].items)}, model ${show(items)}`);
    }
    for (const d of drains) {
      if (d.resolved) {
        const unfinished = model.batches.filter((b) => !b.done).flatMap((b) => b.items);
        const early = model.accepted.slice(0, d.before).filter((it) => !model.batches.some((b) => b.done && b.items.includes(it)));
        check(early.length === 0, `${where}: ${d.what} resolved with ${early.length} items added before it unfinished (${show(unfinished)})`);
      }
      if (model.idle && d.before <= model.accepted.length) {
        check(d.resolved, `${where}: ${d.what} not resolved although everything is handled (ops ${log.join(' ')})`);
      }
    }
  }
  function checkStats(where) {
    const st = batcher.stats();
    const inFlight = model.cur === null ? 0 : 1;
    check(st.delivered === model.delivered && st.failed === model.failed && st.queued === model.queued && st.inFlight === inFlight &&
      st.dropped === 0 && st.expired === 0 && st.cancelled === 0,
      `${where}: stats ${JSON.stringify({ ...st, latency: undefined })}, model delivered ${model.delivered} failed ${model.failed} queued ${model.queued} inFlight ${inFlight} (ops ${log.join(' ')})`);
  }

  const closeAt = c.closeBeforeEnd === null ? ops.length : Math.max(0, ops.length - c.closeBeforeEnd);
  const steps = [...ops.slice(0, closeAt), ...(c.closeBeforeEnd === null ? [] : [{ t: 'close' }]), ...ops.slice(closeAt)];
  for (const [step, op] of steps.entries()) {
    const where = `step ${step} (${op.t} at ${clock.now()})`;
    log.push(op.t === 'advance' ? `advance(${op.step})` : op.t === 'add' ? `add(${c.sizes === 'custom' ? op.size : JSON.stringify(op.text)})` : op.t);
    switch (op.t) {
      case 'add': {
        // Sizes fit the limit mostly: up to maxBytes + 1 (over it), fractions as they are.
        const size = Number.isInteger(op.size) && policy.maxBytes < 12 ? op.size % (policy.maxBytes + 2) : op.size;
        const item = newItem(size, op.text);
        const want = model.add(item, sizeOfItem(item));
        if (want === undefined) {
          try {
            batcher.add(item);
          } catch (e) {
            throw new Failure(`${where}: add refused with ${e?.code ?? e}: ${e?.message} (ops ${log.join(' ')})`);
          }
          model.pump();
        } else {
          refused(() => batcher.add(item), `${where}: add(${show(item)})`, want);
        }
        break;
      }
      case 'flush':
        batcher.flush();
        model.flush();
        break;
      case 'advance': {
        const ms = op.step === 'wait' ? Math.min(policy.maxWaitMs, 1e6) : op.step === 'wait-' ? Math.max(0, Math.min(policy.maxWaitMs, 1e6) - 0.5) : op.step;
        clock.advance(ms);
        model.advance(ms);
        break;
      }
      case 'settle': {
        const gate = gates.shift();
        const modelHad = model.settleGate(op.ok);
        check((gate !== undefined) === modelHad, `${where}: a gated call ${gate ? 'is' : 'is not'} waiting, model ${modelHad}`);
        if (gate !== undefined) {
          if (op.ok) gate.resolve();
          else {
            gate.call.thrown = new Error('gate fails');
            gate.reject(gate.call.thrown);
          }
        }
        break;
      }
      case 'drain': {
        const d = { before: model.accepted.length, resolved: false, what: `drain() of step ${step}` };
        drains.push(d);
        batcher.drain().then(() => { d.resolved = true; }, (e) => { throw new Failure(`drain() rejected: ${e?.message}`); });
        model.flush();
        break;
      }
      case 'stats':
        checkStats(where);
        break;
      case 'close': {
        const d = { before: model.accepted.length, resolved: false, what: `close() of step ${step}` };
        drains.push(d);
        batcher.close().then(() => { d.resolved = true; }, (e) => { d.error = e; });
        model.closed = true;
        model.flush();
        break;
      }
      case 'hostile':
        hostileBatcher(op, where);
        break;
      default:
        throw new Error(`unknown op ${op.t}`);
    }
    model.microtasks();
    await settle(2);
    compare(where);
  }

  // Close (again, or for the first time) and let time pass until everything is handled.
  const last = { before: model.accepted.length, resolved: false, what: 'the last close()' };
  drains.push(last);
  batcher.close().then((value) => { last.resolved = true; last.value = value; }, (e) => { last.error = e; });
  model.closed = true;
  model.flush();
  model.microtasks();
  await settle(2);
  for (let round = 0; round < 200 && !(last.resolved && model.idle); round++) {
    log.push('(end)');
    const gate = gates.shift();
    if (gate !== undefined) {
      model.settleGate(true);
      gate.resolve();
    } else {
      const ms = Math.min(Math.max(model.nextDue() - clock.now(), 0), 2 ** 31 + 5);
      clock.advance(ms);
      model.advance(ms);
    }
    model.microtasks();
    await settle(2);
    compare('closing');
  }
  check(last.error === undefined && drains.every((d) => d.error === undefined), `close() rejected: ${last.error?.message}`);
  check(last.resolved && model.idle, `close() never resolved (model idle: ${model.idle}; ops ${log.join(' ')})`);
  check(last.value === undefined, `close() resolved to ${show(last.value)} (its type says void)`);
  compare('after close');
  checkStats('after close');

  // Every accepted item is in exactly one batch, in order (the first tries of the batches, end to
  // end, are the accepted items: by position, as odd payloads such as undefined may repeat); a
  // retry hands over the same items; no batch is over its limits.
  const firstCalls = calls.filter((_, i) => model.calls[i].attempt === 1);
  const flat = firstCalls.flatMap((call) => call.items);
  check(flat.length === model.accepted.length && flat.every((it, i) => Object.is(it, model.accepted[i])),
    `${flat.length} items delivered in first tries, ${model.accepted.length} accepted, or not in order`);
  for (const [i, call] of calls.entries()) {
    const first = calls[model.calls.findIndex((m) => m.batch === model.calls[i].batch)];
    check(call.items.length === first.items.length && call.items.every((it, j) => Object.is(it, first.items[j])),
      `call ${i} (a retry) hands over other items than the batch's first try`);
    check(call.items.length >= 1 && call.items.length <= policy.maxSize, `a batch of ${call.items.length} items (maxSize ${policy.maxSize})`);
    const bytes = call.items.reduce((sum, it) => sum + sizeOfItem(it), 0);
    check(bytes <= policy.maxBytes, `a batch of ${bytes} bytes (maxBytes ${policy.maxBytes})`);
  }
  refused(() => batcher.add(newItem(1, 'late')), 'add after close', 'CLOSED');
  // Without onError, each failed batch is written to the console once; so is each onError that threw.
  const written = c.onError === 'record' ? 0 : model.reports.length;
  check(consoleCalls === written, `console.error called ${consoleCalls} times, ${written} batches failed for good without an onError that returned`);

  function hostileBatcher(op, where) {
    const v = op.v;
    switch (op.h % 7) {
      case 0: {
        const h = pick(BAD_HANDLERS, v);
        refused(() => new Batcher(h, { clock }), `${where}: new Batcher(${show(h)})`, 'INVALID_HANDLER');
        break;
      }
      case 1: case 2: {
        const o = badBatcherOptions(v);
        refused(() => new Batcher(() => {}, o), `${where}: new Batcher(options ${show(o)})`, 'INVALID_OPTION');
        break;
      }
      case 3: {
        if (c.sizes !== 'custom') break;
        const size = pick(BAD_SIZES, v);
        const item = { n: -1, size };
        refused(() => batcher.add(item), `${where}: add(an item sizeOf measures as ${show(size)})`, model.closed ? 'CLOSED' : undefined);
        break;
      }
      case 4: {
        if (c.sizes !== 'custom' || model.closed) break;
        // Too large for any batch: Infinity, or just over maxBytes.
        const item = { n: -1, size: v % 2 ? Infinity : policy.maxBytes + 1 };
        refused(() => batcher.add(item), `${where}: add(an item of ${item.size} bytes)`, 'MESSAGE_TOO_LARGE');
        break;
      }
      case 5: {
        if (c.sizes !== 'custom') break;
        // sizeOf throws: add throws (the caller's own error, or a coded one) and accepts nothing.
        let threw = false;
        try {
          batcher.add({ n: -1, size: 'throw' });
        } catch (e) {
          threw = true;
          check(e instanceof EdgebusError || e?.message === 'sizeOf throws', `${where}: sizeOf threw, add threw ${e?.message}`);
        }
        check(threw, `${where}: add accepted an item its sizeOf threw on`);
        break;
      }
      default: {
        if (!oddOk) break;
        const item = oddPayload(v);
        const want = model.add(item, 0);
        if (want === undefined) {
          try {
            batcher.add(item);
          } catch (e) {
            throw new Failure(`${where}: add(${show(item)}) threw ${e?.constructor?.name} ${e?.code}: ${e?.message}`);
          }
          model.pump();
        } else {
          refused(() => batcher.add(item), `${where}: add(${show(item)})`, want);
        }
      }
    }
  }
}

test('Batcher: random adds, flushes, clock steps, failing handlers and closes agree with a model of its batches', { timeout: 300_000 }, async () => {
  // Failures without onError (or whose onError throws) are written to the console: counted, not shown.
  console.error = () => { consoleCalls++; };
  try {
    await assertProperty('Batcher property', batcherRunArb, runBatcher, RUNS);
  } finally {
    console.error = consoleError;
  }
});
