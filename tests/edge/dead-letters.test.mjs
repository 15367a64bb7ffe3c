// Dead letters at the edge: a work-queue message that fails its last attempt is published on
// `$dead.<group>` with the in-process bus's payload `{ group, topic, attempts, error, message }`,
// through the ordinary subscription path (the token must allow subscribing to `$dead.<group>`);
// a work queue on `$dead.<group>` stores it like any message, across a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Bus, connect } from 'edgebus';
import { EdgeServer, RawSocket } from './support/server.mjs';

const server = new EdgeServer();
let token;
const until = async (cond) => { while (!(await cond())) await new Promise((r) => setTimeout(r, 50)); };

before(async () => {
  await server.start();
  token = await server.token({ pub: ['>'], sub: ['>', '$dead.>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

const socket = async (t = token) => RawSocket.open(`${server.wsUrl}/connect?token=${t}`);
const stream = async (group) => (await server.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === group);
const total = async () => (await server.stats()).total;

/** The dead letter the in-process Bus publishes for a handler failing with `error` twice. */
async function inProcessLetter(error) {
  const bus = new Bus();
  let letter;
  bus.subscribe('$dead.mailer', (d) => { letter = d; });
  bus.subscribe('mail.jobs', async () => { throw new Error(error); }, { group: 'mailer', maxAttempts: 2, backoff: { initialMs: 1, maxMs: 1 } });
  bus.publish('mail.jobs', { to: 'x' }, { id: 'local-1' });
  await until(() => letter !== undefined);
  await bus.close();
  return letter;
}

test('a message refused on its last attempt reaches `$dead.<group>` subscribers with the in-process payload', { timeout: 60_000 }, async () => {
  const consumer = await socket();
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'mail.jobs', group: 'mailer', maxAttempts: 2 })).t, 'ok');
  const exact = await socket(await server.token({ pub: [], sub: ['$dead.mailer'] }));
  assert.equal((await exact.request({ op: 'sub', id: 7, pattern: '$dead.mailer' })).t, 'ok');
  const wide = await socket(await server.token({ pub: [], sub: ['$dead.>'] }));
  assert.equal((await wide.request({ op: 'sub', id: 3, pattern: '$dead.*' })).t, 'ok');
  const start = await total();

  const res = await server.post('/publish', { topic: 'mail.jobs', payload: { to: 'bounce@example.com' }, id: 'mail-2', key: 'bounce' }, token);
  assert.deepEqual(res.body, { accepted: true, stored: true });
  const [first] = await consumer.waitMessages(1);
  assert.equal(first.attempt, 1);
  consumer.send({ op: 'nack', sub: 1, d: [first.d], error: 'mailbox unavailable' });
  const [, second] = await consumer.waitMessages(2);
  assert.deepEqual([second.msg.id, second.attempt], ['mail-2', 2]);
  consumer.send({ op: 'nack', sub: 1, d: [second.d], error: 'mailbox unavailable' });

  const [dead] = await exact.waitMessages(1);
  assert.deepEqual(dead.subs, [7]);
  assert.equal(dead.d, undefined, 'a plain subscription: nothing to acknowledge');
  assert.equal(dead.msg.topic, '$dead.mailer');
  assert.equal(typeof dead.msg.id, 'string');
  assert.deepEqual(dead.msg.payload, {
    group: 'mailer', topic: 'mail.jobs', attempts: 2,
    error: { code: 'HANDLER_FAILED', message: 'mailbox unavailable' },
    message: first.msg,
  });
  // The same shape as the in-process bus's dead letter, error included.
  const local = await inProcessLetter('mailbox unavailable');
  assert.deepEqual(Object.keys(dead.msg.payload).sort(), Object.keys(local).sort());
  assert.deepEqual(local.error, dead.msg.payload.error);
  const [viaWildcard] = await wide.waitMessages(1);
  assert.deepEqual(viaWildcard.msg, dead.msg);

  const g = await stream('mailer');
  assert.deepEqual([g.stored, g.inFlight, g.done, g.dead, g.redelivered], [0, 0, 0, 1, 1]);
  const end = await total();
  assert.equal(end.dead - start.dead, 1);
  assert.equal(end.deadPublished - start.deadPublished, 1);
  assert.equal(end.deadPending, 0);
  for (const s of [consumer, exact, wide]) await s.close();
});

test('an unacknowledged delivery past ackTimeoutMs dies with HANDLER_TIMEOUT; the client receives it with connect()', { timeout: 60_000 }, async (t) => {
  const consumer = await socket();
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'slow.jobs', group: 'sleepy', maxAttempts: 1, ackTimeoutMs: 200 })).t, 'ok');
  const bus = connect(server.url, { token: await server.token({ pub: [], sub: ['$dead.sleepy'] }), reconnect: { initialMs: 50, maxMs: 400 } });
  t.after(() => bus.close());
  const letters = [];
  const sub = bus.subscribe('$dead.sleepy', (letter, msg) => letters.push([msg.topic, letter]));
  await sub.ready;
  await server.post('/publish', { topic: 'slow.jobs', payload: 42, id: 'slow-1' }, token);
  const [delivered] = await consumer.waitMessages(1);
  await until(() => letters.length === 1);
  assert.deepEqual(letters[0], ['$dead.sleepy', {
    group: 'sleepy', topic: 'slow.jobs', attempts: 1,
    error: { code: 'HANDLER_TIMEOUT', message: 'not acknowledged within 200 ms' },
    message: delivered.msg,
  }]);
  // A late acknowledgement changes nothing and is counted.
  const late = (await total()).lateAcks;
  consumer.send({ op: 'ack', sub: 1, d: [delivered.d] });
  await consumer.request({ op: 'sub', id: 2, pattern: 'sync.point' });
  assert.equal((await total()).lateAcks, late + 1);
  assert.deepEqual(await bus.close(), { remaining: [] });
  await consumer.close();
});

