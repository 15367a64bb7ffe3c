// Property test of retained values, history and bounded replay at the edge (`wrangler dev`) across
// crashes: random sequences of publishes (plain, retained, clearing; payloads of random size, some
// of them not ASCII), subscriptions with every kind of replay, followers (subscriptions that go
// away and come back with the last number they know of each topic, as a reconnecting client
// does), in-place evictions of an owner hub and SIGKILLs of the whole server (started again on the
// same persisted state), by two tenants on the very same topics, which four different hubs own.
// Checked against a model of every message each tenant published:
// - the numbers: each tenant's own on each topic, consecutive from 1, on from where they were
//   across crashes (every delivered message carries the model's number and payload);
// - every replay exactly: the messages the history holds (a topic's last HISTORY, and its retained
//   value) that it asked for, cut to the newest that fit REPLAY_MAX_MESSAGES and REPLAY_MAX_BYTES
//   (split evenly among the owner hubs the pattern spans), each topic's in number order; and gap
//   notices naming exactly the rest of what it asked for, each number once;
// - live messages: every later message a subscription's pattern matches, in publish order, once;
// - a follower over its whole life: every number of every topic it matches since it began, either
//   delivered (once, in number order) or reported in a gap notice (once), never both;
// - nothing of the other tenant, ever.
// Each run has namespaces of its own, so the replay bounds are shared with nothing else. (And, first,
// one fixed case: what a message weighs does not change when a wake puts it back.)
// Runs are seeded: EDGEBUS_PROPS_SEED and EDGEBUS_PROPS_RUNS override the defaults; a failure
// names the seed, the run and its operations (runs are not shrunk: each costs a live server's time).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic, hubsOfPattern } from '../../edge/src/routing.js';

const SEED = Number(process.env.EDGEBUS_PROPS_SEED ?? 20261206);
const RUNS = Number(process.env.EDGEBUS_PROPS_RUNS ?? 16);
const HUBS = 8;
const HISTORY = 5;
// A replay spanning every hub gets 3 messages and 450 bytes from each: the bounds cut often.
const REPLAY_MAX_MESSAGES = 24;
const REPLAY_MAX_BYTES = 3600;
const TENANTS = ['acme', 'bolt'];
const server = new EdgeServer({
  vars: {
    HISTORY_MAX_MESSAGES: String(HISTORY), HISTORY_WINDOW_MS: '3600000', EDGEBUS_DEV_ADMIN: '1',
    REPLAY_MAX_MESSAGES: String(REPLAY_MAX_MESSAGES), REPLAY_MAX_BYTES: String(REPLAY_MAX_BYTES),
  },
});

before(() => server.start(), { timeout: 120_000 });
after(() => server.dispose());

/** Four topics of run `run`, `<prefix>.a|b` under two prefixes, owned by four different hubs. */
function topicsOf(run) {
  const out = [];
  const hubs = new Set();
  for (let i = 0; out.length < 4; i++) {
    const topic = `rk${run}x${i}.${out.length % 2 === 0 ? 'a' : 'b'}`;
    const hub = hubOfTopic(topic, HUBS, 1);
    if (hubs.has(hub)) continue;
    hubs.add(hub);
    out.push(topic);
  }
  return out;
}

/** A topic prefix whose hub owns none of `topics`: the connections' home, which evictions spare. */
function homeOf(topics) {
  const owners = new Set(topics.map((t) => hubOfTopic(t, HUBS, 1)));
  for (let i = 0; ; i++) if (!owners.has(hubOfTopic(`home${i}`, HUBS, 1))) return `home${i}`;
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

const utf8 = new TextEncoder();
const PADS = ['x', 'é', '€'];

const op = fc.oneof(
  { weight: 16, arbitrary: fc.record({
    kind: fc.constant('publish'), tenant: fc.nat(1), topic: fc.nat(3), retain: fc.nat(3),
    count: fc.oneof({ weight: 3, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 2, max: 8 }) }),
    pad: fc.oneof({ weight: 3, arbitrary: fc.nat(30) }, { weight: 1, arbitrary: fc.integer({ min: 150, max: 700 }) }), char: fc.nat(2),
  }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('subscribe'), tenant: fc.nat(1), pattern: fc.nat(3), replay: fc.nat(3), n: fc.nat(7), topic: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('follow'), tenant: fc.nat(1), pattern: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('drop'), tenant: fc.nat(1), which: fc.nat(1) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('resume'), tenant: fc.nat(1), which: fc.nat(1) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('evict'), topic: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('kill') }) },
);

