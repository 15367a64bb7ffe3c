// Property test of the edge deployment: random sequences of valid and hostile operations by two
// tenants, run against one `wrangler dev` server and checked against a small reference model.
//
// Tenants: A in the default namespace (a token without `ns`), B in the namespace `__proto__`. Both
// use the very same topics, groups and message ids. Each has a publisher (P), two fan-out
// subscribers (F1, F2) with overlapping and cross-hub wildcard patterns, a holder of a narrow token
// (N: `feed.a` only), two members (W1, W2) of the work queue `w<run>` on `jobs.r<run>` and the
// member (D) of a work queue on `$dead.w<run>`, which stores the dead letters. The model says:
//
// - fan-out: every accepted message reaches exactly the tenant's sockets that had a matching
//   subscription when it was published, once, with exactly the ids of the subscriptions it matched,
//   in publish order (every publish is awaited); nothing else arrives anywhere (no message of the
//   other tenant, no duplicate);
// - work queue: every stored message is delivered to one member at a time, attempts numbered
//   1, 2, ... (after a SIGKILL: the next attempt, or the one after it when the last delivery may
//   have left unobserved), a keyed message only once every earlier one of its key is done or dead,
//   and ends acknowledged or dead exactly once: acknowledged messages never come back, a message
//   refused (nack) or held by a consumer that went away on its last attempt is dead, with exactly one
//   letter on the tenant's own `$dead.w<run>` (its error and message as documented); nothing
//   stored is lost across restarts (the end of each run drains the queues);
// - acknowledgements: a token pending for the sending subscription is applied, one it answered
//   before is late (no reply, `lateAcks`), everything else (guessed, malformed, another member's,
//   connection's or tenant's, another subscription's, from before a reconnect or a restart) is
//   refused with one FORBIDDEN reply per operation counting them, and changes nothing;
// - every refused frame or operation gets its typed error reply (code, and ref where there is one)
//   and the connection keeps working (every operation is followed by a round trip on its socket);
// - retained values: a late subscriber with `replay: 'retained'` gets exactly its tenant's latest
//   retained value of each topic its pattern matches (publishes with `retain` on every path, kept
//   across runs, crashes and evictions), nothing of the other tenant's;
// - publish ids are per namespace and topic (the same id in both tenants, or on two topics, is never
//   a duplicate);
// - /stats: each tenant's namespace counters (published, duplicates, notStored, forbidden,
//   forbiddenAcks, badFrames, refused, acked, lateAcks, dead, deadPublished, tooLarge, tooDeep,
//   rate limits, delivered), connections, subscriptions and work queues match the model exactly;
//   hub errors, failed forwards and forgotten tokens stay at zero;
// - nothing hangs: every awaited reply, delivery and figure arrives within a bound, or the test
//   fails naming the operation.
//
// A few runs restart the server with SIGKILL (EdgeServer.crash) while deliveries are in flight.
// Runs are seeded: EDGEBUS_PROPS_SEED and EDGEBUS_PROPS_RUNS override the defaults; a failure
// prints the seed, the run and the operation. Runs are not shrunk (each costs seconds of a live
// server); the operations of the failing run are printed instead.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const SEED = Number(process.env.EDGEBUS_PROPS_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROPS_RUNS ?? 25);
const HUBS = 8;
const MAX_ATTEMPTS = 2;
const DLQ_ATTEMPTS = 100;
const ACK_TIMEOUT_MS = 600_000; // no ack deadline passes during a run
const WAIT_MS = 10_000;         // bound of every awaited reply, delivery or figure

const RATE = 200;                // publishes per second and WebSocket connection (floods exceed it)
const VIOLATIONS_TO_CLOSE = 3;
const server = new EdgeServer({
  vars: { EDGEBUS_DEV_ADMIN: '1', MAX_MESSAGES_PER_SECOND: String(RATE), PUBLISH_MESSAGES_PER_SECOND: '100000', RATE_VIOLATIONS_TO_CLOSE: String(VIOLATIONS_TO_CLOSE) },
});
let adminToken;

before(async () => {
  await server.start();
  adminToken = await server.adminToken();
}, { timeout: 120_000 });
after(() => server.dispose());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const json = (v) => JSON.stringify(v, (k, x) => (typeof x === 'string' && x.length > 80 ? `${x.slice(0, 40)}…(${x.length})` : x));

// ----- the model's own matching and claims ---------------------------------------------------------

