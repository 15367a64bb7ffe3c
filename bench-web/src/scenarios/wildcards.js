// Scenario 3: 10,000 wildcard subscriptions; topics drawn from 1,000 names, then every topic unique.
// Peers: EventEmitter2 with `wildcard: true` (`*` one level, `**` the rest), qlobber with NATS-like
// settings (`*` one word, `>` the rest; alone, and behind a `Map` memo of topic → handlers for the
// repeated topics) and, for the subset it can express (trailing `>` only), PubSubJS's hierarchical
// topics.
import { Bus } from 'edgebus';
import eventemitter2 from 'eventemitter2'; // CommonJS: its default import works in Vite and Node alike

import PubSub from 'pubsub-js';
import { Qlobber } from 'qlobber';
import { patterns, payload, repeatedTopics, toEventEmitter2, toPubSubPrefix, uniqueTopics } from './common.js';

const { EventEmitter2 } = eventemitter2;

const SUBSCRIPTIONS = 10_000;

/**
 * The topics each call of `run` publishes. Repeated: the same `ops` topics drawn from 1,000 names.
 * Unique: successive slices of a pool of distinct names (a pool far larger than any route cache).
 */
function topicSource(mode, ops, calls) {
  if (mode === 'repeated') {
    const topics = repeatedTopics(ops, 1_000);
    return () => topics;
  }
  const pool = uniqueTopics(ops * calls, 0);
  let cursor = 0;
  return () => {
    const slice = pool.slice(cursor, cursor + ops);
    cursor = (cursor + ops) % pool.length;
    return slice;
  };
}

function contender(name, code, subscribe, publish, teardown) {
  return {
    name,
    code,
    setup({ ops, calls, mode, prefixOnly }) {
      const counter = { seen: 0 };
      const target = subscribe(patterns(SUBSCRIPTIONS, { prefixOnly }), counter);
      const next = topicSource(mode, ops, calls);
      return {
        work: ops,
        run() {
          const topics = next();
          const before = counter.seen;
          for (let i = 0; i < topics.length; i++) publish(target, topics[i]);
          return counter.seen - before;
        },
        teardown: () => teardown?.(target),
      };
    },
  };
}

const edgebus = contender(
  'edgebus',
  'bus.publish(topic, payload) to `*` / `>` patterns',
  (pats, c) => {
    const bus = new Bus();
    for (const p of pats) bus.subscribe(p, (x) => { c.seen += x.n; });
    return bus;
  },
  (bus, topic) => bus.publish(topic, payload),
  (bus) => bus.close(),
);

const eventEmitter2 = contender(
  'EventEmitter2',
  "new EventEmitter2({ wildcard: true }); ee.emit(topic, payload)",
  (pats, c) => {
    const ee = new EventEmitter2({ wildcard: true, delimiter: '.', maxListeners: 0 });
    for (const p of pats) ee.on(toEventEmitter2(p), (x) => { c.seen += x.n; });
    return ee;
  },
  (ee, topic) => ee.emit(topic, payload),
);

const pubSubJS = contender(
  'PubSubJS',
  "PubSub.subscribe('a1.b2', fn) (hierarchical); PubSub.publishSync(topic, payload)",
  (pats, c) => {
    for (const p of pats) PubSub.subscribe(toPubSubPrefix(p), (_m, x) => { c.seen += x.n; });
    return PubSub;
  },
  (ps, topic) => ps.publishSync(topic, payload),
  (ps) => ps.clearAllSubscriptions(),
);

const QLOBBER_OPTIONS = { separator: '.', wildcard_one: '*', wildcard_some: '>' };

const qlobber = contender(
  'qlobber',
  "new Qlobber({ separator: '.', wildcard_one: '*', wildcard_some: '>' }); for (const fn of q.match(topic)) fn(payload)",
  (pats, c) => {
    const q = new Qlobber(QLOBBER_OPTIONS);
    for (const p of pats) q.add(p, (x) => { c.seen += x.n; });
    return q;
  },
  (q, topic) => {
    const fns = q.match(topic);
    for (let i = 0; i < fns.length; i++) fns[i](payload);
  },
);

const qlobberMemo = contender(
  'qlobber + Map memo',
  'memo.get(topic) ?? memo.set(topic, q.match(topic)) (a memo that never needs invalidating here: no subscription changes while publishing)',
  (pats, c) => {
    const q = new Qlobber(QLOBBER_OPTIONS);
    for (const p of pats) q.add(p, (x) => { c.seen += x.n; });
    return { q, memo: new Map() };
  },
  (t, topic) => {
    let fns = t.memo.get(topic);
    if (fns === undefined) {
      fns = t.q.match(topic);
      t.memo.set(topic, fns);
    }
    for (let i = 0; i < fns.length; i++) fns[i](payload);
  },
);

const NOTE_WORKLOAD = 'Topics `aX.bX.cX.dX` (2^23 names); 10,000 patterns of six shapes, e.g. ' +
  '`a3.*.c7.>`, `*.b1.c9.*`, `a4.b2.>`; a topic matches about five of them.';

export const wildcardsRepeated = {
  id: 'wildcards',
  number: '3a',
  title: 'Wildcards: 10,000 mixed `*` / `>` subscriptions, topics from 1,000 names',
  unit: 'msg/s',
  note: NOTE_WORKLOAD,
  sizes: {
    full: { ops: 20_000, mode: 'repeated' },
    small: { ops: 1_000, mode: 'repeated' },
  },
  contenders: [edgebus, eventEmitter2, qlobber, qlobberMemo],
};

export const wildcardsUnique = {
  id: 'wildcards-unique',
  number: '3b',
  title: 'Wildcards: 10,000 mixed `*` / `>` subscriptions, every topic unique',
  unit: 'msg/s',
  note: 'Same subscriptions; each call publishes the next 20,000 of a pool of 800,000 distinct ' +
    'topics (1,000 of 20,000 at small size), far more than any route cache holds.',
  sizes: {
    full: { ops: 20_000, mode: 'unique', calls: 40 },
    small: { ops: 1_000, mode: 'unique', calls: 20 },
  },
  contenders: [edgebus, eventEmitter2, qlobber],
};

export const wildcardsHierarchical = {
  id: 'wildcards-hierarchical',
  number: '3c',
  title: 'Wildcards: 10,000 trailing-`>` subscriptions (hierarchical), topics from 1,000 names',
  unit: 'msg/s',
  note: 'PubSubJS has no single-level wildcard: it delivers a topic to the subscribers of each of ' +
    'its prefixes, which is what `a.b.>` means. This run uses only such patterns (`aX.bX.>`, ' +
    '`aX.bX.cX.>`) so all three do the same work.',
  sizes: {
    full: { ops: 20_000, mode: 'repeated', prefixOnly: true },
    small: { ops: 1_000, mode: 'repeated', prefixOnly: true },
  },
  contenders: [edgebus, eventEmitter2, pubSubJS],
};
