// Retained values, history and replay at the edge (`wrangler dev`): `retain` on WebSocket and HTTP
// publishes, `replay` on subscriptions ('retained', { last }, { sinceSeq }), with wildcards spanning
// hubs, gap notices for what the history no longer holds, replay then live with no gap and no
// duplicate while publishes race the subscription, everything back after a SIGKILL and an eviction,
// namespaces isolated, token ACLs applied to replay; and the package's client recovering a plain
// subscription across a SIGKILL of the deployment while another client keeps publishing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;
const HISTORY = 20;
const server = new EdgeServer({ vars: { EDGEBUS_DEV_ADMIN: '1', HISTORY_MAX_MESSAGES: String(HISTORY), PUBLISH_MESSAGES_PER_SECOND: '100000' } });
let token;
const fast = { reconnect: { initialMs: 50, maxMs: 400 }, connectTimeoutMs: 2000 };
const until = async (cond, what = 'a condition') => {
  const guard = Date.now() + 60_000; // a hang guard, not a timing assertion
  while (!cond()) {
    if (Date.now() > guard) throw new Error(`no ${typeof what === 'function' ? what() : what} after 60 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

/** A fresh topic prefix owned by hub `hub` (one routed token); `tag` keeps tests apart. */
function prefixOn(hub, tag) {
  for (let i = 0; ; i++) if (hubOfTopic(`${tag}${i}`, HUBS, 1) === hub) return `${tag}${i}`;
}

const open = (t = token) => RawSocket.open(`${server.wsUrl}/connect?token=${t}`);
const msgsOf = (s, sub) => s.messages().filter((m) => m.subs.includes(sub)).map((m) => m.msg);
const brief = (m) => [m.topic, m.payload];
/** Seqs relative to the first: a topic's seqs are consecutive, its first above any given before on its hub. */
const steps = (seqs) => seqs.map((x) => x - seqs[0]);

test('retained values: set by WebSocket and HTTP, replaced, listed first to a wildcard spanning hubs, then live; cleared by retain without a payload', async () => {
  const a = prefixOn(1, 'ra');
  const b = prefixOn(5, 'rb');
  const pub = await open();
  assert.equal((await server.post('/publish', { topic: `${a}.status`, payload: 'one', retain: true }, token)).body.accepted, true);
  assert.equal((await server.post('/publish', { topic: `${a}.status`, payload: 'two', retain: true }, token)).body.accepted, true);
  assert.equal((await pub.request({ op: 'pub', topic: `${b}.status`, payload: { up: true }, retain: true, ref: 1 })).t, 'ok');
  // Not retained: history only.
  assert.equal((await pub.request({ op: 'pub', topic: `${b}.status`, payload: 'passing', ref: 2 })).t, 'ok');

  const sub = await open();
  assert.equal((await sub.request({ op: 'sub', id: 7, pattern: '*.status', replay: 'retained' })).t, 'ok');
  // The replay is delivered before the `ok` (frames are ordered): it is all here.
  const replayed = msgsOf(sub, 7).map(brief).sort((x, y) => x[0].localeCompare(y[0]));
  assert.deepEqual(replayed, [[`${a}.status`, 'two'], [`${b}.status`, { up: true }]]);
  const two = msgsOf(sub, 7).find((m) => m.topic === `${a}.status`).seq;
  assert.ok(Number.isSafeInteger(two) && two >= 2, 'the second message of its topic');
  await pub.request({ op: 'pub', topic: `${a}.status`, payload: 'three', ref: 3 });
  await sub.waitMessages(3);
  assert.deepEqual(msgsOf(sub, 7).slice(2).map((m) => [...brief(m), m.seq]), [[`${a}.status`, 'three', two + 1]]);

  // Cleared over HTTP (retain, no payload): a new subscriber gets only the other topic's value.
  assert.equal((await server.post('/publish', { topic: `${b}.status`, retain: true }, token)).body.accepted, true);
  const late = await open();
  assert.equal((await late.request({ op: 'sub', id: 1, pattern: '*.status', replay: 'retained' })).t, 'ok');
  assert.deepEqual(msgsOf(late, 1).map((m) => [...brief(m), m.seq]), [[`${a}.status`, 'two', two]]);
  const stats = await server.stats(token);
  assert.ok(stats.total.retained >= 1, 'the hubs report the retained values they hold');
  for (const s of [pub, sub, late]) await s.close();
});

test('history: { last } and { sinceSeq } replay from the core\'s bounded history; a position older than it is a gap notice, never a hole', async () => {
  const p = prefixOn(2, 'hi');
  const topic = `${p}.feed`;
  const rows = Array.from({ length: 30 }, (_, i) => ({ topic, payload: i + 1 }));
  assert.ok((await server.post('/publish', rows, token)).body.results.every((r) => r.accepted));

  const s = await open();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: topic, replay: { last: 5 } })).t, 'ok');
  assert.deepEqual(msgsOf(s, 1).map((m) => m.payload), [26, 27, 28, 29, 30]);
  assert.deepEqual(steps(msgsOf(s, 1).map((m) => m.seq)), [0, 1, 2, 3, 4]);
  const base = msgsOf(s, 1)[0].seq - 26; // the seq of payload n is base + n

  const from = s.frames.length;
  assert.equal((await s.request({ op: 'sub', id: 2, pattern: `${p}.*`, replay: { sinceSeq: { [topic]: base + 3 } } })).t, 'ok');
  const gap = s.frames.slice(from).find((f) => f.t === 'gap');
  assert.equal(gap.sub, 2);
  assert.deepEqual(gap.gaps.map((g) => [g.topic, g.fromSeq, g.toSeq]), [[topic, base + 4, base + 30 - HISTORY]], 'what is no longer held');
  assert.deepEqual(msgsOf(s, 2).map((m) => m.payload), Array.from({ length: HISTORY }, (_, i) => 30 - HISTORY + 1 + i));
  assert.deepEqual(msgsOf(s, 2).map((m) => m.seq), Array.from({ length: HISTORY }, (_, i) => base + 30 - HISTORY + 1 + i));
  // The gap frame comes before the replayed messages.
  const firstMsg = s.frames.slice(from).findIndex((f) => f.t === 'msg');
  assert.ok(s.frames.slice(from).indexOf(gap) < firstMsg);
  const stats = await server.stats(token);
  assert.ok(stats.total.gaps >= 1);
  assert.ok(stats.total.replayed >= 5 + HISTORY);
  await s.close();
});

test('replay, then live: messages published while the subscription is made arrive once each, every seq, in order', async () => {
  const p = prefixOn(3, 'race');
  const topic = `${p}.tick`;
  const s = await open();
  const n = HISTORY - 2; // all of them fit the history: no gap whenever the subscription lands
  // Publishes racing the subscription: some before it (replayed), some during, some after (live).
  await server.post('/publish', { topic, payload: 0 }, token); // one before the sub, for sure
  const publishing = (async () => {
    for (let i = 1; i <= n; i++) await server.post('/publish', { topic, payload: i }, token);
  })();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.>`, replay: { sinceSeq: 0 } })).t, 'ok');
  await publishing;
  await s.waitMessages(n + 1);
  assert.deepEqual(msgsOf(s, 1).map((m) => m.payload), Array.from({ length: n + 1 }, (_, i) => i), 'no gap, no duplicate, in order');
  assert.deepEqual(steps(msgsOf(s, 1).map((m) => m.seq)), Array.from({ length: n + 1 }, (_, i) => i));
  assert.equal(s.frames.some((f) => f.t === 'gap'), false);
  await s.close();
});

