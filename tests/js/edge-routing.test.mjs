// The edge deployment takes its rules from the package, not from copies: the hub of a topic is the
// package's shardOf (the core's hash) of its routed prefix, and its refusals are the package's
// EdgebusError, the class the core's own refusals come as.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EdgebusError, shardOf } from 'edgebus';
import { hubOfTopic, hubsOfPattern, nsDirectoryHub } from '../../edge/src/routing.js';
import { verifyToken } from '../../edge/src/auth.js';

const edgeSrc = join(import.meta.dirname, '..', '..', 'edge', 'src');

test('a topic\'s hub is the core\'s shard of its first routeTokens tokens', () => {
  for (const hubs of [1, 2, 8, 64]) {
    for (const topic of ['orders', 'orders.eu.created', 't1.x', 't2.x', 'ключ.значение', '$errors']) {
      assert.equal(hubOfTopic(topic, hubs, 1), shardOf(topic.split('.')[0], hubs), `${topic} over ${hubs}`);
      assert.equal(hubOfTopic(topic, hubs, 2), shardOf(topic.split('.').slice(0, 2).join('.'), hubs));
    }
    assert.equal(nsDirectoryHub('acme', hubs), shardOf('$ns.acme', hubs));
    assert.deepEqual(hubsOfPattern('orders.*', hubs, 1), [shardOf('orders', hubs)]);
  }
});

test('the edge refuses with the package\'s EdgebusError', async () => {
  await assert.rejects(verifyToken('', 'a secret'), (e) => e instanceof EdgebusError && e.code === 'UNAUTHORIZED');
});

test('edge/src keeps no copy of the package\'s error class or hash', () => {
  for (const file of readdirSync(edgeSrc).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(edgeSrc, file), 'utf8');
    assert.doesNotMatch(text, /class \w+ extends Error\b/, `${file} defines an error class`);
    assert.doesNotMatch(text, /0x811c9dc5|0x01000193/i, `${file} has a copy of the hash`);
  }
});
