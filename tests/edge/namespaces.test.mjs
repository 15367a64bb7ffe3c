// Namespaces: two tenants whose tokens allow the very same topic patterns share nothing. Message
// ids, topics, group names, `$dead.<group>` and counters are per namespace (the token's `ns`
// claim); a token without `ns` is in the default namespace. /stats: an admin token sees the whole
// deployment; any other token sees its own namespace only, without instance ids.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const server = new EdgeServer();
const claims = { pub: ['orders.>', 'jobs.>'], sub: ['orders.>', 'jobs.>', '$dead.>'] };
let acme;
let bolt;
let plain;

before(async () => {
  await server.start();
  acme = await server.token({ ...claims, ns: 'acme' });
  bolt = await server.token({ ...claims, ns: 'bolt' });
  plain = await server.token(claims);
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (t) => RawSocket.open(`${server.wsUrl}/connect?token=${t}`);
const sync = async (s, id) => assert.equal((await s.request({ op: 'sub', id, pattern: `orders.sync${id}` })).t, 'ok');

test('message ids are per namespace: one tenant\'s id never makes another\'s a duplicate', async () => {
  const a = await server.post('/publish', { topic: 'orders.eu', payload: 'a', id: 'order-X' }, acme);
  assert.deepEqual(a.body, { accepted: true, stored: false });
  const b = await server.post('/publish', { topic: 'orders.eu', payload: 'b', id: 'order-X' }, bolt);
  assert.deepEqual(b.body, { accepted: true, stored: false }, 'not a duplicate of acme\'s order-X');
  const p = await server.post('/publish', { topic: 'orders.eu', payload: 'p', id: 'order-X' }, plain);
  assert.deepEqual(p.body, { accepted: true, stored: false }, 'nor is the default namespace\'s');
  const again = await server.post('/publish', { topic: 'orders.eu', payload: 'b', id: 'order-X' }, bolt);
  assert.deepEqual(again.body, { accepted: false, duplicate: true }, 'within one namespace ids still dedupe');
});

test('topics are per namespace: the same patterns never read another tenant\'s messages', { timeout: 60_000 }, async () => {
  const sa = await open(acme);
  const sb = await open(bolt);
  const sp = await open(plain);
  const hello = await sa.waitFor((f) => f.t === 'hello');
  assert.equal(hello.ns, 'acme');
  assert.equal((await sp.waitFor((f) => f.t === 'hello')).ns, 'default');
  for (const s of [sa, sb, sp]) {
    assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'orders.>' })).t, 'ok');
    assert.equal((await s.request({ op: 'sub', id: 2, pattern: 'orders.*' })).t, 'ok');
  }
  // Over HTTP and over a WebSocket, on topics of several hubs' prefixes.
  await server.post('/publish', [{ topic: 'orders.a', payload: 'acme-1' }, { topic: 'orders.a.b', payload: 'acme-2' }], acme);
  sb.send({ op: 'pub', topic: 'orders.a', payload: 'bolt-1' });
  await server.post('/publish', { topic: 'orders.a', payload: 'plain-1' }, plain);
  for (const t of [acme, bolt, plain]) await server.post('/publish', { topic: 'orders.end', payload: 'end' }, t);
  const got = async (s, n) => (await s.waitMessages(n)).map((m) => m.msg.payload);
  assert.deepEqual(await got(sa, 3), ['acme-1', 'acme-2', 'end']);
  assert.deepEqual(await got(sb, 2), ['bolt-1', 'end']);
  assert.deepEqual(await got(sp, 2), ['plain-1', 'end']);
  for (const m of [...sa.messages(), ...sb.messages()]) assert.equal(m.msg.ns, undefined, 'the namespace is not part of the message');
  await sync(sa, 10);
  await sync(sb, 10);
  assert.equal(sa.messages().length, 3);
  assert.equal(sb.messages().length, 2);
  for (const s of [sa, sb, sp]) await s.close();
});

