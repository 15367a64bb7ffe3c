// Property test of retained values and history replay through the JavaScript API: random
// interleavings of publishes (retained, clearing or plain, on topics with and without history),
// clearRetained, subscriptions with every kind of replay (wildcards included) and time passing on
// a ManualClock, against a model keeping every message published. For each subscription: what it
// received plus what its gaps name is exactly what it asked for (nothing twice, nothing missing,
// nothing else), each topic in number order; a retained-values replay is the model's latest
// retained value per topic. Messages carry random TTLs (an expired one is a gap, an expired
// retained value is not replayed and stops numbering its topic); subscriptions are unsubscribed at
// random, or unsubscribe themselves from their handler after a few messages (nothing reaches them
// after that, even what their replay had queued). Between the valid operations come hostile calls
// (bad option values and shapes, throwing getters, revoked proxies, bad topics and patterns,
// restores that go backwards or hold a payload sizeOf refuses): each must throw (a typed
// EdgebusError, or sizeOf's own error) and leave everything observable as it was. Runs are seeded: EDGEBUS_PROP_SEED and
// EDGEBUS_PROP_RUNS override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bus, EdgebusError, ManualClock, matches } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 300);
const TOPICS = ['h.a', 'h.b', 'r.a', 'r.b'];
const PATTERNS = ['h.*', 'r.*', '*.a', '>', 'h.b'];

/** A payload the bus's sizeOf refuses. */
const POISON = Symbol('poison');
const sizeOf = (p) => {
  if (p === POISON) throw new Error('cannot size this');
  return 8;
};
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const throwing = (name) => ({ get [name]() { throw new Error(`${name} read`); } });
const nop = () => {};

/** Calls each of which must throw an EdgebusError and change nothing. */
const HOSTILE = [
  (b, t) => b.publish(t, 1, { retain: 'yes' }),
  (b, t) => b.publish(t, 1, { retain: true, ttlMs: -1 }),
  (b, t) => b.publish(t, 1, { retain: true, colour: 'red' }),
  (b, t) => b.publish(t, 1, revoked()),
  (b, t) => b.publish(t, 1, throwing('retain')),
  (b) => b.publish('r..a', 1, { retain: true }),
  (b, t) => b.publish(t, 1, { retain: true, id: 5 }),
  (b, t) => b.publish(t, POISON, { retain: true }),
  (b) => b.publish('h.b', POISON),
  (b, t, p) => b.subscribe(p, nop, { replay: { last: -1 } }),
  (b, t, p) => b.subscribe(p, nop, { replay: 'everything' }),
  (b, t, p) => b.subscribe(p, nop, { replay: { sinceSeq: 1.5 } }),
  (b, t, p) => b.subscribe(p, nop, { replay: { sinceMs: NaN } }),
  (b, t, p) => b.subscribe(p, nop, { replay: { sinceSeq: { 'h.*': 1 } } }),
  (b, t, p) => b.subscribe(p, nop, { replay: throwing('last') }),
  (b, t, p) => b.subscribe(p, nop, { replay: revoked() }),
  (b) => b.subscribe('h..', nop, { replay: 'retained' }),
  (b, t, p) => b.subscribe(p, nop, { replay: 'retained', onGap: 5 }),
  (b, t, p) => b.subscribe(p, nop, { replay: { last: 2 ** 60 } }),
  (b) => b.clearRetained('r.*'),
  (b) => b.clearRetained(7),
  (b, t) => b.restore([{ topic: t, seq: 0 }]),
  (b, t) => b.restore([{ topic: 'h.z', seq: 2, payload: 1 }, { topic: t, seq: (b.logOf(t)?.lastSeq ?? 0) + 1, payload: 2 }, { topic: 'h.z', seq: 1, payload: 3 }]),
  (b, t) => {
    const last = b.logOf(t)?.lastSeq ?? 0;
    return b.restore(last > 0 ? [{ topic: t, seq: last, payload: 1 }] : [{ topic: 'h.z', seq: 2 }, { topic: 'h.z', seq: 2 }]);
  },
  (b, t) => b.restore([{ topic: 'h.y', seq: 1, payload: 1 }, { topic: t, seq: 2 ** 50 - 1, payload: POISON }]),
  (b) => b.restore([{ topic: 'h.y', seq: 1, payload: 1, retained: 'no' }]),
  (b) => b.restore([{ topic: 'h.y', seq: 1, payload: 1 }, revoked()]),
  (b) => b.restore([{ topic: 'h.y', seq: 1, payload: 1 }, { topic: 'a..b', seq: 1 }]),
  (b, t, p) => b.replay(p, { last: 'x' }),
  (b, t, p) => b.replay(p, { last: 1 }, { maxMessages: -1 }),
  (b, t, p) => b.replay(p, { last: 1 }, { maxBytes: NaN }),
  (b, t, p) => b.replay(p, { last: 1 }, { most: 3 }),
  (b, t, p) => b.replay(p, { last: 1 }, revoked()),
  (b, t, p) => b.replay(p, { last: 1 }, throwing('maxMessages')),
  (b) => b.retained('a..b'),
  (b) => b.logOf('h.*'),
];

