// One validation module for the whole package: Bus, ShardedBus and the remote client refuse the
// same bad option with the same code and the same words, read each option once, and take the
// overflow policies' names from the core.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Batcher, Bus, EdgebusError, ShardedBus, connect } from 'edgebus';

const handlers = new URL('./fixtures/order-handlers.mjs', import.meta.url);
class NoSocket {}

/** The error each constructor throws for the same extra options. */
function refusals(extra) {
  const errors = [];
  for (const make of [
    () => new Bus(extra),
    () => new ShardedBus({ handlers, workers: 1, ...extra }),
    () => connect('ws://127.0.0.1:9', { token: 't', WebSocket: NoSocket, ...extra }),
  ]) {
    try {
      make();
      errors.push(undefined);
    } catch (e) {
      errors.push(e);
    }
  }
  return errors;
}

test('the same bad option gets the same code and message from Bus, ShardedBus and connect', () => {
  for (const extra of [
    { overflow: 'dropEverything' },
    { overflow: 3 },
    { onError: 'log it' },
    { maxQueue: 1.5 },
    { maxQueue: NaN },
    { maxQueue: 'lots' },
  ]) {
    const key = Object.keys(extra)[0];
    // The remote client's buffer is `maxBuffer`: compare it under that name.
    const [bus, sharded] = refusals(extra);
    const remote = refusals(key === 'maxQueue' ? { maxBuffer: extra.maxQueue } : extra)[2];
    for (const e of [bus, sharded, remote]) {
      assert.ok(e instanceof EdgebusError, `${JSON.stringify(extra)}: ${e}`);
      assert.equal(e.code, 'INVALID_OPTION');
    }
    assert.equal(sharded.message, bus.message, JSON.stringify(extra));
    assert.equal(remote.message, bus.message.replace('maxQueue', 'maxBuffer'), JSON.stringify(extra));
  }
  // Each its own bound, in the same words.
  assert.equal(refusals({ maxQueue: -1 })[1].message, 'option `maxQueue` must be at least 0, got -1');
  assert.equal(refusals({ maxBuffer: 0 })[2].message, 'option `maxBuffer` must be at least 1, got 0');
  // The overflow names are the core's, listed in the message.
  assert.match(refusals({ overflow: 'x' })[0].message, /must be one of dropOldest, dropNewest, reject, wait, got "x"/);
});

test('unknown options, nested ones included, are refused everywhere', () => {
  for (const e of refusals({ colour: 'blue' })) {
    assert.equal(e.code, 'INVALID_OPTION');
    assert.match(e.message, /^unknown option `colour` \(known: /);
  }
  // Before, the remote client ignored unknown keys inside `dedupe` and `reconnect`.
  const remote = (o) => () => connect('ws://127.0.0.1:9', { token: 't', WebSocket: NoSocket, ...o });
  assert.throws(remote({ dedupe: { maxIds: 10, maxAgeMs: 5 } }), { code: 'INVALID_OPTION', message: /unknown option `dedupe.maxAgeMs`/ });
  assert.throws(remote({ reconnect: { initialMs: 10, tries: 3 } }), { code: 'INVALID_OPTION', message: /unknown option `reconnect.tries`/ });
  assert.throws(remote({ reconnect: { initialMs: 0 } }), { code: 'INVALID_OPTION', message: /reconnect.initialMs/ });
  assert.throws(() => new Bus({ dedupe: { maxIds: 10, window: 5 } }), { code: 'INVALID_OPTION', message: /unknown option `dedupe.window`/ });
  assert.throws(() => new ShardedBus({ handlers, dedupe: { window: 5 } }), { code: 'INVALID_OPTION', message: /unknown option `dedupe.window`/ });
});

test('options are read once, at the call, and unreadable ones are INVALID_OPTION', async () => {
  let reads = 0;
  const options = {
    token: 't',
    WebSocket: NoSocket,
    get maxBuffer() { reads++; return reads === 1 ? 5 : 'not a number'; },
  };
  const remote = connect('ws://127.0.0.1:9', options);
  assert.equal(reads, 1);
  assert.equal(remote.stats().buffered, 0);
  // close()'s options too: a bad timeout is refused, and the bus stays open.
  for (const timeoutMs of ['soon', -1, NaN, 2 ** 31]) {
    await assert.rejects(remote.close({ timeoutMs }), { code: 'INVALID_OPTION', message: /timeoutMs/ });
  }
  await assert.rejects(remote.close({ timeout: 5 }), { code: 'INVALID_OPTION', message: /unknown option `timeout`/ });
  assert.equal(remote.closed, false);
  assert.deepEqual(await remote.close({ timeoutMs: 0 }), { remaining: [] });
  assert.equal(remote.closed, true);
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  for (const make of [
    () => new Bus(revoked.proxy),
    () => new ShardedBus(revoked.proxy),
    () => connect('ws://127.0.0.1:9', revoked.proxy),
  ]) {
    assert.throws(make, (e) => e instanceof EdgebusError && e.code === 'INVALID_OPTION' && /could not be read/.test(e.message));
  }
});

test('a handler that is not a function: the same refusal from Bus, Batcher and the remote client', async () => {
  const remote = connect('ws://127.0.0.1:9', { token: 't', WebSocket: NoSocket });
  for (const handler of ['run', null, 42, {}]) {
    const refusal = { code: 'INVALID_HANDLER', message: /^handler must be a function, got / };
    assert.throws(() => new Bus().subscribe('a', handler), refusal);
    assert.throws(() => new Batcher(handler), refusal);
    assert.throws(() => remote.subscribe('a', handler), refusal);
  }
  assert.throws(() => remote.subscribe('a', () => {}, { group: 7 }), { code: 'INVALID_OPTION', message: 'option `group` must be a string, got 7' });
  assert.throws(() => remote.publish('a', 1, { id: '' }), { code: 'INVALID_OPTION', message: 'option `id` must not be empty' });
  assert.throws(() => remote.publish('a', 1, { key: 5 }), { code: 'INVALID_OPTION', message: 'option `key` must be a string, got 5' });
  await remote.close({ timeoutMs: 0 });
});
