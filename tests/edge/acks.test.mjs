// Acknowledgements are unforgeable: a delivery token is 128 random bits, and only the connection
// and subscription it was delivered to may acknowledge or refuse it. Another token holder on the
// same hub (here limited to `jobs.attacker.>`) gets FORBIDDEN for guessed tokens and for the
// victim's real ones, counted in `forbiddenAcks`; the victim's jobs stay in flight and are
// processed by the victim.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const server = new EdgeServer();
let victimToken;
let attackerToken;

before(async () => {
  await server.start();
  victimToken = await server.token({ pub: ['jobs.victim.>'], sub: ['jobs.victim.>'] });
  attackerToken = await server.token({ pub: ['jobs.attacker.>'], sub: ['jobs.attacker.>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

const open = (t) => RawSocket.open(`${server.wsUrl}/connect?token=${t}`);
const stream = async (group) => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === group);

/** Tokens an attacker would try next to its own: neighbours of a `<boot>.<sequence>` token, else random ones. */
function guesses(own) {
  const m = /^([^.]+)\.([0-9a-z]+)$/.exec(own);
  if (m !== null) {
    const seq = parseInt(m[2], 36);
    return Array.from({ length: 30 }, (_, i) => `${m[1]}.${(seq - 10 + i).toString(36)}`).filter((d) => d !== own);
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  return Array.from({ length: 29 }, () => Array.from({ length: own.length }, () => alphabet[Math.floor(Math.random() * 64)]).join(''));
}

test('another token holder cannot acknowledge or refuse a victim\'s deliveries', { timeout: 90_000 }, async () => {
  assert.equal(hubOfTopic('jobs.victim.q', 8, 1), hubOfTopic('jobs.attacker.q', 8, 1), 'one owner hub for both queues');
  const victim = await open(victimToken);
  assert.equal((await victim.request({ op: 'sub', id: 1, pattern: 'jobs.victim.q', group: 'work', ackTimeoutMs: 60000 })).t, 'ok');
  const attacker = await open(attackerToken);
  assert.equal((await attacker.request({ op: 'sub', id: 1, pattern: 'jobs.attacker.q', group: 'atk', ackTimeoutMs: 60000 })).t, 'ok');

  // The attacker's own delivery shows what a token looks like.
  await server.post('/publish', { topic: 'jobs.attacker.q', payload: 'mine', id: 'a-1' }, attackerToken);
  const [own] = await attacker.waitMessages(1);
  assert.ok(own.d.length >= 22, `a delivery token of at least 128 bits: ${own.d}`);
  assert.match(own.d, /^[A-Za-z0-9_-]+$/);

  const ids = ['v-1', 'v-2', 'v-3', 'v-4', 'v-5'];
  await server.post('/publish', ids.map((id) => ({ topic: 'jobs.victim.q', payload: { id }, id })), victimToken);
  const jobs = await victim.waitMessages(5);
  const real = jobs.map((m) => m.d);
  assert.equal(new Set([...real, own.d]).size, 6, 'every delivery its own token');
  const start = (await server.stats()).total;

  // Guessed tokens, then the victim's real ones, sent as the attacker's own acknowledgements.
  const guessed = guesses(own.d);
  let from = attacker.frames.length;
  attacker.send([
    { op: 'nack', sub: 1, d: guessed, error: 'x' },
    { op: 'ack', sub: 1, d: guessed },
    { op: 'nack', sub: 1, d: real, error: 'x' },
    { op: 'ack', sub: 1, d: real },
  ]);
  for (let i = 0; i < 4; i++) {
    const r = await attacker.waitFor((f) => f.t === 'err', from, 'a refusal');
    assert.equal(r.code, 'FORBIDDEN');
    assert.equal(r.sub, 1);
    assert.match(r.message, /not delivered to subscription 1/);
    from = attacker.frames.indexOf(r) + 1;
  }

  // The victim's token replayed from another connection with the victim's own credentials, from
  // another member of the same group.
  const replay = await open(victimToken);
  assert.equal((await replay.request({ op: 'sub', id: 9, pattern: 'jobs.victim.q', group: 'work', ackTimeoutMs: 60000 })).t, 'ok');
  replay.send({ op: 'ack', sub: 9, d: real });
  const r = await replay.waitFor((f) => f.t === 'err', 0, 'a refusal');
  assert.deepEqual([r.code, r.op, r.sub], ['FORBIDDEN', 'ack', 9]);

  await attacker.request({ op: 'sub', id: 2, pattern: 'jobs.attacker.sync' });
  const end = (await server.stats()).total;
  assert.equal(end.forbiddenAcks - start.forbiddenAcks, 2 * guessed.length + 3 * real.length);
  assert.equal(end.acked, start.acked, 'nothing acknowledged');
  let g = await stream('work');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.redelivered, g.dead], [5, 5, 0, 0, 0]);
  assert.equal(victim.messages().length, 5, 'no nack reached the owner: no redelivery');

  // The victim processes its jobs.
  victim.send({ op: 'ack', sub: 1, d: real });
  await victim.request({ op: 'sub', id: 3, pattern: 'jobs.victim.sync' });
  g = await stream('work');
  assert.deepEqual([g.stored, g.inFlight, g.done], [0, 0, 5]);
  assert.equal((await server.stats()).total.forbiddenAcks, end.forbiddenAcks, 'the owner\'s own ack counted nothing forbidden');
  for (const s of [victim, attacker, replay]) await s.close();
});

test('a token of one subscription cannot acknowledge through another subscription of the same connection', { timeout: 60_000 }, async () => {
  const s = await open(victimToken);
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: 'jobs.victim.a', group: 'ga', ackTimeoutMs: 60000 })).t, 'ok');
  assert.equal((await s.request({ op: 'sub', id: 2, pattern: 'jobs.victim.b', group: 'gb', ackTimeoutMs: 60000 })).t, 'ok');
  await server.post('/publish', { topic: 'jobs.victim.a', payload: 1, id: 'sa-1' }, victimToken);
  const [m] = await s.waitMessages(1);
  assert.deepEqual(m.subs, [1]);
  s.send({ op: 'ack', sub: 2, d: [m.d] });
  const r = await s.waitFor((f) => f.t === 'err', 0, 'a refusal');
  assert.deepEqual([r.code, r.sub], ['FORBIDDEN', 2]);
  assert.equal((await stream('ga')).inFlight, 1);
  s.send({ op: 'ack', sub: 1, d: [m.d] });
  await s.request({ op: 'sub', id: 3, pattern: 'jobs.victim.sync2' });
  assert.deepEqual([(await stream('ga')).stored, (await stream('ga')).done], [0, 1]);
  await s.close();
});
