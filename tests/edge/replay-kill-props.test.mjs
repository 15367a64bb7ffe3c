// Retained values, history and bounded replay at the edge (`wrangler dev`) across evictions of
// their owner hubs: a replay is cut by REPLAY_MAX_MESSAGES and REPLAY_MAX_BYTES where it was before.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const SEED = Number(process.env.EDGEBUS_PROPS_SEED ?? 20261206);
const HUBS = 8;
const HISTORY = 5;
const REPLAY_MAX_MESSAGES = 24;
const REPLAY_MAX_BYTES = 3600;
const server = new EdgeServer({
  vars: {
    HISTORY_MAX_MESSAGES: String(HISTORY), HISTORY_WINDOW_MS: '3600000', EDGEBUS_DEV_ADMIN: '1',
    REPLAY_MAX_MESSAGES: String(REPLAY_MAX_MESSAGES), REPLAY_MAX_BYTES: String(REPLAY_MAX_BYTES),
  },
});

before(() => server.start(), { timeout: 120_000 });
after(() => server.dispose());

/** Four topics of run `run`, `<prefix>.a|b` under two prefixes, owned by four different hubs. */
function topicsOf(run) {
  const out = [];
  const hubs = new Set();
  for (let i = 0; out.length < 4; i++) {
    const topic = `rk${run}x${i}.${out.length % 2 === 0 ? 'a' : 'b'}`;
    const hub = hubOfTopic(topic, HUBS, 1);
    if (hubs.has(hub)) continue;
    hubs.add(hub);
    out.push(topic);
  }
  return out;
}

/** A topic prefix whose hub owns none of `topics`: the connections' home, which evictions spare. */
function homeOf(topics) {
  const owners = new Set(topics.map((t) => hubOfTopic(t, HUBS, 1)));
  for (let i = 0; ; i++) if (!owners.has(hubOfTopic(`home${i}`, HUBS, 1))) return `home${i}`;
}

const utf8 = new TextEncoder();

test('a message weighs the same after a wake: payload bytes in UTF-8, none for a clearing message, so REPLAY_MAX_BYTES cuts a replay where it did', { timeout: 60_000 }, async () => {
  const ns = `wake${SEED % 1000}`;
  const token = await server.token({ pub: ['>'], sub: ['>'], ns });
  const [wide, cleared] = topicsOf(`${SEED % 1000}w`);
  const socket = await RawSocket.open(`${server.wsUrl}/connect?token=${token}&hub=${homeOf([wide, cleared])}`);
  const bytes = (topic, id, payload) => (payload === undefined ? 0 : utf8.encode(JSON.stringify(payload)).length) + topic.length + id.length + 64;
  // Five messages of 902 bytes of JSON (302 UTF-16 units): the newest three fit in 3600 bytes.
  for (let i = 1; i <= 5; i++) {
    const reply = await socket.request({ op: 'pub', topic: wide, payload: '€'.repeat(300), id: `w${i}`, ref: i });
    assert.equal(reply.t, 'ok');
  }
  // A retained value and the message clearing it, which together weigh REPLAY_MAX_BYTES exactly.
  const payload = 'x'.repeat(REPLAY_MAX_BYTES - bytes(cleared, 'c2', undefined) - bytes(cleared, 'c1', ''));
  assert.equal(bytes(cleared, 'c1', payload) + bytes(cleared, 'c2', undefined), REPLAY_MAX_BYTES);
  assert.equal((await socket.request({ op: 'pub', topic: cleared, payload, retain: true, id: 'c1', ref: 6 })).t, 'ok');
  assert.equal((await socket.request({ op: 'pub', topic: cleared, retain: true, id: 'c2', ref: 7 })).t, 'ok');
  let id = 0;
  const replayOf = async (topic) => {
    const sub = ++id;
    const reply = await socket.request({ op: 'sub', id: sub, pattern: topic, replay: { last: 5 } });
    assert.equal(reply.t, 'ok');
    const upTo = socket.frames.indexOf(reply);
    const frames = socket.frames.slice(0, upTo);
    return {
      seqs: frames.filter((f) => f.t === 'msg').flatMap((f) => f.m).filter(([ids]) => ids.includes(sub)).map(([, m]) => m.seq),
      gaps: frames.filter((f) => f.t === 'gap' && f.sub === sub).flatMap((f) => f.gaps).map((g) => [g.fromSeq, g.toSeq]),
    };
  };
  const want = { [wide]: { seqs: [3, 4, 5], gaps: [[1, 2]] }, [cleared]: { seqs: [1, 2], gaps: [] } };
  for (const topic of [wide, cleared]) assert.deepEqual(await replayOf(topic), want[topic], `${topic}, as published`);
  for (const topic of [wide, cleared]) {
    const r = await server.post('/admin/evict', { hub: hubOfTopic(topic, HUBS, 1) }, await server.adminToken());
    assert.notEqual(r.body.after, r.body.before, 'a new instance');
  }
  for (const topic of [wide, cleared]) assert.deepEqual(await replayOf(topic), want[topic], `${topic}, put back after a wake`);
  await socket.close();
});
