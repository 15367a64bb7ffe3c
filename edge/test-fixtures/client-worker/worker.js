// `POST /roundtrip { hub, token, run }`: within one request, connects to the edgebus deployment at
// `hub` with the package's client, subscribes to `cw.<run>.in` (plain) and `cw.<run>.jobs` (a work
// queue), publishes `cw.<run>.out` (which the test answers on `cw.<run>.in`) and a job to itself,
// waits for the answer and the job, closes, and reports what happened.
import { connect, EdgebusError, ShardedBus } from 'edgebus';

function fail(status, code, message) {
  return Response.json({ error: { code, message } }, { status });
}

async function roundTrip({ hub, token, run }) {
  const errors = [];
  const bus = connect(hub, { token, reconnect: { initialMs: 50, maxMs: 400 }, onError: (e) => errors.push(`${e.code}: ${e.message}`) });
  const answers = [];
  const jobs = [];
  let wake;
  let woken = new Promise((r) => { wake = r; });
  const changed = () => { wake(); woken = new Promise((r) => { wake = r; }); };
  const plain = bus.subscribe(`cw.${run}.in`, (payload, msg) => { answers.push({ topic: msg.topic, payload, id: msg.id }); changed(); });
  const work = bus.subscribe(`cw.${run}.jobs`, (payload, msg) => { jobs.push({ payload, id: msg.id, attempt: msg.attempt }); changed(); }, { group: `cw-${run}` });
  await Promise.all([plain.ready, work.ready, bus.ready]);
  const published = await bus.publishAsync(`cw.${run}.out`, { ask: 'ping' }, { id: `${run}-out` });
  const job = await bus.publishAsync(`cw.${run}.jobs`, { job: 1 }, { id: `${run}-job` });
  let bad;
  try {
    bus.publish('cw.*', 1);
  } catch (e) {
    bad = e instanceof EdgebusError ? e.code : String(e);
  }
  // Which entry the bundler resolved: the workerd one refuses ShardedBus with its own reason.
  let entry;
  try {
    new ShardedBus();
  } catch (e) {
    entry = e.message;
  }
  while (answers.length === 0 || jobs.length === 0) await woken;
  await bus.flush();
  const { remaining } = await bus.close();
  return { entry, published, job, bad, answers, jobs, remaining, errors, stats: bus.stats() };
}

export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname !== '/roundtrip') return fail(404, 'NOT_FOUND', `no route ${url.pathname} (routes: /roundtrip)`);
    if (request.method !== 'POST') return fail(405, 'METHOD_NOT_ALLOWED', '/roundtrip takes POST');
    let body;
    try {
      body = await request.json();
    } catch (e) {
      return fail(400, 'BAD_JSON', `the body is not valid JSON: ${e.message}`);
    }
    if (typeof body?.hub !== 'string' || typeof body.token !== 'string' || !/^[a-z0-9]{1,32}$/.test(body.run ?? '')) {
      return fail(400, 'BAD_REQUEST', 'expected { hub: url, token, run: [a-z0-9]{1,32} }');
    }
    try {
      return Response.json(await roundTrip(body));
    } catch (e) {
      return fail(500, e?.code ?? 'ERROR', String(e?.message ?? e));
    }
  },
};
