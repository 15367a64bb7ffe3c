// Reproducers of what the hostile property test of the log APIs (hostile-logs-props.test.mjs) and
// its targeted probes found: each failed before its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from 'edgebus';
import { settle, throwsCode } from './support/helpers.mjs';

/** Delivers one canary message through a fresh subscription: the bus still works. */
async function canary(bus) {
  const got = [];
  const s = bus.subscribe('canary.x', (p) => { got.push(p); });
  bus.publish('canary.x', 'tweet');
  await settle();
  s.unsubscribe();
  assert.deepEqual(got, ['tweet']);
}

test('a handler whose length cannot be read is INVALID_HANDLER, and nothing is subscribed', async () => {
  const bus = new Bus();
  const handler = new Proxy(function () {}, {
    get(target, key) {
      if (key === 'length') throw new Error('no length');
      return target[key];
    },
  });
  throwsCode(() => bus.subscribe('a.b', handler), 'INVALID_HANDLER', /no length/);
  throwsCode(() => bus.subscribe('a.b', handler, {}), 'INVALID_HANDLER', /no length/);
  throwsCode(() => bus.subscribe('a.b', handler, { replay: { last: 1 } }), 'INVALID_HANDLER');
  assert.equal(bus.stats().subscriptions, 0);
  bus.publish('a.b', 1);
  assert.equal(bus.stats().delivered, 0);
  await canary(bus);
  await bus.close();
});