test('retained values and history survive an eviction of their owner hub and a SIGKILL of the deployment; seqs go on', { timeout: 120_000 }, async () => {
  const p = prefixOn(4, 'dur');
  const topic = `${p}.state`;
  for (let i = 1; i <= 3; i++) await server.post('/publish', { topic, payload: `v${i}`, retain: i === 2 }, token);
  const r = await server.post('/admin/evict', { hub: 4 }, await server.adminToken());
  assert.notEqual(r.body.after, r.body.before, 'a new instance');
  let s = await open();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: topic, replay: 'retained' })).t, 'ok');
  assert.deepEqual(msgsOf(s, 1).map(brief), [[topic, 'v2']]);
  const v2 = msgsOf(s, 1)[0].seq;
  await s.close();

  await server.crash();
  s = await open();
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: topic, replay: 'retained' })).t, 'ok');
  assert.equal((await s.request({ op: 'sub', id: 2, pattern: topic, replay: { last: 10 } })).t, 'ok');
  assert.deepEqual(msgsOf(s, 1).map((m) => [...brief(m), m.seq]), [[topic, 'v2', v2]]);
  assert.deepEqual(msgsOf(s, 2).map((m) => [...brief(m), m.seq]), [[topic, 'v1', v2 - 1], [topic, 'v2', v2], [topic, 'v3', v2 + 1]]);
  await server.post('/publish', { topic, payload: 'v4' }, token);
  await s.waitMessages(5);
  assert.deepEqual(s.messages().at(-1).msg.seq, v2 + 2, 'numbered on after the restart');
  await s.close();
});

