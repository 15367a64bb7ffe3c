// Connections per namespace at one hub (MAX_CONNECTIONS): one tenant holding its share is refused
// one more, typed and counted in its own namespace, while another tenant still connects to the
// same hub; a closed connection makes room again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const server = new EdgeServer({ vars: { MAX_CONNECTIONS: '3' } });
const claims = { pub: ['orders.>'], sub: ['orders.>'] };
let acme;
let bolt;

before(async () => {
  await server.start();
  acme = await server.token({ ...claims, ns: 'acme' });
  bolt = await server.token({ ...claims, ns: 'bolt' });
}, { timeout: 120_000 });
after(() => server.dispose());

// Every socket to the hub that owns `orders`.
const open = (t) => RawSocket.open(`${server.wsUrl}/connect?token=${t}&hub=orders`);

test('a namespace holding MAX_CONNECTIONS at a hub is refused one more; another namespace is not', async () => {
  const refusedBefore = (await server.stats(acme)).total.refused;
  const held = [];
  for (let i = 0; i < 3; i++) {
    const s = await open(acme);
    const hello = await s.waitFor((f) => f.t === 'hello');
    assert.equal(hello.limits.maxConnections, 3);
    held.push(s);
  }
  const extra = new RawSocket(`${server.wsUrl}/connect?token=${acme}&hub=orders`);
  const closed = await Promise.race([
    extra.closedPromise,
    extra.waitFor((f) => f.t === 'hello').then(() => { throw new Error('a connection past the cap was let in'); }),
  ]);
  assert.equal(closed.code, 4429, 'a transient refusal: the client tries again later');
  const err = extra.frames.find((f) => f.t === 'err');
  assert.equal(err?.code, 'TOO_MANY_CONNECTIONS');
  assert.match(err.message, /acme.*3 connections/);
  assert.equal(extra.frames.some((f) => f.t === 'hello'), false);

  // The other tenant connects to the same hub and works.
  const other = await open(bolt);
  await other.waitFor((f) => f.t === 'hello');
  assert.equal((await other.request({ op: 'sub', id: 1, pattern: 'orders.>' })).t, 'ok');
  assert.equal((await held[0].request({ op: 'pub', topic: 'orders.1', payload: 'acme', ref: 'p1' })).t, 'ok');
  assert.equal((await other.request({ op: 'pub', topic: 'orders.2', payload: 'bolt', ref: 'p2' })).t, 'ok');
  const got = await other.waitMessages(1);
  assert.deepEqual(got.map((m) => m.msg.payload), ['bolt'], 'namespaces stay apart');

  // The refusal is counted in acme's namespace, not in bolt's.
  const acmeView = await server.stats(acme);
  const boltView = await server.stats(bolt);
  assert.equal(acmeView.total.refused, refusedBefore + 1);
  assert.equal(boltView.total.refused, 0);

  // A closed connection makes room again.
  await held.pop().close();
  let again;
  const guard = Date.now() + 10_000; // the hub learns of the close asynchronously
  for (;;) {
    const s = new RawSocket(`${server.wsUrl}/connect?token=${acme}&hub=orders`);
    const first = await Promise.race([s.waitFor((f) => f.t === 'hello' || f.t === 'err').catch(() => undefined), s.closedPromise]);
    if (first?.t === 'hello') { again = s; break; }
    assert.ok(Date.now() < guard, 'room again after a close');
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await again.request({ op: 'sub', id: 1, pattern: 'orders.>' })).t, 'ok');
  for (const s of [...held, other, again]) await s.close();
});