const op = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('publish'), topic: fc.nat(3), retain: fc.nat(3), ttl: fc.oneof(fc.constant(0), fc.integer({ min: 5, max: 80 })) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('subscribe'), pattern: fc.nat(4), replay: fc.nat(3), n: fc.nat(7), stop: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 3 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear'), topic: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait'), ms: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unsubscribe'), which: fc.nat(20) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('hostile'), which: fc.nat(HOSTILE.length - 1), topic: fc.nat(3), pattern: fc.nat(4) }) },
);

/** What the bus shows of its logs and subscriptions. */
function observe(bus) {
  const st = bus.stats();
  return {
    retained: bus.retained('>').map((m) => [m.topic, m.seq, m.payload]),
    logs: [...TOPICS, 'h.y', 'h.z'].map((t) => bus.logOf(t) ?? null),
    counts: st.logs,
    subscriptions: st.subscriptions.length,
    published: st.published,
  };
}

async function run(ops, maxMessages) {
  const clock = new ManualClock();
  const gaps = [];
  const bus = new Bus({ clock, sizeOf, history: { topics: ['h.*'], maxMessages, maxAgeMs: 100 } });
  const all = []; // { topic, seq, payload, at, expires }
  const retained = new Map(); // topic → { seq, expires }
  const alive = (expires) => clock.now() < expires;
  const subs = [];
  let payload = 0;
  for (const o of ops) {
    if (o.kind === 'publish') {
      payload++;
      const topic = TOPICS[o.topic];
      const kept = retained.get(topic);
      const tracked = topic.startsWith('h.') || (kept !== undefined && alive(kept.expires));
      const options = o.retain === 1 || o.retain === 2 ? { retain: true } : {};
      if (o.ttl > 0) options.ttlMs = o.ttl;
      // retain 2: publishing undefined with retain clears (the payload is then undefined).
      const p = o.retain === 2 ? undefined : payload;
      bus.publish(topic, p, options);
      const expires = o.ttl > 0 ? clock.now() + o.ttl : Infinity;
      if (tracked || o.retain === 1) {
        const seq = bus.logOf(topic).lastSeq;
        all.push({ topic, seq, payload: p, at: clock.now(), expires });
        for (const s of subs) if (!s.closed && matches(s.pattern, topic)) s.live.add(`${topic}#${seq}`);
        if (o.retain === 1) retained.set(topic, { seq, expires });
        else if (o.retain === 2) retained.delete(topic);
      }
      if (!tracked && o.retain !== 1) retained.delete(topic);
    } else if (o.kind === 'clear') {
      const topic = TOPICS[o.topic];
      const kept = retained.get(topic);
      retained.delete(topic);
      assert.equal(bus.clearRetained(topic), kept !== undefined && alive(kept.expires));
    } else if (o.kind === 'wait') {
      clock.advance(o.ms);
    } else if (o.kind === 'unsubscribe') {
      const s = subs[o.which % Math.max(1, subs.length)];
      if (s !== undefined && !s.closed) {
        s.sub.unsubscribe();
        s.closed = true;
        s.gotAt = s.got.length;
      }
    } else if (o.kind === 'hostile') {
      const before = observe(bus);
      assert.throws(() => HOSTILE[o.which](bus, TOPICS[o.topic], PATTERNS[o.pattern]),
        // sizeOf's own error reaches the caller as it is (the bus's callback, not its input).
        (e) => (e instanceof EdgebusError && typeof e.code === 'string' && e.message.length > 0) || e?.message === 'cannot size this',
        `hostile call ${o.which} throws a typed error`);
      assert.deepEqual(observe(bus), before, `hostile call ${o.which} changed nothing`);
    } else {
      const pattern = PATTERNS[o.pattern];
      const replay = [
        'retained', { last: o.n }, { sinceSeq: o.n }, { sinceMs: o.n * 10 },
      ][o.replay];
      const asked = new Set();
      for (const topic of TOPICS.filter((t) => matches(pattern, t))) {
        const mine = all.filter((m) => m.topic === topic);
        const last = mine.at(-1)?.seq ?? 0;
        for (const m of mine) {
          const wanted = o.replay === 1 ? m.seq + o.n > last : o.replay === 2 ? m.seq > o.n : o.replay === 3 ? m.at >= o.n * 10 : false;
          if (wanted) asked.add(`${topic}#${m.seq}`);
        }
      }
      const retainedThen = new Set([...retained].filter(([t, r]) => matches(pattern, t) && alive(r.expires)).map(([t, r]) => `${t}#${r.seq}`));
      const got = [];
      const s = { pattern, asked, live: new Set(), got, retainedOnly: o.replay === 0, retainedThen, id: 0, closed: false, gotAt: 0, sub: undefined };
      s.sub = bus.subscribe(pattern, (p, m) => {
        assert.ok(!s.closed, `#${s.id} got a message after it unsubscribed`);
        got.push([m.topic, m.seq ?? 0, p]);
        if (got.length === o.stop) {
          s.sub.unsubscribe();
          s.closed = true;
          s.gotAt = got.length;
        }
      }, {
        replay, maxQueue: Infinity, onGap: (g) => gaps.push([s, g]),
      });
      s.id = s.sub.id;
      subs.push(s);
    }
  }
  await bus.drain();
  for (const s of subs) {
    const seen = new Set();
    const last = new Map();
    for (const [t, seq, p] of s.got) {
      if (seq === 0) continue;
      const k = `${t}#${seq}`;
      assert.ok(!seen.has(k), `#${s.id} got ${k} twice`);
      seen.add(k);
      const m = all.find((x) => x.topic === t && x.seq === seq);
      assert.ok(m !== undefined && m.payload === p, `#${s.id} ${k} carries its payload`);
      assert.ok(seq > (last.get(t) ?? 0), `#${s.id} got ${k} out of order`);
      last.set(t, seq);
    }
    if (s.closed) {
      assert.equal(s.got.length, s.gotAt, `#${s.id} got nothing after it unsubscribed`);
      continue;
    }
    // A message whose TTL ended while it waited in the subscription's queue is dropped there,
    // counted as expired: the only kind of message it may miss without a gap.
    const expiredByNow = (k) => {
      const [t, n] = k.split('#');
      const m = all.find((x) => x.topic === t && x.seq === Number(n));
      return m !== undefined && !alive(m.expires);
    };
    const expired = s.sub.stats().expired;
    if (s.retainedOnly) {
      const want = [...new Set([...s.retainedThen, ...s.live])];
      const missing = want.filter((k) => !seen.has(k));
      assert.ok(missing.every(expiredByNow) && missing.length <= expired, `#${s.id} retained then live, missing ${missing}`);
      assert.deepEqual([...seen].filter((k) => !want.includes(k)), [], `#${s.id} got only what it asked for`);
      continue;
    }
    const covered = new Set(seen);
    for (const [owner, g] of gaps) {
      if (owner !== s) continue;
      assert.equal(g.pattern, s.pattern);
      assert.equal(g.subscription, s.id);
      for (let n = g.fromSeq ?? 1; n <= g.toSeq; n++) {
        const k = `${g.topic}#${n}`;
        if (g.fromSeq !== undefined) assert.ok(!seen.has(k), `#${s.id} got ${k} and a gap naming it`);
        if (g.fromSeq !== undefined || s.asked.has(k)) covered.add(k);
      }
    }
    const want = new Set([...s.asked, ...s.live]);
    const missing = [...want].filter((k) => !covered.has(k));
    assert.deepEqual(missing.filter((k) => !expiredByNow(k)), [], `#${s.id} (${s.pattern}) neither got nor heard of these`);
    assert.ok(missing.length <= expired, `#${s.id} missed ${missing.length} expired messages, counted ${expired}`);
    const extra = [...seen].filter((k) => !want.has(k));
    assert.deepEqual(extra, [], `#${s.id} (${s.pattern}) got what it did not ask for`);
  }
}

