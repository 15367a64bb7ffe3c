// Property test of retained values, history and replay at the edge (`wrangler dev`): random
// sequences of publishes (plain, retained, clearing) and subscriptions with every kind of replay,
// by two tenants (namespaces `acme` and `bolt`) on the very same topics, which four different hubs
// own; checked against a model of every message each tenant published. For each subscription:
// what its replay gave plus what its gap notices name is exactly what it asked for, each held
// message once and in number order per topic, then every later message its pattern matches, live;
// a retained-values replay is the tenant's latest retained value per topic; nothing of the other
// tenant reaches it, and each tenant's numbers are its own (consecutive from its first message on
// each topic). The history holds a few messages per topic, so gaps are frequent.
// Runs are seeded: EDGEBUS_PROPS_SEED and EDGEBUS_PROPS_RUNS override the defaults; a failure
// names the seed, the run and its operations (runs are not shrunk: each costs a live server's time).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const SEED = Number(process.env.EDGEBUS_PROPS_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROPS_RUNS ?? 20);
const HUBS = 8;
const HISTORY = 3;
const TENANTS = ['acme', 'bolt'];
const server = new EdgeServer({ vars: { HISTORY_MAX_MESSAGES: String(HISTORY) } });
const tokens = {};

before(async () => {
  await server.start();
  for (const ns of TENANTS) tokens[ns] = await server.token({ pub: ['>'], sub: ['>'], ns });
}, { timeout: 120_000 });
after(() => server.dispose());

/** Four topics of run `run`, `<prefix>.a|b` under two prefixes, owned by four different hubs. */
function topicsOf(run) {
  const out = [];
  const hubs = new Set();
  for (let i = 0; out.length < 4; i++) {
    const topic = `rp${run}x${i}.${out.length % 2 === 0 ? 'a' : 'b'}`;
    const hub = hubOfTopic(topic, HUBS, 1);
    if (hubs.has(hub)) continue;
    hubs.add(hub);
    out.push(topic);
  }
  return out;
}

/** Whether `pattern` matches `topic` (`*` one token, `>` one or more trailing tokens). */
function match(pattern, topic) {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length || (p[i] !== '*' && p[i] !== t[i])) return false;
  }
  return p.length === t.length;
}

const op = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('publish'), tenant: fc.nat(1), topic: fc.nat(3), retain: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('subscribe'), tenant: fc.nat(1), pattern: fc.nat(3), replay: fc.nat(3), n: fc.nat(6), topic: fc.nat(3) }) },
);

