// Property test of request/reply (README "Request/reply"): random sequences of subscriptions with
// every kind of handler (replying, declining, failing, at once or after a delay, never settling),
// unsubscribes, requests and requestMany with random max, timeouts and aborts, and hostile
// options, on a ManualClock, checked against a small reference model:
// - every request settles exactly once, at the virtual time the model says (its first reply, its
//   max-th reply, the answer of the last subscription it reached, its timeout or its abort);
// - it settles the way the model says: the reply is one of those that came first; a request no
//   subscription matches, or that every subscription declined, is NO_RESPONDERS; one whose
//   responders answered without a reply and one failing is HANDLER_FAILED; TIMEOUT; ABORTED;
//   requestMany yields the replies the model allows, in no other number;
// - subscriptions have concurrency 1: a request waits behind the delivery still running there,
//   and one behind a handler that never settles is never answered (the model tracks it);
// - stats().requests agree: sent, noResponders, timedOut, cancelled, pending 0 between requests,
//   and every answer that came is counted once (replies + failed + declined + late);
// - hostile options (odd values, throwing getters, values that change between reads, revoked
//   proxies, fake signals) make request, requestMany, once and stream throw INVALID_OPTION,
//   publish nothing and leave no subscription behind.
//
// Answers come at multiples of 10 ms, deadlines at 5 past and aborts at 3 past, so no answer
// ties with an end the model could not order. Runs are seeded: EDGEBUS_PROP_SEED and
// EDGEBUS_PROP_RUNS override the defaults; a failure prints the seed and the shrunk sequence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bus, ManualClock, EdgebusError, matches } from 'edgebus';
import { settle } from './support/helpers.mjs';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 300);

const PATTERNS = ['t.a', 't.b', 't.*', 't.>', 'u'];
const TOPICS = ['t.a', 't.b', 'u', 'v'];
const KINDS = ['reply', 'decline', 'throw', 'replyAfter', 'declineAfter', 'throwAfter', 'never'];

/** A plain object whose every read of `key` yields the next of `values` (the last one after). */
const shifty = (key, values) => {
  let reads = 0;
  return Object.defineProperty({}, key, { enumerable: true, get: () => values[Math.min(reads++, values.length - 1)] });
};
const revoked = () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
/**
 * Hostile options, each made afresh for every call: refused INVALID_OPTION by `request`,
 * `requestMany`, `once` and `stream` alike, each read once (a value that turns valid on a second
 * read must not get through).
 */
const HOSTILE_OPTIONS = [
  () => ({ timeoutMs: 0 }), () => ({ timeoutMs: -5 }), () => ({ timeoutMs: NaN }), () => ({ timeoutMs: '10' }),
  () => ({ timeoutMs: -Infinity }), () => ({ timeoutMs: 10n }), () => ({ timeoutMs: Symbol('t') }),
  () => ({ signal: {} }), () => ({ signal: null }), () => ({ signal: Object.create(AbortSignal.prototype) }),
  () => ({ signal: { aborted: false, addEventListener() {}, removeEventListener() {} } }),
  () => ({ max: 0 }), () => ({ max: 1.5 }), () => ({ max: 2 ** 31 }), () => ({ max: Infinity }),
  () => ({ headers: { a: 1 } }), () => ({ key: 5 }), () => ({ bogus: 1 }), () => 7, () => null, () => 'x', () => [1],
  () => Object.defineProperty({}, 'timeoutMs', { enumerable: true, get() { throw new Error('getter throws'); } }),
  () => shifty('timeoutMs', [NaN, 10]), () => shifty('signal', [{}, undefined]), revoked,
  () => new Proxy({}, { ownKeys() { throw new Error('ownKeys trap'); } }),
];

const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('sub'), pattern: fc.constantFrom(...PATTERNS), kind: fc.constantFrom(...KINDS), tens: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsub'), i: fc.nat(20) }) },
  { weight: 5, arbitrary: fc.record({
    op: fc.constant('request'),
    topic: fc.constantFrom(...TOPICS),
    many: fc.boolean(),
    max: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
    timeoutTens: fc.integer({ min: 1, max: 12 }),
    abortTens: fc.option(fc.integer({ min: 0, max: 12 }), { nil: undefined }),
  }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('hostile'), options: fc.constantFrom(...HOSTILE_OPTIONS) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('idle'), tens: fc.integer({ min: 1, max: 8 }) }) },
);

