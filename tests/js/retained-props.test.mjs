// Property test of retained values and history replay through the JavaScript API: random
// interleavings of publishes (retained, clearing or plain, on topics with and without history),
// clearRetained, subscriptions with every kind of replay (wildcards included) and time passing on
// a ManualClock, against a model keeping every message published. For each subscription: what it
// received plus what its gaps name is exactly what it asked for (nothing twice, nothing missing,
// nothing else), each topic in number order; a retained-values replay is the model's latest
// retained value per topic. Runs are seeded: EDGEBUS_PROP_SEED and EDGEBUS_PROP_RUNS override.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Bus, ManualClock, matches } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 300);
const TOPICS = ['h.a', 'h.b', 'r.a', 'r.b'];
const PATTERNS = ['h.*', 'r.*', '*.a', '>', 'h.b'];

const op = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('publish'), topic: fc.nat(3), retain: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('subscribe'), pattern: fc.nat(4), replay: fc.nat(3), n: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clear'), topic: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait'), ms: fc.integer({ min: 1, max: 40 }) }) },
);

async function run(ops, maxMessages) {
  const clock = new ManualClock();
  const gaps = [];
  const bus = new Bus({ clock, history: { topics: ['h.*'], maxMessages, maxAgeMs: 100 } });
  const all = []; // { topic, seq, payload, at }
  const retained = new Map();
  const subs = [];
  let payload = 0;
  for (const o of ops) {
    if (o.kind === 'publish') {
      payload++;
      const topic = TOPICS[o.topic];
      const tracked = topic.startsWith('h.') || retained.has(topic);
      const options = o.retain === 1 ? { retain: true } : undefined;
      // retain 2: publishing undefined with retain clears (the payload is then undefined).
      const p = o.retain === 2 ? undefined : payload;
      bus.publish(topic, p, o.retain === 2 ? { retain: true } : options);
      if (tracked || o.retain === 1) {
        const seq = bus.logOf(topic).lastSeq;
        all.push({ topic, seq, payload: p, at: clock.now() });
        for (const s of subs) if (matches(s.pattern, topic)) s.live.add(`${topic}#${seq}`);
        if (o.retain === 1) retained.set(topic, seq);
        else if (o.retain === 2) retained.delete(topic);
      }
    } else if (o.kind === 'clear') {
      const topic = TOPICS[o.topic];
      assert.equal(bus.clearRetained(topic), retained.delete(topic));
    } else if (o.kind === 'wait') {
      clock.advance(o.ms);
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
      const retainedThen = new Set([...retained].filter(([t]) => matches(pattern, t)).map(([t, s]) => `${t}#${s}`));
      const got = [];
      const s = { pattern, asked, live: new Set(), got, retainedOnly: o.replay === 0, retainedThen, id: 0 };
      const sub = bus.subscribe(pattern, (p, m) => got.push([m.topic, m.seq ?? 0, p]), {
        replay, maxQueue: Infinity, onGap: (g) => gaps.push([s, g]),
      });
      s.id = sub.id;
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
    if (s.retainedOnly) {
      assert.deepEqual([...seen].sort(), [...new Set([...s.retainedThen, ...s.live])].sort(), `#${s.id} retained then live`);
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
    assert.deepEqual(missing, [], `#${s.id} (${s.pattern}) neither got nor heard of these`);
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
