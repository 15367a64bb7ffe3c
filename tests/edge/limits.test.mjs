// Bounded storage of work-queue streams and of the idempotence window: message, byte and age
// limits (oldest dropped or expired, counted), paging (a page of a stream in memory), explicit
// deletion (`del`), deletion after an idle time, and the honest answer to a publish no durable
// group keeps (`stored: false`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';

const server = new EdgeServer({
  vars: { STREAM_MAX_MESSAGES: '5', STREAM_MAX_BYTES: '3000', STREAM_PAGE: '3', DEDUPE_MAX_IDS: '5' },
});
// Ages generous enough that a loaded machine does not let a stream idle or a message age between
// two steps that the test expects to be close together.
const aging = new EdgeServer({ vars: { STREAM_MAX_AGE_MS: '3000', STREAM_IDLE_MS: '6000', DEDUPE_MAX_AGE_MS: '1500' } });
let token;
let agingToken;

before(async () => {
  await server.start();
  await aging.start();
  token = await server.token();
  agingToken = await aging.token();
}, { timeout: 180_000 });
after(async () => {
  await server.dispose();
  await aging.dispose();
});

const connect = (s = server, t = token) => RawSocket.open(`${s.wsUrl}/connect?token=${t}`);
const stream = async (group, s = server) => (await s.stats()).perHub.flatMap((h) => h.groups).find((g) => g.group === group);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Makes a memberless stream: a member joins and leaves again. */
async function memberless(group, pattern, s = server, t = token) {
  const ws = await connect(s, t);
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern, group })).t, 'ok');
  assert.equal((await ws.request({ op: 'unsub', id: 1 })).t, 'ok');
  await ws.close();
}

test('a publish before any work queue exists is accepted but answered stored: false, and counted', async () => {
  const before = (await server.stats()).total.notStored;
  assert.deepEqual((await server.post('/publish', { topic: 'early.jobs', payload: 1, id: 'early-1' }, token)).body, { accepted: true, stored: false });
  const ws = await connect();
  const r = await ws.request({ op: 'pub', topic: 'early.jobs', payload: 2, ref: 'p1' });
  assert.deepEqual([r.t, r.stored], ['ok', false]);
  assert.equal((await server.stats()).total.notStored, before + 2);
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern: 'early.jobs', group: 'early' })).t, 'ok');
  assert.deepEqual((await server.post('/publish', { topic: 'early.jobs', payload: 3 }, token)).body, { accepted: true, stored: true });
  const r2 = await ws.request({ op: 'pub', topic: 'early.jobs', payload: 4, ref: 'p2' });
  assert.deepEqual([r2.t, r2.stored], ['ok', true]);
  // Only what was stored reaches the group.
  const got = await ws.waitMessages(2);
  assert.deepEqual(got.map((m) => m.msg.payload), [3, 4]);
  ws.send({ op: 'ack', sub: 1, d: got.map((m) => m.d) });
  await ws.request({ op: 'sub', id: 2, pattern: 'sync.a' });
  assert.equal(ws.messages().length, 2);
  await ws.close();
});

test('over STREAM_MAX_MESSAGES the oldest stored messages drop (dropOldest), counted per stream and per hub', { timeout: 60_000 }, async () => {
  await memberless('capped', 'cap.jobs');
  const before = (await server.stats()).total.streamDropped;
  const ids = Array.from({ length: 8 }, (_, i) => `cap-${i}`);
  const res = await server.post('/publish', ids.map((id) => ({ topic: 'cap.jobs', payload: id, id })), token);
  assert.deepEqual(res.body.results.map((r) => r.stored), ids.map(() => true));
  let g = await stream('capped');
  assert.deepEqual([g.stored, g.dropped, g.waiting], [5, 3, 5]);
  assert.equal((await server.stats()).total.streamDropped, before + 3);
  // A new member gets the newest five, in order, a page (3) at a time.
  const ws = await connect();
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern: 'cap.jobs', group: 'capped' })).t, 'ok');
  const seen = [];
  while (seen.length < 5) {
    const got = (await ws.waitMessages(seen.length + 1)).slice(seen.length);
    seen.push(...got);
    ws.send({ op: 'ack', sub: 1, d: got.map((m) => m.d) });
  }
  assert.deepEqual(seen.map((m) => m.msg.id), ids.slice(3));
  await ws.request({ op: 'sub', id: 2, pattern: 'sync.b' });
  g = await stream('capped');
  assert.deepEqual([g.stored, g.done, g.dropped], [0, 5, 3]);
  await ws.close();
});

