// Property test of the remote client's persistent outbox (`connect(url, { persist })`, README
// "Persistent outbox"), driven through the client against a scripted WebSocket (a fake hub) and a
// store shared by successive sessions (a page reloaded), on mocked timers and a mocked clock.
// Random runs of sessions: publishes (publish and publishAsync, own ids, generated ids, an id used
// again) while the hub is offline and online, hub answers (ok, duplicate, refused, RATE_LIMITED),
// connections lost, flush(), every overflow policy with a small maxBuffer, a store whose calls
// answer at once, later, never, throw or reject (hostile values among them), loads that give back
// entries the outbox cannot send; each session ends with close() (with or without `timeoutMs`,
// with or without `discard`) or is abandoned (a page that goes away: it makes no call any more).
// Checked against a small model of the store and the hub:
// - nothing is lost silently: every publish is acknowledged, refused by the hub, refused or
//   dropped with QUEUE_FULL (thrown, rejected or reported, and counted in `dropped`), listed by a
//   close(), still in the store, reported PERSIST_FAILED for its write, or was never written
//   because its page went away before its write was made (or, stored by an earlier session and
//   not loaded by a later one whose load failed, was deleted with that session's publish of the
//   same id: the store deletes by id);
// - a close() without `discard` leaves every publish it lists that was written in the store; with
//   `discard` none of them (but where a delete failed); an acknowledged publish does not stay in
//   the store (but where a delete failed or another publish shares its id);
// - order: a session sends what it restored, in the store's order, then its own publishes in the
//   order they were made (each first sent once, later ones never overtake earlier ones); a
//   restored publish goes with its id, key and headers; a publish is written at most once, and
//   sent only once its write has settled;
// - no store call after close() resolved, nor after the store's close(), which comes at most once
//   and, when close() had the time, after the calls made before it settled;
// - every promise settles (publishAsync, flush, close), with a typed error when it rejects;
//   `stats()` counts what was restored, dropped and failed; with a healthy store and a hub that
//   answers, close() sends everything (nothing remains).
// Runs are seeded (fast-check prints the seed and the shrunk run on failure): EDGEBUS_PROP_SEED
// and EDGEBUS_PROP_RUNS override the defaults (1500 runs, about 4 s).
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { connect, EdgebusError } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261208);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 1500);

// ----- what a run is made of ---------------------------------------------------------------------

// Values a failing store throws or rejects with.
const HOSTILE = [
  () => new Error('disk full'), () => null, () => undefined, () => 'a string', () => 42,
  () => ({ toString() { throw new Error('unprintable'); } }), () => Object.create(null),
];

// How one store call answers. `write`: whether its effect is made (a put stored, a delete done).
const okAnswer = fc.record({ kind: fc.constant('ok'), delay: fc.constantFrom(-1, -1, 0, 1, 3) }); // -1: at once
const answerArb = fc.oneof(
  { weight: 8, arbitrary: okAnswer },
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom('throw', 'reject', 'writeReject'), delay: fc.nat(3), value: fc.nat(HOSTILE.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hang') }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('odd'), value: fc.constantFrom(null, 0, 'ok', false) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('trap') }) },
);

const opArb = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant('publish'), async: fc.boolean(), id: fc.constantFrom('auto', 'own', 'own', 'again'), key: fc.boolean(), headers: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('online') }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('offline') }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('answer'), n: fc.integer({ min: 1, max: 4 }), reply: fc.constantFrom('ok', 'ok', 'ok', 'dup', 'refuse', 'retry') }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('wait'), ms: fc.constantFrom(0, 1, 2, 5, 20) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('flush') }) },
);

