// What the scenarios share: the payload, a sink the handlers write to (so no work is optimised
// away), a seeded random generator, and the topic and pattern sets of the wildcard scenarios.
// Plain JavaScript with no DOM or Node API, so the same definitions can run in any runtime.

export const payload = { n: 1 };

/** Handlers add to this; scenarios read deliveries from their own counters. */
export const sink = { value: 0 };

/** A small seeded PRNG (mulberry32): the same sequence in every run and every contender. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Wildcard workload. Topics have four tokens `a<0..31>.b<0..31>.c<0..31>.d<0..255>` (2^23 names);
// patterns mix `*` and `>` so that a topic matches about five of 10,000 subscriptions.
const A = 32, B = 32, C = 32, D = 256;

/** The n-th topic of a fixed permutation of the 2^23 names (distinct for distinct n < 2^23). */
export function topicAt(n) {
  const x = (Math.imul(n, 0x9e3779b1) + 0x7f4a7c15) & 0x7fffff;
  return `a${x & 31}.b${(x >>> 5) & 31}.c${(x >>> 10) & 31}.d${x >>> 15}`;
}

/**
 * `count` patterns in six shapes, drawn with a fixed seed. `prefixOnly`: only trailing-`>` shapes
 * (`a.b.>`, `a.b.c.>`), the subset hierarchical-topic libraries can express.
 */
export function patterns(count, { prefixOnly = false } = {}) {
  const r = rng(7);
  const pick = (n) => Math.floor(r() * n);
  const shapes = prefixOnly
    ? [
        () => `a${pick(A)}.b${pick(B)}.>`,
        () => `a${pick(A)}.b${pick(B)}.c${pick(C)}.>`,
      ]
    : [
        () => `a${pick(A)}.b${pick(B)}.c${pick(C)}.*`,
        () => `a${pick(A)}.*.c${pick(C)}.>`,
        () => `a${pick(A)}.b${pick(B)}.>`,
        () => `*.b${pick(B)}.c${pick(C)}.*`,
        () => `a${pick(A)}.*.*.d${pick(D)}`,
        () => `*.*.c${pick(C)}.d${pick(D)}`,
      ];
  return Array.from({ length: count }, (_, i) => shapes[i % shapes.length]());
}

/** `count` topics drawn (seeded) from `distinct` names. */
export function repeatedTopics(count, distinct) {
  const names = Array.from({ length: distinct }, (_, i) => topicAt(i));
  const r = rng(11);
  return Array.from({ length: count }, () => names[Math.floor(r() * distinct)]);
}

/** `count` distinct topics, starting at name `offset` of the permutation. */
export function uniqueTopics(count, offset) {
  return Array.from({ length: count }, (_, i) => topicAt(offset + i));
}

/** NATS-style pattern → EventEmitter2 wildcard event name (`*` one level, `**` the rest). */
export const toEventEmitter2 = (pattern) => pattern.split('.').map((t) => (t === '>' ? '**' : t)).join('.');

/** `a.b.>` → `a.b`: PubSubJS delivers a topic to every subscriber of each of its prefixes. */
export const toPubSubPrefix = (pattern) => pattern.replace(/\.>$/, '');

/**
 * Five handler functions of distinct source, for the "shared" emit mode: each library is first used
 * with these, so the call sites inside it that invoke handlers have seen several targets (as in an
 * app that uses one emitter library for many things) before the measured handler runs.
 */
export const otherHandlers = [
  (p) => { sink.value += p.n; },
  (p) => { sink.value ^= p.n; },
  (p) => { sink.value -= p.n; },
  (p) => { sink.value |= p.n; },
  (p) => { sink.value = (sink.value + p.n) & 0xffff; },
];

/** The same five for libraries that call handlers as `(topic, payload)` (PubSubJS). */
export const otherTopicHandlers = [
  (_t, p) => { sink.value += p.n; },
  (_t, p) => { sink.value ^= p.n; },
  (_t, p) => { sink.value -= p.n; },
  (_t, p) => { sink.value |= p.n; },
  (_t, p) => { sink.value = (sink.value + p.n) & 0xffff; },
];

/** Calls `emit(topic, payload)` through each of `handlers`, registered with `on(topic, fn)`. */
export function primeShared(on, emit, handlers = otherHandlers) {
  handlers.forEach((fn, i) => on(`other.${i}`, fn));
  for (let round = 0; round < 2_000; round++) {
    for (let i = 0; i < handlers.length; i++) emit(`other.${i}`, payload);
  }
}