test('over STREAM_MAX_BYTES the oldest drop until the stream fits', { timeout: 60_000 }, async () => {
  await memberless('heavy', 'heavy.jobs');
  const big = 'x'.repeat(1000);
  await server.post('/publish', Array.from({ length: 4 }, (_, i) => ({ topic: 'heavy.jobs', payload: big, id: `heavy-${i}` })), token);
  const g = await stream('heavy');
  assert.ok(g.bytes <= 3000 && g.bytes > 2000, `${g.bytes} bytes stored`);
  assert.deepEqual([g.stored, g.dropped], [2, 2]);
});

test('a stream holds a page of STREAM_PAGE messages in memory; the rest are read as deliveries finish', { timeout: 60_000 }, async () => {
  const ws = await connect();
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern: 'pg.jobs', group: 'paged', ackTimeoutMs: 60000 })).t, 'ok');
  // Five at most are stored (STREAM_MAX_MESSAGES), so publish five.
  await server.post('/publish', Array.from({ length: 5 }, (_, i) => ({ topic: 'pg.jobs', payload: i, id: `pg-${i}` })), token);
  const first = await ws.waitMessages(3);
  await ws.request({ op: 'sub', id: 2, pattern: 'sync.c' });
  let g = await stream('paged');
  assert.deepEqual([g.stored, g.inFlight, g.waiting], [5, 3, 2]);
  assert.equal(ws.messages().length, 3, 'nothing beyond the page was delivered');
  ws.send({ op: 'ack', sub: 1, d: first.map((m) => m.d) });
  const rest = (await ws.waitMessages(5)).slice(3);
  assert.deepEqual(rest.map((m) => m.msg.payload), [3, 4]);
  ws.send({ op: 'ack', sub: 1, d: rest.map((m) => m.d) });
  await ws.request({ op: 'sub', id: 3, pattern: 'sync.d' });
  g = await stream('paged');
  assert.deepEqual([g.stored, g.inFlight, g.done], [0, 0, 5]);
  await ws.close();
});

test('`del` deletes a memberless stream and its messages; authorized, refused while members remain, typed errors', { timeout: 60_000 }, async () => {
  const ws = await connect();
  assert.equal((await ws.request({ op: 'sub', id: 1, pattern: 'gone.jobs', group: 'doomed' })).t, 'ok');
  const inUse = await ws.request({ op: 'del', group: 'doomed', pattern: 'gone.jobs', ref: 'd1' });
  assert.deepEqual([inUse.t, inUse.code], ['err', 'GROUP_IN_USE']);
  assert.equal((await ws.request({ op: 'unsub', id: 1 })).t, 'ok');
  await server.post('/publish', [1, 2, 3].map((n) => ({ topic: 'gone.jobs', payload: n })), token);
  assert.equal((await stream('doomed')).stored, 3);

  const other = await RawSocket.open(`${server.wsUrl}/connect?token=${await server.token({ sub: ['mine.>'] })}`);
  const forbidden = await other.request({ op: 'del', group: 'doomed', pattern: 'gone.jobs', ref: 'f' });
  assert.deepEqual([forbidden.t, forbidden.code], ['err', 'FORBIDDEN']);
  await other.close();
  for (const [op, code] of [
    [{ op: 'del', group: 'bad name', pattern: 'gone.jobs', ref: 'e1' }, 'INVALID_OPTION'],
    [{ op: 'del', group: 'doomed', pattern: '*.jobs', ref: 'e2' }, 'GROUP_SPANS_HUBS'],
    [{ op: 'del', group: 'doomed', pattern: 'gone..jobs', ref: 'e3' }, 'INVALID_PATTERN'],
    [{ op: 'del', group: 'doomed', pattern: 'gone.jobs', extra: 1, ref: 'e4' }, 'BAD_REQUEST'],
  ]) {
    const r = await ws.request(op);
    assert.deepEqual([r.t, r.code], ['err', code], JSON.stringify(op));
  }
  assert.equal((await stream('doomed')).stored, 3, 'refusals changed nothing');
  assert.equal((await server.stats()).total.errors, 0, 'refused input is no hub error');

  const before = (await server.stats()).total;
  const ok = await ws.request({ op: 'del', group: 'doomed', pattern: 'gone.jobs', ref: 'd2' });
  assert.deepEqual(ok, { t: 'ok', op: 'del', ref: 'd2', found: true, discarded: 3 });
  assert.equal(await stream('doomed'), undefined);
  const after = (await server.stats()).total;
  assert.deepEqual([after.streamsDeleted - before.streamsDeleted, after.streamDiscarded - before.streamDiscarded], [1, 3]);
  assert.deepEqual((await server.post('/publish', { topic: 'gone.jobs', payload: 4 }, token)).body, { accepted: true, stored: false });
  const again = await ws.request({ op: 'del', group: 'doomed', pattern: 'gone.jobs', ref: 'd3' });
  assert.deepEqual(again, { t: 'ok', op: 'del', ref: 'd3', found: false, discarded: 0 });
  await ws.close();
});