test('a replay carries at most REPLAY_MAX_MESSAGES (10,000): the newest, in order; what it asked for beyond them comes as gaps', { timeout: 120_000 }, async () => {
  const p = prefixOn(4, 'big');
  const TOPICS = 550; // 11,000 messages, 20 per topic (the history holds them all)
  const rows = Array.from({ length: TOPICS * HISTORY }, (_, k) => ({ topic: `${p}.t${k % TOPICS}`, payload: k }));
  for (let i = 0; i < rows.length; i += 1000) {
    assert.ok((await server.post('/publish', rows.slice(i, i + 1000), token)).body.results.every((r) => r.accepted));
  }
  const s = await open();
  const from = s.frames.length;
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.>`, replay: { sinceSeq: 0 } })).t, 'ok');
  const got = msgsOf(s, 1);
  assert.deepEqual(got.map((m) => m.payload), Array.from({ length: 10_000 }, (_, i) => rows.length - 10_000 + i), 'the newest 10,000, in publish order');
  // Left out: payloads 0..999, the first one or two of each topic.
  const gaps = s.frames.slice(from).filter((f) => f.t === 'gap' && f.sub === 1).flatMap((f) => f.gaps);
  assert.equal(gaps.length, TOPICS, 'one gap per topic');
  for (const g of gaps) {
    const t = Number(g.topic.slice(p.length + 2));
    const first = got.find((m) => m.topic === g.topic).seq; // its first message replayed
    const left = t < 1000 - TOPICS ? 2 : 1;
    assert.deepEqual([g.fromSeq, g.toSeq], [first - left, first - 1], `${g.topic}: its oldest ${left} left out`);
  }
  await s.close();
});

test('a request is neither numbered nor kept: the messages around it number on consecutively, and a replay carries them alone', async () => {
  const topic = `${prefixOn(7, 'rq')}.svc`;
  const responder = connect(server.url, { token, ...fast });
  const asker = connect(server.url, { token, ...fast });
  try {
    await responder.subscribe(topic, (n) => (typeof n === 'number' ? n + 1 : undefined)).ready;
    await server.post('/publish', { topic, payload: 'before' }, token);
    assert.equal(await asker.request(topic, 1), 2);
    await server.post('/publish', { topic, payload: 'after' }, token);
    const s = await open();
    assert.equal((await s.request({ op: 'sub', id: 1, pattern: topic, replay: { sinceSeq: 0 } })).t, 'ok');
    const got = msgsOf(s, 1);
    assert.deepEqual(got.map((m) => m.payload), ['before', 'after']);
    assert.equal(got[1].seq, got[0].seq + 1, 'no number went to the request');
    assert.equal(s.frames.some((f) => f.t === 'gap'), false);
    await s.close();
  } finally {
    await Promise.all([responder.close(), asker.close()]);
  }
});

test('a batch of more rows than one stored statement holds, with retained values among them, is whole after a SIGKILL', { timeout: 120_000 }, async () => {
  const p = prefixOn(5, 'rows');
  const names = ['a', 'b', 'c'];
  // 45 messages in one publish (written as one batch: several multi-row statements), 15 per
  // topic; a retained value set on `a` and replaced, one set on `b`.
  const batch = [];
  for (let i = 0; i < 15; i++) {
    for (const n of names) batch.push({ topic: `${p}.${n}`, payload: `${n}${i}`, retain: (n === 'a' && (i === 3 || i === 11)) || (n === 'b' && i === 7) });
  }
  const r = await server.post('/publish', batch, token);
  assert.equal(r.body.results.filter((x) => x.accepted).length, 45);
  const seen = async () => {
    const s = await open();
    assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.*`, replay: 'retained' })).t, 'ok');
    assert.equal((await s.request({ op: 'sub', id: 2, pattern: `${p}.*`, replay: { last: HISTORY } })).t, 'ok');
    const out = { retained: msgsOf(s, 1).map(brief).sort(), history: {} };
    for (const m of msgsOf(s, 2)) (out.history[m.topic] ??= []).push([m.payload, m.seq]);
    await s.close();
    return out;
  };
  const before = await seen();
  assert.deepEqual(before.retained, [[`${p}.a`, 'a11'], [`${p}.b`, 'b7']]);
  for (const n of names) {
    const h = before.history[`${p}.${n}`];
    assert.deepEqual(h.map(([payload]) => payload), Array.from({ length: 15 }, (_, i) => `${n}${i}`));
    assert.deepEqual(steps(h.map(([, seq]) => seq)), Array.from({ length: 15 }, (_, i) => i));
  }
  await server.crash();
  assert.deepEqual(await seen(), before);
});