/** Whether `pattern` matches `topic` (`*` one token, `>` one or more trailing tokens). */
function match(pattern, topic) {
  const p = pattern.split('.');
  const t = topic.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

const MAIN_CLAIMS = { pub: ['feed.>', 'news.>', 'jobs.>'], sub: ['feed.>', 'news.>', '*.a', 'jobs.>', '$dead.>', '*.audit'] };
const NARROW_CLAIMS = { pub: ['feed.a'], sub: ['feed.a'] };
const mayPublish = (narrow, topic) => (narrow ? topic === 'feed.a' : /^(feed|news|jobs)\./.test(topic));

const TOPICS = ['feed.a', 'feed.b', 'feed.m', 'feed.a.x', 'feed.__proto__', 'feed.constructor', 'news.a', 'news.b.c'];
const ROLES = ['P', 'F1', 'F2', 'N', 'W1', 'W2', 'D'];
/** Plain subscriptions each role starts with (id → pattern); W1/W2/D also hold their work-queue subscription 1. */
const PLAIN = {
  P: {}, F1: { 1: 'feed.*', 2: 'feed.a', 3: 'feed.>' }, F2: { 1: '*.a', 2: 'news.>', 3: 'feed.a.*' }, N: { 1: 'feed.a' },
  W1: { 2: 'feed.m' }, W2: {}, D: {},
};
/** Subscriptions `flip` turns off and on again: [role, id] (W1/W2 1: a work-queue member leaves and joins again). */
const FLIPPABLE = [['F1', 1], ['F1', 2], ['F1', 3], ['F2', 1], ['F2', 2], ['F2', 3], ['N', 1], ['W1', 2], ['W1', 1], ['W2', 1]];
const HOMES = [undefined, 'feed', 'jobs', 'news', 'zz'];
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** A delivery token's shape (22 base64url characters) that no hub handed out. */
function guess(salt) {
  let x = (salt >>> 0) || 1;
  let s = '';
  for (let i = 0; i < 22; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += B64[(x >>> 16) & 63];
  }
  return s;
}

/** Payloads: JSON round-tripped (what a receiver sees), some with own `__proto__` / `constructor` keys. */
function payloadOf(tenant, n, extra) {
  const base = { tenant: tenant.name, run: tenant.run.n, n };
  const text = [
    JSON.stringify(base),
    `{"tenant":"${tenant.name}","run":${tenant.run.n},"n":${n},"__proto__":{"polluted":"yes","tenant":"X"},"constructor":{"prototype":{"x":1}}}`,
    JSON.stringify({ ...base, s: 'ü€😀\u0000\u2028', neg: -0, big: 1e308, tiny: -5e-324 }),
    JSON.stringify({ ...base, big: 'y'.repeat(60_000) }),
    JSON.stringify({ ...base, v: null, deep: [[[[[]]]]], empty: {} }),
  ][extra % 5];
  return JSON.parse(text);
}

// ----- the model -------------------------------------------------------------------------------------

const COUNTED = ['published', 'duplicates', 'notStored', 'forbidden', 'forbiddenAcks', 'badFrames', 'refused', 'acked', 'lateAcks',
  'dead', 'deadPublished', 'tooLarge', 'tooDeep', 'rateLimited', 'rateClosed', 'dropped'];

class Failure extends Error {}
function fail(run, message) {
  throw new Failure(`run ${run.n}, ${run.label}: ${message}`);
}

/** A work queue as the model sees it: its messages (jobs) by id, each with its delivery state. */
class Queue {
  constructor(tenant, group, pattern, maxAttempts) {
    Object.assign(this, { tenant, group, pattern, maxAttempts, jobs: new Map(), seq: 0 });
  }

  add(id, topic, payload, key) {
    const job = {
      id, topic, payload, key, seq: this.seq++, state: 'open', pending: undefined, last: 0, minNext: 1, maxNext: 1,
      dead: undefined, mustDie: false, msg: undefined,
    };
    this.jobs.set(id, job);
    return job;
  }

  open() { return [...this.jobs.values()].filter((j) => j.state === 'open'); }
  count(state) { return [...this.jobs.values()].filter((j) => j.state === state).length; }
  /** An earlier message of the same key not finished yet holds `job` back. */
  blocked(job) {
    return job.key !== undefined && [...this.jobs.values()].some((j) => j.key === job.key && j.seq < job.seq && j.state === 'open');
  }
}

function newTenant(run, name, ns) {
  const t = { run, name, ns, cnt: Object.fromEntries(COUNTED.map((k) => [k, 0])), delivered: 0, frames: 0, slack: 0, base: undefined, actors: {} };
  t.jobs = new Queue(t, `w${run.n}`, `jobs.r${run.n}`, MAX_ATTEMPTS);
  t.dlq = new Queue(t, `dlq${run.n}`, `$dead.w${run.n}`, DLQ_ATTEMPTS);
  for (const role of ROLES) {
    const subs = new Map(Object.entries(PLAIN[role]).map(([id, pattern]) => [Number(id), { pattern }]));
    if (role === 'W1' || role === 'W2') subs.set(1, { pattern: t.jobs.pattern, group: t.jobs.group, queue: t.jobs });
    if (role === 'D') subs.set(1, { pattern: t.dlq.pattern, group: t.dlq.group, queue: t.dlq });
    t.actors[role] = { tenant: t, role, name: `${name}.${role}`, narrow: role === 'N', subs, sock: undefined, home: undefined, gen: 0 };
  }
  return t;
}

function count(tenant, key, n = 1) {
  tenant.cnt[key] += n;
}

/** Counts of a refusal reply, as the hub counts them (frames.js `refused`). */
function countReply(tenant, r) {
  if (r.t !== 'err') return;
  if (r.refused !== undefined) count(tenant, 'forbiddenAcks', r.refused);
  else if (r.code === 'FORBIDDEN') count(tenant, 'forbidden');
  else if (r.code === 'MESSAGE_TOO_LARGE' || r.code === 'REQUEST_TOO_LARGE') count(tenant, 'tooLarge');
  else if (r.code === 'PAYLOAD_TOO_DEEP') count(tenant, 'tooDeep');
  else if (r.code === 'RATE_LIMITED') count(tenant, 'rateLimited');
  else count(tenant, 'refused');
  if (r.frame) count(tenant, 'badFrames');
}

// ----- sockets --------------------------------------------------------------------------------------

async function within(run, promise, what, ms = WAIT_MS) {
  let timer;
  const guard = new Promise((_, reject) => { timer = setTimeout(() => reject(new Failure(`run ${run.n}, ${run.label}: no ${what} within ${ms} ms`)), ms); });
  try {
    return await Promise.race([promise, guard]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until `missing()` (after processing every frame received) answers nothing; fails naming what is missing. */
async function until(run, missing, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    observe(run);
    const m = await missing();
    if (m === undefined) return;
    if (Date.now() > end) fail(run, `still waiting after ${ms} ms for ${m}`);
    await sleep(10);
  }
}

async function openActor(run, actor, homeIndex = 0) {
  const { tenant } = actor;
  actor.home = HOMES[homeIndex % HOMES.length];
  const token = actor.narrow ? tenant.narrowToken : tenant.token;
  const url = `${server.wsUrl}/connect?token=${token}${actor.home === undefined ? '' : `&hub=${encodeURIComponent(actor.home)}`}`;
  const sock = await within(run, RawSocket.open(url), `connection of ${actor.name}`);
  Object.assign(sock, { actor, name: `${actor.name}#${++actor.gen}`, seen: 0, expect: [], fi: 0, live: true, tokens: [] });
  run.socks.push(sock);
  actor.sock = sock;
  const hello = await within(run, sock.waitFor((f) => f.t === 'hello', 0, 'hello'), `hello of ${sock.name}`);
  sock.hub = hello.hub;
  if (hello.ns !== tenant.ns) fail(run, `${sock.name} was told namespace ${json(hello.ns)}, its token says ${tenant.ns}`);
  for (const [id, s] of actor.subs) {
    const op = { op: 'sub', id, pattern: s.pattern };
    if (s.group !== undefined) Object.assign(op, { group: s.group, maxAttempts: s.queue.maxAttempts, ackTimeoutMs: ACK_TIMEOUT_MS });
    await exchange(run, sock, op, [{ t: 'ok', op: 'sub', ref: id }]);
  }
}

let syncs = 0;
/**
 * Sends `frame` on `sock`, then an `unsub` of an unknown id whose refusal marks the end of the
 * frame's replies (frames of a connection are handled in order): the replies (ok, err, pong) in
 * between must be exactly `expected` (each expected field equal; every err has a message), and are
 * counted in the model.
 */
async function exchange(run, sock, frame, expected, tokensSent = []) {
  const tenant = sock.actor.tenant;
  const from = sock.frames.length;
  if (frame instanceof Uint8Array) sock.ws.send(frame);
  else sock.send(frame);
  const id = 900_000_000 + ++syncs;
  sock.send({ op: 'unsub', id });
  count(tenant, 'refused');
  let end = -1;
  await until(run, () => {
    end = sock.frames.findIndex((f, i) => i >= from && f.t === 'err' && f.op === 'unsub' && f.ref === id);
    if (end >= 0) return undefined;
    if (sock.closed !== undefined) fail(run, `${sock.name} closed (${sock.closed.code} ${sock.closed.reason}) before answering ${json(frame)}`);
    return `the replies of ${sock.name} to ${json(frame)}`;
  });
  if (sock.frames[end].code !== 'UNKNOWN_SUBSCRIPTION') fail(run, `the round trip after ${json(frame)} was answered ${json(sock.frames[end])}`);
  const replies = sock.frames.slice(from, end).filter((f) => f.t === 'ok' || f.t === 'err' || f.t === 'pong');
  const same = replies.length === expected.length && expected.every((e, i) => Object.keys(e).every((k) => k === 'frame' || replies[i][k] === e[k]));
  if (!same) fail(run, `${sock.name} sent ${json(frame)}: replies ${json(replies)}, expected ${json(expected)}`);
  for (const r of replies) {
    if (r.t !== 'err') continue;
    if (typeof r.message !== 'string' || r.message.length === 0) fail(run, `an error reply without a message: ${json(r)}`);
    for (const d of tokensSent) if (typeof d === 'string' && d.length >= 8 && r.message.includes(d)) fail(run, `a refusal echoed a token: ${json(r)}`);
  }
  for (const e of expected) countReply(tenant, e);
  return replies;
}

// ----- observing what arrives ------------------------------------------------------------------------

/** Processes every frame received since the last call, on every socket of the run, against the model. */
function observe(run) {
  for (const sock of run.socks) {
    for (; sock.seen < sock.frames.length; sock.seen++) {
      const f = sock.frames[sock.seen];
      if (f.t !== 'msg') continue;
      sock.actor.tenant.frames++;
      if (f.dropped !== undefined) fail(run, `${sock.name} was told ${f.dropped} message(s) were dropped`);
      for (const [subs, msg, d, attempt] of f.m) {
        sock.actor.tenant.delivered++;
        if (d === undefined) feedArrived(run, sock, subs, msg);
        else workArrived(run, sock, subs, msg, d, attempt);
      }
    }
  }
}

function feedArrived(run, sock, subs, msg) {
  const tenant = sock.actor.tenant;
  if (msg?.payload?.tenant !== undefined && msg.payload.tenant !== tenant.name) {
    fail(run, `${sock.name} (tenant ${tenant.name}) received tenant ${msg.payload.tenant}'s message ${json(msg)}`);
  }
  const e = sock.expect[sock.fi];
  const got = { subs: [...subs].sort((a, b) => a - b), topic: msg.topic, payload: msg.payload, id: msg.id, key: msg.key };
  if (e === undefined) fail(run, `${sock.name} received an unexpected message ${json(got)}`);
  const want = { subs: e.subs, topic: e.topic, payload: e.payload, id: e.id ?? msg.id, key: undefined };
  try {
    assert.deepStrictEqual(got, want);
  } catch {
    fail(run, `${sock.name} received ${json(got)}, expected next ${json(want)} (message ${sock.fi + 1} of ${sock.expect.length} expected)`);
  }
  if (typeof msg.id !== 'string' || typeof msg.publishedAt !== 'number') fail(run, `${sock.name}: a message without id or publishedAt ${json(msg)}`);
  sock.fi++;
}

function workArrived(run, sock, subs, msg, d, attempt) {
  const actor = sock.actor;
  const tenant = actor.tenant;
  const queue = actor.subs.get(1)?.queue;
  if (queue === undefined || !sock.live) fail(run, `${sock.name} (not a live member) received a work-queue delivery ${json(msg)}`);
  if (subs.length !== 1 || subs[0] !== 1) fail(run, `${sock.name}: a delivery for subscriptions ${json(subs)}, the member is subscription 1`);
  if (typeof d !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(d) || run.tokens.has(d)) fail(run, `${sock.name}: a delivery token ${json(d)} that is malformed or not new`);
  let job = queue.jobs.get(msg.id);
  if (job === undefined && queue === tenant.dlq) job = letterArrived(run, tenant, msg);
  if (job === undefined) fail(run, `${sock.name} received ${json(msg)}, which tenant ${tenant.name} never published to ${queue.pattern}`);
  if (job.msg === undefined) {
    const want = { topic: job.topic, payload: job.payload, id: job.id };
    if (job.key !== undefined) want.key = job.key;
    const got = { topic: msg.topic, payload: msg.payload, id: msg.id };
    if (msg.key !== undefined) got.key = msg.key;
    try {
      assert.deepStrictEqual(got, want);
    } catch {
      fail(run, `${sock.name} received ${json(msg)}, published as ${json(want)}`);
    }
    if (typeof msg.publishedAt !== 'number') fail(run, `${sock.name}: no publishedAt in ${json(msg)}`);
    job.msg = msg;
  } else {
    try {
      assert.deepStrictEqual(msg, job.msg);
    } catch {
      fail(run, `${sock.name}: ${job.id} delivered again as ${json(msg)}, first as ${json(job.msg)}`);
    }
  }
  if (job.state !== 'open') fail(run, `${sock.name} received ${job.id} (attempt ${attempt}), which is ${job.state} already`);
  if (job.dead !== undefined || job.mustDie) fail(run, `${sock.name} received ${job.id} (attempt ${attempt}), which must be dead`);
  if (job.pending !== undefined) fail(run, `${job.id} delivered to ${sock.name} (attempt ${attempt}) while ${job.pending.sock.name} holds attempt ${job.last}`);
  if (!Number.isInteger(attempt) || attempt < job.minNext || attempt > Math.min(job.maxNext, queue.maxAttempts)) {
    fail(run, `${job.id} delivered to ${sock.name} as attempt ${attempt}; expected ${job.minNext}..${Math.min(job.maxNext, queue.maxAttempts)}`);
  }
  if (job.key !== undefined) {
    for (const j of queue.jobs.values()) {
      if (j.key !== job.key || j.seq >= job.seq || j.state !== 'open' || j.dead !== undefined) continue;
      // An earlier message of the key is neither done nor dead: only a restart may have made it
      // dead unseen (its letter comes later); then it must never be delivered again.
      if (j.pending === undefined && j.maxNext > queue.maxAttempts) j.mustDie = true;
      else fail(run, `${job.id} (key ${job.key}) delivered to ${sock.name} before the earlier ${j.id} of its key was done or dead`);
    }
  }
  job.pending = { sock, d, attempt };
  job.last = attempt;
  job.minNext = attempt + 1;
  job.maxNext = attempt + 1;
  const rec = { d, job, queue, sock, state: 'pending' };
  run.tokens.set(d, rec);
  sock.tokens.push(rec);
}

/** A dead letter the model has not seen yet: it must be one of the tenant's messages that could be dead. */
function letterArrived(run, tenant, msg) {
  const q = tenant.jobs;
  const p = msg.payload;
  const job = q.jobs.get(p?.message?.id);
  if (job === undefined || p.message.payload?.tenant !== tenant.name) fail(run, `tenant ${tenant.name}'s dead letters received ${json(msg)}`);
  const letterId = `${job.id}@${q.pattern}@${tenant.dlq.pattern}`;
  if (msg.topic !== tenant.dlq.pattern || msg.id !== letterId) fail(run, `dead letter ${json(msg)}: expected topic ${tenant.dlq.pattern}, id ${letterId}`);
  const mayDie = job.state === 'open' && (job.dead !== undefined || job.mustDie || (job.pending === undefined && job.maxNext > q.maxAttempts));
  if (!mayDie) fail(run, `${job.id} was dead-lettered, but it is ${job.state === 'open' ? `open with attempts left (last ${job.last})` : job.state}`);
  const want = {
    group: q.group, topic: q.pattern, attempts: q.maxAttempts,
    error: job.dead?.error ?? { code: 'HANDLER_TIMEOUT', message: p.error?.message },
    message: job.msg ?? p.message,
  };
  if (job.dead?.leave) want.error = { code: 'HANDLER_FAILED', message: p.error?.message };
  try {
    assert.deepStrictEqual(p, want);
  } catch {
    fail(run, `dead letter of ${job.id}: ${json(p)}, expected ${json(want)}`);
  }
  if (job.dead?.leave && !/consumer/.test(p.error.message)) fail(run, `dead letter of ${job.id} (its consumer left): error ${json(p.error)}`);
  if (job.dead === undefined && !/not acknowledged/.test(p.error.message)) fail(run, `dead letter of ${job.id} after a restart: error ${json(p.error)}`);
  if (job.msg === undefined) {
    const m = { topic: job.topic, payload: job.payload, id: job.id, publishedAt: p.message.publishedAt };
    if (job.key !== undefined) m.key = job.key;
    try {
      assert.deepStrictEqual(p.message, m);
    } catch {
      fail(run, `dead letter of ${job.id} carries ${json(p.message)}`);
    }
  }
  job.state = 'dead';
  job.pending = undefined;
  count(tenant, 'dead');
  count(tenant, 'deadPublished');
  count(tenant, 'published');
  return tenant.dlq.add(letterId, msg.topic, p, undefined);
}

/** A pending delivery answered by the model: the token becomes answered (its replay is late). */
function answered(rec) {
  rec.state = 'answered';
  if (rec.job.pending?.d === rec.d) rec.job.pending = undefined;
}

/**
 * The model applies an acknowledgement before it is sent: what it unblocks (the next message of
 * its key) may arrive before the round trip that follows it.
 */
function acknowledged(rec) {
  answered(rec);
  rec.job.state = 'done';
  count(rec.sock.actor.tenant, 'acked');
}

/** A refusal (nack), applied before it is sent: the retry, or the message's death after its last attempt. */
function refuse(rec, error) {
  answered(rec);
  const job = rec.job;
  if (job.last >= rec.queue.maxAttempts) job.dead = { error };
}

// ----- quiescence and /stats ----------------------------------------------------------------------

/** What the run still waits for: expected fan-out messages, deliveries, dead letters; undefined when quiet. */
function missing(run) {
  for (const sock of run.socks) {
    if (sock.live && sock.fi < sock.expect.length) return `${sock.name} to receive ${json(sock.expect[sock.fi])}`;
  }
  for (const t of run.tenants) {
    for (const q of [t.jobs, t.dlq]) {
      for (const job of q.open()) {
        if (job.pending !== undefined || (job.dead === undefined && (q.blocked(job) || members(q).length === 0))) continue;
        return job.dead !== undefined ? `the dead letter of ${t.name}'s ${job.id}` : `a delivery (or the dead letter) of ${t.name}'s ${q.group} message ${job.id}, attempt ${job.minNext}..${job.maxNext}`;
      }
    }
  }
  return undefined;
}

const settle = (run) => until(run, () => missing(run));

function groupsOf(t) {
  const row = (q, members) => ({
    group: q.group, pattern: q.pattern, members, stored: q.count('open'), inFlight: q.open().filter((j) => j.pending !== undefined).length,
    done: q.count('done'), dead: q.count('dead'), dropped: 0, expired: 0,
  });
  return [row(t.jobs, members(t.jobs).length), row(t.dlq, members(t.dlq).length)];
}

async function statsDiffs(run) {
  const diffs = [];
  for (const t of run.tenants) {
    const v = await server.stats(t.token);
    if (v.ns !== t.ns) diffs.push(`${t.name}: /stats of namespace ${v.ns}`);
    for (const k of COUNTED) {
      const got = v.total[k] - t.base.total[k];
      if (got !== t.cnt[k]) diffs.push(`${t.name} ${k}: ${got}, model ${t.cnt[k]}`);
    }
    const delivered = v.total.delivered - t.base.total.delivered;
    t.seenDelivered = delivered;
    if (delivered < t.delivered || delivered > t.delivered + t.slack) diffs.push(`${t.name} delivered: ${delivered}, observed ${t.delivered} (+${t.slack} lost in restarts)`);
    // A frame is counted before it leaves: one lost in a restart carried one of the lost deliveries.
    const frames = v.total.frames - t.base.total.frames;
    t.seenFrames = frames;
    if (frames < t.frames || frames > t.frames + t.slack) diffs.push(`${t.name} frames: ${frames}, observed ${t.frames} (+${t.slack} lost in restarts)`);
    const actors = Object.values(t.actors).filter((a) => a.sock?.live);
    const conns = v.total.connections - t.base.total.connections;
    const subs = v.total.subscriptions - t.base.total.subscriptions;
    const modelSubs = actors.reduce((n, a) => n + a.subs.size, 0);
    if (conns !== actors.length || subs !== modelSubs) diffs.push(`${t.name}: ${conns} connections, ${subs} subscriptions; model ${actors.length}, ${modelSubs}`);
    const mine = v.groups.filter((g) => g.pattern.endsWith(`.r${run.n}`) || g.pattern.endsWith(`.w${run.n}`) || g.pattern.endsWith(`.p${run.n}`));
    const got = mine.map((g) => ({ group: g.group, pattern: g.pattern, members: g.members, stored: g.stored, inFlight: g.inFlight, done: g.done, dead: g.dead, dropped: g.dropped, expired: g.expired }))
      .sort((a, b) => a.group.localeCompare(b.group));
    const want = groupsOf(t).sort((a, b) => a.group.localeCompare(b.group));
    if (json(got) !== json(want)) diffs.push(`${t.name} work queues: ${json(got)}, model ${json(want)}`);
    for (const g of mine) if ((g.stored === 0) !== (g.bytes === 0)) diffs.push(`${t.name} ${g.group}: ${g.stored} stored in ${g.bytes} bytes`);
  }
  const all = (await server.stats(adminToken)).total;
  // The deployment-wide counters are the hubs' own (not the sum of the namespace views): only the
  // two tenants use the server, so they must add up to the model's figures of both.
  const sum = (k) => run.tenants.reduce((n, t) => n + t.cnt[k], 0);
  const want = { errors: 0, forwardFailed: 0, tokensForgotten: 0, streamsDeleted: run.deleted, streamDiscarded: run.discarded };
  for (const k of COUNTED) want[k] = sum(k);
  for (const [k, n] of Object.entries(want)) {
    if (all[k] - run.base[k] !== n) diffs.push(`deployment ${k}: ${all[k] - run.base[k]}, model ${n}`);
  }
  const frames = run.tenants.reduce((n, t) => n + t.seenFrames, 0);
  if (all.frames - run.base.frames !== frames) diffs.push(`deployment frames: ${all.frames - run.base.frames}, the namespaces' ${frames}`);
  const delivered = run.tenants.reduce((n, t) => n + t.seenDelivered, 0);
  if (all.delivered - run.base.delivered !== delivered) diffs.push(`deployment delivered: ${all.delivered - run.base.delivered}, the namespaces' ${delivered}`);
  if (all.deadPending !== 0) diffs.push(`deployment deadPending: ${all.deadPending}`);
  return diffs;
}

/** Quiescence, then /stats against the model (figures that follow a leave or a close may lag: polled). */
async function checkpoint(run, ackLetters = false) {
  await settle(run);
  if (ackLetters) {
    for (const t of run.tenants) {
      const recs = t.actors.D.sock.tokens.filter((r) => r.state === 'pending');
      if (recs.length === 0) continue;
      for (const r of recs) acknowledged(r);
      await exchange(run, t.actors.D.sock, { op: 'ack', sub: 1, d: recs.map((r) => r.d) }, []);
    }
  }
  await sleep(20);
  await settle(run);
  const end = Date.now() + 5000;
  let diffs;
  while ((diffs = await statsDiffs(run)).length > 0 && Date.now() < end) {
    await sleep(50);
    observe(run);
  }
  if (diffs.length > 0) fail(run, `/stats disagree with the model:\n  ${diffs.join('\n  ')}`);
}

// ----- operations -------------------------------------------------------------------------------------

const other = (run, t) => run.tenants[1 - run.tenants.indexOf(t)];
/** The live actors that are members of `q` (subscription 1 of W1, W2 or D). */
const members = (q) => ['W1', 'W2', 'D'].map((r) => q.tenant.actors[r]).filter((a) => a.sock?.live && a.subs.get(1)?.queue === q);
const pendingOf = (sock) => sock.tokens.filter((r) => r.state === 'pending');

/** The expected receivers of a message on `topic` published now by `t`: per socket, the ids of the subscriptions it matches. */
function fanOut(t, topic, payload, id) {
  for (const a of Object.values(t.actors)) {
    if (!a.sock?.live) continue;
    const subs = [...a.subs].filter(([, s]) => s.group === undefined && match(s.pattern, topic)).map(([i]) => i).sort((x, y) => x - y);
    if (subs.length > 0) a.sock.expect.push({ topic, payload, id, subs });
  }
}

/** Whether a publish with `id` on `topic` is a duplicate (ids are per namespace and topic); remembers it. */
function duplicate(run, t, topic, id) {
  if (id === undefined) return false;
  const k = `${t.ns}|${topic}|${id}`;
  if (run.ids.has(k)) return true;
  run.ids.add(k);
  return false;
}

/** A publish accepted by the model: counted, fanned out, stored by the tenant's work queue when it is its topic. */
function accepted(run, t, m) {
  if (duplicate(run, t, m.topic, m.id)) {
    count(t, 'duplicates');
    return 'dup';
  }
  count(t, 'published');
  if (m.retain === true) RETAINED[t.name].set(m.topic, m.payload);
  if (m.topic === t.jobs.pattern) {
    t.jobs.add(m.id, m.topic, m.payload, m.key);
    return 'stored';
  }
  count(t, 'notStored');
  fanOut(t, m.topic, m.payload, m.id);
  return 'not stored';
}

async function publish(run, t, via, msgs) {
  const narrow = via === 'narrow' || via === 'httpNarrow';
  if (via === 'wsBatch') {
    // One frame of publishes (one owner): taken in order, answered in order in one frame.
    const ops = msgs.map((m) => ({ op: 'pub', topic: m.topic, payload: m.payload, ref: `p${++run.refs}`, ...(m.id === undefined ? {} : { id: m.id }), ...(m.retain ? { retain: true } : {}) }));
    const replies = msgs.map((m, i) => {
      const r = accepted(run, t, m);
      return r === 'dup' ? { t: 'ok', op: 'pub', ref: ops[i].ref, dup: true } : { t: 'ok', op: 'pub', ref: ops[i].ref, stored: r === 'stored' };
    });
    await exchange(run, t.actors.P.sock, ops, replies);
    return;
  }
  if (via === 'ws' || via === 'narrow') {
    const sock = t.actors[narrow ? 'N' : 'P'].sock;
    for (const m of msgs) {
      const ref = `p${++run.refs}`;
      const op = { op: 'pub', topic: m.topic, payload: m.payload, ref };
      if (m.id !== undefined) op.id = m.id;
      if (m.key !== undefined) op.key = m.key;
      if (m.retain) op.retain = true;
      if (!mayPublish(narrow, m.topic)) {
        await exchange(run, sock, op, [{ t: 'err', op: 'pub', ref, code: 'FORBIDDEN' }]);
        continue;
      }
      // The model decides before the reply: the replies of one socket come in order.
      const r = accepted(run, t, m);
      const reply = r === 'dup' ? { t: 'ok', op: 'pub', ref, dup: true } : { t: 'ok', op: 'pub', ref, stored: r === 'stored' };
      await exchange(run, sock, op, [reply]);
    }
    return;
  }
  const token = narrow ? t.narrowToken : t.token;
  const body = msgs.map((m) => {
    const b = { topic: m.topic, payload: m.payload };
    if (m.id !== undefined) b.id = m.id;
    if (m.key !== undefined) b.key = m.key;
    if (m.retain) b.retain = true;
    return b;
  });
  const res = await within(run, server.post('/publish', via === 'batch' ? body : body[0], token), `the answer of POST /publish ${json(body)}`);
  const refusedAt = msgs.findIndex((m) => !mayPublish(narrow, m.topic));
  if (refusedAt >= 0) {
    if (res.status !== 403 || res.body.error?.code !== 'FORBIDDEN') fail(run, `POST /publish ${json(body)} outside the token's claims: ${res.status} ${json(res.body)}`);
    return;
  }
  const results = msgs.map((m) => {
    const r = accepted(run, t, m);
    return r === 'dup' ? { accepted: false, duplicate: true } : { accepted: true, stored: r === 'stored' };
  });
  const want = via === 'batch' ? { results } : results[0];
  if (res.status !== 200 || json(res.body) !== json(want)) fail(run, `POST /publish ${json(body)}: ${res.status} ${json(res.body)}, expected ${json(want)}`);
}

/** Acknowledges (or refuses) one pending delivery of a member, as that member. */
async function answer(run, t, op) {
  const sock = t.actors[op.who].sock;
  const recs = pendingOf(sock);
  if (recs.length === 0) return;
  const rec = recs[op.pick % recs.length];
  if (!op.nack) {
    acknowledged(rec);
    await exchange(run, sock, { op: 'ack', sub: 1, d: [rec.d] }, []);
    return;
  }
  // The reason as the letter carries it: text up to 500 characters, else the default.
  const reasons = [[`refused-${run.refs}`, `refused-${run.refs}`], ['x'.repeat(2000), 'x'.repeat(500)], [42, 'refused by the consumer']];
  const [error, message] = reasons[op.why % reasons.length];
  refuse(rec, { code: 'HANDLER_FAILED', message });
  await exchange(run, sock, { op: 'nack', sub: 1, d: [rec.d], error }, []);
}

/** Acknowledgements that must be refused (or are late), from any socket of the tenant. */
async function hostileAck(run, t, op) {
  const actor = t.actors[op.who];
  const sock = actor.sock;
  const kind = op.nack ? 'nack' : 'ack';
  const member = actor.subs.get(1)?.group !== undefined;
  const own = member ? pendingOf(sock) : [];
  // Tokens of the actor's own work queue's topic first: those reach the owner that delivered them
  // (and knows them), where telling their kinds apart is the owner's decision, not the home's.
  const mine = actor.subs.get(1)?.queue;
  const pick = (list) => {
    const near = list.filter((r) => r.queue.pattern === mine?.pattern);
    const from = near.length > 0 && op.salt % 4 !== 0 ? near : list;
    return from[op.pick % from.length];
  };
  const others = (pred) => [...run.tokens.values()].filter((r) => r.state === 'pending' && pred(r));
  const refused = (d, sub = 1, n = d.length) => ({ frame: { op: kind, sub, d }, reply: [{ t: 'err', op: kind, sub, code: 'FORBIDDEN', refused: n }] });
  let plan;
  switch (op.kind % 12) {
    case 0: plan = refused([guess(op.salt), guess(op.salt + 1)]); break;
    case 1: plan = refused(['', 'short', 42, null, {}, [], '__proto__', 'constructor', 'A'.repeat(23), `${'ab+/'.repeat(5)}ab`, '__proto__aaaaaaaaaaaaa']); break;
    case 2: { // another tenant's pending deliveries
      const theirs = others((r) => r.sock.actor.tenant !== t);
      plan = refused(theirs.length > 0 ? [pick(theirs).d] : [guess(op.salt)]);
      break;
    }
    case 3: { // another connection's (member, dead-letter consumer) of the same tenant
      const theirs = others((r) => r.sock.actor.tenant === t && r.sock !== sock);
      plan = refused(theirs.length > 0 ? [pick(theirs).d] : [guess(op.salt)]);
      break;
    }
    case 4: // its own pending delivery, through a subscription that is not its work-queue subscription
      plan = refused(own.length > 0 ? [pick(own).d] : [guess(op.salt)], actor.subs.has(2) ? 2 : 77);
      break;
    case 5: { // a replay of a delivery it answered (late), or one its owner forgot (refused)
      const done = sock.tokens.filter((r) => r.state !== 'pending');
      if (done.length === 0) {
        plan = refused([guess(op.salt)]);
        break;
      }
      const rec = pick(done);
      if (!member || rec.state === 'forgotten') {
        plan = refused([rec.d]);
        break;
      }
      plan = { frame: { op: kind, sub: 1, d: [rec.d] }, reply: [], late: 1 };
      // The home vouched for it once; it forgets a token once answered.
      if (rec.state === 'vouched') rec.state = 'forgotten';
      break;
    }
    case 6: { // deliveries to an earlier connection of this member (before a reconnect or a restart)
      const old = run.socks.filter((s) => s.actor === actor && !s.live).flatMap((s) => s.tokens);
      plan = refused(old.length > 0 ? [pick(old).d, old[0].d] : [guess(op.salt)]);
      break;
    }
    case 7: { // no `sub`
      const d = own.length > 0 ? pick(own).d : guess(op.salt);
      plan = { frame: { op: kind, d: [d] }, reply: [{ t: 'err', op: kind, sub: undefined, code: 'FORBIDDEN', refused: 1 }] };
      break;
    }
    case 8: { // `sub` that is not a safe integer, or negative
      const d = own.length > 0 ? [pick(own).d, guess(op.salt)] : [guess(op.salt)];
      const sub = ['__proto__', 2 ** 53, -1, 1.5][op.pick % 4];
      const shown = Number.isSafeInteger(sub) ? sub : undefined;
      plan = { frame: { op: kind, sub, d }, reply: [{ t: 'err', op: kind, sub: shown, code: 'FORBIDDEN', refused: d.length }] };
      break;
    }
    case 9: { // its own pending delivery twice in one operation: applied once, then late
      if (own.length === 0) {
        plan = refused([guess(op.salt)]);
        break;
      }
      const rec = pick(own);
      plan = { frame: { op: 'ack', sub: 1, d: [rec.d, rec.d] }, reply: [], apply: rec, late: 1 };
      break;
    }
    case 10: { // its own pending delivery among guessed and malformed ones: applied; the others refused
      if (own.length === 0) {
        plan = refused([guess(op.salt), 7]);
        break;
      }
      const rec = pick(own);
      plan = { frame: { op: 'ack', sub: 1, d: [guess(op.salt), rec.d, 7] }, reply: [{ t: 'err', op: 'ack', sub: 1, code: 'FORBIDDEN', refused: 2 }], apply: rec };
      break;
    }
    default: { // an answered delivery of another connection replayed: refused, not late
      const theirs = [...run.tokens.values()].filter((r) => r.state !== 'pending' && r.sock !== sock);
      plan = refused(theirs.length > 0 ? [pick(theirs).d] : [guess(op.salt)]);
    }
  }
  if (plan.late) count(t, 'lateAcks', plan.late);
  if (plan.apply) acknowledged(plan.apply);
  await exchange(run, sock, plan.frame, plan.reply, plan.frame.d);
}

/** Malformed and forbidden frames: [frame, expected replies for the main token, for the narrow one (if different)]. */
function hostileFrame(run, sock, kind) {
  const t = sock.actor.tenant;
  const free = 700 + (kind % 50);
  const jobs = t.jobs.pattern;
  const frameErr = (code) => [{ t: 'err', code, frame: true }];
  const err = (code, extra = {}) => ({ t: 'err', code, ...extra });
  const inUse = [...sock.actor.subs.keys()][0];
  const deep = '['.repeat(70) + ']'.repeat(70);
  const list = [
    ['{"op":"pub",', frameErr('BAD_JSON')],
    ['{"op":"sub","id":NaN,"pattern":"feed.a"}', frameErr('BAD_JSON')],
    ['[]', frameErr('BAD_REQUEST')],
    [JSON.stringify(Array.from({ length: 1001 }, () => ({ op: 'unsub', id: 1 }))), frameErr('BAD_REQUEST')],
    [new Uint8Array([123, 34, 111, 112, 34]), frameErr('BAD_JSON')],
    ['[null,42,"op",true,[1]]', Array.from({ length: 5 }, () => err('BAD_REQUEST', { op: undefined }))],
    ['{"op":"frobnicate","ref":"h"}', [err('BAD_REQUEST', { op: 'frobnicate', ref: 'h' })]],
    ['{"__proto__":{"op":"pub","topic":"feed.a","payload":1},"ref":"h"}', [err('BAD_REQUEST', { op: undefined, ref: 'h' })]],
    ['{"op":"pub","topic":"feed.a","payload":1,"ref":"h","__proto__":{"admin":true}}', [err('BAD_REQUEST', { op: 'pub', ref: 'h' })]],
    ['{"op":"constructor","ref":"h"}', [err('BAD_REQUEST', { op: 'constructor', ref: 'h' })]],
    ['{"op": "ping"}', [err('BAD_REQUEST', { op: 'ping' })]],
    ['{"op":"ping"}', [{ t: 'pong' }]],
    [{ op: 'sub', id: -1, pattern: 'feed.a' }, [err('BAD_REQUEST', { op: 'sub', ref: -1 })]],
    ['{"op":"sub","id":1e999,"pattern":"feed.a"}', [err('BAD_REQUEST', { op: 'sub', ref: null })]],
    [{ op: 'sub', id: '5', pattern: 'feed.a' }, [err('BAD_REQUEST', { op: 'sub', ref: '5' })]],
    [{ op: 'sub', id: inUse ?? -2, pattern: 'feed.a' }, [err('BAD_REQUEST', { op: 'sub', ref: inUse ?? -2 })]],
    [{ op: 'sub', id: free, pattern: jobs, group: t.jobs.group, maxAttempts: -3 }, [err('INVALID_OPTION', { ref: free })], [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: jobs, group: t.jobs.group, ackTimeoutMs: 0 }, [err('INVALID_OPTION', { ref: free })], [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: 'feed.a', maxAttempts: 2 }, [err('INVALID_OPTION', { ref: free })]],
    [{ op: 'sub', id: free, pattern: jobs, group: t.jobs.group, maxAttempts: 7, ackTimeoutMs: ACK_TIMEOUT_MS }, [err('INVALID_OPTION', { ref: free })], [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: jobs, group: 'bad name' }, [err('INVALID_OPTION', { ref: free })], [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: '*.audit', group: 'g' }, [err('GROUP_SPANS_HUBS', { ref: free })], [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: 'feed..a' }, [err('INVALID_PATTERN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: `feed.${'a'.repeat(300_000)}` }, [err('INVALID_PATTERN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: 'secret.>' }, [err('FORBIDDEN', { ref: free })]],
    [{ op: 'sub', id: free, pattern: '>' }, [err('FORBIDDEN', { ref: free })]],
    [{ op: 'pub', topic: t.dlq.pattern, payload: { forged: true }, ref: 'h' }, [err('FORBIDDEN', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'secret.x', payload: 1, ref: 'h' }, [err('FORBIDDEN', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.a', payload: 1, id: 123, ref: 'h' }, [err('BAD_REQUEST', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.a', payload: 1, id: 'x'.repeat(257), ref: 'h' }, [err('BAD_REQUEST', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.a', payload: 1, key: '', ref: 'h' }, [err('BAD_REQUEST', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.a', ref: 'h' }, [err('BAD_REQUEST', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.a', payload: 'x'.repeat(70_000), ref: 'h' }, [err('MESSAGE_TOO_LARGE', { op: 'pub', ref: 'h' })]],
    [`{"op":"pub","topic":"feed.a","payload":"${'x'.repeat(2_000_000)}","ref":"h"}`, [err('MESSAGE_TOO_LARGE', { op: 'pub', ref: 'h' })]],
    [`{"op":"pub","topic":"feed.a","payload":${deep},"ref":"h"}`, [err('PAYLOAD_TOO_DEEP', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 'feed.*', payload: 1, ref: 'h' }, [err('INVALID_TOPIC', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: 42, payload: 1, ref: 'h' }, [err('INVALID_TOPIC', { op: 'pub', ref: 'h' })]],
    [{ op: 'pub', topic: `feed.${'b'.repeat(200_000)}`, payload: 1, ref: 'h' }, [err('INVALID_TOPIC', { op: 'pub', ref: 'h' })]],
    [{ op: 'unsub', id: '1' }, [err('BAD_REQUEST', { op: 'unsub', ref: '1' })]],
    [{ op: 'unsub', id: -5 }, [err('BAD_REQUEST', { op: 'unsub', ref: -5 })]],
    [{ op: 'ack', sub: 1, d: 'abc' }, [err('BAD_REQUEST', { op: 'ack' })]],
    [{ op: 'del', group: t.jobs.group, pattern: jobs, ref: 'h' }, [err('GROUP_IN_USE', { op: 'del', ref: 'h' })], [err('FORBIDDEN', { op: 'del', ref: 'h' })]],
    [{ op: 'del', group: 'w', pattern: 'secret.q', ref: 'h' }, [err('FORBIDDEN', { op: 'del', ref: 'h' })]],
    [{ op: 'del', group: `none${run.n}`, pattern: jobs, ref: 'h' }, [{ t: 'ok', op: 'del', ref: 'h', found: false, discarded: 0 }], [err('FORBIDDEN', { op: 'del', ref: 'h' })]],
    [{ op: 'del', group: '../x', pattern: jobs, ref: 'h' }, [err('INVALID_OPTION', { op: 'del', ref: 'h' })]],
    [{ op: 'del', group: 'g', pattern: '*.audit', ref: 'h' }, [err('GROUP_SPANS_HUBS', { op: 'del', ref: 'h' })], [err('FORBIDDEN', { op: 'del', ref: 'h' })]],
    [[{ op: 'unsub', id: 123_456 }, { op: 'pub', topic: 'secret.z', payload: 1 }, { op: 'nope' }],
      [err('UNKNOWN_SUBSCRIPTION', { op: 'unsub', ref: 123_456 }), err('FORBIDDEN', { op: 'pub' }), err('BAD_REQUEST', { op: 'nope' })]],
  ];
  const [frame, main, narrow] = list[kind % list.length];
  return { frame, expected: sock.actor.narrow && narrow !== undefined ? narrow : main };
}

/** Requests refused by the Worker before any hub counts them. */
async function hostileHttp(run, t, kind) {
  const forged = `${t.token.split('.')[0]}.${guess(kind).repeat(2)}`;
  const cases = [
    ['{"topic":"feed.a",', t.token, 400, 'BAD_JSON'],
    [{ topic: 'secret.x', payload: 1 }, t.token, 403, 'FORBIDDEN'],
    [[], t.token, 400, 'BAD_REQUEST'],
    ['{"topic":"feed.a","payload":1,"__proto__":{"admin":true}}', t.token, 400, 'BAD_REQUEST'],
    [[{ topic: 'feed.a', payload: 1, id: `r${run.n}-x0` }, { topic: 'feed.a', payload: 1, id: 5 }], t.token, 400, 'BAD_REQUEST'],
    [{ topic: 'feed.a', payload: 1 }, forged, 401, 'UNAUTHORIZED'],
    [{ topic: 'feed.b', payload: 1 }, t.narrowToken, 403, 'FORBIDDEN'],
    [{ topic: t.dlq.pattern, payload: { forged: true } }, t.token, 403, 'FORBIDDEN'],
  ];
  const [body, token, status, code] = cases[kind % cases.length];
  const r = await within(run, server.post('/publish', body, token), `the answer of a hostile POST /publish (case ${kind % cases.length})`);
  if (r.status !== status || r.body.error?.code !== code) fail(run, `hostile POST /publish ${json(body)}: ${r.status} ${json(r.body)}, expected ${status} ${code}`);
}

async function badConnect(run, t, kind) {
  const tokens = [`${t.token.split('.')[0]}.${guess(kind).repeat(2)}`, await server.token({ ...MAIN_CLAIMS, ttl: -10 }), 'x.y.z'];
  const codes = ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'UNAUTHORIZED'];
  const s = await within(run, RawSocket.open(`${server.wsUrl}/connect?token=${tokens[kind % 3]}`), 'a refused connection');
  const e = await within(run, s.waitFor((f) => f.t === 'err', 0, 'the refusal'), 'the refusal of a bad token');
  const closed = await within(run, s.closedPromise, 'the close of a refused connection');
  if (e.code !== codes[kind % 3] || closed.code !== 4401) fail(run, `a connection with a bad token: ${json(e)}, closed ${closed.code}`);
}

/**
 * A connection whose token expires while it is open (a tenant's token with `exp` a second or two
 * ahead, subscribed to `feed.>`): once past `exp`, its next frame (kind 0) or the next delivery to
 * it (kind 1, a publish by the tenant's P) is answered TOKEN_EXPIRED (counted `refused`) and the
 * socket is closed with 4401; the frame changes nothing (kind 0: its publish is not made), the
 * delivery is not made (not counted `delivered`), everyone else's carries on.
 */
async function expiring(run, t, kind) {
  const now = Date.now();
  const exp = Math.floor(now / 1000) + (now % 1000 > 600 ? 2 : 1);
  const token = await server.token({ ...MAIN_CLAIMS, ...(t.ns === 'default' ? {} : { ns: t.ns }), exp });
  const s = await within(run, RawSocket.open(`${server.wsUrl}/connect?token=${token}`), 'the connection of a token about to expire');
  Object.assign(s, { actor: { tenant: t, name: `${t.name}.expiring` }, name: `${t.name}.expiring`, live: true, expect: [], fi: 0, seen: 0, tokens: [] });
  const hello = await within(run, s.waitFor((f) => f.t === 'hello', 0, 'hello'), 'the hello of a token about to expire');
  if (hello.ns !== t.ns) fail(run, `a connection of ${t.name} was told namespace ${json(hello.ns)}`);
  await exchange(run, s, { op: 'sub', id: 1, pattern: 'feed.>' }, [{ t: 'ok', op: 'sub', ref: 1 }]);
  s.live = false; // not an actor: no fan-out is expected for it, and it must receive none
  await sleep(exp * 1000 - Date.now() + 30);
  const from = s.frames.length;
  if (kind % 2 === 0) {
    s.send({ op: 'pub', topic: 'feed.a', payload: { tenant: t.name, expired: true }, ref: 'late' });
  } else {
    await publish(run, t, 'ws', [{ topic: 'feed.b', payload: payloadOf(t, ++run.refs, 0) }]);
  }
  count(t, 'refused');
  const closed = await within(run, s.closedPromise, `the close of ${s.name} after its token expired`);
  const got = s.frames.slice(from);
  if (closed.code !== 4401 || got.length !== 1 || got[0].t !== 'err' || got[0].code !== 'TOKEN_EXPIRED' || typeof got[0].message !== 'string') {
    fail(run, `${s.name} past its exp: frames ${json(got)}, closed ${closed.code}; expected one TOKEN_EXPIRED and 4401`);
  }
}

const SLOW_ACK_MS = 500;
/**
 * Ack deadlines, on a connection of its own that is a member of two work queues on one topic,
 * `slow<run>` (ackTimeoutMs SLOW_ACK_MS, 2 attempts) and `other<run>`, and subscribes to
 * `$dead.slow<run>`. One message, stored by both: `other`'s delivery acknowledged through the
 * `slow` subscription is refused by the home (FORBIDDEN, 1), through its own applied; `slow`'s first
 * delivery is left past its deadline, so it comes again as attempt 2 with a new token, and the first
 * token is late from then on (no reply). Then the second is acknowledged in time (kind 0), or left
 * past its deadline too (kind 1): the message is dead, its letter (HANDLER_TIMEOUT) reaches the
 * connection's plain subscription, and the token is late. Nothing else arrives; the queues end
 * empty and are deleted.
 */
async function slow(run, t, kind, home) {
  const s = await within(run, RawSocket.open(`${server.wsUrl}/connect?token=${t.token}&hub=${HOMES[1 + (home % 4)]}`), 'the connection of a slow consumer');
  Object.assign(s, { actor: { tenant: t, name: `${t.name}.slow` }, name: `${t.name}.slow`, live: true });
  await within(run, s.waitFor((f) => f.t === 'hello', 0, 'hello'), 'the hello of a slow consumer');
  const topic = `jobs.s${run.n}`;
  const [slowQ, otherQ, deadTopic] = [`slow${run.n}`, `other${run.n}`, `$dead.slow${run.n}`];
  const subs = [
    { op: 'sub', id: 1, pattern: topic, group: slowQ, maxAttempts: 2, ackTimeoutMs: SLOW_ACK_MS },
    { op: 'sub', id: 2, pattern: deadTopic },
    { op: 'sub', id: 3, pattern: topic, group: otherQ, maxAttempts: 2, ackTimeoutMs: ACK_TIMEOUT_MS },
  ];
  for (const op of subs) await exchange(run, s, op, [{ t: 'ok', op: 'sub', ref: op.id }]);
  const payload = payloadOf(t, ++run.refs, 2);
  await exchange(run, s, { op: 'pub', topic, payload, ref: 's' }, [{ t: 'ok', op: 'pub', ref: 's', stored: true }]);
  count(t, 'published');
  const entries = () => s.frames.filter((f) => f.t === 'msg').flatMap((f) => f.m);
  const arrived = async (n, what, ms = WAIT_MS) => {
    await until(run, () => (entries().length >= n ? undefined : `${what} on ${s.name} (${json(entries())})`), ms);
    return entries();
  };
  let got = await arrived(2, 'the first deliveries of both work queues');
  const d1 = got.find((e) => e[0][0] === 1);
  const e1 = got.find((e) => e[0][0] === 3);
  const msg = d1?.[1];
  if (d1 === undefined || e1 === undefined || d1[3] !== 1 || e1[3] !== 1 || json(e1[1]) !== json(msg) || json(msg.payload) !== json(payload) || msg.topic !== topic) {
    fail(run, `${s.name}: first deliveries ${json(got)}`);
  }
  const firstAt = Date.now();
  await exchange(run, s, { op: 'ack', sub: 1, d: [e1[2]] }, [{ t: 'err', op: 'ack', sub: 1, code: 'FORBIDDEN', refused: 1 }], [e1[2]]);
  count(t, 'acked');
  await exchange(run, s, { op: 'ack', sub: 3, d: [e1[2]] }, []);
  got = await arrived(3, `attempt 2 after the ack deadline (${SLOW_ACK_MS} ms)`);
  const d2 = got[2];
  if (d2[0].length !== 1 || d2[0][0] !== 1 || d2[3] !== 2 || d2[2] === d1[2] || json(d2[1]) !== json(msg)) fail(run, `${s.name}: a redelivery ${json(d2)}, first ${json(d1)}`);
  if (Date.now() - firstAt < SLOW_ACK_MS / 2) fail(run, `${s.name}: attempt 2 came ${Date.now() - firstAt} ms after attempt 1, the ack deadline is ${SLOW_ACK_MS} ms`);
  count(t, 'lateAcks');
  await exchange(run, s, { op: 'ack', sub: 1, d: [d1[2]] }, [], [d1[2]]);
  let n = 3;
  if (kind % 2 === 0) {
    count(t, 'acked');
    await exchange(run, s, { op: 'ack', sub: 1, d: [d2[2]] }, []);
  } else {
    got = await arrived(4, 'the dead letter after the last ack deadline');
    const want = [[2], {
      topic: deadTopic,
      payload: { group: slowQ, topic, attempts: 2, error: { code: 'HANDLER_TIMEOUT', message: `not acknowledged within ${SLOW_ACK_MS} ms` }, message: msg },
      id: `${msg.id}@${topic}@${deadTopic}`, publishedAt: got[3][1]?.publishedAt,
    }];
    try {
      assert.deepStrictEqual(got[3], want);
    } catch {
      fail(run, `${s.name}: dead letter ${json(got[3])}, expected ${json(want)}`);
    }
    if (typeof got[3][1].publishedAt !== 'number') fail(run, `${s.name}: a dead letter without publishedAt ${json(got[3])}`);
    for (const k of ['dead', 'deadPublished', 'published', 'notStored', 'lateAcks']) count(t, k);
    await exchange(run, s, { op: 'ack', sub: 1, d: [d2[2]] }, [], [d2[2]]);
    n = 4;
  }
  for (const id of [1, 3]) await exchange(run, s, { op: 'unsub', id }, [{ t: 'ok', op: 'unsub', ref: id }]);
  for (const group of [slowQ, otherQ]) {
    await exchange(run, s, { op: 'del', group, pattern: topic, ref: group }, [{ t: 'ok', op: 'del', ref: group, found: true, discarded: 0 }]);
    run.deleted++;
  }
  await within(run, s.close(), `the close of ${s.name}`);
  if (entries().length !== n) fail(run, `${s.name} received ${json(entries().slice(n))} besides what it expected`);
  t.delivered += n;
  t.frames += s.frames.filter((f) => f.t === 'msg').length;
}

/**
 * A flood from a connection of its own: frames of 1000 publishes (no ids) to one `feed.*` topic.
 * Each publish is answered (matched by `ref`: a frame's replies need not follow its order), taken or
 * RATE_LIMITED (counted `rateLimited`); what is taken is delivered to the tenant's subscribers in
 * publish order. The bucket holds RATE at first and refills at RATE per second, so the first RATE
 * are taken and at most RATE more per second of flooding. One frame (kind 0): the connection
 * carries on. VIOLATIONS_TO_CLOSE frames in a row (kind 1): closed with 1008 after an `err`
 * RATE_LIMITED, counted `rateClosed`.
 */
async function flood(run, t, kind, topicIndex) {
  const s = await within(run, RawSocket.open(`${server.wsUrl}/connect?token=${t.token}`), 'the connection of a flooder');
  Object.assign(s, { actor: { tenant: t, name: `${t.name}.flood` }, name: `${t.name}.flood`, live: true });
  await within(run, s.waitFor((f) => f.t === 'hello', 0, 'hello'), 'the hello of a flooder');
  const topic = TOPICS[topicIndex % 6];
  const frames = kind % 2 === 0 ? 1 : VIOLATIONS_TO_CLOSE;
  const PER_FRAME = 1000;
  const sent = [];
  const started = Date.now();
  for (let f = 0; f < frames; f++) {
    const msgs = Array.from({ length: PER_FRAME }, () => ({ topic, payload: payloadOf(t, ++run.refs, 0), ref: `f${run.refs}` }));
    sent.push(...msgs);
    s.send(msgs.map((m) => ({ op: 'pub', ...m })));
  }
  // The model learns which were taken from the replies, before anything else is observed.
  const replies = () => s.frames.filter((x) => x.t === 'ok' || x.t === 'err');
  const end = Date.now() + WAIT_MS;
  while (replies().length < sent.length + (frames === 1 ? 0 : 1)) {
    if (s.closed !== undefined && frames === 1) fail(run, `${s.name} closed (${s.closed.code}) after one flooding frame`);
    if (Date.now() > end) fail(run, `${s.name}: ${replies().length} replies to ${sent.length} publishes within ${WAIT_MS} ms`);
    await sleep(10);
  }
  const elapsed = Date.now() - started;
  const got = replies();
  let taken = 0;
  for (let f = 0; f < frames; f++) {
    const frame = got.slice(f * PER_FRAME, (f + 1) * PER_FRAME);
    const byRef = new Map(frame.map((r) => [r.ref, r]));
    let limited = 0;
    for (const [i, m] of sent.slice(f * PER_FRAME, (f + 1) * PER_FRAME).entries()) {
      const r = byRef.get(m.ref);
      const ok = r?.t === 'ok';
      const want = ok ? { t: 'ok', op: 'pub', ref: m.ref, stored: false } : { t: 'err', op: 'pub', ref: m.ref, code: 'RATE_LIMITED', message: r?.message };
      try {
        assert.deepStrictEqual(r, want);
        assert.ok(ok || typeof r.message === 'string');
        assert.ok(ok || f > 0 || i >= RATE, 'one of the first RATE publishes of a new connection refused');
      } catch {
        fail(run, `${s.name}, flooding frame ${f + 1}, publish ${i + 1}: ${json(r)}, expected ${ok ? 'ok' : 'RATE_LIMITED'}${f === 0 && i < RATE ? ' (within the first RATE)' : ''}`);
      }
      if (ok) {
        taken++;
        accepted(run, t, m);
      } else {
        limited++;
        count(t, 'rateLimited');
      }
    }
    if (limited === 0) fail(run, `${s.name}: all ${PER_FRAME} publishes of flooding frame ${f + 1} taken at ${RATE} per second`);
  }
  const most = RATE + Math.ceil((elapsed * RATE) / 1000) + 1;
  if (taken > most) fail(run, `${s.name}: ${taken} publishes taken in ${elapsed} ms at ${RATE} per second (at most ${most})`);
  if (frames === 1) {
    await exchange(run, s, { op: 'unsub', id: 5 }, [{ t: 'err', op: 'unsub', ref: 5, code: 'UNKNOWN_SUBSCRIPTION' }]);
    await within(run, s.close(), `the close of ${s.name}`);
  } else {
    const closed = await within(run, s.closedPromise, `the close of ${s.name} after ${frames} flooding frames`);
    const last = got[sent.length];
    if (closed.code !== 1008 || last.t !== 'err' || last.code !== 'RATE_LIMITED' || last.op !== undefined || got.length !== sent.length + 1) {
      fail(run, `${s.name} after ${frames} flooding frames: ${json(got.slice(sent.length))}, closed ${closed.code}; expected RATE_LIMITED and 1008`);
    }
    count(t, 'rateClosed');
  }
}

/**
 * One frame that publishes, subscribes, publishes, unsubscribes and publishes again, from a fan-out
 * subscriber (F1 or F2) to a `feed.*` topic: the operations of a frame take effect in order, so the
 * subscription made in the frame receives exactly the publish between its `sub` and its `unsub`
 * (with the connection's other matching subscriptions, once), and the replies come in order.
 */
async function mixed(run, t, who, topicIndex, patternIndex) {
  const actor = t.actors[who];
  const sock = actor.sock;
  const topic = TOPICS[topicIndex % 6];
  const pattern = [topic, 'feed.*', 'feed.>', '*.a'][patternIndex % 4];
  const id = 9;
  const ops = [];
  const replies = [];
  const pub = () => {
    const m = { topic, payload: payloadOf(t, ++run.refs, 0) };
    const ref = `p${run.refs}`;
    ops.push({ op: 'pub', ...m, ref });
    accepted(run, t, m);
    replies.push({ t: 'ok', op: 'pub', ref, stored: false });
  };
  pub();
  ops.push({ op: 'sub', id, pattern });
  replies.push({ t: 'ok', op: 'sub', ref: id });
  actor.subs.set(id, { pattern });
  pub();
  ops.push({ op: 'unsub', id });
  replies.push({ t: 'ok', op: 'unsub', ref: id });
  actor.subs.delete(id);
  pub();
  await exchange(run, sock, ops, replies);
}

/** Turns a plain subscription off (unsub) or on (sub). */
async function flip(run, t, which) {
  const [role, id] = FLIPPABLE[which % FLIPPABLE.length];
  const actor = t.actors[role];
  const work = id === 1 && (role === 'W1' || role === 'W2');
  if (actor.subs.has(id)) {
    // The last member of the work queue stays (a queue without members is deletable: see `del`).
    if (work && members(t.jobs).length < 2) return;
    if (work) {
      await settle(run); // nothing on its way to the member but what the model knows it holds
      // The member leaves: what it holds is refused (retried, or dead after its last attempt). Its
      // tokens are retired under the member key (home, connection, 1), which comes back when
      // subscription 1 is made again: their acknowledgements are late then, refused meanwhile.
      for (const rec of pendingOf(actor.sock)) {
        rec.state = 'answered';
        rec.job.pending = undefined;
        if (rec.job.last >= t.jobs.maxAttempts) rec.job.dead = { leave: true };
      }
    }
    await exchange(run, actor.sock, { op: 'unsub', id }, [{ t: 'ok', op: 'unsub', ref: id }]);
    actor.subs.delete(id);
  } else {
    const spec = work ? { pattern: t.jobs.pattern, group: t.jobs.group, queue: t.jobs } : { pattern: PLAIN[role][id] };
    const op = { op: 'sub', id, pattern: spec.pattern };
    if (work) Object.assign(op, { group: spec.group, maxAttempts: MAX_ATTEMPTS, ackTimeoutMs: ACK_TIMEOUT_MS });
    actor.subs.set(id, spec);
    await exchange(run, actor.sock, op, [{ t: 'ok', op: 'sub', ref: id }]);
  }
}

/** Group members at the owner, after a member's connection closed (the owner learns it asynchronously). */
async function membersAre(run, t, queue, n) {
  await until(run, async () => {
    const g = (await server.stats(t.token)).groups.find((x) => x.group === queue.group && x.pattern === queue.pattern);
    return g?.members === n ? undefined : `${t.name}'s ${queue.group} to have ${n} member(s) (has ${g?.members})`;
  });
}

/** The connection of one actor closed mid-stream (deliveries it holds are refused) and opened again. */
async function reconnect(run, t, role, home) {
  await settle(run);
  const actor = t.actors[role];
  const sock = actor.sock;
  await within(run, sock.close(), `the close of ${sock.name}`);
  observe(run);
  sock.live = false;
  const queue = actor.subs.get(1)?.queue;
  if (queue !== undefined) {
    for (const rec of pendingOf(sock)) {
      rec.state = 'released';
      rec.job.pending = undefined;
      if (rec.job.last >= queue.maxAttempts) rec.job.dead = { leave: true };
    }
    await membersAre(run, t, queue, members(queue).length);
  }
  await openActor(run, actor, home);
}

/** Patterns of late subscribers that ask for retained values. */
const STICKY = ['feed.*', 'feed.>', '*.a', 'feed.a', 'news.>'];

/**
 * Each tenant's latest retained value per topic, over every run (the server keeps them, durably:
 * through crashes and evictions): set by an accepted publish with `retain`.
 */
const RETAINED = { A: new Map(), B: new Map() };

/**
 * A late subscriber of tenant `t` with `replay: 'retained'` on `pattern`: before its `ok` it gets
 * exactly the tenant's latest retained value of each topic its pattern matches (across hubs), and
 * nothing of the other tenant's; then it goes.
 */
async function sticky(run, t, pattern) {
  await settle(run);
  const sock = await within(run, RawSocket.open(`${server.wsUrl}/connect?token=${t.token}`), `a late subscriber of ${t.name}`);
  try {
    const ok = await within(run, sock.request({ op: 'sub', id: 1, pattern, replay: 'retained' }), `the replay of ${pattern} to ${t.name}`);
    if (ok.t !== 'ok') fail(run, `${t.name}'s late subscription to ${pattern} was refused: ${json(ok)}`);
    const upTo = sock.frames.indexOf(ok);
    const before = sock.frames.slice(0, upTo).filter((f) => f.t === 'msg').flatMap((f) => f.m);
    for (const [, msg] of before) {
      if (msg?.payload?.tenant !== t.name) fail(run, `${t.name}'s late subscriber got ${json(msg)}`);
    }
    const got = before.map(([, msg]) => `${msg.topic} ${json(msg.payload)}`).sort();
    const want = [...RETAINED[t.name]].filter(([topic]) => match(pattern, topic)).map(([topic, p]) => `${topic} ${json(p)}`).sort();
    if (json(got) !== json(want)) fail(run, `${t.name}'s late subscriber to ${pattern} was given ${json(got)}, the retained values are ${json(want)}`);
    seen.sticky++;
    seen.retainedGiven += got.length;
  } finally {
    await within(run, sock.close(), `the close of ${t.name}'s late subscriber`);
    // What it was sent counts in the tenant's figures.
    const frames = sock.frames.filter((f) => f.t === 'msg');
    t.frames += frames.length;
    t.delivered += frames.reduce((n, f) => n + f.m.length, 0);
  }
}

/** A work queue named like an Object.prototype property: created, filled, refused to the other tenant, deleted. */
async function protoQueue(run, t, g) {
  const group = ['__proto__', 'constructor', 'hasOwnProperty', 'toString'][g % 4];
  const pattern = `jobs.p${run.n}`;
  const p = t.actors.P.sock;
  const id = 650 + (g % 4);
  await exchange(run, p, { op: 'sub', id, pattern, group, maxAttempts: 2 }, [{ t: 'ok', op: 'sub', ref: id }]);
  await exchange(run, p, { op: 'unsub', id }, [{ t: 'ok', op: 'unsub', ref: id }]);
  const ref = `p${++run.refs}`;
  await exchange(run, p, { op: 'pub', topic: pattern, payload: { tenant: t.name }, ref }, [{ t: 'ok', op: 'pub', ref, stored: true }]);
  count(t, 'published');
  const o = other(run, t);
  await exchange(run, o.actors.P.sock, { op: 'del', group, pattern, ref: 'd1' }, [{ t: 'ok', op: 'del', ref: 'd1', found: false, discarded: 0 }]);
  await exchange(run, p, { op: 'del', group, pattern, ref: 'd2' }, [{ t: 'ok', op: 'del', ref: 'd2', found: true, discarded: 1 }]);
  run.deleted++;
  run.discarded++;
}

/**
 * A SIGKILL of the whole server while deliveries are in flight: after a checkpoint, each tenant may
 * publish a job and refuse a delivery that has attempts left (its retry may be under way), then the
 * process group dies. What the model allows afterwards: stored messages come again with the next
 * attempt (one more when a delivery may have left unobserved), tokens from before are refused.
 */
async function crash(run, op) {
  await checkpoint(run);
  for (const t of run.tenants) {
    if (op.pub) await publish(run, t, 'ws', [{ topic: t.jobs.pattern, payload: payloadOf(t, ++run.refs, 0), id: `r${run.n}-c${run.refs}` }]);
    if (op.nack) {
      const rec = [...pendingOf(t.actors.W1.sock), ...pendingOf(t.actors.W2.sock)].find((r) => r.job.last < MAX_ATTEMPTS);
      if (rec !== undefined) {
        refuse(rec, { code: 'HANDLER_FAILED', message: 'before the crash' });
        await exchange(run, rec.sock, { op: 'nack', sub: 1, d: [rec.d], error: 'before the crash' }, []);
      }
    }
  }
  await within(run, server.crash(), 'the restart of the server after SIGKILL', 60_000);
  const live = run.socks.filter((s) => s.live);
  await within(run, Promise.all(live.map((s) => s.closedPromise)), 'the close of every connection');
  observe(run);
  for (const s of live) {
    s.live = false;
    if (s.fi < s.expect.length) fail(run, `${s.name} lost ${json(s.expect.slice(s.fi))} (published before the checkpoint)`);
  }
  for (const t of run.tenants) {
    for (const q of [t.jobs, t.dlq]) {
      for (const job of q.open()) {
        if (job.pending !== undefined) {
          job.pending.sock.tokens.find((r) => r.d === job.pending.d).state = 'released';
          job.pending = undefined;
          job.minNext = job.maxNext = job.last + 1;
          if (job.last >= q.maxAttempts) job.mustDie = true;
        } else if (job.dead === undefined) {
          job.maxNext++;
          t.slack++;
        }
      }
    }
  }
  for (const t of run.tenants) for (const a of Object.values(t.actors)) await openActor(run, a, run.homes[a.name]);
}

/**
 * A hub reset in place (`/admin/evict`: its instance discarded, a new one loads from storage): the
 * owner of the work queues, of the dead-letter queues or of the fan-out topics. Its sockets close
 * (1006) and are opened again; connections homed elsewhere stay. The work queues it owns deliver
 * what was in flight again with the next attempt; a token delivered by the old instance is late when
 * its connection's home vouches for it (pending then, once), refused when answered before (the home
 * forgot it). A member homed there whose queue is owned elsewhere has left it (the new instance
 * leaves the work queues of the connections it lost): what it held is refused, as when its
 * connection closes.
 */
async function evict(run, which, late) {
  const hub = hubOfTopic(['jobs.x', '$dead.x', 'feed.a'][which % 3], HUBS, 1);
  const ownerOf = (q) => hubOfTopic(q.pattern, HUBS, 1);
  await settle(run);
  const r = await within(run, server.post('/admin/evict', { hub }, adminToken), `the eviction of hub ${hub}`);
  run.evicted++;
  if (r.status !== 200 || typeof r.body.after !== 'string' || r.body.after === r.body.before) fail(run, `evicting hub ${hub}: ${r.status} ${json(r.body)}`);
  // The model moves on at once (the new instance redelivers at once); the frames of before were all seen (settle).
  const gone = run.socks.filter((s) => s.live && s.hub === hub);
  for (const s of gone) {
    s.live = false;
    const queue = s.actor.subs.get(1)?.queue;
    if (queue === undefined || ownerOf(queue) === hub) continue;
    for (const rec of pendingOf(s)) {
      rec.state = 'released';
      rec.job.pending = undefined;
      if (rec.job.last >= queue.maxAttempts) rec.job.dead = { leave: true };
    }
  }
  for (const t of run.tenants) {
    for (const q of [t.jobs, t.dlq]) {
      if (ownerOf(q) !== hub) continue;
      for (const job of q.open()) {
        if (job.pending !== undefined) {
          const rec = job.pending.sock.tokens.find((x) => x.d === job.pending.d);
          rec.state = rec.sock.live ? 'vouched' : 'released';
          job.pending = undefined;
          job.minNext = job.maxNext = job.last + 1;
          if (job.last >= q.maxAttempts) job.mustDie = true;
        }
      }
      for (const rec of run.tokens.values()) if (rec.queue === q && rec.state === 'answered') rec.state = 'forgotten';
    }
  }
  await within(run, Promise.all(gone.map((s) => s.closedPromise)), `the close of the connections of hub ${hub}`);
  for (const s of gone) await openActor(run, s.actor, run.homes[s.actor.name]);
  if (!late) return;
  // Consumers that finish what they held before the eviction: late, counted, no reply.
  for (const s of run.socks.filter((x) => x.live)) {
    const recs = s.tokens.filter((x) => x.state === 'vouched');
    if (recs.length === 0) continue;
    for (const rec of recs) rec.state = 'forgotten';
    count(s.actor.tenant, 'lateAcks', recs.length);
    await exchange(run, s, { op: 'ack', sub: 1, d: recs.map((x) => x.d) }, []);
  }
}

/** The end of a run: every stored message acknowledged or dead, the figures checked, the queues deleted. */
async function drain(run) {
  const end = Date.now() + 3 * WAIT_MS;
  for (;;) {
    await settle(run);
    let acked = 0;
    for (const t of run.tenants) {
      for (const role of ['W1', 'W2', 'D']) {
        const sock = t.actors[role].sock;
        const recs = pendingOf(sock);
        if (recs.length === 0) continue;
        for (const r of recs) acknowledged(r);
        await exchange(run, sock, { op: 'ack', sub: 1, d: recs.map((r) => r.d) }, []);
        acked += recs.length;
      }
    }
    const open = run.tenants.flatMap((t) => [...t.jobs.open(), ...t.dlq.open()]);
    if (acked === 0 && open.length === 0) break;
    if (Date.now() > end) fail(run, `never finished: ${json(open.map((j) => [j.id, j.last, j.dead]))}`);
  }
  await checkpoint(run);
  for (const t of run.tenants) {
    for (const role of ['W1', 'W2', 'D']) {
      await within(run, t.actors[role].sock.close(), `the close of ${t.actors[role].sock.name}`);
      t.actors[role].sock.live = false;
    }
    await membersAre(run, t, t.jobs, 0);
    await membersAre(run, t, t.dlq, 0);
    // Nothing stored is left behind: deleting the queues discards nothing.
    for (const q of [t.jobs, t.dlq]) {
      await exchange(run, t.actors.P.sock, { op: 'del', group: q.group, pattern: q.pattern, ref: 'end' }, [{ t: 'ok', op: 'del', ref: 'end', found: true, discarded: 0 }]);
    }
    for (const role of ['P', 'F1', 'F2', 'N']) {
      await within(run, t.actors[role].sock.close(), `the close of ${t.actors[role].sock.name}`);
      t.actors[role].sock.live = false;
    }
  }
  observe(run);
  for (const t of run.tenants) {
    await until(run, async () => {
      const v = (await server.stats(t.token)).total;
      return v.connections === t.base.total.connections && v.subscriptions === t.base.total.subscriptions
        ? undefined : `${t.name}'s connections to close (${v.connections} connections, ${v.subscriptions} subscriptions left)`;
    });
  }
}

async function step(run, op) {
  const t = run.tenants[op.t ?? 0];
  switch (op.k) {
    case 'feed': {
      const batch = op.via === 'batch' || op.via === 'wsBatch';
      const n = batch ? 1 + (op.more % 3) : 1;
      const msgs = Array.from({ length: n }, (_, i) => {
        // A batch stays on the topics of one owner hub (`feed.*`): its order then holds for every receiver.
        const topic = batch ? TOPICS[(op.topic + i) % 6] : TOPICS[op.topic % TOPICS.length];
        // A batch of three repeats one id: the second and third are duplicates within the batch.
        const id = op.id < 10 ? `r${run.n}-x${(op.id + (op.more === 2 ? 0 : i)) % 10}` : undefined;
        return { topic, payload: payloadOf(t, ++run.refs, op.extra + i), id, retain: op.retain === 0 };
      });
      return publish(run, t, op.via, msgs);
    }
    case 'job': {
      const msgs = [{ topic: t.jobs.pattern, payload: payloadOf(t, ++run.refs, op.extra), id: `r${run.n}-x${op.id}`, key: op.key < 3 ? `k${op.key}` : undefined }];
      if (op.via === 'batch') msgs.push({ topic: 'feed.b', payload: payloadOf(t, ++run.refs, 0), id: `r${run.n}-x${(op.id + 3) % 10}` });
      return publish(run, t, op.via, msgs);
    }
    case 'ack': return answer(run, t, op);
    case 'hack': return hostileAck(run, t, op);
    case 'frame': {
      const sock = t.actors[op.who].sock;
      const { frame, expected } = hostileFrame(run, sock, op.kind);
      return exchange(run, sock, frame, expected);
    }
    case 'http': return hostileHttp(run, t, op.kind);
    case 'expire': return expiring(run, t, op.kind);
    case 'mixed': return mixed(run, t, op.who, op.topic, op.pattern);
    case 'flood': return flood(run, t, op.kind, op.topic);
    case 'slow': return slow(run, t, op.kind, op.home);
    case 'badConnect': return badConnect(run, t, op.kind);
    case 'flip': return flip(run, t, op.which);
    case 'reconnect': return reconnect(run, t, op.who, op.home);
    case 'proto': return protoQueue(run, t, op.g);
    case 'checkpoint': return checkpoint(run, op.letters);
    case 'evict': return evict(run, op.which, op.late);
    case 'sticky': return sticky(run, t, STICKY[op.pattern]);
    case 'crash':
      if (run.crashed) return checkpoint(run);
      run.crashed = true;
      return crash(run, op);
    default: throw new Error(`unknown op ${op.k}`);
  }
}

// ----- generators -----------------------------------------------------------------------------------

const tenantArb = fc.constantFrom(0, 1);
const roleArb = fc.constantFrom(...ROLES);
const opArb = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('feed'), t: tenantArb, topic: fc.nat(TOPICS.length - 1), via: fc.constantFrom('ws', 'ws', 'http', 'narrow', 'httpNarrow', 'batch', 'wsBatch'), id: fc.nat(14), extra: fc.nat(4), more: fc.nat(2), retain: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('sticky'), t: tenantArb, pattern: fc.nat(STICKY.length - 1) }) },
  { weight: 7, arbitrary: fc.record({ k: fc.constant('job'), t: tenantArb, via: fc.constantFrom('ws', 'http', 'batch'), id: fc.nat(9), key: fc.nat(5), extra: fc.nat(4) }) },
  { weight: 7, arbitrary: fc.record({ k: fc.constant('ack'), t: tenantArb, who: fc.constantFrom('W1', 'W2', 'D'), pick: fc.nat(99), nack: fc.boolean(), why: fc.nat(2) }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('hack'), t: tenantArb, who: fc.constantFrom(...ROLES, 'W1', 'W2', 'D'), kind: fc.constantFrom(0, 1, 2, 3, 3, 4, 5, 5, 5, 5, 5, 6, 7, 8, 9, 9, 9, 10, 11, 11, 11), pick: fc.nat(99), nack: fc.boolean(), salt: fc.nat() }) },
  { weight: 5, arbitrary: fc.record({ k: fc.constant('frame'), t: tenantArb, who: roleArb, kind: fc.nat(99) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('http'), t: tenantArb, kind: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('badConnect'), t: tenantArb, kind: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('expire'), t: tenantArb, kind: fc.nat(1) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('mixed'), t: tenantArb, who: fc.constantFrom('F1', 'F2'), topic: fc.nat(5), pattern: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('flood'), t: tenantArb, kind: fc.nat(1), topic: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('slow'), t: tenantArb, kind: fc.nat(1), home: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('flip'), t: tenantArb, which: fc.nat(FLIPPABLE.length - 1) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('reconnect'), t: tenantArb, who: roleArb, home: fc.nat(HOMES.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('proto'), t: tenantArb, g: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('checkpoint'), letters: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('crash'), pub: fc.boolean(), nack: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('evict'), which: fc.nat(2), late: fc.boolean() }) },
);
const runArb = fc.record({
  ops: fc.array(opArb, { minLength: 20, maxLength: 45 }),
  homes: fc.array(fc.nat(HOMES.length - 1), { minLength: 14, maxLength: 14 }),
});

// ----- the property ---------------------------------------------------------------------------------

let runs = 0;
/** What the runs did, printed at the end: a property that checks nothing would show here. */
const seen = { sticky: 0, retainedGiven: 0, ops: 0, crashes: 0, evictions: 0, reconnects: 0, expiries: 0, slow: 0, floods: 0, feed: 0, done: 0, dead: 0, letters: 0, lateAcks: 0, forbiddenAcks: 0, refusals: 0 };
async function runOne({ ops, homes }) {
  const run = { n: ++runs, label: 'setup', socks: [], tokens: new Map(), ids: new Set(), refs: 0, crashed: false, evicted: 0, homes: {}, deleted: 0, discarded: 0 };
  run.tenants = [newTenant(run, 'A', 'default'), newTenant(run, 'B', '__proto__')];
  for (const t of run.tenants) {
    const claims = t.ns === 'default' ? {} : { ns: t.ns };
    t.token = await server.token({ ...MAIN_CLAIMS, ...claims });
    t.narrowToken = await server.token({ ...NARROW_CLAIMS, ...claims });
    t.base = await server.stats(t.token);
  }
  run.base = (await server.stats(adminToken)).total;
  try {
    let i = 0;
    for (const t of run.tenants) {
      for (const a of Object.values(t.actors)) {
        run.homes[a.name] = homes[i++];
        await openActor(run, a, run.homes[a.name]);
      }
    }
    for (const [k, op] of ops.entries()) {
      run.label = `op ${k} ${json(op)}`;
      await step(run, op);
      observe(run);
    }
    run.label = 'final checkpoint';
    await checkpoint(run, true);
    run.label = 'drain';
    await drain(run);
    if (Object.prototype.polluted !== undefined) fail(run, 'Object.prototype was polluted');
    seen.ops += ops.length;
    seen.crashes += run.crashed ? 1 : 0;
    seen.reconnects += ops.filter((o) => o.k === 'reconnect').length;
    seen.expiries += ops.filter((o) => o.k === 'expire').length;
    seen.floods += ops.filter((o) => o.k === 'flood').length;
    seen.slow += ops.filter((o) => o.k === 'slow').length;
    seen.evictions += run.evicted;
    for (const t of run.tenants) {
      seen.feed += run.socks.filter((s) => s.actor.tenant === t).reduce((n, s) => n + s.fi, 0);
      seen.done += t.jobs.count('done');
      seen.dead += t.jobs.count('dead');
      seen.letters += t.dlq.count('done');
      seen.lateAcks += t.cnt.lateAcks;
      seen.forbiddenAcks += t.cnt.forbiddenAcks;
      seen.refusals += t.cnt.forbidden + t.cnt.refused + t.cnt.tooLarge + t.cnt.tooDeep;
    }
  } catch (e) {
    for (const s of run.socks) if (s.live) s.ws.close();
    throw e;
  }
}

test('random operations of two tenants and hostile actors against one edge server agree with the model', { timeout: 600_000 }, async () => {
  const started = Date.now();
  try {
    await fc.assert(fc.asyncProperty(runArb, runOne), { seed: SEED, numRuns: RUNS, endOnFailure: true, includeErrorInReport: true });
  } catch (e) {
    console.error(`edge property test failed (run ${runs}) with EDGEBUS_PROPS_SEED=${SEED} EDGEBUS_PROPS_RUNS=${RUNS}`);
    throw e;
  }
  console.log(`seen: ${JSON.stringify(seen)}`);
  console.log(`${RUNS} runs in ${((Date.now() - started) / 1000).toFixed(1)} s (EDGEBUS_PROPS_SEED=${SEED})`);
});
