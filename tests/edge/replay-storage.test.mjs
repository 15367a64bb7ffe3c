// What the edge stores for replay follows what the core holds, at once: a topic whose log the core
// says lost something (a retained value evicted by the count of retained values, history gone
// past the time window or past the bound of topics, a log forgotten) is trimmed in storage with
// the write of the publish that caused it, not at a later sweep. Read from the Durable Objects'
// SQLite files beside the running server; then a SIGKILL shows the same state coming back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;
const WINDOW_MS = 1500;
const server = new EdgeServer({
  vars: {
    HISTORY_WINDOW_MS: String(WINDOW_MS), RETAIN_MAX_TOPICS: '2', HISTORY_MAX_TOPICS: '3', HISTORY_MAX_MESSAGES: '5',
    PUBLISH_MESSAGES_PER_SECOND: '100000',
  },
});
let token;

before(async () => {
  await server.start();
  token = await server.token();
}, { timeout: 120_000 });
after(() => server.dispose());

/** A fresh topic prefix owned by hub `hub`; `tag` keeps tests apart. */
function prefixOn(hub, tag) {
  for (let i = 0; ; i++) if (hubOfTopic(`${tag}${i}`, HUBS, 1) === hub) return `${tag}${i}`;
}

const publish = async (msgs) => {
  const r = await server.post('/publish', msgs, token);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(r.body.results.every((x) => x.accepted), JSON.stringify(r.body));
};

/** The stored rows of topics under `p`, as `topic seq [retained] [-]` (`-`: numbering only). */
function stored(p) {
  return server.storedLogRows().filter((r) => r.topic.startsWith(`${p}.`))
    .map((r) => `${r.topic.slice(p.length + 1)} ${r.seq}${r.retained ? ' retained' : ''}${r.hasMessage ? '' : ' -'}`);
}

/** Polls `stored(p)` until it equals `want` (a hang guard, not a timing assertion: the write follows the answer). */
async function storedBecomes(p, want) {
  const guard = Date.now() + 30_000;
  let got;
  while (JSON.stringify(got = stored(p)) !== JSON.stringify(want)) {
    if (Date.now() > guard) assert.deepEqual(got, want);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Each topic's first seq under `p`, so expectations read relative to it. */
const base = (p) => Object.fromEntries(server.storedLogRows().filter((r) => r.topic.startsWith(`${p}.`)).map((r) => [r.topic, r.seq]).reverse());

test('a retained value evicted by the count of retained values loses its flag in storage at once, and stays evicted after a SIGKILL', { timeout: 120_000 }, async () => {
  const p = prefixOn(3, 'rs');
  await publish([{ topic: `${p}.a`, payload: 1, retain: true }]);
  await publish([{ topic: `${p}.b`, payload: 2, retain: true }]);
  await storedBecomes(p, ['a 1 retained', 'b 1 retained'].map((x) => x.replace(/ 1/, ` ${base(p)[`${p}.${x[0]}`]}`)));
  const seqs = base(p);
  // A third retained value: a's, the oldest, is evicted (its message stays, as history).
  await publish([{ topic: `${p}.c`, payload: 3, retain: true }]);
  await storedBecomes(p, [`a ${seqs[`${p}.a`]}`, `b ${seqs[`${p}.b`]} retained`, `c ${base(p)[`${p}.c`]} retained`]);

  await server.crash();
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.*`, replay: 'retained' })).t, 'ok');
  assert.deepEqual(s.messages().filter((m) => m.subs.includes(1)).map((m) => [m.msg.topic, m.msg.payload]), [[`${p}.b`, 2], [`${p}.c`, 3]]);
  await s.close();
});

test('history past the time window is trimmed in storage with the next publish on its hub, down to its numbering', { timeout: 120_000 }, async () => {
  const p = prefixOn(5, 'win');
  await publish([1, 2, 3].map((payload) => ({ topic: `${p}.x`, payload })));
  const x = base(p)[`${p}.x`];
  await storedBecomes(p, [`x ${x}`, `x ${x + 1}`, `x ${x + 2}`]);
  await new Promise((r) => setTimeout(r, WINDOW_MS + 200));
  // Another topic of the same hub: its publish is when the core lets x's messages go.
  await publish([{ topic: `${p}.y`, payload: 4 }]);
  const y = base(p)[`${p}.y`];
  await storedBecomes(p, [`x ${x + 2} -`, `y ${y}`]);

  await server.crash();
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.x`, replay: { sinceSeq: { [`${p}.x`]: x - 1 } } })).t, 'ok');
  const gap = s.frames.find((f) => f.t === 'gap');
  assert.deepEqual(gap.gaps.map((g) => [g.topic, g.fromSeq, g.toSeq]), [[`${p}.x`, x, x + 2]], 'what went is a gap, numbered as before');
  await publish([{ topic: `${p}.x`, payload: 5 }]);
  await s.waitMessages(1);
  assert.equal(s.messages().at(-1).msg.seq, x + 3, 'numbered on after the restart');
  await s.close();
});

test('history past the bound of topics: the oldest message across topics goes, and its row with it', { timeout: 120_000 }, async () => {
  const p = prefixOn(6, 'tops');
  for (const t of ['h1', 'h2', 'h3']) await publish([{ topic: `${p}.${t}`, payload: t }]);
  const seqs = base(p);
  const s1 = seqs[`${p}.h1`];
  await storedBecomes(p, ['h1', 'h2', 'h3'].map((t) => `${t} ${seqs[`${p}.${t}`]}`));
  await publish([{ topic: `${p}.h4`, payload: 'h4' }]);
  const h4 = base(p)[`${p}.h4`];
  await storedBecomes(p, [`h1 ${s1} -`, ...['h2', 'h3'].map((t) => `${t} ${seqs[`${p}.${t}`]}`), `h4 ${h4}`]);
});