test('namespaces: one tenant\'s retained values and history are not another\'s, whatever the topic', async () => {
  const [acme, bolt] = await Promise.all([server.token({ ns: 'acme' }), server.token({ ns: 'bolt' })]);
  const topic = `${prefixOn(6, 'ns')}.shared`;
  await server.post('/publish', { topic, payload: 'acme-secret', retain: true }, acme);
  const b = await open(bolt);
  assert.equal((await b.request({ op: 'sub', id: 1, pattern: '>', replay: 'retained' })).t, 'ok');
  assert.equal((await b.request({ op: 'sub', id: 2, pattern: topic, replay: { sinceSeq: 0 } })).t, 'ok');
  assert.equal((await b.request({ op: 'sub', id: 3, pattern: topic, replay: { sinceSeq: { [topic]: 0 } } })).t, 'ok');
  assert.deepEqual(b.messages(), []);
  await server.post('/publish', { topic, payload: 'bolt-own', retain: true }, bolt);
  await b.waitMessages(1);
  const a = await open(acme);
  assert.equal((await a.request({ op: 'sub', id: 1, pattern: topic, replay: 'retained' })).t, 'ok');
  assert.deepEqual(msgsOf(a, 1).map((m) => m.payload), ['acme-secret']);
  assert.deepEqual(b.messages().map((m) => [m.msg.payload, m.subs.sort()]), [['bolt-own', [1, 2, 3]]]);
  for (const s of [a, b]) await s.close();
});

