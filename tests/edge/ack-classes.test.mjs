// Every acknowledgement (`ack` and `nack`) is one of three kinds, whatever hub it reaches and
// whatever the hubs have lost since the delivery:
// - pending for the subscription that sends it: applied;
// - late (delivered to that very subscription, no longer pending: answered already, its ack
//   deadline passed, ...): counted `lateAcks` in the namespace, no reply, nothing changes;
// - anything else (guessed, malformed, another tenant's or member's, retired longer ago than the
//   hubs remember, from before a SIGKILL restart): refused with one FORBIDDEN reply per operation
//   naming how many, counted `forbiddenAcks` in the sender's namespace, nothing changes.
// Homes are hubs other than the work queues' owner, so that a home can be out of memory
// (hibernated: its sockets stay open, its memory of deliveries is gone) while the owner holds
// deliveries; the owner must then decide alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;
const LATE_ACK_TOKENS = 20;
// Guessed tokens in bulk are metered per connection (UNVOUCHED_ACKS_PER_SECOND, see
// tenant-attacks.test.mjs): set far above what these tests send, so each token meets its class.
const server = new EdgeServer({ vars: { LATE_ACK_TOKENS, UNVOUCHED_ACKS_PER_SECOND: '1000000' } });
const claims = { pub: ['jobs.>'], sub: ['jobs.>'] };
let acme;
let bolt;

const owner = hubOfTopic('jobs.q', HUBS, 1);
/** `[prefix, hub]` of two homes: distinct hubs, neither the owner of `jobs.*`. */
const homes = [];
for (let i = 0; homes.length < 2; i++) {
  const h = hubOfTopic(`home${i}`, HUBS, 1);
  if (h !== owner && !homes.some(([, x]) => x === h)) homes.push([`home${i}`, h]);
}
const [victimHome, attackerHome] = homes;

