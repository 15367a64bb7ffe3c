// More attacks by a token holder of one tenant (namespace) of a shared deployment, against
// `wrangler dev`: bounds that one tenant could fill for another. Two tenants, `acme` and `bolt`,
// hold tokens with the very same claims.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;

const LATE_ACK_TOKENS = 20;
const MAX_GROUPS = 3;
const server = new EdgeServer({ vars: { LATE_ACK_TOKENS, MAX_GROUPS_PER_NAMESPACE: MAX_GROUPS } });
const claims = { pub: ['jobs.>'], sub: ['jobs.>'] };
let acme;
let bolt;

before(async () => {
  await server.start();
  acme = await server.token({ ...claims, ns: 'acme' });
  bolt = await server.token({ ...claims, ns: 'bolt' });
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (t) => RawSocket.open(`${server.wsUrl}/connect?token=${t}`);
const counts = async (t) => (await server.stats(t)).total;

const send = (s, ops) => s.sendSettled(ops);

test('another tenant\'s churn of deliveries on the same owner hub does not push a tenant\'s retired tokens out (LATE_ACK_TOKENS is per namespace): its late acknowledgement stays late', { timeout: 60_000 }, async () => {
  // `jobs.*` topics are all owned by one hub (one routed token): both work queues are there.
  const victim = await open(acme);
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'jobs.late', group: 'late' })).t, 'ok');
  await server.post('/publish', { topic: 'jobs.late', payload: 1, id: 'l-1' }, acme);
  const [m] = await victim.waitMessages(1);
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: [m.d] }), []);
  // Sent again (a client that resends what it is not sure was taken): late, no reply.
  const before = await counts(acme);
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: [m.d] }), []);
  assert.equal((await counts(acme)).lateAcks, before.lateAcks + 1);

  // bolt, on the same owner hub, gets and answers more jobs than the hub remembers retired tokens.
  const attacker = await open(bolt);
  assert.equal((await attacker.request({ op: 'sub', id: 1, pattern: 'jobs.fill', group: 'fill' })).t, 'ok');
  const n = LATE_ACK_TOKENS + 5;
  assert.equal((await server.post('/publish', Array.from({ length: n }, (_, i) => ({ topic: 'jobs.fill', payload: i, id: `f-${i}` })), bolt)).status, 200);
  assert.deepEqual(await send(attacker, { op: 'ack', sub: 1, d: (await attacker.waitMessages(n)).map((x) => x.d) }), []);

  // acme's token is still late: nothing bolt did reaches acme's memory of its deliveries.
  const mid = await counts(acme);
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: [m.d] }), [], 'late, not FORBIDDEN');
  const after = await counts(acme);
  assert.deepEqual([after.lateAcks, after.forbiddenAcks], [mid.lateAcks + 1, mid.forbiddenAcks]);
  for (const s of [victim, attacker]) await s.close();
});

test('a POST /publish refused RATE_LIMITED is counted in its namespace\'s /stats, whichever hub keeps the token\'s bucket', { timeout: 60_000 }, async () => {
  // A namespace of its own, used by nothing else, whose token's bucket is kept by a hub that owns
  // none of its topics (the Worker picks the hub from a hash of the token).
  const owner = hubOfTopic('jobs.rl', HUBS, 1);
  let carol;
  let limiter;
  for (let ttl = 3600; ; ttl++) {
    carol = await server.token({ ...claims, ns: 'carol', ttl });
    limiter = Number.parseInt(createHash('sha256').update(carol).digest('hex').slice(0, 8), 16) % HUBS;
    if (limiter !== owner) break;
  }
  const batch = Array.from({ length: 1000 }, (_, i) => ({ topic: 'jobs.rl', payload: i }));
  assert.equal((await server.post('/publish', batch, carol)).status, 200);
  const refused = await server.post('/publish', batch, carol);
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, 'RATE_LIMITED');
  assert.ok((await server.stats()).perHub[limiter].rateLimited >= 1000, 'counted at the bucket\'s hub');
  const view = await server.stats(carol);
  assert.equal(view.total.published, 1000);
  assert.equal(view.total.rateLimited, 1000, `carol's view (served by ${JSON.stringify(view.servedBy)}) counts its refused publishes`);
});

test('one tenant cannot pile up work queues at a hub: past MAX_GROUPS_PER_NAMESPACE a new one is refused, joining one it has is not, and another tenant opens its own', async () => {
  // Tenants of their own: the other tests' work queues are on the same hub (every `jobs.*` topic is).
  const a = await open(await server.token({ ...claims, ns: 'pile-a' }));
  const b = await open(await server.token({ ...claims, ns: 'pile-b' }));
  try {
    // Subscribed, then left: a queue without members stays (until STREAM_IDLE_MS).
    for (let i = 1; i <= MAX_GROUPS; i++) {
      assert.equal((await a.request({ op: 'sub', id: i, pattern: 'jobs.pile', group: `g${i}` })).t, 'ok');
      assert.equal((await a.request({ op: 'unsub', id: i })).t, 'ok');
    }
    const refused = await a.request({ op: 'sub', id: 10, pattern: 'jobs.pile', group: 'g-more' });
    assert.deepEqual([refused.t, refused.code], ['err', 'TOO_MANY_SUBSCRIPTIONS']);
    assert.match(refused.message, /MAX_GROUPS_PER_NAMESPACE/);
    assert.equal((await a.request({ op: 'sub', id: 11, pattern: 'jobs.pile', group: 'g1' })).t, 'ok', 'an existing queue takes members');
    for (let i = 1; i <= MAX_GROUPS; i++) {
      assert.equal((await b.request({ op: 'sub', id: i, pattern: 'jobs.pile', group: `g${i}` })).t, 'ok', `bolt's g${i}`);
    }
  } finally {
    await a.close();
    await b.close();
  }
});