const sessionArb = fc.record({
  maxBuffer: fc.integer({ min: 1, max: 6 }),
  overflow: fc.constantFrom('dropOldest', 'dropNewest', 'reject', 'wait'),
  storeClose: fc.boolean(),
  // A healthy store (every call answers, none fails) or a script of answers, taken in turn.
  answers: fc.oneof(fc.array(okAnswer, { minLength: 1, maxLength: 4 }), fc.array(answerArb, { minLength: 1, maxLength: 12 })),
  // What load gives back: the entries, the entries among ones that cannot be sent, or no array.
  load: fc.constantFrom('entries', 'entries', 'entries', 'withBad', 'trap', 'junk'),
  ops: fc.array(opArb, { maxLength: 30 }),
  end: fc.oneof(
    { weight: 1, arbitrary: fc.record({ how: fc.constant('abandon') }) },
    { weight: 3, arbitrary: fc.record({ how: fc.constant('close'), timeoutMs: fc.constantFrom(undefined, 0, 1, 10, 100), discard: fc.boolean(), online: fc.boolean() }) },
  ),
});

const runArb = fc.array(sessionArb, { minLength: 1, maxLength: 4 });

// ----- time ------------------------------------------------------------------------------------

/** Lets every pending promise callback run (setImmediate is not mocked). */
async function drain() {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
}

async function advance(ms) {
  await drain();
  for (let t = 0; t < ms; t++) {
    mock.timers.tick(1);
    await drain();
  }
}

/** Tracks a promise: `state.done` once it settled. */
function track(promise) {
  const state = { done: false, value: undefined, error: undefined };
  promise.then((v) => { state.done = true; state.value = v; }, (e) => { state.done = true; state.error = e; });
  return state;
}

// ----- one run ---------------------------------------------------------------------------------

class World {
  constructor() {
    this.entries = [];      // the store, shared by the sessions: entries, oldest first
    this.records = [];      // every publish made, by number
    this.byTopic = new Map();
    this.ownIds = [];
    this.failedDeletes = new Set();
    this.violations = [];
    this.sessions = [];
  }

  fault(message) { this.violations.push(message); }

  record(topic) {
    const rec = this.byTopic.get(topic);
    if (rec === undefined) this.fault(`a publish on \`${topic}\` that was never made`);
    return rec;
  }
}

class Session {
  constructor(world, spec, index) {
    this.world = world;
    this.spec = spec;
    this.index = index;
    this.dead = false;            // abandoned: the page went away
    this.closeResolved = false;
    this.storeClosed = false;
    this.calls = 0;
    this.unsettled = 0;           // store calls answered later, not answered yet
    this.failures = 0;            // store calls that failed (each must be one PERSIST_FAILED)
    this.hangs = 0;
    this.badEntries = 0;
    this.storeAtLoad = undefined; // the topics in the store when load was called
    this.loadAnswered = undefined; // what load gave back (its effect made)
    this.loadGiven = false;       // load answered with it (at once or later), not failing nor hanging
    this.loadPhase = undefined;   // when the client got it: 'before', 'during' or 'after' close()
    this.closing = false;
    this.reports = [];            // [code, context] heard by onError
    this.sockets = [];
    this.firstSends = [];         // records, in the order first sent in this session
    this.sentHere = new Set();
    this.own = [];                // this session's publishes, in call order
    this.waits = [];              // tracked promises of this session
    this.remaining = undefined;
  }

