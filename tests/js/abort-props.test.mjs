// Property test of the waits of the async API (README "API": once, stream, request, requestMany,
// publishAsync, drain, subscribe with a `signal`) on a ManualClock: random sequences of waits,
// publishes, handler releases, clock steps and aborts of random AbortControllers, then every
// controller aborted and the bus closed. Checked:
// - every wait settles exactly once, and a wait still pending when its signal aborts settles with
//   ABORTED (a stream's loop ends with ABORTED);
// - every rejection has a code from the wait's documented set;
// - nothing is left behind: no listener stays on any signal, no subscription of a once, stream or
//   subscribe-with-signal stays active, no request pending, nothing queued once closed.
// Runs are seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override the defaults.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bus, ManualClock, EdgebusError } from 'edgebus';
import { settle } from './support/helpers.mjs';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261206);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 200);

const TOPICS = ['a', 'b', 'full', 'slow'];
const op = fc.oneof(
  fc.record({ op: fc.constant('once'), topic: fc.constantFrom(...TOPICS), ctl: fc.nat(3), timeoutMs: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }) }),
  fc.record({ op: fc.constant('stream'), topic: fc.constantFrom(...TOPICS), ctl: fc.nat(3), maxQueue: fc.integer({ min: 1, max: 3 }), reads: fc.nat(3) }),
  fc.record({ op: fc.constant('request'), topic: fc.constantFrom(...TOPICS), ctl: fc.nat(3), many: fc.boolean(), timeoutMs: fc.integer({ min: 1, max: 60 }) }),
  fc.record({ op: fc.constant('publishAsync'), ctl: fc.nat(3) }),
  fc.record({ op: fc.constant('drain'), ctl: fc.nat(3) }),
  fc.record({ op: fc.constant('subscribe'), topic: fc.constantFrom(...TOPICS), ctl: fc.nat(3) }),
  fc.record({ op: fc.constant('publish'), topic: fc.constantFrom(...TOPICS) }),
  fc.record({ op: fc.constant('release') }),
  fc.record({ op: fc.constant('advance'), ms: fc.integer({ min: 1, max: 40 }) }),
  fc.record({ op: fc.constant('abort'), ctl: fc.nat(3) }),
);

// Listeners held by each signal, counted at EventTarget.prototype (the bus reaches signals
// through the platform's accessors, not through the signal's own properties).
const held = new WeakMap(); // signal → Set of listeners
const proto = EventTarget.prototype;
const add = proto.addEventListener;
const remove = proto.removeEventListener;
proto.addEventListener = function (type, fn, o) {
  if (type === 'abort' && this instanceof AbortSignal) {
    const set = held.get(this) ?? new Set();
    held.set(this, set);
    set.add(fn);
    if (o !== null && typeof o === 'object' && o.once) add.call(this, type, () => set.delete(fn), { once: true });
  }
  return add.call(this, type, fn, o);
};
proto.removeEventListener = function (type, fn, o) {
  if (type === 'abort' && this instanceof AbortSignal) held.get(this)?.delete(fn);
  return remove.call(this, type, fn, o);
};

/** An AbortController whose signal's listeners are counted. */
function counted() {
  const ac = new AbortController();
  return { ac, get listeners() { return held.get(ac.signal)?.size ?? 0; } };
}

const CODES = {
  once: ['ABORTED', 'TIMEOUT', 'CLOSED'],
  stream: ['ABORTED'],
  request: ['ABORTED', 'TIMEOUT', 'NO_RESPONDERS', 'CLOSED', 'HANDLER_FAILED', 'QUEUE_FULL'],
  publishAsync: ['ABORTED', 'CLOSED'],
  drain: ['ABORTED'],
};

