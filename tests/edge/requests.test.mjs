// Request/reply through the edge deployment (`wrangler dev`): the remote client's request and
// requestMany across hubs, the core's rules at the requester's home (first reply, declines,
// failures, no responders, timeouts), headers end to end, and the isolation of requests: only a
// subscription a request was delivered to may answer it, whatever token it learnt or guessed,
// within its namespace or from another; the token must allow publishing to the request's topic.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'edgebus';
import { EdgeServer, RawSocket } from './support/server.mjs';
import { hubOfTopic } from '../../edge/src/routing.js';

const HUBS = 8;
const server = new EdgeServer();
let token;
let acme;
let bolt;
let narrow;
const fast = { reconnect: { initialMs: 50, maxMs: 400 }, connectTimeoutMs: 2000, onError: () => {} };

before(async () => {
  await server.start();
  token = await server.token();
  acme = await server.token({ ns: 'acme' });
  bolt = await server.token({ ns: 'bolt' });
  narrow = await server.token({ pub: ['allowed.>'], sub: ['>'] });
}, { timeout: 120_000 });
after(() => server.dispose());

/** A topic prefix owned by hub `hub` (one routed token). */
function prefixOn(hub) {
  for (let i = 0; ; i++) if (hubOfTopic(`q${i}`, HUBS, 1) === hub) return `q${i}`;
}

/** A client whose connections are homed on the hub owning `prefix`. */
async function client(t, prefix) {
  const c = connect(server.url, { token: t, hub: prefix, ...fast });
  await c.ready;
  return c;
}

test('a request reaches responders on other hubs; the first reply resolves it; requestMany gathers every reply', async () => {
  const [p0, p1, p2] = [prefixOn(0), prefixOn(1), prefixOn(2)];
  const a = await client(token, p0);
  const b = await client(token, p1);
  const asker = await client(token, p2);
  try {
    await a.subscribe(`${p1}.*.double`, (n) => n * 2).ready;
    await b.subscribe(`*.x.double`, async (n) => n * 2 + 1).ready;
    const one = await asker.request(`${p1}.x.double`, 21, { timeoutMs: 5000 });
    assert.ok(one === 42 || one === 43, `one reply, from either: ${one}`);
    const all = [];
    for await (const r of asker.requestMany(`${p1}.x.double`, 10, { timeoutMs: 5000 })) all.push(r);
    assert.deepEqual(all.sort(), [20, 21], 'every responder answered, on two hubs; it ended without waiting');
    const two = [];
    for await (const r of asker.requestMany(`${p1}.x.double`, 1, { max: 1, timeoutMs: 5000 })) two.push(r);
    assert.equal(two.length, 1);
    assert.equal(asker.stats().requests, 3);
  } finally {
    await Promise.all([a.close(), b.close(), asker.close()]);
  }
});

test('no responders, declines, a failure and a timeout end requests as in the in-page Bus', async () => {
  const p = prefixOn(3);
  const r = await client(token, prefixOn(4));
  const asker = await client(token, p);
  try {
    await assert.rejects(asker.request(`${p}.nobody`, 1), { code: 'NO_RESPONDERS' });
    await r.subscribe(`${p}.quiet`, () => {}).ready;
    await assert.rejects(asker.request(`${p}.quiet`, 1), { code: 'NO_RESPONDERS' }, 'every subscription declined');
    const quiet = [];
    for await (const x of asker.requestMany(`${p}.quiet`, 1)) quiet.push(x);
    assert.deepEqual(quiet, [], 'gathering from decliners ends without an error');
    await r.subscribe(`${p}.fail`, () => { throw new Error('out of stock'); }).ready;
    const e = await asker.request(`${p}.fail`, 1).catch((x) => x);
    assert.equal(e.code, 'HANDLER_FAILED');
    assert.match(e.message, /out of stock/);
    const failing = [];
    for await (const x of asker.requestMany(`${p}.fail`, 1)) failing.push(x);
    assert.deepEqual(failing, [], 'gathering from a failing responder ends without an error');
    await r.subscribe(`${p}.never`, () => new Promise(() => {})).ready;
    const t0 = Date.now();
    await assert.rejects(asker.request(`${p}.never`, 1, { timeoutMs: 300 }), { code: 'TIMEOUT' });
    assert.ok(Date.now() - t0 < 2000, 'the hub ended it at its deadline');
    const slow = [];
    for await (const x of asker.requestMany(`${p}.never`, 1, { timeoutMs: 300 })) slow.push(x);
    assert.deepEqual(slow, [], 'gathering ends at its timeout without an error');
    const ac = new AbortController();
    const aborted = asker.request(`${p}.never`, 1, { signal: ac.signal });
    ac.abort(new Error('gone'));
    await assert.rejects(aborted, { code: 'ABORTED' });
    await r.subscribe(`${p}.later`, (n, m) => new Promise((done) => setTimeout(() => { m.reply(n + 1); done(); }, 20))).ready;
    assert.equal(await asker.request(`${p}.later`, 1), 2, 'message.reply while the delivery lasts');
    const { total } = await server.stats();
    assert.ok(total.requests >= 6, `requests counted: ${total.requests}`);
    assert.ok(total.noResponders >= 3, `no responders counted: ${total.noResponders}`);
    assert.ok(total.requestTimeouts >= 1);
  } finally {
    await Promise.all([r.close(), asker.close()]);
  }
});