test('ACLs: a replay reaches only what the token may subscribe to; `$` topics stay out of wildcards; bad replays are refused', async () => {
  const p = prefixOn(0, 'acl');
  await server.post('/publish', { topic: `${p}.open.x`, payload: 'ok', retain: true }, token);
  await server.post('/publish', { topic: `${p}.secret.x`, payload: 'no', retain: true }, token);
  const sys = await server.token({ pub: ['$sys.>'], sub: ['$sys.>'] });
  await server.post('/publish', { topic: '$sys.config', payload: 'internal', retain: true }, sys);
  const narrow = await server.token({ sub: [`${p}.open.>`] });
  const s = await open(narrow);
  const refused = await s.request({ op: 'sub', id: 1, pattern: `${p}.>`, replay: 'retained' });
  assert.deepEqual([refused.t, refused.code], ['err', 'FORBIDDEN']);
  const named = await s.request({ op: 'sub', id: 2, pattern: `${p}.open.>`, replay: { sinceSeq: { [`${p}.secret.x`]: 0 } } });
  assert.deepEqual([named.t, named.code], ['err', 'INVALID_OPTION'], 'a position on a topic the pattern does not match');
  assert.equal((await s.request({ op: 'sub', id: 3, pattern: `${p}.open.>`, replay: 'retained' })).t, 'ok');
  assert.deepEqual(msgsOf(s, 3).map((m) => m.payload), ['ok']);
  for (const bad of [{ last: -1 }, { last: 2, sinceMs: 1 }, { sinceMs: 'now' }, { sinceSeq: -1 }, { nope: 1 }, 'all', { sinceSeq: { 'a..b': 1 } }]) {
    const r = await s.request({ op: 'sub', id: 9, pattern: `${p}.open.>`, replay: bad });
    assert.deepEqual([r.t, r.code], ['err', 'INVALID_OPTION'], JSON.stringify(bad));
  }
  const group = await s.request({ op: 'sub', id: 10, pattern: `${p}.open.x`, group: 'g', replay: 'retained' });
  assert.deepEqual([group.t, group.code], ['err', 'INVALID_OPTION']);
  // A token with every right: `>` does not replay `$` topics.
  const all = await open();
  assert.equal((await all.request({ op: 'sub', id: 1, pattern: '>', replay: 'retained' })).t, 'ok');
  assert.equal(msgsOf(all, 1).some((m) => m.topic.startsWith('$')), false);
  for (const x of [s, all]) await x.close();
});

test('client recovery: a subscriber and a publisher through a SIGKILL of the deployment; every message arrives exactly once, none is a gap', { timeout: 180_000 }, async () => {
  const p = prefixOn(7, 'rec');
  const errors = [];
  const gaps = [];
  // The subscriber's next connection waits for `gate` (its token), so that what the publisher
  // sends while it is away can only reach it by replay.
  let gate = Promise.resolve();
  const sub = connect(server.url, { token: () => gate.then(() => token), ...fast, onError: (e) => errors.push(e) });
  const pub = connect(server.url, { token, ...fast, maxBuffer: 10000, onError: (e) => errors.push(e) });
  const seen = new Map();
  const s = sub.subscribe(`${p}.>`, (payload, m) => seen.set(m.id, (seen.get(m.id) ?? 0) + 1), { onGap: (g) => gaps.push(g) });
  await Promise.all([s.ready, pub.ready]);
  const ids = [];
  const send = (i) => {
    const id = `m-${i}`;
    ids.push(id);
    pub.publish(`${p}.${i % 3}`, i, { id });
  };
  // 3 topics × HISTORY messages: all of them within the history, so none may be a gap.
  for (let i = 0; i < HISTORY; i++) send(i);
  await until(() => seen.size >= 5, 'messages before the crash');
  let openGate;
  gate = new Promise((resolve) => { openGate = resolve; });
  const replayedBefore = (await server.stats()).total.replayed;
  const crash = server.crash();
  for (let i = HISTORY; i < 2 * HISTORY; i++) send(i); // while the deployment is down: held and sent again
  await crash;
  await until(() => pub.stats().reconnects >= 1, 'the publisher reconnected');
  await pub.flush(); // taken by the hubs while the subscriber is away
  openGate();
  await until(() => sub.stats().reconnects >= 1 && sub.connected, 'the subscriber reconnected');
  for (let i = 2 * HISTORY; i < 3 * HISTORY; i++) send(i);
  await pub.flush();
  await until(() => ids.every((id) => seen.has(id)),
    () => `every message: missing ${JSON.stringify(ids.filter((id) => !seen.has(id)))}; subscriber ${JSON.stringify(sub.stats())}; errors ${errors.map((e) => e.code)}`);
  assert.deepEqual(gaps, []);
  assert.deepEqual([...seen].filter(([, n]) => n !== 1), [], 'each id once');
  assert.deepEqual(ids.filter((id) => !seen.has(id)), []);
  assert.equal(sub.stats().gaps, 0);
  assert.deepEqual(errors.filter((e) => e.code === 'MESSAGES_MISSED'), []);
  assert.ok((await server.stats()).total.replayed - replayedBefore >= HISTORY, 'what was published while it was away came by replay');
  await Promise.all([sub.close(), pub.close()]);
});

