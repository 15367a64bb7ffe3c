// The package's client inside another Worker: edge/test-fixtures/client-worker (its own
// `wrangler dev`) imports `connect` from the package's `workerd` entry and reaches the hub's
// `wrangler dev` over its local URL. The test drives it over HTTP and answers what it publishes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const hub = new EdgeServer();
const client = new EdgeServer({ config: 'test-fixtures/client-worker/wrangler.toml' });
let token;

before(async () => {
  await Promise.all([hub.start(), client.start()]);
  token = await hub.token();
}, { timeout: 180_000 });
after(() => Promise.all([hub.dispose(), client.dispose()]));

test('a Worker publishes, subscribes and receives through the hub with connect()', { timeout: 90_000 }, async () => {
  const run = Math.random().toString(36).slice(2, 10);
  // The test's side: answers each `cw.<run>.out` on `cw.<run>.in`.
  const peer = await RawSocket.open(`${hub.wsUrl}/connect?token=${token}`);
  assert.equal((await peer.request({ op: 'sub', id: 1, pattern: `cw.${run}.out` })).t, 'ok');
  const call = fetch(`${client.url}/roundtrip`, { method: 'POST', body: JSON.stringify({ hub: hub.url, token, run }) });
  const [asked] = await peer.waitMessages(1);
  assert.deepEqual([asked.msg.topic, asked.msg.payload, asked.msg.id], [`cw.${run}.out`, { ask: 'ping' }, `${run}-out`]);
  assert.equal((await peer.request({ op: 'pub', ref: 1, topic: `cw.${run}.in`, payload: { answer: 'pong' }, id: `${run}-in` })).t, 'ok');

  const res = await call;
  const r = await res.json();
  assert.equal(res.status, 200, JSON.stringify(r));
  assert.match(r.entry, /Cloudflare Workers have no threads/, 'the package\'s workerd entry');
  assert.equal(r.published, true);
  assert.equal(r.job, true);
  assert.equal(r.bad, 'INVALID_TOPIC', 'the client validates in the Worker too');
  assert.deepEqual(r.answers, [{ topic: `cw.${run}.in`, payload: { answer: 'pong' }, id: `${run}-in` }]);
  assert.deepEqual(r.jobs, [{ payload: { job: 1 }, id: `${run}-job`, attempt: 1 }]);
  assert.deepEqual(r.remaining, []);
  assert.deepEqual(r.errors, []);
  assert.equal(r.stats.acknowledged, 2);
  const g = (await hub.stats()).perHub.flatMap((h) => h.groups).find((x) => x.group === `cw-${run}`);
  assert.deepEqual([g.stored, g.done], [0, 1], 'the Worker acknowledged its job');
  await peer.close();
});

test('the client worker refuses bad requests with typed errors', async () => {
  const r = await fetch(`${client.url}/roundtrip`, { method: 'POST', body: '{"hub":1}' });
  assert.deepEqual([r.status, (await r.json()).error.code], [400, 'BAD_REQUEST']);
});