test('a gathering whose last answer, a decline or a failure, came after a reply ends complete: an end frame without a code, not counted as without responders', async () => {
  const mix = await server.token({ ns: 'mix' });
  const p = prefixOn(2);
  const open = (q = '') => RawSocket.open(`${server.wsUrl}/connect?token=${mix}${q}`);
  const first = await open(`&hub=${p}`);
  const second = await open(`&hub=${p}`);
  const asker = await open();
  try {
    for (const s of [first, second]) assert.equal((await s.request({ op: 'sub', id: 1, pattern: `${p}.mix` })).t, 'ok');
    const cases = [[{ decline: true }, 1], [{ error: 'broken' }, 2], [{ v: 'two' }, 3]];
    for (const [last, ref] of cases) {
      const from = asker.frames.length;
      asker.send({ op: 'req', ref, topic: `${p}.mix`, payload: ref, max: 10, timeoutMs: 10_000 });
      const [one] = (await first.waitMessages(ref)).slice(-1);
      const [two] = (await second.waitMessages(ref)).slice(-1);
      first.send({ op: 'answer', to: one.msg.rq, sub: 1, v: 'one' });
      await asker.waitFor((x) => x.t === 'reply' && x.ref === ref, from, 'the first reply');
      second.send({ op: 'answer', to: two.msg.rq, sub: 1, ...last });
      // A last reply ends it itself (`last: true`); a last decline or failure, with an end frame.
      const end = await asker.waitFor((x) => x.ref === ref && (x.t === 'end' || x.last === true), from, 'the end of the request');
      assert.deepEqual([end.t, end.code, end.message], ['v' in last ? 'reply' : 'end', undefined, undefined], `ended by ${JSON.stringify(last)}`);
      const replies = asker.frames.slice(from).filter((x) => x.t === 'reply' && x.ref === ref).map((x) => x.v);
      assert.deepEqual(replies, 'v' in last ? ['one', 'two'] : ['one']);
    }
    const { total } = await server.stats(mix);
    assert.deepEqual([total.requests, total.replies, total.noResponders], [3, 4, 0]);
  } finally {
    for (const s of [first, second, asker]) await s.close();
  }
});