test('the idempotence window keeps the newest DEDUPE_MAX_IDS ids', async () => {
  const ids = Array.from({ length: 6 }, (_, i) => `win-${i}`);
  for (const id of ids) assert.equal((await server.post('/publish', { topic: 'win.x', payload: id, id }, token)).body.accepted, true);
  assert.equal((await server.post('/publish', { topic: 'win.x', payload: 0, id: 'win-5' }, token)).body.duplicate, true);
  assert.equal((await server.post('/publish', { topic: 'win.x', payload: 0, id: 'win-0' }, token)).body.accepted, true, 'the oldest id left the window');
});

test('the idempotence window is bounded per namespace: another tenant\'s ids never push an id out', async () => {
  const mine = await server.token({ ns: 'steady' });
  const noisy = await server.token({ ns: 'noisy' });
  assert.equal((await server.post('/publish', { topic: 'win.y', payload: 0, id: 'keep-me' }, mine)).body.accepted, true);
  for (let i = 0; i < 12; i++) {
    assert.equal((await server.post('/publish', { topic: 'win.y', payload: i, id: `flood-${i}` }, noisy)).body.accepted, true);
  }
  assert.equal((await server.post('/publish', { topic: 'win.y', payload: 0, id: 'keep-me' }, mine)).body.duplicate, true);
  assert.equal((await server.post('/publish', { topic: 'win.y', payload: 0, id: 'flood-11' }, noisy)).body.duplicate, true);
  assert.equal((await server.post('/publish', { topic: 'win.y', payload: 0, id: 'flood-0' }, noisy)).body.accepted, true, 'the noisy namespace\'s own window is bounded');
});

test('messages older than STREAM_MAX_AGE_MS expire, counted; an idle memberless stream is deleted; one with a member stays', { timeout: 60_000 }, async () => {
  const keeper = await connect(aging, agingToken);
  assert.equal((await keeper.request({ op: 'sub', id: 1, pattern: 'keep.jobs', group: 'kept' })).t, 'ok');
  await memberless('aged', 'age.jobs', aging, agingToken);
  await aging.post('/publish', [1, 2, 3].map((n) => ({ topic: 'age.jobs', payload: n })), agingToken);
  assert.equal((await stream('aged', aging)).stored, 3);
  // The hub's alarm expires them after 3 s (a hang guard of 20 s, not a timing assertion).
  let g;
  for (let i = 0; i < 200 && (g = await stream('aged', aging))?.stored > 0; i++) await sleep(100);
  assert.deepEqual([g.stored, g.expired], [0, 3]);
  assert.equal((await aging.stats()).total.streamExpired, 3);
  // 6 s after its last activity with no member, the stream is deleted.
  for (let i = 0; i < 300 && (await stream('aged', aging)) !== undefined; i++) await sleep(100);
  assert.equal(await stream('aged', aging), undefined);
  assert.equal((await aging.stats()).total.streamsDeleted, 1);
  assert.match(aging.log, /stream `aged` on `age.jobs` deleted \(idle for 6000 ms\), 0 stored message\(s\) discarded/);
  assert.equal((await stream('kept', aging)).members, 1, 'a stream with a member is never idle');
  assert.deepEqual((await aging.post('/publish', { topic: 'age.jobs', payload: 4 }, agingToken)).body, { accepted: true, stored: false });
  await keeper.close();
});

test('an id older than DEDUPE_MAX_AGE_MS is accepted again', async () => {
  assert.equal((await aging.post('/publish', { topic: 'old.x', payload: 1, id: 'old-1' }, agingToken)).body.accepted, true);
  assert.equal((await aging.post('/publish', { topic: 'old.x', payload: 1, id: 'old-1' }, agingToken)).body.duplicate, true);
  await sleep(1600);
  assert.equal((await aging.post('/publish', { topic: 'old.x', payload: 1, id: 'old-1' }, agingToken)).body.accepted, true);
});