async function run(ops) {
  const clock = new ManualClock();
  const bus = new Bus({ clock, onError: () => {} });
  const gates = [];
  // 'slow' answers when released; 'full' holds one message and waits for room.
  bus.subscribe('slow', (n) => new Promise((r) => gates.push(() => r(n))));
  bus.subscribe('full', () => new Promise((r) => gates.push(r)), { maxQueue: 1, overflow: 'wait' });
  const ctls = [counted(), counted(), counted(), counted()];
  const waits = []; // { kind, settled, code, ctl, abortedWhilePending }
  const subs = [];
  const track = (kind, ctl, promise) => {
    const w = { kind, ctl, settled: 0, code: undefined, pendingAtAbort: false };
    waits.push(w);
    promise.then(() => { w.settled++; }, (e) => {
      w.settled++;
      w.code = e instanceof EdgebusError ? e.code : `not an EdgebusError: ${e}`;
    });
    return w;
  };
  for (const o of ops) {
    const c = ctls[o.ctl ?? 0];
    const signal = c.ac.signal;
    switch (o.op) {
      case 'once':
        track('once', c, bus.once(o.topic, { signal, timeoutMs: o.timeoutMs }));
        break;
      case 'stream': {
        let s;
        try {
          s = bus.stream(o.topic, { signal, maxQueue: o.maxQueue });
        } catch (e) {
          assert.equal(e.code, 'ABORTED');
          break;
        }
        subs.push(s.subscription);
        track('stream', c, (async () => {
          let n = 0;
          for await (const m of s) { void m; if (++n > o.reads) break; }
        })());
        break;
      }
      case 'request':
        if (o.many) {
          track('request', c, (async () => {
            for await (const r of bus.requestMany(o.topic, 1, { signal, timeoutMs: o.timeoutMs })) void r;
          })());
        } else {
          track('request', c, bus.request(o.topic, 1, { signal, timeoutMs: o.timeoutMs }));
        }
        break;
      case 'publishAsync':
        track('publishAsync', c, bus.publishAsync('full', 1, { signal }));
        break;
      case 'drain':
        track('drain', c, bus.drain({ signal }));
        break;
      case 'subscribe':
        try {
          const sub = bus.subscribe(o.topic, () => {}, { signal });
          sub.ctl = c;
          subs.push(sub);
        } catch (e) {
          assert.equal(e.code, 'ABORTED');
        }
        break;
      case 'publish':
        try {
          bus.publish(o.topic, 1);
        } catch (e) {
          assert.equal(e.code, 'QUEUE_FULL'); // 'full' under 'wait', synchronously
        }
        break;
      case 'release':
        for (const g of gates.splice(0)) g(undefined);
        break;
      case 'advance':
        clock.advance(o.ms);
        break;
      case 'abort':
        for (const w of waits) if (w.ctl === c && w.settled === 0) w.pendingAtAbort = true;
        c.ac.abort(new Error('property abort'));
        break;
      default:
        break;
    }
    await settle(2);
  }
  // Before the end: each signal holds one listener per wait still pending on it and per live
  // subscription made with it, no more (a settled wait took its listener back).
  for (const [i, c] of ctls.entries()) {
    const pending = waits.filter((w) => w.ctl === c && w.settled === 0).length;
    const live = subs.filter((sub) => sub.ctl === c && sub.active).length;
    assert.equal(c.listeners, pending + live, `signal ${i}: ${pending} pending wait(s) and ${live} subscription(s)`);
  }
  // Everything given up or let go, then closed.
  for (const c of ctls) {
    for (const w of waits) if (w.ctl === c && w.settled === 0) w.pendingAtAbort = true;
    c.ac.abort(new Error('the end'));
  }
  await settle(2);
  for (let i = 0; i < 5; i++) {
    for (const g of gates.splice(0)) g(undefined);
    clock.advance(100);
    await settle(2);
  }
  await bus.close();
  await settle(3);
  for (const [i, w] of waits.entries()) {
    assert.equal(w.settled, 1, `wait ${i} (${w.kind}) settled once`);
    if (w.code !== undefined) assert.ok(CODES[w.kind].includes(w.code), `wait ${i} (${w.kind}): ${w.code}`);
    if (w.pendingAtAbort) assert.equal(w.code, 'ABORTED', `wait ${i} (${w.kind}) pending at its abort`);
  }
  for (const [i, c] of ctls.entries()) assert.equal(c.listeners, 0, `signal ${i} holds no listener`);
  for (const s of subs) assert.equal(s.active, false, 'every subscription with a signal is gone');
  const st = bus.stats();
  assert.equal(st.requests.pending, 0);
  assert.equal(st.queued, 0);
}

test('every wait settles once, an aborted one with ABORTED, and nothing is left behind', async () => {
  await fc.assert(fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => run(ops)),
    { seed: SEED, numRuns: RUNS });
});
