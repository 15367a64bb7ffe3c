// The README's ShardedBus example runs as written: its code blocks are the example files, which run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('## ShardedBus: handlers in workers'));
const blocks = [...section.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);

test('the README ShardedBus blocks are examples/sharded-handlers.mjs and examples/sharded.mjs', () => {
  assert.equal(blocks[0], readFileSync(join(root, 'examples', 'sharded-handlers.mjs'), 'utf8'));
  assert.equal(blocks[1], readFileSync(join(root, 'examples', 'sharded.mjs'), 'utf8'));
});

test('the ShardedBus example runs and prints what the README says', () => {
  const out = execFileSync(process.execPath, [join(root, 'examples', 'sharded.mjs')], { encoding: 'utf8', timeout: 30_000 });
  assert.deepEqual(out.trim().split('\n'), [
    'img-0 failed in worker 1: image 0 cannot be decoded',
    'done 7, failed 1, duplicates 1, workers 2',
    'image 7 → 518430',
  ]);
  assert.match(section, /it prints\n`img-0 failed in worker 1: image 0 cannot be decoded`, then `done 7, failed 1, duplicates 1, workers 2`, then `image 7 → 518430`/);
});
