// Property test of the direct path and its counts (cached routes counting each publish once, the
// counts folded into the subscriptions when a route goes stale, a subscription leaves or stats are
// read): random subscribe / unsubscribe / publish / stats steps over a few topics, with handlers
// that, while handling, unsubscribe a subscription (their own included), subscribe a new one,
// publish again or read statistics, some of them failing afterwards. Checked against a small model
// after every step: each subscription was handed, in order, only messages routed to it (published
// on a topic its pattern matches while it was subscribed), all of them unless it left; and, at
// `stats` steps and the end: its delivered, failed and cancelled counts are its calls, its failing
// calls and the routed messages it was not handed; the bus's published, delivered and failed
// totals add up.
import { test } from 'node:test';
import fc from 'fast-check';
import { Bus, matches } from 'edgebus';

const SEED = Number(process.env.EDGEBUS_PROP_SEED ?? 20261205);
const RUNS = Number(process.env.EDGEBUS_PROP_RUNS ?? 1000);

const TOPICS = ['a.b', 'a.c', 'x.b', 'x.y.z'];
const PATTERNS = ['a.b', 'a.*', '*.b', '>', 'x.b', 'x.>', 'a.c'];

const actionArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.nat(5).map((k) => ({ kind: 'unsubscribe', k })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unsubscribeSelf' }) },
  { weight: 1, arbitrary: fc.nat(PATTERNS.length - 1).map((p) => ({ kind: 'subscribe', p })) },
  { weight: 1, arbitrary: fc.nat(TOPICS.length - 1).map((t) => ({ kind: 'publish', t })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'stats' }) },
);

const opArb = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('subscribe'), p: fc.nat(PATTERNS.length - 1), action: actionArb, fails: fc.boolean(), once: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsubscribe'), k: fc.nat(7) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('publish'), t: fc.nat(TOPICS.length - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('stats') }) },
);

function runOne(ops) {
  const bus = new Bus({ onError: () => {} });
  const subs = []; // model: { pattern, handle, calls: [], routed: [], failing, left }
  let next = 0;
  let failures = 0;
  let echoes = 0; // publishes handlers may still make in this step
  const where = () => `after ${JSON.stringify(ops)}`;
  const check = (ok, what) => {
    if (!ok) throw new Error(`${what} ${where()}`);
  };

  const publish = (topic) => {
    const n = next++;
    // Routed when published: every subscription then subscribed whose pattern matches.
    for (const s of subs) if (!s.left && matches(s.pattern, topic)) s.routed.push(n);
    check(bus.publish(topic, n) === true, `publish ${topic} refused`);
  };

  const subscribe = (p, action, fails, once) => {
    const s = { pattern: PATTERNS[p], calls: [], routed: [], failing: fails, left: false, handle: undefined };
    let done = false;
    s.handle = bus.subscribe(s.pattern, (n) => {
      s.calls.push(n);
      if (!(once && done)) {
        done = true;
        switch (action.kind) {
          case 'unsubscribe': {
            const live = subs.filter((x) => !x.left);
            const target = live[action.k % Math.max(live.length, 1)];
            if (target !== undefined) {
              target.left = true;
              check(target.handle.unsubscribe() === true, 'unsubscribe from a handler returned false');
            }
            break;
          }
          case 'unsubscribeSelf':
            if (!s.left) {
              s.left = true;
              check(s.handle.unsubscribe() === true, 'a handler unsubscribing its own returned false');
            }
            break;
          case 'subscribe':
            // A plain subscriber (no action of its own), subscribed mid-publish.
            subscribe(action.p, { kind: 'none' }, false, false);
            break;
          case 'publish':
            // Bounded: a handler publishing on a topic it matches would otherwise never stop.
            if (echoes > 0) {
              echoes--;
              publish(TOPICS[action.t]);
            }
            break;
          case 'stats':
            bus.stats();
            s.handle.stats();
            break;
          default:
        }
      }
      if (s.failing) {
        failures++;
        throw new Error('handler fails');
      }
    });
    subs.push(s);
  };

  for (const op of ops) {
    echoes = 8;
    if (op.op === 'subscribe') subscribe(op.p, op.action, op.fails, op.once);
    else if (op.op === 'unsubscribe') {
      const live = subs.filter((x) => !x.left);
      const target = live[op.k % Math.max(live.length, 1)];
      if (target !== undefined) {
        target.left = true;
        check(target.handle.unsubscribe() === true, 'unsubscribe returned false');
        check(target.handle.unsubscribe() === false, 'a second unsubscribe returned true');
      }
    } else if (op.op === 'publish') publish(TOPICS[op.t]);
    else bus.stats();

    // Synchronous handlers: everything published has run when the step returns. Statistics are
    // read (which folds the counts of cached routes) at a `stats` step and at the end only, so
    // that counts pile up on cached routes across steps in between.
    const full = op.op === 'stats' || op === ops[ops.length - 1];
    let delivered = 0;
    for (const [i, s] of subs.entries()) {
      const name = `#${i} ${s.pattern}`;
      check(s.handle.active === !s.left, `${name}: active ${s.handle.active}, left ${s.left}`);
      // Handed only what was routed to it, in order.
      let r = 0;
      for (const n of s.calls) {
        while (r < s.routed.length && s.routed[r] !== n) r++;
        check(r < s.routed.length, `${name}: handed ${n}, routed ${JSON.stringify(s.routed)}, calls ${JSON.stringify(s.calls)}`);
        r++;
      }
      if (!s.left) check(s.calls.length === s.routed.length, `${name}: still subscribed, handed ${JSON.stringify(s.calls)} of ${JSON.stringify(s.routed)}`);
      if (!full) continue;
      const st = s.handle.stats();
      check(st !== undefined, `${name}: no statistics`);
      check(st.delivered === s.calls.length, `${name}: delivered ${st.delivered}, calls ${s.calls.length}`);
      check(st.failed === (s.failing ? s.calls.length : 0), `${name}: failed ${st.failed}, calls ${s.calls.length}, failing ${s.failing}`);
      check(st.delivered + st.cancelled + st.queued === s.routed.length,
        `${name}: delivered ${st.delivered} + cancelled ${st.cancelled} + queued ${st.queued}, routed ${s.routed.length}`);
      check(st.queued === 0 && st.inFlight === 0, `${name}: queued ${st.queued}, in flight ${st.inFlight} with nothing running`);
      delivered += s.calls.length;
    }
    if (!full) continue;
    const total = bus.stats();
    check(total.published === next, `published ${total.published}, model ${next}`);
    check(total.delivered === delivered, `delivered ${total.delivered}, model ${delivered}`);
    check(total.failed === failures, `failed ${total.failed}, model ${failures}`);
    check(total.subscriptions === subs.filter((s) => !s.left).length, `subscriptions ${total.subscriptions}`);
  }
  bus.close();
}

test('direct path: random steps and re-entrant handlers against the model', () => {
  fc.assert(fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), runOne),
    { seed: SEED, numRuns: RUNS, includeErrorInReport: true });
});
