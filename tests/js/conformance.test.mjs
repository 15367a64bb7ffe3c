// Every row of the shared topic/pattern conformance file, through the JavaScript API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus } from 'edgebus';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'data', 'topics.json'), 'utf8'));

test('the conformance file has match rows', () => {
  assert.ok(Array.isArray(vectors.match) && vectors.match.length > 0);
  assert.ok(vectors.match.some((r) => r[2] === true) && vectors.match.some((r) => r[2] === false));
});

for (const [pattern, topic, expected] of vectors.match) {
  test(`pattern ${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} topic ${JSON.stringify(topic)}`, () => {
    const bus = new Bus();
    const got = [];
    bus.subscribe(pattern, (p, m) => got.push([p, m.topic]));
    const payload = { row: pattern + ' ' + topic };
    assert.equal(bus.publish(topic, payload), true);
    if (expected) assert.deepEqual(got, [[payload, topic]]);
    else assert.deepEqual(got, []);
  });
}

test('all rows on one bus, unsubscribing between rows, also through the queued path', async () => {
  const bus = new Bus();
  for (const [pattern, topic, expected] of vectors.match) {
    const got = [];
    const sub = bus.subscribe(pattern, async (p) => { got.push(p); });
    bus.publish(topic, 'x', { key: 'k' });
    bus.publish(topic, 'y', { key: 'k' });
    await bus.drain();
    assert.deepEqual(got, expected ? ['x', 'y'] : [], `${pattern} vs ${topic}`);
    assert.equal(sub.unsubscribe(), true);
  }
});