test('headers travel with every publish and request, end to end', async () => {
  const p = prefixOn(5);
  const a = await client(token, prefixOn(6));
  const b = await client(token, p);
  try {
    const got = [];
    await a.subscribe(`${p}.h`, (payload, m) => { got.push(m.headers); return m.headers.traceparent; }).ready;
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await b.publishAsync(`${p}.h`, 1, { headers: { traceparent } });
    assert.equal(await b.request(`${p}.h`, 2, { headers: { traceparent, tenant: 't1' } }), traceparent);
    assert.deepEqual(got, [{ traceparent }, { traceparent, tenant: 't1' }]);
    const raw = await RawSocket.open(`${server.wsUrl}/connect?token=${token}`);
    const e = await raw.request({ op: 'pub', ref: 1, topic: `${p}.h`, payload: 1, headers: { n: 5 } });
    assert.equal(e.code, 'BAD_REQUEST');
    const big = await raw.request({ op: 'pub', ref: 2, topic: `${p}.h`, payload: 1, headers: { n: 'x'.repeat(9000) } });
    assert.equal(big.code, 'MESSAGE_TOO_LARGE');
    raw.close();
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});

test('only a subscription a request was delivered to may answer it: tokens learnt or guessed are refused, across namespaces too', async () => {
  const p = prefixOn(7);
  const responder = await RawSocket.open(`${server.wsUrl}/connect?token=${acme}&hub=${p}`);
  const thief = await RawSocket.open(`${server.wsUrl}/connect?token=${acme}`);
  const other = await RawSocket.open(`${server.wsUrl}/connect?token=${bolt}`);
  const asker = await client(acme, prefixOn(1));
  try {
    assert.equal((await responder.request({ op: 'sub', id: 1, pattern: `${p}.svc` })).t, 'ok');
    assert.equal((await responder.request({ op: 'sub', id: 2, pattern: `${p}.other` })).t, 'ok');
    assert.equal((await other.request({ op: 'sub', id: 1, pattern: `${p}.svc` })).t, 'ok');
    const pending = asker.request(`${p}.svc`, 'hi', { timeoutMs: 10_000 });
    const [delivered] = await responder.waitMessages(1);
    const to = delivered.msg.rq;
    assert.match(to, /^\d+\.[A-Za-z0-9_-]{22}$/);
    assert.deepEqual(other.messages(), [], 'another namespace never receives the request');
    // The token, learnt, is worth nothing elsewhere: another connection, another subscription,
    // another namespace, a guessed token.
    for (const [s, op] of [
      [thief, { op: 'answer', to, sub: 1, v: 'forged' }],
      [other, { op: 'answer', to, sub: 1, v: 'forged' }],
      [responder, { op: 'answer', to, sub: 2, v: 'forged' }],
      [responder, { op: 'answer', to: `${to.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`, sub: 1, v: 'guessed' }],
    ]) {
      const from = s.frames.length;
      s.send(op);
      const err = await s.waitFor((x) => x.t === 'err' && x.op === 'answer', from, 'a refused answer');
      assert.equal(err.code, 'FORBIDDEN');
    }
    responder.send({ op: 'answer', to, sub: 1, v: 'the answer' });
    assert.equal(await pending, 'the answer');
    // Answered once: a second answer is refused too.
    const from = responder.frames.length;
    responder.send({ op: 'answer', to, sub: 1, v: 'again' });
    assert.equal((await responder.waitFor((x) => x.t === 'err' && x.op === 'answer', from, 'a refused answer')).code, 'FORBIDDEN');
    const acmeStats = (await server.stats(acme)).total;
    assert.ok(acmeStats.forbidden >= 4, `counted in acme: ${acmeStats.forbidden}`);
    assert.equal(acmeStats.replies, 1);
    assert.equal((await server.stats(bolt)).total.replies, 0);
  } finally {
    responder.close();
    thief.close();
    other.close();
    await asker.close();
  }
});

test('a request needs a token that may publish to its topic; refusals are typed and the connection carries on', async () => {
  const c = await client(narrow, prefixOn(2));
  try {
    await assert.rejects(c.request('denied.x', 1), { code: 'FORBIDDEN' });
    await c.subscribe('allowed.x', (n) => n + 1).ready;
    assert.equal(await c.request('allowed.x', 1), 2, 'a responder on its own connection');
    await assert.rejects(c.request('allowed.x', 1, { timeoutMs: 400_000 }), { code: 'INVALID_OPTION' });
    const raw = await RawSocket.open(`${server.wsUrl}/connect?token=${narrow}`);
    for (const [op, code] of [
      [{ op: 'req', ref: 1, topic: 'allowed.x', payload: 1, timeoutMs: 0 }, 'INVALID_OPTION'],
      [{ op: 'req', topic: 'allowed.x', payload: 1 }, 'BAD_REQUEST'],
      [{ op: 'req', ref: 2, topic: 'allowed.x', payload: 1, bogus: 1 }, 'BAD_REQUEST'],
      [{ op: 'req', ref: 3, topic: 'allowed.*', payload: 1 }, 'INVALID_TOPIC'],
    ]) {
      const r = await raw.request(op);
      assert.deepEqual([r.t, r.code], ['err', code], JSON.stringify(op));
    }
    raw.close();
  } finally {
    await c.close();
  }
});

test('the remote client has once, stream and AbortSignal, as the in-page Bus', async () => {
  const p = prefixOn(3);
  const sub = await client(token, prefixOn(5));
  const pub = await client(token, p);
  try {
    const first = sub.once(`${p}.o.*`, { filter: (m) => m.payload > 1, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 300)); // the subscription reaches the hubs
    for (let i = 0; i < 4; i++) await pub.publishAsync(`${p}.o.x`, i);
    const m = await first;
    assert.deepEqual([m.topic, m.payload], [`${p}.o.x`, 2]);
    assert.equal(sub.stats().subscriptions, 0, 'once left');
    await assert.rejects(sub.once(`${p}.none`, { timeoutMs: 100 }), { code: 'TIMEOUT' });
    const ac = new AbortController();
    const aborted = sub.once(`${p}.none`, { signal: ac.signal });
    ac.abort();
    await assert.rejects(aborted, { code: 'ABORTED' });
    await assert.rejects(sub.once('$denied.>', {}), (e) => e.code === 'FORBIDDEN' || e.code === 'INVALID_PATTERN');

    const s = sub.stream(`${p}.s`, { maxQueue: 2 });
    await s.subscription.ready;
    for (let i = 0; i < 6; i++) await pub.publishAsync(`${p}.s`, i);
    await new Promise((r) => setTimeout(r, 300));
    const got = [];
    for await (const x of s) {
      got.push(x.payload);
      if (got.length === 3) break;
    }
    assert.deepEqual(got, [0, 4, 5], 'the oldest waiting dropped: a remote stream is bounded');
    assert.equal(sub.stats().streamDropped, 3);
    assert.throws(() => sub.stream('x', { overflow: 'wait' }), { code: 'INVALID_OPTION' });

    const stop = new AbortController();
    const live = sub.subscribe(`${p}.sig`, () => {}, { signal: stop.signal });
    await live.ready;
    stop.abort();
    assert.equal(live.active, false, 'a subscription signal unsubscribes');
  } finally {
    await Promise.all([sub.close(), pub.close()]);
  }
});

test('the README edge request example is examples/edge-request.mjs, and it prints what the README says', async () => {
  const { readFileSync } = await import('node:fs');
  const { execFile } = await import('node:child_process');
  const { join } = await import('node:path');
  const root = join(import.meta.dirname, '..', '..');
  const file = readFileSync(join(root, 'examples', 'edge-request.mjs'), 'utf8');
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf('this is `examples/edge-request.mjs`');
  const open = readme.indexOf('```js\n', at) + 6;
  const block = readme.slice(open, readme.indexOf('```', open)).replace(/^ {2}/gm, '');
  assert.equal(block, file);
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, [join(root, 'examples', 'edge-request.mjs')], {
      env: { ...process.env, EDGEBUS_URL: server.url, EDGEBUS_TOKEN: token }, timeout: 30_000,
    }, (e, stdout) => (e ? reject(e) : resolve(stdout)));
  });
  assert.deepEqual(out.trim().split('\n'), ["{ symbol: 'ACME', price: 101.5, trace: '00-abc-def-01' }", 'NO_RESPONDERS']);
});