async function run(index, ops) {
  const topics = topicsOf(`${SEED % 1000}r${index}`);
  const patterns = ['>', `${topics[0].split('.')[0]}.*`, '*.a', topics[3]];
  const sockets = {};
  const monitors = {};
  for (const ns of TENANTS) {
    sockets[ns] = await RawSocket.open(`${server.wsUrl}/connect?token=${tokens[ns]}`);
    // Every message the tenant publishes in this run, with its number, as it was delivered live.
    monitors[ns] = await RawSocket.open(`${server.wsUrl}/connect?token=${tokens[ns]}`);
    const ok = await monitors[ns].request({ op: 'sub', id: 1, pattern: '>' });
    assert.equal(ok.t, 'ok');
  }
  const published = { acme: [], bolt: [] }; // { topic, n, retain } in publish order
  const subs = [];
  let ref = 0;
  let n = 0;
  for (const o of ops) {
    const ns = TENANTS[o.tenant];
    if (o.kind === 'publish') {
      const topic = topics[o.topic];
      const frame = { op: 'pub', topic, ref: ++ref };
      // retain 2: a retained publish without a payload clears the topic's retained value.
      if (o.retain !== 2) frame.payload = { ns, n: ++n };
      if (o.retain >= 1) frame.retain = true;
      const reply = await sockets[ns].request(frame);
      assert.equal(reply.t, 'ok', `publish ${JSON.stringify(frame)}: ${JSON.stringify(reply)}`);
      published[ns].push({ topic, n: frame.payload?.n, retain: o.retain === 2 ? 'clear' : o.retain >= 1 ? 'keep' : 'no' });
    } else {
      const pattern = patterns[o.pattern];
      // Per-topic positions name a topic the pattern matches (the hub refuses others).
      const named = topics.filter((t) => match(pattern, t));
      const replay = ['retained', { last: o.n }, { sinceSeq: o.n }, { sinceSeq: { [named[o.topic % named.length]]: o.n } }][o.replay];
      const id = 100 + subs.length;
      const socket = sockets[ns];
      const reply = await socket.request({ op: 'sub', id, pattern, replay });
      assert.equal(reply.t, 'ok', `subscription ${pattern} ${JSON.stringify(replay)}: ${JSON.stringify(reply)}`);
      subs.push({ ns, id, pattern, replay, o, at: published[ns].length, okAt: socket.frames.indexOf(reply) });
    }
  }
  // Every message delivered live to the monitors: their numbers are the model's.
  for (const ns of TENANTS) {
    const want = published[ns].length;
    const guard = Date.now() + 30_000; // a hang guard, not a timing assertion
    while (monitors[ns].messages().length < want) {
      assert.ok(Date.now() < guard, `${ns}'s monitor got ${monitors[ns].messages().length} of ${want} messages`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const all = {}; // ns → [{ topic, seq, n, retain }] in publish order
  for (const ns of TENANTS) {
    const seen = monitors[ns].messages().map((m) => m.msg);
    assert.equal(seen.length, published[ns].length, `${ns}'s monitor got only its messages`);
    all[ns] = published[ns].map((p, i) => {
      const m = seen[i];
      assert.equal(m.topic, p.topic, `${ns}'s monitor got its messages in publish order`);
      assert.equal(m.payload?.n, p.n);
      assert.ok(m.payload === undefined || m.payload.ns === ns, `${ns} got another tenant's message`);
      return { ...p, seq: m.seq };
    });
    // Each tenant numbers each topic on its own, consecutively.
    for (const topic of topics) {
      const seqs = all[ns].filter((m) => m.topic === topic).map((m) => m.seq);
      seqs.forEach((s, i) => assert.equal(s, seqs[0] + i, `${ns}'s numbers on ${topic} are consecutive: ${seqs}`));
    }
  }
  // Every subscription got its live messages: everything later that its pattern matches.
  for (const s of subs) {
    const socket = sockets[s.ns];
    const live = all[s.ns].slice(s.at).filter((m) => match(s.pattern, m.topic)).length;
    const guard = Date.now() + 30_000;
    const liveOf = () => socket.frames.slice(s.okAt).filter((f) => f.t === 'msg').flatMap((f) => f.m).filter(([ids]) => ids.includes(s.id));
    while (liveOf().length < live) {
      assert.ok(Date.now() < guard, `subscription ${s.id} got ${liveOf().length} of ${live} live messages`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  for (const s of subs) check(s, all[s.ns], sockets[s.ns], topics);
  for (const ns of TENANTS) {
    await sockets[ns].close();
    await monitors[ns].close();
  }
}

/** Subscription `s`'s replay, gaps and live messages against the model `mine` (its tenant's messages). */
function check(s, mine, socket, topics) {
  const name = `subscription ${s.id} (${s.ns}, ${s.pattern}, ${JSON.stringify(s.replay)})`;
  const before = mine.slice(0, s.at);
  const key = (m) => `${m.topic}#${m.seq}`;
  const replayed = [];
  const gaps = [];
  for (const f of socket.frames.slice(0, s.okAt)) {
    if (f.t === 'gap' && f.sub === s.id) gaps.push(...f.gaps);
    if (f.t === 'msg') for (const [ids, msg] of f.m) if (ids.includes(s.id)) replayed.push(msg);
  }
  const live = socket.frames.slice(s.okAt).filter((f) => f.t === 'msg').flatMap((f) => f.m)
    .filter(([ids]) => ids.includes(s.id)).map(([, msg]) => msg);
  // Topics of earlier runs match `>` too: only this run's are in the model.
  const ours = (m) => topics.includes(m.topic);
  replayed.splice(0, replayed.length, ...replayed.filter(ours));
  live.splice(0, live.length, ...live.filter(ours));
  gaps.splice(0, gaps.length, ...gaps.filter(ours));
  for (const m of [...replayed, ...live]) {
    assert.ok(m.payload === undefined || m.payload.ns === s.ns, `${name} got another tenant's message ${JSON.stringify(m)}`);
  }
  // Live: every later message its pattern matches, in publish order, each once.
  const wantLive = mine.slice(s.at).filter((m) => match(s.pattern, m.topic));
  assert.deepEqual(live.map((m) => [m.topic, m.seq, m.payload?.n]), wantLive.map((m) => [m.topic, m.seq, m.n]), `${name}: live messages`);
  // The replay: nothing twice, each topic in number order, each message as published.
  const got = new Set();
  const last = new Map();
  for (const m of replayed) {
    const k = key(m);
    assert.ok(!got.has(k), `${name} replayed ${k} twice`);
    got.add(k);
    const p = before.find((x) => key(x) === k);
    assert.ok(p !== undefined && p.n === m.payload?.n, `${name} replayed ${k} as it was published`);
    assert.ok(m.seq > (last.get(m.topic) ?? 0), `${name} replayed ${k} out of order`);
    last.set(m.topic, m.seq);
  }
  const matching = before.filter((m) => match(s.pattern, m.topic));
  if (s.replay === 'retained') {
    const retained = new Map();
    for (const m of matching) {
      if (m.retain === 'keep') retained.set(m.topic, key(m));
      else if (m.retain === 'clear') retained.delete(m.topic);
    }
    assert.deepEqual([...got].sort(), [...retained.values()].sort(), `${name}: the latest retained values`);
    assert.deepEqual(gaps, [], `${name}: a retained-values replay has no gaps`);
    return;
  }
  // By number: what was asked for.
  const asked = new Set();
  for (const topic of topics.filter((t) => match(s.pattern, t))) {
    const seqs = matching.filter((m) => m.topic === topic);
    const top = seqs.at(-1)?.seq ?? 0;
    for (const m of seqs) {
      const r = s.replay;
      const wanted = r.last !== undefined ? m.seq > top - r.last
        : typeof r.sinceSeq === 'number' ? m.seq > r.sinceSeq
          // Topics the positions do not name are replayed from their start.
          : m.seq > (r.sinceSeq[topic] ?? 0);
      if (wanted) asked.add(key(m));
    }
  }
  const extra = [...got].filter((k) => !asked.has(k));
  assert.deepEqual(extra, [], `${name} replayed what it did not ask for`);
  const covered = new Set(got);
  for (const g of gaps) {
    assert.ok(match(s.pattern, g.topic), `${name}: a gap on ${g.topic}`);
    for (let seq = g.fromSeq ?? 1; seq <= g.toSeq; seq++) {
      const k = `${g.topic}#${seq}`;
      assert.ok(!got.has(k), `${name} replayed ${k} and a gap naming it`);
      covered.add(k);
    }
  }
  const missing = [...asked].filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], `${name} neither replayed nor heard of these`);
  // The history holds the last HISTORY messages of a topic (and its retained value): those asked
  // for are replayed, not reported missing.
  for (const topic of topics) {
    const held = matching.filter((m) => m.topic === topic).slice(-HISTORY).map(key);
    for (const k of held) if (asked.has(k)) assert.ok(got.has(k), `${name}: ${k} is held, and was not replayed`);
  }
}

test('replay then live at the edge is whole, single and tenant-isolated, against a model of every message published', { timeout: 600_000 }, async () => {
  const runs = fc.sample(fc.array(op, { minLength: 1, maxLength: 24 }), { seed: SEED, numRuns: RUNS });
  for (let i = 0; i < runs.length; i++) {
    try {
      await run(i, runs[i]);
    } catch (e) {
      e.message = `seed ${SEED}, run ${i}: ${e.message}\noperations: ${JSON.stringify(runs[i])}`;
      throw e;
    }
  }
});