  /** The store object this session's client is given (a view on the shared entries). */
  store() {
    const s = this;
    const w = this.world;
    // effect: what the call does to the store; answered: told once the client has the answer;
    // failed: told when the call fails without its effect.
    const answer = (method, effect, value, answered = () => {}, failed = () => {}) => {
      if (s.dead) return undefined;
      if (s.closeResolved) w.fault(`session ${s.index}: store.${method}() called after close() resolved`);
      if (s.storeClosed) w.fault(`session ${s.index}: store.${method}() called after the store's close()`);
      let a = s.spec.answers[s.calls++ % s.spec.answers.length];
      if (method === 'load' && a.kind === 'odd') a = { kind: 'ok', delay: -1 };
      s.lastKind = a.kind;
      const later = (fn) => new Promise((resolve, reject) => {
        s.unsettled++;
        const go = () => {
          s.unsettled--;
          fn(resolve, reject);
          answered();
          if (method === 'load') s.loadPhase = s.closeResolved ? 'after' : s.closing ? 'during' : 'before';
        };
        if (a.delay === 0) queueMicrotask(go);
        else setTimeout(go, a.delay);
      });
      switch (a.kind) {
        case 'ok':
          effect();
          if (a.delay !== -1) return later((resolve) => resolve(value));
          if (method === 'load') s.loadPhase = 'before';
          answered();
          return value;
        case 'odd':
          effect();
          answered();
          return a.value;
        case 'trap':
          // An answer whose `then` cannot be read.
          s.failures++;
          failed();
          answered();
          return { get then() { throw new Error('no then'); } };
        case 'hang':
          effect();
          s.hangs++;
          return new Promise(() => {});
        case 'throw':
          s.failures++;
          failed();
          answered();
          throw HOSTILE[a.value]();
        case 'reject':
          s.failures++;
          failed();
          return later((_, reject) => reject(HOSTILE[a.value]()));
        case 'writeReject':
          effect();
          s.failures++;
          return later((_, reject) => reject(HOSTILE[a.value]()));
        default:
          throw new Error(a.kind);
      }
    };
    const store = {
      load() {
        s.storeAtLoad = w.entries.map((e) => e.topic);
        let copy = w.entries.slice();
        if (s.spec.load === 'withBad') {
          const bad = [null, { id: '', topic: 'bad.a', payload: 1 }, { id: 'bad-b', topic: 'bad.b' }, { id: 7, topic: 'bad.c', payload: 1 }];
          s.badEntries = bad.length;
          copy = [bad[0], ...copy.slice(0, 1), bad[1], ...copy.slice(1), bad[2], bad[3]];
        } else if (s.spec.load === 'trap') {
          const trap = { get id() { throw new Error('unreadable entry'); }, topic: 'bad.trap', payload: 1 };
          s.badEntries = 1;
          copy = [...copy.slice(0, 1), trap, ...copy.slice(1)];
        } else if (s.spec.load === 'junk') {
          copy = 42;
        }
        const value = copy;
        try {
          return answer('load', () => { s.loadAnswered = value; }, value);
        } finally {
          // Given to the client: answered (at once or later) with the entries.
          s.loadGiven = s.lastKind === 'ok';
        }
      },
      put(entry) {
        const rec = w.record(entry?.topic);
        if (rec !== undefined && !s.dead) {
          rec.puts = (rec.puts ?? 0) + 1;
          rec.id ??= entry.id;
          if (entry.id !== rec.id) w.fault(`\`${entry.topic}\` written with id ${entry.id}, published as ${rec.id}`);
        }
        return answer('put', () => {
          w.entries.push(entry);
          if (rec !== undefined) rec.written = true;
        }, undefined, () => { if (rec !== undefined) rec.putAnswered = true; });
      },
      delete(ids) {
        if (!Array.isArray(ids)) w.fault(`delete() was given ${typeof ids}`);
        const gone = new Set(ids);
        return answer('delete', () => { w.entries = w.entries.filter((e) => !gone.has(e.id)); }, undefined, undefined, () => {
          for (const id of gone) w.failedDeletes.add(id);
        });
      },
    };
    if (this.spec.storeClose) {
      store.close = () => {
        if (s.dead) return undefined;
        if (s.storeClosed) w.fault(`session ${s.index}: the store's close() called twice`);
        // After the calls made before it settled, when close() had the time to wait for them.
        const budget = s.closeOptions?.timeoutMs ?? 5000;
        if (s.unsettled > 0 && s.hangs === 0 && Date.now() - s.closeCalledAt + 3 < budget) {
          w.fault(`session ${s.index}: the store's close() called while ${s.unsettled} call(s) had not settled`);
        }
        const r = answer('close', () => {}, undefined);
        s.storeClosed = true;
        return r;
      };
    }
    return store;
  }