/** Waits (30 s at most: a hang guard, not a timing assertion) until `done()`. */
async function until(done, what) {
  const guard = Date.now() + 30_000;
  while (!done()) {
    assert.ok(Date.now() < guard, what());
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * What a replay asked of the model gets: per topic of `topics` that `pattern` matches, the
 * numbers asked for (`asked`), the messages replayed (`kept`, numbers in order) and the numbers
 * its gap notices must name (`gaps`: the rest of `asked`). Each owner hub answers for its topics:
 * the messages held (the last HISTORY of the topic, and its retained value) that were asked for,
 * the newest of them that fit its share of the bounds.
 */
function expectReplay(model, topics, pattern, replay) {
  const owners = hubsOfPattern(pattern, HUBS, 1).length;
  const maxMessages = Math.floor(REPLAY_MAX_MESSAGES / owners);
  const maxBytes = Math.floor(REPLAY_MAX_BYTES / owners);
  const out = new Map();
  const byOwner = new Map();
  for (const topic of topics.filter((t) => match(pattern, t))) {
    const log = model[topic];
    const top = log.at(-1)?.seq ?? 0;
    let retained;
    for (const m of log) {
      if (m.retain === 'keep') retained = m;
      else if (m.retain === 'clear') retained = undefined;
    }
    const held = log.slice(-HISTORY);
    if (retained !== undefined && !held.includes(retained)) held.unshift(retained);
    let asked;
    let candidates;
    if (replay === 'retained') {
      asked = retained === undefined ? [] : [retained.seq];
      candidates = retained === undefined ? [] : [retained];
    } else {
      const after = replay.last !== undefined ? Math.max(top - replay.last, 0)
        : typeof replay.sinceSeq === 'number' ? replay.sinceSeq
          : replay.sinceSeq[topic] ?? 0;
      asked = log.filter((m) => m.seq > after).map((m) => m.seq);
      candidates = held.filter((m) => m.seq > after);
    }
    out.set(topic, { asked, kept: [], gaps: [], cut: candidates.length });
    const owner = hubOfTopic(topic, HUBS, 1);
    byOwner.set(owner, [...(byOwner.get(owner) ?? []), ...candidates]);
  }
  for (const candidates of byOwner.values()) {
    candidates.sort((a, b) => a.order - b.order);
    let kept = 0;
    let bytes = 0;
    for (let i = candidates.length - 1; i >= 0; i--) {
      const m = candidates[i];
      if (kept === maxMessages || bytes + m.size > maxBytes) break;
      kept++;
      bytes += m.size;
    }
    for (const m of candidates.slice(candidates.length - kept)) out.get(m.topic).kept.push(m.seq);
  }
  // (`cut`: the messages held and asked for that the bounds left out.)
  for (const e of out.values()) {
    e.kept.sort((a, b) => a - b);
    e.gaps = e.asked.filter((s) => !e.kept.includes(s));
    e.cut -= e.kept.length;
  }
  return out;
}

/** The replay (messages and gap notices before its `ok`) and the live messages (after it) of subscription `id` on `socket`. */
function framesOf(socket, id, okAt, topics) {
  const replayed = [];
  const gaps = [];
  const live = [];
  socket.frames.forEach((f, i) => {
    if (f.t === 'gap' && f.sub === id) {
      assert.ok(i < okAt, `subscription ${id}: a gap notice after its ok`);
      gaps.push(...f.gaps);
    }
    if (f.t === 'msg') for (const [ids, msg] of f.m) if (ids.includes(id)) (i < okAt ? replayed : live).push(msg);
  });
  for (const g of gaps) assert.ok(topics.includes(g.topic), `subscription ${id}: a gap on another run's topic ${g.topic}`);
  for (const m of [...replayed, ...live]) assert.ok(topics.includes(m.topic), `subscription ${id}: a message of another run's topic ${m.topic}`);
  return { replayed, gaps, live };
}

/** Numbers a subscription's gap notices name, per topic; each at most once. */
function gapSeqs(gaps, name) {
  const out = new Map();
  for (const g of gaps) {
    assert.ok(Number.isSafeInteger(g.fromSeq) && g.fromSeq <= g.toSeq, `${name}: a gap with a start, ${JSON.stringify(g)}`);
    const seqs = out.get(g.topic) ?? [];
    for (let s = g.fromSeq; s <= g.toSeq; s++) {
      assert.ok(!seqs.includes(s), `${name}: ${g.topic}#${s} in two gap notices`);
      seqs.push(s);
    }
    out.set(g.topic, seqs);
  }
  for (const seqs of out.values()) seqs.sort((a, b) => a - b);
  return out;
}

/** A replay as the expectation says: the messages held and asked for, within the bounds; gap notices for exactly the rest. */
function checkReplay(name, ns, model, expected, replayed, gaps) {
  tally.replays++;
  if ([...expected.values()].some((e) => e.gaps.length > 0)) tally.gapped++;
  if ([...expected.values()].some((e) => e.cut > 0)) tally.cut++;
  const got = new Map();
  for (const m of replayed) {
    assert.ok(m.payload === undefined || m.payload.ns === ns, `${name} got another tenant's message ${JSON.stringify(m).slice(0, 200)}`);
    const p = model[m.topic].find((x) => x.seq === m.seq);
    assert.ok(p !== undefined && p.n === m.payload?.n, `${name} replayed ${m.topic}#${m.seq} as it was published (n ${p?.n}, got ${m.payload?.n})`);
    got.set(m.topic, [...(got.get(m.topic) ?? []), m.seq]);
  }
  const named = gapSeqs(gaps, name);
  for (const [topic, e] of expected) {
    assert.deepEqual(got.get(topic) ?? [], e.kept, `${name}: replayed of ${topic} (asked ${e.asked})`);
    assert.deepEqual(named.get(topic) ?? [], e.gaps, `${name}: gap notices of ${topic} (asked ${e.asked}, replayed ${e.kept})`);
  }
  for (const topic of [...got.keys(), ...named.keys()]) assert.ok(expected.has(topic), `${name}: replayed or a gap on ${topic}, which its pattern does not match`);
}

/** What the runs did (reported at the end: a property that never crashes the server proves little). */
const tally = { kill: 0, evict: 0, resume: 0, drop: 0, cut: 0, gapped: 0, replays: 0 };

async function run(index, ops) {
  const topics = topicsOf(`${SEED % 1000}r${index}`);
  const home = homeOf(topics);
  const patterns = ['>', `${topics[0].split('.')[0]}.*`, '*.a', topics[3]];
  const tenants = TENANTS.map((t) => `${t}${SEED % 1000}r${index}`);
  const tokens = {};
  for (const ns of tenants) tokens[ns] = await server.token({ pub: ['>'], sub: ['>'], ns });
  const open = (ns) => RawSocket.open(`${server.wsUrl}/connect?token=${tokens[ns]}&hub=${home}`);
  // The model: per tenant and topic, every message published, { seq, n, retain, size, order, topic }.
  const model = {};
  const log = {}; // per tenant, every message in publish order
  for (const ns of tenants) {
    model[ns] = Object.fromEntries(topics.map((t) => [t, []]));
    log[ns] = [];
  }
  const mains = {}; // per tenant: its socket for publishing and plain subscriptions (opened again after a crash)
  const subs = []; // plain subscriptions whose live messages are still checked
  const followers = { [tenants[0]]: [], [tenants[1]]: [] };
  let ref = 0;
  let n = 0;
  let order = 0;
  let sid = 100;

  const mainOf = async (ns) => {
    if (mains[ns] === undefined || mains[ns].closed !== undefined) mains[ns] = await open(ns);
    return mains[ns];
  };
  const tops = (ns) => Object.fromEntries(topics.map((t) => [t, model[ns][t].at(-1)?.seq ?? 0]));
  const liveWant = (ns, pattern, at) => log[ns].filter((m) => m.order > at && match(pattern, m.topic));

  // Plain subscriptions: once every live message has come, checked whole, then left alone (a crash
  // is no promise about live messages in flight).
  const settle = async () => {
    for (const s of subs.splice(0)) {
      const want = liveWant(s.ns, s.pattern, s.at);
      await until(() => framesOf(s.socket, s.id, s.okAt, topics).live.length >= want.length,
        () => `${s.name} got ${framesOf(s.socket, s.id, s.okAt, topics).live.length} of ${want.length} live messages`);
      const { replayed, gaps, live } = framesOf(s.socket, s.id, s.okAt, topics);
      checkReplay(s.name, s.ns, model[s.ns], s.expected, replayed, gaps);
      for (const m of live) assert.ok(m.payload === undefined || m.payload.ns === s.ns, `${s.name} got another tenant's message`);
      assert.deepEqual(live.map((m) => [m.topic, m.seq, m.payload?.n]), want.map((m) => [m.topic, m.seq, m.n]), `${s.name}: live messages`);
    }
  };

  // A follower's subscription (again): with the last number it knows of each topic, from the start
  // on topics it knows nothing of (the first time, live only).
  const subscribeFollower = async (f) => {
    const socket = await open(f.ns);
    const frame = { op: 'sub', id: f.id, pattern: f.pattern };
    if (f.incarnations.length > 0) frame.replay = f.known.size === 0 ? { sinceSeq: 0 } : { sinceSeq: Object.fromEntries(f.known) };
    const at = order;
    const reply = await socket.request(frame);
    assert.equal(reply.t, 'ok', `follower ${f.id}: ${JSON.stringify(reply)}`);
    f.incarnations.push({
      socket, frame, at, okAt: socket.frames.indexOf(reply),
      expected: frame.replay === undefined ? undefined : expectReplay(model[f.ns], topics, f.pattern, frame.replay),
    });
    f.online = true;
  };
  // What the follower's last connection received (it is closed): its replay exactly as expected,
  // its live messages what was published after it subscribed, each topic's a prefix (what was in
  // flight when it closed may be missing); then added to what it knows, each number once.
  const fold = (f) => {
    const inc = f.incarnations.at(-1);
    const name = `follower ${f.id} (${f.ns}, ${f.pattern}, connection ${f.incarnations.length}, ${JSON.stringify(inc.frame.replay)})`;
    const { replayed, gaps, live } = framesOf(inc.socket, f.id, inc.okAt, topics);
    if (inc.expected === undefined) assert.deepEqual([replayed, gaps], [[], []], `${name}: nothing replayed`);
    else checkReplay(name, f.ns, model[f.ns], inc.expected, replayed, gaps);
    const want = liveWant(f.ns, f.pattern, inc.at);
    for (const topic of topics) {
      const got = live.filter((m) => m.topic === topic).map((m) => [m.seq, m.payload?.n]);
      const all = want.filter((m) => m.topic === topic).map((m) => [m.seq, m.n]);
      assert.deepEqual(got, all.slice(0, got.length), `${name}: live messages of ${topic}`);
    }
    for (const [topic, seqs] of gapSeqs(gaps, name)) {
      for (const s of seqs) {
        assert.ok(!f.delivered.get(topic).includes(s) && !f.gapped.get(topic).includes(s), `${name}: a gap notice for ${topic}#${s}, which it had heard of`);
        f.gapped.get(topic).push(s);
      }
    }
    for (const m of [...replayed, ...live]) {
      const d = f.delivered.get(m.topic);
      assert.ok(m.seq > (d.at(-1) ?? 0), `${name}: ${m.topic}#${m.seq} after #${d.at(-1)}`);
      assert.ok(!f.gapped.get(m.topic).includes(m.seq), `${name}: ${m.topic}#${m.seq} delivered and named in a gap notice`);
      d.push(m.seq);
    }
    for (const topic of topics) {
      const last = Math.max(f.delivered.get(topic).at(-1) ?? 0, ...f.gapped.get(topic));
      if (last > 0) f.known.set(topic, last);
    }
    f.online = false;
  };

  for (const o of ops) {
    const ns = tenants[o.tenant ?? 0];
    if (o.kind === 'publish') {
      // `count` messages in a row, alike but for their numbers (a burst fills the history).
      for (let i = 0; i < o.count; i++) {
        const topic = topics[o.topic];
        const id = `${ns}-${++order}`;
        const frame = { op: 'pub', topic, ref: ++ref, id };
        // retain 2: a retained publish without a payload clears the topic's retained value.
        if (o.retain !== 2) frame.payload = { ns, n: ++n, pad: PADS[o.char].repeat(o.pad) };
        if (o.retain >= 1) frame.retain = true;
        const reply = await (await mainOf(ns)).request(frame);
        assert.equal(reply.t, 'ok', `publish ${JSON.stringify(frame).slice(0, 200)}: ${JSON.stringify(reply)}`);
        // Bytes as the hubs count them: the payload's JSON (UTF-8), topic, id and 64 of framing.
        const size = (frame.payload === undefined ? 0 : utf8.encode(JSON.stringify(frame.payload)).length) + topic.length + id.length + 64;
        const m = { topic, seq: model[ns][topic].length + 1, n: frame.payload?.n, retain: o.retain === 2 ? 'clear' : o.retain >= 1 ? 'keep' : 'no', size, order };
        model[ns][topic].push(m);
        log[ns].push(m);
      }
    } else if (o.kind === 'subscribe') {
      const pattern = patterns[o.pattern];
      // Per-topic positions name a topic the pattern matches (the hub refuses others).
      const named = topics.filter((t) => match(pattern, t));
      const replay = ['retained', { last: o.n }, { sinceSeq: o.n }, { sinceSeq: { [named[o.topic % named.length]]: o.n } }][o.replay];
      const id = ++sid;
      const socket = await mainOf(ns);
      const expected = expectReplay(model[ns], topics, pattern, replay);
      const reply = await socket.request({ op: 'sub', id, pattern, replay });
      assert.equal(reply.t, 'ok', `subscription ${pattern} ${JSON.stringify(replay)}: ${JSON.stringify(reply)}`);
      subs.push({ ns, id, pattern, socket, at: order, okAt: socket.frames.indexOf(reply), expected, name: `subscription ${id} (${ns}, ${pattern}, ${JSON.stringify(replay)}, tops ${JSON.stringify(tops(ns))})` });
    } else if (o.kind === 'follow') {
      if (followers[ns].length === 2) continue;
      const pattern = patterns[o.pattern];
      const f = { ns, id: ++sid, pattern, since: tops(ns), known: new Map(), incarnations: [], online: false,
        delivered: new Map(topics.map((t) => [t, []])), gapped: new Map(topics.map((t) => [t, []])) };
      followers[ns].push(f);
      await subscribeFollower(f);
    } else if (o.kind === 'drop' || o.kind === 'resume') {
      // One of the tenant's followers online (to drop), or offline (to resume).
      const some = followers[ns].filter((f) => f.online === (o.kind === 'drop'));
      const f = some[o.which % Math.max(some.length, 1)];
      if (f === undefined) continue;
      tally[o.kind]++;
      if (o.kind === 'drop') {
        await f.incarnations.at(-1).socket.close();
        fold(f);
      } else {
        await subscribeFollower(f);
      }
    } else if (o.kind === 'evict') {
      tally.evict++;
      await settle();
      const hub = hubOfTopic(topics[o.topic], HUBS, 1);
      const r = await server.post('/admin/evict', { hub }, await server.adminToken());
      assert.equal(r.status, 200, `evict hub ${hub}: ${JSON.stringify(r.body)}`);
      assert.notEqual(r.body.after, r.body.before, 'a new instance');
    } else if (o.kind === 'kill') {
      tally.kill++;
      await settle();
      const sockets = [...Object.values(mains), ...Object.values(followers).flat().filter((f) => f.online).map((f) => f.incarnations.at(-1).socket)];
      await server.crash();
      for (const s of sockets) await s.closedPromise;
      for (const f of Object.values(followers).flat()) if (f.online) fold(f);
    }
  }
  // The end: the plain subscriptions checked, every follower back and caught up.
  await settle();
  for (const f of Object.values(followers).flat()) {
    if (!f.online) await subscribeFollower(f);
    const inc = f.incarnations.at(-1);
    const want = liveWant(f.ns, f.pattern, inc.at).length;
    await until(() => framesOf(inc.socket, f.id, inc.okAt, topics).live.length >= want,
      () => `follower ${f.id} got ${framesOf(inc.socket, f.id, inc.okAt, topics).live.length} of ${want} live messages`);
    await inc.socket.close();
    fold(f);
    // Over its life: every number of its topics since it began, delivered or named in a gap
    // notice, once (fold checked: never both, never twice), none that does not exist.
    for (const topic of topics.filter((t) => match(f.pattern, t))) {
      const top = model[f.ns][topic].at(-1)?.seq ?? 0;
      const heard = new Set([...f.delivered.get(topic), ...f.gapped.get(topic)]);
      for (let s = f.since[topic] + 1; s <= top; s++) assert.ok(heard.has(s), `follower ${f.id} (${f.ns}, ${f.pattern}) never heard of ${topic}#${s}`);
      for (const s of heard) assert.ok(s >= 1 && s <= top, `follower ${f.id} heard of ${topic}#${s}, of ${top}`);
    }
  }
  for (const s of Object.values(mains)) if (s.closed === undefined) await s.close();
}

test('a message weighs the same after a wake: payload bytes in UTF-8, none for a clearing message, so REPLAY_MAX_BYTES cuts a replay where it did', { timeout: 60_000 }, async () => {
  const ns = `wake${SEED % 1000}`;
  const token = await server.token({ pub: ['>'], sub: ['>'], ns });
  const [wide, cleared] = topicsOf(`${SEED % 1000}w`);
  const socket = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=${homeOf([wide, cleared])}`);
  const bytes = (topic, id, payload) => (payload === undefined ? 0 : utf8.encode(JSON.stringify(payload)).length) + topic.length + id.length + 64;
  // Five messages of 902 bytes of JSON (302 UTF-16 units): the newest three fit in 3600 bytes.
  for (let i = 1; i <= 5; i++) {
    const reply = await socket.request({ op: 'pub', topic: wide, payload: '€'.repeat(300), id: `w${i}`, ref: i });
    assert.equal(reply.t, 'ok');
  }
  // A retained value and the message clearing it, which together weigh REPLAY_MAX_BYTES exactly.
  const payload = 'x'.repeat(REPLAY_MAX_BYTES - bytes(cleared, 'c2', undefined) - bytes(cleared, 'c1', ''));
  assert.equal(bytes(cleared, 'c1', payload) + bytes(cleared, 'c2', undefined), REPLAY_MAX_BYTES);
  assert.equal((await socket.request({ op: 'pub', topic: cleared, payload, retain: true, id: 'c1', ref: 6 })).t, 'ok');
  assert.equal((await socket.request({ op: 'pub', topic: cleared, retain: true, id: 'c2', ref: 7 })).t, 'ok');
  let id = 0;
  const replayOf = async (topic) => {
    const sub = ++id;
    const reply = await socket.request({ op: 'sub', id: sub, pattern: topic, replay: { last: 5 } });
    assert.equal(reply.t, 'ok');
    const upTo = socket.frames.indexOf(reply);
    const frames = socket.frames.slice(0, upTo);
    return {
      seqs: frames.filter((f) => f.t === 'msg').flatMap((f) => f.m).filter(([ids]) => ids.includes(sub)).map(([, m]) => m.seq),
      gaps: frames.filter((f) => f.t === 'gap' && f.sub === sub).flatMap((f) => f.gaps).map((g) => [g.fromSeq, g.toSeq]),
    };
  };
  const want = { [wide]: { seqs: [3, 4, 5], gaps: [[1, 2]] }, [cleared]: { seqs: [1, 2], gaps: [] } };
  for (const topic of [wide, cleared]) assert.deepEqual(await replayOf(topic), want[topic], `${topic}, as published`);
  for (const topic of [wide, cleared]) {
    const r = await server.post('/admin/evict', { hub: hubOfTopic(topic, HUBS, 1) }, await server.adminToken());
    assert.notEqual(r.body.after, r.body.before, 'a new instance');
  }
  for (const topic of [wide, cleared]) assert.deepEqual(await replayOf(topic), want[topic], `${topic}, put back after a wake`);
  await socket.close();
});

test('replay across SIGKILLs and evictions at the edge is exact within its bounds, whole over a follower\'s life and tenant-isolated, against a model of every message published', { timeout: 600_000 }, async (t) => {
  const runs = fc.sample(fc.array(op, { minLength: 15, maxLength: 40, size: 'max' }), { seed: SEED, numRuns: RUNS });
  for (let i = 0; i < runs.length; i++) {
    try {
      await run(i, runs[i]);
    } catch (e) {
      // (A new error: an assertion's stack, which the reporter prints, carries its message as made.)
      throw new Error(`seed ${SEED}, run ${i}: ${e.message}\noperations: ${JSON.stringify(runs[i])}`, { cause: e });
    }
  }
  t.diagnostic(`${RUNS} runs: ${tally.kill} SIGKILLs, ${tally.evict} evictions, ${tally.drop} followers dropped, ${tally.resume} resumed; `
    + `${tally.replays} replays checked, ${tally.gapped} with gap notices, ${tally.cut} cut by the bounds`);
});