test('subscribing to `$dead.<group>` needs a token that allows it; `>` does not reach `$` topics', async () => {
  for (const sub of [['>'], ['mail.>'], ['$dead.other']]) {
    const s = await socket(await server.token({ pub: [], sub }));
    const r = await s.request({ op: 'sub', id: 1, pattern: '$dead.mailer' });
    assert.deepEqual([r.t, r.code], ['err', 'FORBIDDEN'], `claims ${JSON.stringify(sub)}`);
    assert.match(r.message, /\$dead\.mailer/);
    await s.close();
  }
  const s = await socket(await server.token({ pub: [], sub: ['$dead.*'] }));
  assert.equal((await s.request({ op: 'sub', id: 1, pattern: '$dead.mailer' })).t, 'ok');
  await s.close();
});

test('a work queue on `$dead.<group>` stores dead letters: they survive a restart and are redelivered', { timeout: 180_000 }, async () => {
  const consumer = await socket();
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'pay.jobs', group: 'payer', maxAttempts: 1 })).t, 'ok');
  const dlq = await socket();
  assert.equal((await dlq.request({ op: 'sub', id: 1, pattern: '$dead.payer', group: 'payer-dlq', ackTimeoutMs: 60000 })).t, 'ok');

  const ids = ['pay-1', 'pay-2', 'pay-3'];
  await server.post('/publish', ids.map((id) => ({ topic: 'pay.jobs', payload: { id }, id })), token);
  const jobs = await consumer.waitMessages(3);
  consumer.send({ op: 'ack', sub: 1, d: [jobs.find((m) => m.msg.id === 'pay-2').d] });
  consumer.send({ op: 'nack', sub: 1, d: jobs.filter((m) => m.msg.id !== 'pay-2').map((m) => m.d), error: 'card declined' });
  const letters = await dlq.waitMessages(2);
  assert.deepEqual(letters.map((m) => m.msg.payload.message.id).sort(), ['pay-1', 'pay-3']);
  for (const m of letters) {
    assert.equal(m.attempt, 1);
    assert.equal(typeof m.d, 'string', 'a work-queue delivery, to acknowledge');
    assert.deepEqual(m.msg.payload.error, { code: 'HANDLER_FAILED', message: 'card declined' });
  }
  assert.equal((await stream('payer-dlq')).stored, 2);

  // Not acknowledged, and the server goes away: the dead letters were stored by the `$dead` owner.
  await server.restart();
  await dlq.closedPromise;
  await consumer.closedPromise;
  assert.equal((await stream('payer-dlq')).stored, 2);
  const again = await socket();
  assert.equal((await again.request({ op: 'sub', id: 1, pattern: '$dead.payer', group: 'payer-dlq', ackTimeoutMs: 60000 })).t, 'ok');
  const redelivered = await again.waitMessages(2);
  assert.deepEqual(redelivered.map((m) => m.msg).sort((a, b) => a.id.localeCompare(b.id)),
    letters.map((m) => m.msg).sort((a, b) => a.id.localeCompare(b.id)));
  again.send({ op: 'ack', sub: 1, d: redelivered.map((m) => m.d) });
  await again.request({ op: 'sub', id: 2, pattern: 'sync.point' });
  const g = await stream('payer-dlq');
  assert.deepEqual([g.stored, g.done], [0, 2]);
  assert.equal((await stream('payer')).stored, 0);
  await again.close();
});

test('a dead-letter consumer that fails its last attempt: archived and counted, not published again', { timeout: 60_000 }, async () => {
  const consumer = await socket();
  assert.equal((await consumer.request({ op: 'sub', id: 1, pattern: 'loop.jobs', group: 'looper', maxAttempts: 1 })).t, 'ok');
  const dlq = await socket();
  assert.equal((await dlq.request({ op: 'sub', id: 1, pattern: '$dead.looper', group: 'looper-dlq', maxAttempts: 1 })).t, 'ok');
  const start = await total();

  await server.post('/publish', { topic: 'loop.jobs', payload: 1, id: 'loop-1' }, token);
  const [job] = await consumer.waitMessages(1);
  consumer.send({ op: 'nack', sub: 1, d: [job.d], error: 'no' });
  const [letter] = await dlq.waitMessages(1);
  dlq.send({ op: 'nack', sub: 1, d: [letter.d], error: 'the dead-letter consumer fails too' });
  await until(async () => (await total()).deadNotPublished === start.deadNotPublished + 1);
  const end = await total();
  assert.equal(end.dead - start.dead, 2);
  assert.equal(end.deadPublished - start.deadPublished, 1, 'only the first letter was published');
  assert.equal(end.deadPending, 0);
  assert.equal((await stream('looper-dlq')).dead, 1);
  for (const s of [consumer, dlq]) await s.close();
});