  /** The WebSocket class this session's client is given (the hub side of its sockets). */
  socketClass() {
    const s = this;
    return class FakeSocket {
      constructor() {
        this.pending = [];  // pubs received and not answered yet
        this.greeted = false;
        this.lost = false;
        s.sockets.push(this);
      }
      send(text) {
        if (s.dead || this.lost) return;
        for (const op of [JSON.parse(text)].flat()) if (op.op === 'pub') s.received(this, op);
      }
      close() { this.lost = true; }
    };
  }

  received(ws, op) {
    const rec = this.world.record(op.topic);
    if (rec === undefined) return;
    ws.pending.push(op);
    rec.id ??= op.id;
    if (op.id !== rec.id) this.world.fault(`\`${op.topic}\` sent with id ${op.id}, published as ${rec.id}`);
    if (op.payload?.n !== rec.n) this.world.fault(`\`${op.topic}\` sent with another payload`);
    if (op.key !== rec.key) this.world.fault(`\`${op.topic}\` sent with key ${op.key}, published with ${rec.key}`);
    if (JSON.stringify(op.headers) !== JSON.stringify(rec.headers)) this.world.fault(`\`${op.topic}\` sent with other headers`);
    if (rec.session === this && !rec.putAnswered) this.world.fault(`\`${op.topic}\` sent before its write settled`);
    if (!this.sentHere.has(rec)) {
      this.sentHere.add(rec);
      this.firstSends.push(rec);
    }
  }

  /** The socket the client uses now: the last one made, while the hub has not dropped it. */
  get socket() {
    const ws = this.sockets.at(-1);
    return ws === undefined || ws.lost ? undefined : ws;
  }

  onError(e, ctx) {
    if (this.dead) return;
    if (!(e instanceof EdgebusError)) this.world.fault(`onError heard a ${e?.constructor?.name}, not an EdgebusError: ${e?.message}`);
    this.reports.push([e.code, ctx]);
    const rec = ctx?.topic === undefined ? undefined : this.world.byTopic.get(ctx.topic);
    if (rec === undefined) return;
    if (e.code === 'QUEUE_FULL') rec.dropped = true;
    if (e.code === 'PERSIST_FAILED' && ctx.outbox === 'put') rec.putFailed = true;
  }
}

async function online(s) {
  for (let i = 0; i < 20 && s.socket === undefined; i++) await advance(1);
  const ws = s.socket;
  if (ws === undefined) return;
  if (!ws.greeted) {
    ws.greeted = true;
    ws.onmessage({ data: JSON.stringify({ t: 'hello', conn: 'c', hub: 0 }) });
  }
  await drain();
}

function answer(s, n, reply) {
  const ws = s.socket;
  if (ws === undefined || !ws.greeted) return;
  const frames = [];
  for (const op of ws.pending.splice(0, n)) {
    const rec = s.world.byTopic.get(op.topic);
    if (reply === 'ok' || reply === 'dup') {
      rec.acked = true;
      frames.push(reply === 'dup' ? { t: 'ok', op: 'pub', ref: op.ref, dup: true } : { t: 'ok', op: 'pub', ref: op.ref });
    } else if (reply === 'refuse') {
      rec.refusedByHub = true;
      frames.push({ t: 'err', op: 'pub', ref: op.ref, code: 'FORBIDDEN', message: 'not on this topic' });
    } else {
      frames.push({ t: 'err', op: 'pub', ref: op.ref, code: 'RATE_LIMITED', message: 'slow down' });
    }
  }
  if (frames.length > 0) ws.onmessage({ data: JSON.stringify(frames) });
}