test('replay then live is whole and single, against a model of every message published', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 60 }), fc.integer({ min: 1, max: 5 }), (ops, max) => run(ops, max)),
    { seed: SEED, numRuns: RUNS },
  );
});

// A durable copy put back: what one bus holds (every topic's history, retained value and last
// number, as the edge stores them) restored into a fresh bus gives the same logs, the same
// retained values, the same replays by number (across topics, in publish order: the core puts
// the copies back by publish time), and numbering that goes on alike.
const copyOp = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('publish'), topic: fc.nat(3), retain: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear'), topic: fc.nat(3) }) },
);

function copyOf(bus) {
  const entries = [];
  for (const topic of TOPICS) {
    const log = bus.logOf(topic);
    if (log === undefined) continue;
    const messages = new Map();
    for (const m of bus.replay(topic, { sinceSeq: 0 }).messages) messages.set(m.seq, { m, retained: false });
    for (const m of bus.retained(topic)) messages.set(m.seq, { m, retained: true });
    for (const seq of [...messages.keys()].sort((a, b) => a - b)) {
      const { m, retained } = messages.get(seq);
      entries.push({ topic, seq, payload: m.payload, publishedAt: m.publishedAt, retained });
    }
    if (!messages.has(log.lastSeq)) entries.push({ topic, seq: log.lastSeq });
  }
  return entries;
}

