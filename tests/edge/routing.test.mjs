// Which hub owns a topic must never change between versions (stored interests, streams and ids
// live on the owner): the hub is the package's shardOf (the core's hash) of the routed prefix,
// which hashes the UTF-8 bytes of the key exactly as TextEncoder gives them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardOf } from 'edgebus';
import { hubOfTopic } from '../../edge/src/routing.js';

const encoder = new TextEncoder();

/** The definition: FNV-1a over TextEncoder's bytes, murmur3's finalizer, multiply-shift. */
function reference(key, hubs) {
  let h = 0x811c9dc5;
  for (const b of encoder.encode(key)) h = Math.imul(h ^ b, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.floor(((h >>> 0) * hubs) / 4294967296);
}

/** A small deterministic generator (mulberry32), so a failure names a reproducible key. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether a string has a lone UTF-16 surrogate (no UTF-8 form: never a valid topic). */
const lone = (s) => !s.isWellFormed();

test('shardOf equals the hash of TextEncoder bytes: ASCII, 2- and 3-byte characters, surrogate pairs; lone surrogates are refused', () => {
  const fixed = ['', 'bench', 't1', 't2', 'chat', 'é', 'ü.x', '日本', '€', '😀', 'a😀b', '\ud800', '\udc00x', 'x\ud83d', '\ud83d\ud83d\ude00', '\uffff'];
  const random = rng(11);
  const keys = [...fixed];
  for (let k = 0; k < 20000; k++) {
    let s = '';
    const len = Math.floor(random() * 10);
    for (let j = 0; j < len; j++) {
      const r = random();
      const code = r < 0.5 ? 32 + Math.floor(random() * 95)
        : r < 0.7 ? 0x80 + Math.floor(random() * 0x780)
          : r < 0.85 ? 0x800 + Math.floor(random() * 0xf7ff)
            : 0xd800 + Math.floor(random() * 0x800);
      s += String.fromCharCode(code);
    }
    keys.push(s);
  }
  for (const key of keys) {
    for (const hubs of [1, 8, 1000, 4294967295]) {
      // A key with a lone surrogate cannot reach the hash at the edge: checkTopic refuses it first.
      if (lone(key)) assert.throws(() => shardOf(key, hubs), { code: 'INVALID_ARGUMENT' });
      else assert.equal(shardOf(key, hubs), reference(key, hubs), `${JSON.stringify(key)} over ${hubs}`);
    }
  }
  assert.equal(hubOfTopic('bench.fan', 8, 1), reference('bench', 8));
});