function publish(world, s, bus, o) {
  const n = world.records.length;
  const rec = { n, topic: `t.n${n}`, session: s, id: undefined, key: undefined, headers: undefined };
  const options = {};
  if (o.id === 'own' || (o.id === 'again' && world.ownIds.length === 0)) {
    options.id = `id-${n}`;
    world.ownIds.push(options.id);
  } else if (o.id === 'again') {
    options.id = world.ownIds[n % world.ownIds.length];
  }
  rec.id = options.id;
  if (o.key) options.key = rec.key = `k${n}`;
  if (o.headers) options.headers = rec.headers = { h: `v${n}` };
  world.records.push(rec);
  world.byTopic.set(rec.topic, rec);
  s.own.push(rec);
  const refused = (e) => {
    if (!(e instanceof EdgebusError) || e.code !== 'QUEUE_FULL') world.fault(`publish to ${rec.topic} threw ${e?.code ?? e}: ${e?.message}`);
    rec.refused = true;
  };
  if (o.async) {
    const p = bus.publishAsync(rec.topic, { n }, options);
    rec.wait = track(p);
    s.waits.push(rec.wait);
    p.catch((e) => { if (e?.code === 'QUEUE_FULL') refused(e); });
  } else {
    try {
      if (bus.publish(rec.topic, { n }, options) === false) rec.droppedAtCall = true;
    } catch (e) {
      refused(e);
    }
  }
}

async function closeSession(s, bus, end) {
  const options = {};
  if (end.timeoutMs !== undefined) options.timeoutMs = end.timeoutMs;
  if (end.discard) options.discard = true;
  if (end.online) await online(s);
  s.closing = true;
  s.closeOptions = options;
  s.closeCalledAt = Date.now();
  const closing = track(bus.close(options));
  for (let t = 0; t < 8000 && !closing.done; t += t < 50 ? 1 : 25) {
    // A hub that answers while the client waits for its acknowledgements.
    if (end.online) answer(s, Infinity, 'ok');
    await drain();
    if (closing.done) break;
    mock.timers.tick(t < 50 ? 1 : 25);
  }
  await drain();
  assert.ok(closing.done, `session ${s.index}: close() never settled`);
  if (closing.error !== undefined) throw closing.error;
  s.closeResolved = true;
  s.remaining = closing.value.remaining;
  s.storeAfterClose = s.world.entries.map((e) => e.topic);
  s.statsAtClose = bus.stats();
  s.reportsAtClose = s.reports.length;
  for (const r of s.remaining) {
    const rec = s.world.record(r.topic);
    if (rec === undefined) continue;
    rec.listed = true;
    if (r.id !== rec.id && rec.id !== undefined) s.world.fault(`close() lists \`${r.topic}\` with id ${r.id}, published as ${rec.id}`);
    if (r.key !== rec.key || r.payload?.n !== rec.n) s.world.fault(`close() lists \`${r.topic}\` with another key or payload`);
  }
}

async function runSession(world, spec, index, last) {
  const s = new Session(world, spec, index);
  world.sessions.push(s);
  const bus = connect('https://edge.example.com', {
    token: 't', WebSocket: s.socketClass(), persist: s.store(), maxBuffer: spec.maxBuffer, overflow: spec.overflow,
    reconnect: { initialMs: 1, maxMs: 2 }, onError: (e, ctx) => s.onError(e, ctx),
  });
  s.bus = bus;
  for (const o of spec.ops) {
    switch (o.op) {
      case 'publish': publish(world, s, bus, o); break;
      case 'online': await online(s); break;
      case 'offline': {
        const ws = s.socket;
        if (ws !== undefined) {
          ws.lost = true;
          ws.onclose({ code: 1006, reason: '' });
        }
        break;
      }
      case 'answer': answer(s, o.n, o.reply); break;
      case 'wait': await advance(o.ms); break;
      case 'flush': s.waits.push(track(bus.flush())); break;
      default: throw new Error(o.op);
    }
    await drain();
  }
  const end = last ? { how: 'close', timeoutMs: 10, discard: false, online: false, ...(spec.end.how === 'close' ? spec.end : {}) } : spec.end;
  if (end.how === 'abandon') {
    s.dead = true;
    for (const rec of s.own) rec.abandoned = true;
  } else {
    await closeSession(s, bus, end);
  }
  s.end = end;
}