before(async () => {
  await server.start();
  acme = await server.token({ ...claims, ns: 'acme' });
  bolt = await server.token({ ...claims, ns: 'bolt' });
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (token, [prefix]) => RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=${prefix}`);
const guess = () => randomBytes(16).toString('base64url');
/** A namespace's counters and one of its work queues (the namespace view of /stats). */
const counts = async (token) => (await server.stats(token)).total;
const queue = async (token, group) => (await server.stats(token)).groups.find((g) => g.group === group);
const pick = (c) => [c.forbiddenAcks, c.lateAcks, c.acked];

const send = (s, ops) => s.sendSettled(ops);
const brief = (errs) => errs.map((e) => [e.op, e.sub, e.code, e.refused]);

/** Waits until nothing has called hub `hub` long enough for local workerd to drop the instance (about 10 s). */
async function outOfMemory(hub) {
  const boot = (await server.stats()).perHub[hub].boot;
  await new Promise((r) => setTimeout(r, 16_000));
  return async () => assert.notEqual((await server.stats()).perHub[hub].boot, boot, `hub ${hub} was out of memory (a new instance answered)`);
}

test('guessed, malformed and another tenant\'s tokens are refused and counted, also once the home forgot its deliveries; the victim\'s jobs are untouched', { timeout: 120_000 }, async () => {
  const victim = await open(acme, victimHome);
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'work', ackTimeoutMs: 120000 })).t, 'ok');
  const attacker = await open(bolt, attackerHome);
  assert.equal((await attacker.request({ op: 'sub', id: 1, pattern: 'jobs.q', group: 'work', ackTimeoutMs: 120000 })).t, 'ok');
  const ids = ['v-1', 'v-2', 'v-3', 'v-4'];
  await server.post('/publish', ids.map((id) => ({ topic: 'jobs.q', payload: id, id })), acme);
  const real = (await victim.waitMessages(4)).map((m) => m.d);
  // One job done: its token is retired (acknowledged), the others pending.
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: [real[0]] }), []);
  const victim0 = await counts(acme);
  const attacker0 = await counts(bolt);

  const guessed = Array.from({ length: 20 }, guess);
  const bulk = Array.from({ length: 8200 }, guess); // more than one call to the owner carries
  const malformed = ['', 'short', `${guess()}=`, `${guess().slice(0, 21)}.`, real[1].toUpperCase() + 'A', 42, null, { d: real[1] }];
  let errs = await send(attacker, [
    { op: 'ack', sub: 1, d: guessed },
    { op: 'nack', sub: 1, d: malformed, error: 'x' },
    { op: 'ack', sub: 1, d: real },
    { op: 'ack', sub: 77, d: real.slice(1) }, // no such subscription here
    { op: 'nack', d: [real[1]] },
    { op: 'ack', sub: 1, d: bulk },
  ]);
  assert.deepEqual(brief(errs), [
    ['ack', 1, 'FORBIDDEN', 20], ['nack', 1, 'FORBIDDEN', malformed.length], ['ack', 1, 'FORBIDDEN', 4],
    ['ack', 77, 'FORBIDDEN', 3], ['nack', undefined, 'FORBIDDEN', 1], ['ack', 1, 'FORBIDDEN', bulk.length],
  ]);
  for (const e of errs) {
    assert.match(e.message, /^\d+ delivery token\(s\) refused/);
    for (const d of real) assert.ok(!e.message.includes(d), 'no token echoed');
  }
  assert.deepEqual(pick(await counts(bolt)), [attacker0.forbiddenAcks + 20 + malformed.length + 4 + 4 + bulk.length, attacker0.lateAcks, attacker0.acked]);
  assert.deepEqual(pick(await counts(acme)), pick(victim0), 'nothing counted in the victim\'s namespace');

  // The attacker's home out of memory (hibernated; the socket stays): it no longer knows what it
  // delivered, and every token goes to the owner, which refuses them the same way.
  const check = await outOfMemory(attackerHome[1]);
  errs = await send(attacker, [{ op: 'ack', sub: 1, d: guessed }, { op: 'nack', sub: 1, d: real, error: 'x' }]);
  await check();
  assert.deepEqual(brief(errs), [['ack', 1, 'FORBIDDEN', 20], ['nack', 1, 'FORBIDDEN', 4]]);
  assert.deepEqual(pick(await counts(bolt)), [attacker0.forbiddenAcks + 20 + malformed.length + 4 + 4 + bulk.length + 24, attacker0.lateAcks, attacker0.acked]);
  assert.deepEqual(pick(await counts(acme)), pick(victim0));

  // Untouched: nothing redelivered, the victim acknowledges its jobs (its home hibernated too: the
  // owner takes the pending tokens from their member alone, and knows the retired one as late).
  let g = await queue(acme, 'work');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.redelivered], [3, 3, 1, 0]);
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: real }), [], 'three pending, one late: no reply');
  g = await queue(acme, 'work');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.redelivered], [0, 0, 4, 0]);
  assert.equal(victim.messages().length, 4);
  assert.deepEqual(pick(await counts(acme)), [victim0.forbiddenAcks, victim0.lateAcks + 1, victim0.acked + 3]);
  assert.equal(attacker.messages().length, 0);
  await victim.close();
  await attacker.close();
});

test('a token replayed after it was answered: late for its own subscription (counted, no reply), refused for any other', { timeout: 60_000 }, async () => {
  const victim = await open(acme, victimHome);
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'jobs.r', group: 'replay', ackTimeoutMs: 120000, maxAttempts: 1 })).t, 'ok');
  const other = await open(acme, attackerHome);
  assert.equal((await other.request({ op: 'sub', id: 1, pattern: 'jobs.r', group: 'replay-b', ackTimeoutMs: 120000 })).t, 'ok');
  const stranger = await open(bolt, attackerHome);
  assert.equal((await stranger.request({ op: 'sub', id: 1, pattern: 'jobs.r', group: 'replay', ackTimeoutMs: 120000 })).t, 'ok');
  await server.post('/publish', [{ topic: 'jobs.r', payload: 1, id: 'r-1' }, { topic: 'jobs.r', payload: 2, id: 'r-2' }], acme);
  const [m1, m2] = await victim.waitMessages(2);
  await other.waitMessages(2);
  // r-1 acknowledged, r-2 refused for good (maxAttempts 1: a dead letter).
  assert.deepEqual(await send(victim, [{ op: 'ack', sub: 1, d: [m1.d] }, { op: 'nack', sub: 1, d: [m2.d], error: 'no' }]), []);
  const before = await counts(acme);
  const bolt0 = await counts(bolt);

  assert.deepEqual(await send(victim, [{ op: 'ack', sub: 1, d: [m1.d, m2.d] }, { op: 'nack', sub: 1, d: [m1.d], error: 'again' }]), [], 'late: no reply');
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks, before.lateAcks + 3, before.acked]);
  let g = await queue(acme, 'replay');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.dead, g.redelivered], [0, 0, 1, 1, 0]);

  // Another member of the same tenant, another tenant: refused.
  assert.deepEqual(brief(await send(other, { op: 'ack', sub: 1, d: [m1.d, m2.d] })), [['ack', 1, 'FORBIDDEN', 2]]);
  assert.deepEqual(brief(await send(stranger, { op: 'nack', sub: 1, d: [m1.d, m2.d] })), [['nack', 1, 'FORBIDDEN', 2]]);
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks + 2, before.lateAcks + 3, before.acked]);
  assert.deepEqual(pick(await counts(bolt)), [bolt0.forbiddenAcks + 2, bolt0.lateAcks, bolt0.acked]);

  // The victim's next job: delivered and acknowledged as ever.
  await server.post('/publish', { topic: 'jobs.r', payload: 3, id: 'r-3' }, acme);
  const [, , m3] = await victim.waitMessages(3);
  assert.equal(m3.msg.id, 'r-3');
  assert.deepEqual(await send(victim, { op: 'ack', sub: 1, d: [m3.d] }), []);
  g = await queue(acme, 'replay');
  assert.deepEqual([g.stored, g.done, g.dead], [0, 2, 1]);
  for (const s of [victim, other, stranger]) await s.close();
});

test('a token past its ack deadline: late for its member, refused for another; refused once older than the hubs remember', { timeout: 60_000 }, async () => {
  const a = await open(acme, victimHome);
  const b = await open(acme, attackerHome);
  for (const s of [a, b]) assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'jobs.slow', group: 'slow', ackTimeoutMs: 2000, maxAttempts: 3 })).t, 'ok');
  const found = async (attempt, id) => {
    for (;;) {
      for (const s of [a, b]) {
        const m = s.messages().find((x) => x.msg.id === id && x.attempt === attempt);
        if (m !== undefined) return [s, m];
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await server.post('/publish', { topic: 'jobs.slow', payload: 1, id: 's-1' }, acme);
  const [holder, m1] = await found(1, 's-1');
  // Not answered within 2 s: delivered again (to either member), and that delivery answered.
  const [holder2, m2] = await found(2, 's-1');
  assert.deepEqual(await send(holder2, { op: 'ack', sub: 1, d: [m2.d] }), []);
  const before = await counts(acme);
  assert.deepEqual(await send(holder, { op: 'ack', sub: 1, d: [m1.d] }), [], 'late: no reply');
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks, before.lateAcks + 1, before.acked]);
  const stranger = holder === a ? b : a;
  assert.deepEqual(brief(await send(stranger, { op: 'nack', sub: 1, d: [m1.d] })), [['nack', 1, 'FORBIDDEN', 1]]);
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks + 1, before.lateAcks + 1, before.acked]);
  const g = await queue(acme, 'slow');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.redelivered, g.dead], [0, 0, 1, 1, 0]);

  // Another job past its deadline, whose first token is then pushed out of the owner's memory of
  // retired tokens (LATE_ACK_TOKENS, per hub and namespace) before its member answers it: refused, counted.
  await server.post('/publish', { topic: 'jobs.slow', payload: 2, id: 's-2' }, acme);
  const [late, t1] = await found(1, 's-2');
  const [late2, t2] = await found(2, 's-2');
  assert.deepEqual(await send(late2, { op: 'ack', sub: 1, d: [t2.d] }), []);
  const forgotten = (await server.stats()).total.tokensForgotten;
  const filler = await open(acme, victimHome);
  assert.equal((await filler.request({ op: 'sub', id: 1, pattern: 'jobs.fill', group: 'fill', ackTimeoutMs: 120000 })).t, 'ok');
  const n = LATE_ACK_TOKENS + 5;
  await server.post('/publish', Array.from({ length: n }, (_, i) => ({ topic: 'jobs.fill', payload: i, id: `f-${i}` })), acme);
  assert.deepEqual(await send(filler, { op: 'ack', sub: 1, d: (await filler.waitMessages(n)).map((m) => m.d) }), []);
  assert.ok((await server.stats()).total.tokensForgotten >= forgotten + 5, 'evictions of the bounded memory are counted');
  const mid = await counts(acme);
  assert.deepEqual(brief(await send(late, { op: 'ack', sub: 1, d: [t1.d] })), [['ack', 1, 'FORBIDDEN', 1]]);
  assert.deepEqual(pick(await counts(acme)), [mid.forbiddenAcks + 1, mid.lateAcks, mid.acked]);
  assert.deepEqual([(await queue(acme, 'slow')).done, (await queue(acme, 'slow')).stored], [2, 0]);
  for (const s of [a, b, filler]) await s.close();
});

test('tokens from before a SIGKILL restart are refused (the hubs keep no tokens; connections are new), also once the new home forgot its deliveries', { timeout: 180_000 }, async () => {
  const sub = { op: 'sub', id: 1, pattern: 'jobs.k', group: 'crash', ackTimeoutMs: 120000 };
  let s = await open(acme, victimHome);
  assert.equal((await s.request(sub)).t, 'ok');
  await server.post('/publish', [{ topic: 'jobs.k', payload: 1, id: 'k-1' }, { topic: 'jobs.k', payload: 2, id: 'k-2' }], acme);
  const [k1, k2] = await s.waitMessages(2);
  assert.deepEqual(await send(s, { op: 'ack', sub: 1, d: [k1.d] }), []);

  await server.crash();
  await s.closedPromise;
  s = await open(acme, victimHome);
  assert.equal((await s.request(sub)).t, 'ok');
  const [again] = await s.waitMessages(1);
  assert.deepEqual([again.msg.id, again.attempt], ['k-2', 2]);
  const before = await counts(acme);
  assert.deepEqual(brief(await send(s, { op: 'ack', sub: 1, d: [k1.d, k2.d] })), [['ack', 1, 'FORBIDDEN', 2]]);
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks + 2, before.lateAcks, before.acked]);

  // The new connection's home out of memory too: the owner alone refuses them.
  const check = await outOfMemory(victimHome[1]);
  assert.deepEqual(brief(await send(s, [{ op: 'nack', sub: 1, d: [k2.d, k1.d], error: 'x' }, { op: 'ack', sub: 1, d: [k1.d] }])), [
    ['nack', 1, 'FORBIDDEN', 2], ['ack', 1, 'FORBIDDEN', 1],
  ]);
  await check();
  assert.deepEqual(pick(await counts(acme)), [before.forbiddenAcks + 5, before.lateAcks, before.acked]);
  let g = await queue(acme, 'crash');
  assert.deepEqual([g.stored, g.inFlight, g.done], [1, 1, 1]);
  assert.equal(s.messages().length, 1, 'the refused nack redelivered nothing');
  assert.deepEqual(await send(s, { op: 'ack', sub: 1, d: [again.d] }), []);
  g = await queue(acme, 'crash');
  assert.deepEqual([g.stored, g.inFlight, g.done], [0, 0, 2]);
  await s.close();
});
