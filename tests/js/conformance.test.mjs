// Every row of the shared topic/pattern conformance file, through the JavaScript API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus, matches } from 'edgebus';
import { throwsCode } from './support/helpers.mjs';

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

test('matches() answers every match row as the bus routes it, and refuses bad patterns and topics', () => {
  for (const [pattern, topic, expected] of vectors.match) {
    assert.equal(matches(pattern, topic), expected, `${pattern} vs ${topic}`);
  }
  for (const p of vectors.invalid_patterns) throwsCode(() => matches(p, 'a.b'), 'INVALID_PATTERN');
  for (const t of vectors.invalid_topics) throwsCode(() => matches('a.*', t), 'INVALID_TOPIC');
  throwsCode(() => matches(7, 'a'), 'INVALID_PATTERN');
  throwsCode(() => matches('a', null), 'INVALID_TOPIC');
});