/** The checks of one finished run (README "Persistent outbox"). */
function check(world) {
  const fault = (m) => world.fault(m);
  const inStore = new Set(world.entries.map((e) => e.topic));
  // Entry ids a delete failed for (reported, in a client still there), and ids more than one
  // publish carries.
  const failedDeletes = world.failedDeletes;
  const idUses = new Map();
  for (const rec of world.records) if (rec.id !== undefined) idUses.set(rec.id, (idUses.get(rec.id) ?? 0) + 1);

  // Entries a session did not load (its load failed, hung, gave no list or ended after close()):
  // that session may delete them under an id a publish of its own carries too (the store deletes
  // by id), which the outbox cannot tell apart.
  for (const s of world.sessions) {
    if (s.loadGiven && s.loadPhase === 'before' && s.spec.load !== 'junk') continue;
    for (const topic of s.storeAtLoad ?? []) {
      const rec = world.byTopic.get(topic);
      if (rec !== undefined) rec.unloaded = true;
    }
  }
  for (const rec of world.records) {
    const why = rec.acked ? 'acknowledged' : rec.refusedByHub ? 'refused by the hub' : rec.refused ? 'refused' : rec.dropped ? 'dropped' : rec.listed ? 'listed'
      : inStore.has(rec.topic) ? 'kept' : rec.putFailed ? 'put failed' : (!rec.written && rec.abandoned) ? 'never written'
        : (rec.unloaded && idUses.get(rec.id) > 1) ? 'not loaded, deleted under a shared id' : undefined;
    if (why === undefined) fault(`\`${rec.topic}\` (id ${rec.id}) was lost silently`);
    if (rec.droppedAtCall && !rec.dropped) fault(`\`${rec.topic}\`: publish() returned false, and no QUEUE_FULL was reported`);
    if (rec.puts > 1) fault(`\`${rec.topic}\` was written ${rec.puts} times`);
    if (rec.acked && inStore.has(rec.topic) && !failedDeletes.has(rec.id) && idUses.get(rec.id) === 1) {
      fault(`\`${rec.topic}\` was acknowledged and is still in the store`);
    }
    const w = rec.wait;
    if (w !== undefined && !rec.session.dead) {
      if (!w.done) fault(`publishAsync to \`${rec.topic}\` never settled`);
      else if (w.error === undefined && !rec.acked) fault(`publishAsync to \`${rec.topic}\` resolved, never acknowledged`);
      else if (w.error !== undefined) {
        if (!(w.error instanceof EdgebusError)) fault(`publishAsync to \`${rec.topic}\` rejected with ${w.error}`);
        else if (w.error.code === 'CLOSED' && !rec.listed) fault(`publishAsync to \`${rec.topic}\` rejected CLOSED, not listed by close()`);
        else if (!['CLOSED', 'QUEUE_FULL', 'FORBIDDEN'].includes(w.error.code)) fault(`publishAsync to \`${rec.topic}\` rejected ${w.error.code}`);
      }
    }
  }

  for (const s of world.sessions) {
    // Order: first sends are the restored entries in the store's order, then this session's own.
    const rank = new Map();
    const restored = s.loadGiven && Array.isArray(s.loadAnswered) ? s.loadAnswered.filter((e) => typeof e?.topic === 'string' && world.byTopic.has(e.topic)) : [];
    restored.forEach((e, i) => rank.set(world.byTopic.get(e.topic), i));
    if (new Set(restored.map((e) => e.topic)).size !== restored.length) fault(`session ${s.index}: the store gave back one publish twice`);
    s.own.forEach((rec, i) => rank.set(rec, restored.length + i));
    let before = -1;
    for (const rec of s.firstSends) {
      const r = rank.get(rec);
      if (r === undefined) fault(`session ${s.index} sent \`${rec.topic}\`, neither restored nor its own`);
      else if (r < before) fault(`session ${s.index} sent \`${rec.topic}\` after a later publish`);
      else before = r;
    }
    if (s.dead) continue;
    for (const w of s.waits) if (!w.done) fault(`session ${s.index}: a wait never settled`);
    for (const w of s.waits) if (w.error !== undefined && !(w.error instanceof EdgebusError)) fault(`session ${s.index}: a wait rejected with ${w.error}`);
    // What close() lists stays in the store, or goes with `discard`.
    const after = new Set(s.storeAfterClose);
    for (const r of s.remaining) {
      const rec = world.byTopic.get(r.topic);
      if (rec === undefined) continue;
      if (!s.end.discard && rec.written && !after.has(r.topic) && !failedDeletes.has(rec.id) && idUses.get(rec.id) === 1) {
        fault(`session ${s.index}: close() lists \`${r.topic}\`, written, and it is not in the store`);
      }
      if (s.end.discard && after.has(r.topic) && !failedDeletes.has(rec.id)) fault(`session ${s.index}: close({ discard }) left \`${r.topic}\` in the store`);
    }
    // Counters.
    const stats = s.bus.stats();
    const count = (code) => s.reports.filter(([c]) => c === code).length;
    if (stats.dropped !== count('QUEUE_FULL')) fault(`session ${s.index}: stats().dropped ${stats.dropped}, ${count('QUEUE_FULL')} QUEUE_FULL reported`);
    if (stats.persistFailed !== count('PERSIST_FAILED')) fault(`session ${s.index}: stats().persistFailed ${stats.persistFailed}, ${count('PERSIST_FAILED')} PERSIST_FAILED reported`);
    const bad = !s.loadGiven ? 0 : s.spec.load === 'junk' ? 1 : s.badEntries;
    const failed = s.loadPhase === 'before' ? [s.failures + bad] : s.loadPhase === 'during' ? [s.failures, s.failures + bad] : [s.failures];
    if (!failed.includes(stats.persistFailed)) {
      fault(`session ${s.index}: stats().persistFailed ${stats.persistFailed}, ${s.failures} store calls failed and ${s.badEntries} entries were bad`);
    }
    // A load that ends after close() restores nothing (its entries stay for the next session).
    const expected = s.loadPhase === 'before' ? [restored.length] : s.loadPhase === 'during' ? [0, restored.length] : [0];
    if (!expected.includes(stats.restored)) fault(`session ${s.index}: stats().restored ${stats.restored}, load gave back ${restored.length}`);
    if (stats.restored !== s.statsAtClose.restored) fault(`session ${s.index}: ${stats.restored - s.statsAtClose.restored} entries restored after close() resolved (listed nowhere)`);
    for (const [code, ctx] of s.reports.slice(s.reportsAtClose)) if (code === 'QUEUE_FULL') fault(`session ${s.index}: \`${ctx?.topic}\` reported dropped after close() resolved`);
    // A healthy store and a hub that answers: close() sends everything.
    if (s.end.online && s.end.timeoutMs === undefined && s.failures === 0 && s.hangs === 0 && s.remaining.length > 0) {
      fault(`session ${s.index}: close() with a hub that answers left ${s.remaining.length} publish(es)`);
    }
  }
}

async function run(sessions) {
  const world = new World();
  const onProblem = (e) => world.fault(`escaped: ${e?.stack ?? e}`);
  process.on('unhandledRejection', onProblem);
  process.on('uncaughtException', onProblem);
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    for (let i = 0; i < sessions.length; i++) await runSession(world, sessions[i], i, i === sessions.length - 1);
    // Pages that went away: their clients closed now, to settle their waits (they make no store call).
    const ends = world.sessions.filter((s) => s.dead).map((s) => track(s.bus.close({ timeoutMs: 0 })));
    await advance(20);
    if (!ends.every((e) => e.done && e.error === undefined)) world.fault('the close() of an abandoned client did not resolve');
    check(world);
  } finally {
    mock.timers.reset();
    process.off('unhandledRejection', onProblem);
    process.off('uncaughtException', onProblem);
  }
  if (world.violations.length > 0) throw new Error(world.violations.slice(0, 8).join('\n'));
}

test('the persistent outbox keeps, sends, lists or reports every publish, in order, through reloads and a failing store', async () => {
  await fc.assert(fc.asyncProperty(runArb, run), { seed: SEED, numRuns: RUNS, includeErrorInReport: true });
});
