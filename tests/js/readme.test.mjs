// The README's quick starts run as written: its code blocks are the example files, which run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

function block(after, lang) {
  const start = readme.indexOf(after);
  assert.ok(start >= 0, `README has "${after}"`);
  const open = readme.indexOf('```' + lang + '\n', start);
  const close = readme.indexOf('```', open + 4 + lang.length);
  return readme.slice(open + 4 + lang.length, close);
}

test('the JavaScript quick start is examples/quickstart.mjs, and it runs', () => {
  const code = block('In Node (ESM or CommonJS), importing is enough:', 'js');
  assert.equal(code, readFileSync(join(root, 'examples', 'quickstart.mjs'), 'utf8'));
  const out = execFileSync(process.execPath, [join(root, 'examples', 'quickstart.mjs')], { encoding: 'utf8' });
  assert.deepEqual(out.trim().split('\n'), ['orders.eu.created: order 1', '3']);
});

test('the request/reply example is examples/request-reply.mjs, and it prints what the README says', () => {
  const code = block('## Request/reply', 'js');
  assert.equal(code, readFileSync(join(root, 'examples', 'request-reply.mjs'), 'utf8'));
  const out = execFileSync(process.execPath, [join(root, 'examples', 'request-reply.mjs')], { encoding: 'utf8' });
  assert.deepEqual(out.trim().split('\n'), [
    '42', 'true', '[ 1.08, 1.09 ]', 'resize done', 'NO_RESPONDERS', 'NO_RESPONDERS', 'ABORTED',
    '{ sent: 6, replies: 5, noResponders: 2, cancelled: 1 }',
  ]);
});

test('the once/stream/AbortSignal example is examples/once-stream.mjs, and it prints what the README says', () => {
  const code = block('**once, stream and AbortSignal.**', 'js');
  assert.equal(code, readFileSync(join(root, 'examples', 'once-stream.mjs'), 'utf8'));
  const out = execFileSync(process.execPath, [join(root, 'examples', 'once-stream.mjs')], { encoding: 'utf8' });
  assert.deepEqual(out.trim().split('\n'), [
    'first big order: 7 on orders.eu.created', 'ticks seen: 1, 4, 5; dropped: 2', 'ABORTED', 'subscriptions left: 0',
  ]);
});

test('the retained values example is examples/retained.mjs, and it prints what the README says', () => {
  const code = block('## Retained values and replay', 'js');
  assert.equal(code, readFileSync(join(root, 'examples', 'retained.mjs'), 'utf8'));
  const out = execFileSync(process.execPath, [join(root, 'examples', 'retained.mjs')], { encoding: 'utf8' });
  assert.deepEqual(out.trim().split('\n'), [
    'sensors.hall.temp = 19', 'sensors.kitchen.temp = 22', 'missed chat.room1 #2-#3', '#4 fine', '#5 bye', '#6 see you',
    'sensors.hall.temp = undefined', "[ 'sensors.kitchen.temp' ] 4",
  ]);
});

test('the typed topic map example is examples/typed-topics.ts, and it type-checks', () => {
  const code = block('**Typed topic maps.**', 'ts');
  assert.equal(code, readFileSync(join(root, 'examples', 'typed-topics.ts'), 'utf8'));
  // (the test command also runs this compile; here it is what the README promises)
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'examples')], { encoding: 'utf8' });
});

test('the work-queue example is examples/work-queue.mjs, and it runs', () => {
  const code = block('## Work queues', 'js');
  assert.equal(code, readFileSync(join(root, 'examples', 'work-queue.mjs'), 'utf8'));
  const out = execFileSync(process.execPath, [join(root, 'examples', 'work-queue.mjs')], { encoding: 'utf8' });
  const lines = out.trim().split('\n');
  const sent = lines.filter((l) => / sent /.test(l)).map((l) => l.replace(/^w[12] /, ''));
  // mail-4 (priority 10) overtakes mail-3; mail-5 comes after its notBefore.
  assert.deepEqual(sent, ['sent mail-1 (attempt 1)', 'sent mail-4 (attempt 1)', 'sent mail-3 (attempt 1)', 'sent mail-5 (attempt 1)']);
  assert.ok(lines.includes('dead: mail-2 after 3 attempts (mailbox unavailable)'));
  assert.ok(lines.includes("{ state: 'dead', attempts: 3, group: 'mailer' }"));
  assert.ok(lines.includes('{ done: 4, retried: 2, dead: 1 }'));
  assert.equal(lines[1], 'delayed');
  assert.equal(lines.at(-1), '0');
});

test('the Rust quick start is examples/quickstart.rs (built and run by cargo in test.sh)', () => {
  const code = block('## Rust quick start', 'rust');
  assert.equal(code, readFileSync(join(root, 'examples', 'quickstart.rs'), 'utf8'));
});

test('the demo runs and shows every section', () => {
  const out = execFileSync(process.execPath, [join(root, 'examples', 'demo.mjs')], { encoding: 'utf8' });
  for (let i = 1; i <= 8; i++) assert.match(out, new RegExp(`^${i}\\. `, 'm'));
  assert.match(out, /finished in this order: .*a1.*a2.*a3/);
  assert.doesNotMatch(out, /failed on jobs: overlap/);
  assert.match(out, /handler ran 3 times/);
  assert.match(out, /QUEUE_FULL/);
});