async function runSequence(ops) {
  const clock = new ManualClock(0);
  const bus = new Bus({ clock, onError: () => {} });
  const subs = []; // model: { id, pattern, kind, ms, busyUntil, alive, handle }
  const events = []; // answers to come: { sub, start, at }
  let counted = 0; // answers that came (the model's)
  const expect = { sent: 0, noResponders: 0, timedOut: 0, cancelled: 0 };

  /** Moves the clock to `t`, 1 ms at a time, letting the bus and handlers run after each. */
  const advanceTo = async (t) => {
    while (clock.now() < t) {
      clock.advance(1);
      await settle(2);
    }
  };
  const tally = () => {
    for (let i = events.length - 1; i >= 0; i--) {
      if (events[i].at <= clock.now()) {
        counted++;
        events.splice(i, 1);
      }
    }
  };

  for (const o of ops) {
    // Requests start at multiples of 10 ms.
    await advanceTo(Math.ceil(clock.now() / 10) * 10);
    tally();
    if (o.op === 'sub') {
      const id = subs.length;
      const ms = o.tens * 10;
      const s = { id, pattern: o.pattern, kind: o.kind, ms, busyUntil: 0, alive: true, handle: undefined };
      const later = (value, fails) => new Promise((resolve, reject) => clock.setTimeout(() => {
        if (fails) reject(new Error(`s${id} fails`));
        else resolve(value);
      }, ms));
      const handler = {
        reply: () => `r${id}`,
        decline: () => undefined,
        throw: () => { throw new Error(`s${id} throws`); },
        replyAfter: () => later(`r${id}`, false),
        declineAfter: () => later(undefined, false),
        throwAfter: () => later(undefined, true),
        never: () => new Promise(() => {}),
      }[o.kind];
      s.handle = bus.subscribe(o.pattern, (p) => handler(p));
      subs.push(s);
    } else if (o.op === 'unsub') {
      const s = subs[o.i % Math.max(subs.length, 1)];
      if (s === undefined) continue;
      const was = s.alive;
      assert.equal(s.handle.unsubscribe(), was);
      s.alive = false;
      // Its deliveries not started yet are cancelled: they never answer.
      for (let i = events.length - 1; i >= 0; i--) {
        if (events[i].sub === s && events[i].start > clock.now()) events.splice(i, 1);
      }
    } else if (o.op === 'idle') {
      await advanceTo(clock.now() + o.tens * 10);
      tally();
    } else if (o.op === 'hostile') {
      const before = bus.stats();
      const invalid = (e) => e instanceof EdgebusError && e.code === 'INVALID_OPTION';
      const subscriptions = before.subscriptions;
      await assert.rejects(bus.request('t.a', 'x', o.options()), invalid);
      await assert.rejects((async () => { for await (const r of bus.requestMany('t.a', 'x', o.options())) void r; })(), invalid);
      await assert.rejects(bus.once('t.a', o.options()), invalid);
      assert.throws(() => bus.stream('t.a', o.options()), invalid);
      assert.equal(bus.stats().subscriptions, subscriptions, 'hostile options leave no subscription behind');
      const after = bus.stats();
      assert.equal(after.published, before.published, 'hostile options publish nothing');
      assert.equal(after.requests.sent, before.requests.sent);
    } else {
      await request(o);
    }
    const r = bus.stats().requests;
    assert.equal(r.pending, 0, 'every request ended before the next step');
    assert.deepEqual(
      [r.sent, r.noResponders, r.timedOut, r.cancelled],
      [expect.sent, expect.noResponders, expect.timedOut, expect.cancelled], 'request counts');
    tally();
    assert.equal(r.replies + r.failed + r.declined + r.late, counted, 'every answer that came is counted once');
  }

  async function request(o) {
    const t0 = clock.now();
    const deadline = t0 + o.timeoutTens * 10 + 5;
    const abortAt = o.abortTens === undefined ? Infinity : t0 + o.abortTens * 10 + 3;
    const max = o.many ? (o.max ?? Infinity) : 1;
    const reached = subs.filter((s) => s.alive && matches(s.pattern, o.topic));
    // The model's answers, in subscription order.
    const answers = reached.map((s) => {
      const start = Math.max(t0, s.busyUntil);
      let at = start;
      if (s.busyUntil === Infinity || s.kind === 'never') at = Infinity;
      else if (s.kind.endsWith('After')) at = start + s.ms;
      if (s.busyUntil !== Infinity) s.busyUntil = s.kind === 'never' ? Infinity : at;
      const kind = s.kind.startsWith('reply') ? 'reply' : s.kind.startsWith('throw') ? 'failure' : 'decline';
      const a = { sub: s, start, at, kind, value: `r${s.id}` };
      if (at !== Infinity) events.push(a);
      return a;
    });
    // How the model says it ends.
    let want;
    if (reached.length === 0) {
      want = { at: t0, error: 'NO_RESPONDERS', replies: [] };
      expect.noResponders++;
    } else {
      expect.sent++;
      const times = [...new Set(answers.filter((a) => a.at !== Infinity).map((a) => a.at))].sort((a, b) => a - b);
      let replies = 0;
      let failures = 0;
      let answered = 0;
      const taken = [];
      for (const t of times) {
        if (t >= Math.min(deadline, abortAt)) break;
        const group = answers.filter((a) => a.at === t);
        const groupReplies = group.filter((a) => a.kind === 'reply');
        const before = taken.length;
        if (replies + groupReplies.length >= max) {
          want = { at: t, error: undefined, replies: taken, choose: { from: groupReplies.map((a) => a.value), n: max - before } };
          break;
        }
        replies += groupReplies.length;
        failures += group.filter((a) => a.kind === 'failure').length;
        answered += group.length;
        taken.push(...groupReplies.map((a) => a.value));
        if (answered === reached.length) {
          const error = o.many || replies > 0 ? undefined : failures > 0 ? 'HANDLER_FAILED' : 'NO_RESPONDERS';
          // Counted as having no responders when every one declined (requestMany too).
          if (replies === 0 && failures === 0) expect.noResponders++;
          want = { at: t, error, replies: taken };
          break;
        }
      }
      if (want === undefined) {
        if (abortAt < deadline) {
          want = { at: abortAt, error: 'ABORTED', replies: taken };
          expect.cancelled++;
        } else {
          want = { at: deadline, error: o.many ? undefined : 'TIMEOUT', replies: taken };
          expect.timedOut++;
        }
      }
    }

    // Run it.
    const ac = new AbortController();
    const options = { timeoutMs: o.timeoutTens * 10 + 5, signal: ac.signal };
    if (o.many && o.max !== undefined) options.max = o.max;
    const got = { settled: 0, at: undefined, error: undefined, replies: [] };
    const end = (e) => {
      got.settled++;
      got.at = clock.now();
      if (e !== undefined) got.error = e instanceof EdgebusError ? e.code : `not an EdgebusError: ${e}`;
    };
    if (o.many) {
      (async () => {
        for await (const v of bus.requestMany(o.topic, 'x', options)) got.replies.push(v);
      })().then(() => end(undefined), end);
    } else {
      bus.request(o.topic, 'x', options).then((v) => { got.replies.push(v); end(undefined); }, end);
    }
    await settle(2);
    while (got.settled === 0 && clock.now() <= want.at) {
      if (clock.now() === abortAt) ac.abort(new Error('model abort'));
      await settle(2);
      if (got.settled !== 0) break;
      clock.advance(1);
      await settle(2);
    }
    assert.equal(got.settled, 1, `settled once (model: at ${want.at}, ${want.error ?? 'replies'})`);
    assert.equal(got.at, want.at, 'settled when the model says');
    assert.equal(got.error, want.error, 'settled as the model says');
    if (want.choose === undefined) {
      assert.deepEqual([...got.replies].sort(), [...want.replies].sort(), 'replies');
    } else {
      const rest = [...got.replies];
      for (const v of want.replies) {
        const k = rest.indexOf(v);
        assert.ok(k >= 0, `reply ${v} (before the last) is among ${got.replies}`);
        rest.splice(k, 1);
      }
      assert.equal(rest.length, want.choose.n, `${want.choose.n} of the last replies`);
      for (const v of rest) assert.ok(want.choose.from.includes(v), `${v} is one of ${want.choose.from}`);
    }
  }
}

test('request/reply against a reference model (random sequences, virtual time)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), (ops) => runSequence(ops)),
    { seed: SEED, numRuns: RUNS, verbose: 1 },
  );
});