test('a bus restored from what another holds answers as it does', async () => {
  await fc.assert(
    fc.property(fc.array(copyOp, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 4 }), (ops, maxMessages) => {
      const clock = new ManualClock();
      const options = () => ({ clock, history: { topics: ['h.*'], maxMessages } });
      const a = new Bus(options());
      let payload = 0;
      for (const o of ops) {
        clock.advance(1);
        const topic = TOPICS[o.topic];
        if (o.kind === 'clear') a.clearRetained(topic);
        else a.publish(topic, o.retain === 2 ? undefined : ++payload, o.retain >= 1 ? { retain: true } : undefined);
      }
      const b = new Bus(options());
      b.restore(copyOf(a));
      const view = (bus) => ({
        logs: TOPICS.map((t) => bus.logOf(t) ?? null),
        retained: bus.retained().map((m) => [m.topic, m.seq, m.payload]),
        replays: PATTERNS.flatMap((p) => [0, 1, 2, 5].map((n) => {
          const r = bus.replay(p, { sinceSeq: n });
          // Gaps come per topic, in no order across topics.
          return [r.messages.map((m) => [m.topic, m.seq, m.payload]), r.gaps.map((g) => `${g.topic} ${g.fromSeq} ${g.toSeq}`).sort()];
        })),
      });
      assert.deepEqual(view(b), view(a));
      for (const topic of TOPICS) {
        const known = a.logOf(topic) !== undefined;
        a.publish(topic, 'next', { retain: true });
        b.publish(topic, 'next', { retain: true });
        // A topic new to both starts above every number restored without a message (the
        // floor a driver restores for topics the core forgot), so never lower than on `a`.
        if (known) assert.equal(b.logOf(topic).lastSeq, a.logOf(topic).lastSeq, `${topic} numbers on alike`);
        else assert.ok(b.logOf(topic).lastSeq >= a.logOf(topic).lastSeq, `${topic} numbers from above the floor`);
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
