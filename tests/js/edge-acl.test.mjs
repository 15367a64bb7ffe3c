// The edge's ACL checks against the core's matcher: publishing uses the core's `matches` itself;
// `covers` (may a token's `sub` pattern grant a requested pattern?) is the edge's own, so it is
// checked here to be sound: whatever it grants, every topic of the requested pattern is matched
// by the granting pattern, by the core. Exhaustive over small patterns and topics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches } from 'edgebus';
import { covers, mayPublish, maySubscribe } from '../../edge/src/acl.js';

const LITERALS = ['a', 'b', '$s'];
const TOPICS = [];
const PATTERNS = [];
function words(alphabet, max, out, prefix = []) {
  if (prefix.length > 0) out.push(prefix.join('.'));
  if (prefix.length === max) return;
  for (const w of alphabet) words(alphabet, max, out, [...prefix, w]);
}
words([...LITERALS, 'c'], 4, TOPICS);
words([...LITERALS, '*', '>'], 3, PATTERNS);
const valid = PATTERNS.filter((p) => !/>./.test(p)); // '>' only last

test('covers never grants a pattern reaching a topic the granting pattern does not match', () => {
  let granted = 0;
  for (const allowed of valid) {
    for (const wanted of valid) {
      if (!covers(allowed, wanted)) continue;
      granted++;
      for (const t of TOPICS) {
        if (matches(wanted, t)) assert.ok(matches(allowed, t), `covers(${allowed}, ${wanted}) but ${allowed} does not match ${t}`);
      }
    }
  }
  assert.ok(granted > valid.length, `only ${granted} grants: the check tested little`);
  // Exactly as the core: a pattern grants itself, and the reserved `$` topics need a literal.
  for (const p of valid) assert.ok(covers(p, p) || p.startsWith('$'), p);
  assert.equal(covers('>', '$s.a'), false);
  assert.equal(covers('$s.>', '$s.a'), true);
});

test('mayPublish is the core matcher; a claim that is not a pattern allows nothing', () => {
  for (const p of valid) {
    for (const t of TOPICS) assert.equal(mayPublish({ pub: [p] }, t), matches(p, t), `${p} ${t}`);
  }
  assert.equal(mayPublish({ pub: ['a..b', 'a.>'] }, 'a.x'), true);
  assert.equal(mayPublish({ pub: ['a..b'] }, 'a.x'), false);
});

test('maySubscribe: a claim that is not a pattern allows nothing, as for publishing', () => {
  // `>` before the end, an empty token: refused by the core as patterns, so they grant nothing
  // (covers alone would take `>.x` for "anything" and `a.>.b` for `a.*.c`).
  for (const [claim, wanted] of [['>.x', 'orders.new'], ['a.>.b', 'a.*.c'], ['a..b', 'a..b'], ['', 'a']]) {
    assert.equal(maySubscribe({ sub: [claim] }, wanted), false, `${claim} grants ${wanted}`);
  }
  assert.equal(maySubscribe({ sub: ['>.x', 'a.>'] }, 'a.*.c'), true, 'a valid claim beside still grants');
  for (const allowed of valid) {
    for (const wanted of valid) assert.equal(maySubscribe({ sub: [allowed] }, wanted), covers(allowed, wanted), `${allowed} ${wanted}`);
  }
});
