// The demo's topic explorer explains each verdict with its own token walk (www/src/explain.js); it
// must reach the verdict of every conformance vector, the same the bus reaches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { explain } from '../../www/src/explain.js';

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'data', 'topics.json'), 'utf8'));

test('the explorer\'s explanation agrees with every match vector', () => {
  for (const [pattern, topic, expected] of vectors.match) {
    const why = explain(pattern, topic);
    assert.equal(why.match, expected, `${pattern} against ${topic}: ${why.reason}`);
    assert.ok(why.reason.length > 0);
    assert.ok(why.steps.length > 0);
  }
});

test('a failed step is the last step, and only matches have no failed step', () => {
  for (const [pattern, topic] of vectors.match) {
    const { match, steps } = explain(pattern, topic);
    const bad = steps.findIndex((s) => !s.ok);
    if (match) assert.equal(bad, -1, `${pattern} / ${topic}`);
    else assert.equal(bad, steps.length - 1, `${pattern} / ${topic}`);
  }
});
