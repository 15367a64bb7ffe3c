// Reproducers of what the hostile property test of the log APIs (hostile-logs-props.test.mjs) and
// its targeted probes found: each failed before its fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Bus } from 'edgebus';
import { settle, throwsCode } from './support/helpers.mjs';

/** A clock whose now() misbehaves while `bad` says so (read `clock.bad = …`). */
function faultyClock(fault) {
  const clock = {
    bad: false,
    t: 1000,
    now() {
      if (!clock.bad) return clock.t;
      if (fault === 'throw') throw new Error('clock broke');
      return fault;
    },
  };
  return clock;
}

/** Delivers one canary message through a fresh subscription: the bus still works. */
async function canary(bus) {
  const got = [];
  const s = bus.subscribe('canary.x', (p) => { got.push(p); });
  bus.publish('canary.x', 'tweet');
  await settle();
  s.unsubscribe();
  assert.deepEqual(got, ['tweet']);
}

test('a handler whose length cannot be read is INVALID_HANDLER, and nothing is subscribed', async () => {
  const bus = new Bus();
  const handler = new Proxy(function () {}, {
    get(target, key) {
      if (key === 'length') throw new Error('no length');
      return target[key];
    },
  });
  throwsCode(() => bus.subscribe('a.b', handler), 'INVALID_HANDLER', /no length/);
  throwsCode(() => bus.subscribe('a.b', handler, {}), 'INVALID_HANDLER', /no length/);
  throwsCode(() => bus.subscribe('a.b', handler, { replay: { last: 1 } }), 'INVALID_HANDLER');
  assert.equal(bus.stats().subscriptions, 0);
  bus.publish('a.b', 1);
  assert.equal(bus.stats().delivered, 0);
  await canary(bus);
  await bus.close();
});

test('a clock that throws while restore hands its copies over does not spoil the next restore', async () => {
  const clock = faultyClock('throw');
  const bus = new Bus({ clock, history: { topics: ['h.>'] } });
  let reads = 0;
  const now = clock.now;
  clock.now = () => {
    reads++;
    if (reads === 2) clock.bad = true; // the second read: while the first copies are handed over
    try {
      return now();
    } finally {
      clock.bad = false;
    }
  };
  const errors = [];
  const original = console.error;
  console.error = (...a) => errors.push(a);
  try {
    bus.restore([{ topic: 'h.a', seq: 1, payload: 1 }, { topic: 'h.a', seq: 2, payload: 2 }]);
  } finally {
    console.error = original;
  }
  bus.restore([{ topic: 'h.b', seq: 1, payload: 'b' }]);
  assert.deepEqual(bus.logOf('h.a'), { topic: 'h.a', firstSeq: 1, lastSeq: 2, retainedSeq: undefined, held: 2 });
  assert.deepEqual(bus.logOf('h.b'), { topic: 'h.b', firstSeq: 1, lastSeq: 1, retainedSeq: undefined, held: 1 });
  assert.deepEqual(bus.replay('h.*', { last: 5 }).messages.map((m) => m.payload), [1, 2, 'b']);
  assert.equal(bus.logStats().history, 3);
  await canary(bus);
  await bus.close();
});

for (const fault of ['throw', Symbol('t'), 10n, undefined, 'soon', NaN]) {
  test(`a clock whose now() gives ${typeof fault === 'symbol' ? 'a symbol' : typeof fault === 'bigint' ? 'a bigint' : String(fault)} after construction: the last reading stands in, nothing is lost`, async () => {
    const clock = faultyClock(fault);
    const bus = new Bus({ clock, history: { topics: ['h.>'] }, retain: { maxTopics: 10 } });
    const errors = [];
    const original = console.error;
    console.error = (...a) => errors.push(a);
    try {
      const got = [];
      let release;
      const gate = new Promise((r) => { release = r; });
      bus.subscribe('h.a', async (p) => { got.push(p); await gate; });
      bus.publish('h.a', 1);
      bus.publish('h.a', 2, { retain: true });
      clock.bad = true;
      // The pump that takes the first delivery's completion reads the clock.
      release();
      await settle();
      assert.equal(bus.publish('h.a', 3), true);
      await settle();
      assert.deepEqual(bus.logStats().history, 3);
      assert.equal(bus.retained('h.a')[0].payload, 2);
      await bus.drain();
      assert.deepEqual(got, [1, 2, 3]);
      const st = bus.stats();
      assert.equal(st.inFlight, 0);
      assert.equal(st.queued, 0);
      assert.equal(st.delivered, 3);
      clock.bad = false;
      await canary(bus);
      await bus.close();
    } finally {
      console.error = original;
    }
    assert.equal(errors.length, 1);
    assert.match(String(errors[0][0]), /clock/);
  });
}

test('replay() checks the topics `sinceSeq` names as subscribe does: INVALID_TOPIC', async () => {
  const bus = new Bus({ history: { topics: ['>'] } });
  bus.publish('h.a', 1);
  bus.publish('h.a', 2);
  for (const t of ['h.*', 'h.>', 'a..b', '', 'x'.repeat(5000)]) {
    throwsCode(() => bus.subscribe('>', () => {}, { replay: { sinceSeq: { [t]: 1 } } }), 'INVALID_TOPIC');
    throwsCode(() => bus.replay('>', { sinceSeq: { [t]: 1 } }), 'INVALID_TOPIC');
  }
  assert.deepEqual(bus.replay('>', { sinceSeq: { 'h.a': 1 } }).messages.map((m) => m.seq), [2]);
  assert.equal(bus.logStats().replayed, 0);
  await canary(bus);
  await bus.close();
});