test('a SIGKILL of the deployment mid-request: the waiting request rejects UNAVAILABLE at once, and requests work again after the reconnect', { timeout: 120_000 }, async () => {
  const p = prefixOn(4);
  const responder = await client(token, prefixOn(6));
  const asker = await client(token, p);
  try {
    let answering = false;
    await responder.subscribe(`${p}.k`, (n) => (answering ? n * 3 : new Promise(() => {}))).ready;
    const waiting = asker.request(`${p}.k`, 1, { timeoutMs: 60_000 }).then(() => 'a reply', (e) => e);
    await new Promise((r) => setTimeout(r, 300)); // delivered, unanswered
    const t0 = Date.now();
    await server.crash();
    assert.equal((await waiting).code, 'UNAVAILABLE');
    assert.ok(Date.now() - t0 < 30_000, 'settled by the dropped connection, not by its 60 s timeout');
    answering = true;
    // Both clients reconnect and the responder subscribes again (its subscription's `ready` is
    // the first one's: wait for the hubs to take it by retrying the request).
    let reply;
    for (let i = 0; i < 50 && reply === undefined; i++) {
      reply = await asker.request(`${p}.k`, 2, { timeoutMs: 2000 }).catch((e) => {
        assert.ok(['UNAVAILABLE', 'NO_RESPONDERS', 'TIMEOUT'].includes(e.code), e.code);
        return new Promise((r) => setTimeout(r, 200));
      });
    }
    assert.equal(reply, 6);
  } finally {
    await Promise.all([responder.close(), asker.close()]);
  }
});