test('group names and `$dead.<group>` are per namespace', { timeout: 60_000 }, async () => {
  const wa = await open(acme);
  const wb = await open(bolt);
  // The same group and pattern with different options: two groups, no conflict.
  assert.equal((await wa.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'workers', maxAttempts: 1 })).t, 'ok');
  assert.equal((await wb.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'workers', maxAttempts: 2 })).t, 'ok');
  const da = await open(acme);
  const db = await open(bolt);
  assert.equal((await da.request({ op: 'sub', id: 1, pattern: '$dead.workers' })).t, 'ok');
  assert.equal((await db.request({ op: 'sub', id: 1, pattern: '$dead.workers' })).t, 'ok');

  await server.post('/publish', { topic: 'jobs.q', payload: 'bolt-job', id: 'job-1' }, bolt);
  await server.post('/publish', { topic: 'jobs.q', payload: 'acme-job', id: 'job-1' }, acme);
  const [ja] = await wa.waitMessages(1);
  const [jb] = await wb.waitMessages(1);
  assert.deepEqual([ja.msg.payload, jb.msg.payload], ['acme-job', 'bolt-job']);

  // acme's member fails its job: the letter goes to acme's `$dead.workers` only.
  wa.send({ op: 'nack', sub: 1, d: [ja.d], error: 'acme failed' });
  const [la] = await da.waitMessages(1);
  assert.deepEqual(la.msg.payload, {
    group: 'workers', topic: 'jobs.q', attempts: 1, error: { code: 'HANDLER_FAILED', message: 'acme failed' }, message: ja.msg,
  });
  // bolt's member fails twice (its own maxAttempts); its letter reaches bolt's subscriber only.
  wb.send({ op: 'nack', sub: 1, d: [jb.d], error: 'bolt failed' });
  const [, jb2] = await wb.waitMessages(2);
  assert.equal(jb2.attempt, 2);
  wb.send({ op: 'nack', sub: 1, d: [jb2.d], error: 'bolt failed' });
  const [lb] = await db.waitMessages(1);
  assert.deepEqual([lb.msg.payload.message.payload, lb.msg.payload.attempts], ['bolt-job', 2]);
  await sync(da, 10);
  await sync(db, 10);
  assert.equal(da.messages().length, 1);
  assert.equal(db.messages().length, 1);
  assert.equal(wa.messages().length, 1, 'bolt\'s job never reached acme\'s member');
  for (const s of [wa, wb, da, db]) await s.close();
});

test('/stats: a namespace sees its own figures only, without instance ids; admin sees everything', { timeout: 60_000 }, async () => {
  const viewA = await server.stats(acme);
  const viewB = await server.stats(bolt);
  assert.equal(viewA.ns, 'acme');
  assert.equal(viewA.perHub, undefined);
  assert.doesNotMatch(JSON.stringify(viewA), /boot/);
  assert.doesNotMatch(JSON.stringify(viewB), /boot/);
  // acme published: order-X, two orders, its end marker, its job and its dead letter.
  assert.deepEqual([viewA.total.published, viewA.total.duplicates, viewA.total.dead], [6, 0, 1]);
  // bolt: order-X (and its duplicate), one order over the socket, the marker, the job, its letter.
  assert.deepEqual([viewB.total.published, viewB.total.duplicates, viewB.total.dead], [5, 1, 1]);
  assert.deepEqual(viewA.groups.map((g) => [g.group, g.pattern, g.dead]), [['workers', 'jobs.q', 1]]);
  assert.deepEqual(viewB.groups.map((g) => [g.group, g.pattern, g.dead]), [['workers', 'jobs.q', 1]]);
  // A token without permissions is no key to other namespaces' figures.
  const nobody = await server.stats(await server.token({ pub: [], sub: [] }));
  assert.equal(nobody.ns, 'default');
  assert.deepEqual(nobody.groups, []);
  assert.equal(nobody.total.published, 3, 'the default namespace\'s own publishes');

  const all = await server.stats();
  assert.equal(all.perHub.length, 8);
  for (const h of all.perHub) assert.equal(typeof h.boot, 'string');
  const workers = all.perHub.flatMap((h) => h.groups).filter((g) => g.group === 'workers').map((g) => g.ns).sort();
  assert.deepEqual(workers, ['acme', 'bolt']);
  assert.equal(all.total.published, viewA.total.published + viewB.total.published + nobody.total.published);

  const res = await fetch(`${server.url}/stats`, { headers: { authorization: `Bearer ${acme}` } });
  assert.equal(res.status, 200);
});

test('a namespace\'s /stats asks only the hubs that served it', async () => {
  const fresh = await server.stats(await server.token({ ns: 'fresh' }));
  assert.deepEqual([fresh.servedBy, fresh.groups, fresh.total.published, fresh.total.connections], [[], [], 0, 0]);
  const solo = await server.token({ pub: ['orders.>'], ns: 'solo' });
  assert.deepEqual((await server.post('/publish', { topic: 'orders.x', payload: 1 }, solo)).body, { accepted: true, stored: false });
  const view = await server.stats(solo);
  assert.deepEqual(view.servedBy, [hubOfTopic('orders.x', 8, 1)]);
  assert.equal(view.total.published, 1);
  // A connection's home joins the directory when it accepts the socket.
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${solo}&hub=zz`);
  const { hub } = await s.waitFor((f) => f.t === 'hello');
  const after = await server.stats(solo);
  assert.deepEqual(after.servedBy, [...new Set([hub, hubOfTopic('orders.x', 8, 1)])].sort((a, b) => a - b));
  assert.equal(after.total.connections, 1);
  await s.close();
});