test('client: retain and replay options; a gap reaches onGap and stats().gaps', async () => {
  const p = prefixOn(2, 'cl');
  const c = connect(server.url, { token, ...fast });
  await c.publishAsync(`${p}.a`, 'kept', { retain: true });
  const got = [];
  const s = c.subscribe(`${p}.*`, (payload, m) => got.push([m.topic, payload, m.seq]), { replay: 'retained' });
  await s.ready;
  assert.deepEqual(got.map(([t, x]) => [t, x]), [[`${p}.a`, 'kept']]);
  for (let i = 0; i < HISTORY + 5; i++) c.publish(`${p}.b`, i);
  await c.flush();
  await until(() => got.length === HISTORY + 6, 'the live messages');
  const first = got[1][2]; // the seq of `${p}.b`'s first message
  const gaps = [];
  const late = c.subscribe(`${p}.b`, () => {}, { replay: { sinceSeq: { [`${p}.b`]: first } }, onGap: (g) => gaps.push(g) });
  await late.ready;
  assert.deepEqual(gaps.map((g) => [g.topic, g.fromSeq, g.toSeq]), [[`${p}.b`, first + 1, first + 4]]);
  assert.equal(c.stats().gaps, 1);
  assert.equal(await c.publishAsync(`${p}.a`, undefined, { retain: true }), true, 'clears');
  assert.throws(() => c.subscribe('x', () => {}, { group: 'g', replay: 'retained' }), (e) => e.code === 'INVALID_OPTION');
  assert.throws(() => c.subscribe('x', () => {}, { replay: {} }), (e) => e.code === 'INVALID_OPTION');
  assert.throws(() => c.publish('x', 1, { retain: 'yes' }), (e) => e.code === 'INVALID_OPTION');
  await c.close();
});

test('the README replay example is examples/edge-replay.mjs, and it prints what the README says', async () => {
  const { readFileSync } = await import('node:fs');
  const { execFile } = await import('node:child_process');
  const { join } = await import('node:path');
  const root = join(import.meta.dirname, '..', '..');
  const file = readFileSync(join(root, 'examples', 'edge-replay.mjs'), 'utf8');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf('this is `examples/edge-replay.mjs`');
  assert.ok(at > 0);
  const open = readme.indexOf('```js\n', at) + 6;
  const block = readme.slice(open, readme.indexOf('```', open)).replace(/^ {2}/gm, '');
  assert.equal(block, file);
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, [join(root, 'examples', 'edge-replay.mjs')], {
      env: { ...process.env, EDGEBUS_URL: server.url, EDGEBUS_TOKEN: token }, timeout: 30_000,
    }, (e, stdout) => (e ? reject(e) : resolve(stdout)));
  });
  const lines = out.trim().split('\n');
  assert.equal(lines.length, 1);
  assert.match(lines[0], /^rooms\.lobby\.topic Be nice \d+$/);
});
