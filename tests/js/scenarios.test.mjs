// Runs the shared delivery scenarios (tests/data/scenarios.json) through the public JS API on a
// ManualClock. tests/scenarios.rs runs the same file against the Rust Bus, natively and as wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Bus, ManualClock, EdgebusError } from 'edgebus';
import { settle } from './support/helpers.mjs';

const doc = JSON.parse(readFileSync(new URL('../data/scenarios.json', import.meta.url), 'utf8'));

/** `actual` has every field of `expected` with equal values; arrays compare element by element. */
function assertSubset(actual, expected, path) {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array, got ${JSON.stringify(actual)}`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((e, i) => assertSubset(actual[i], e, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: expected an object, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) assertSubset(actual[k], v, `${path}.${k}`);
  } else {
    assert.deepEqual(actual, expected, path);
  }
}

async function run(scenario) {
  const clock = new ManualClock(doc.clockStartMs);
  const errors = [];
  const thrown = new Set();
  const bus = new Bus({
    ...scenario.bus,
    clock,
    onError: (error) => {
      if (thrown.has(error)) errors.push('HANDLER_FAILED');
      else {
        assert.ok(error instanceof EdgebusError, `onError got ${error}`);
        errors.push(error.code);
      }
    },
  });
  const subs = new Map();
  const requests = new Map(); // as → { replies, ended, error }
  const logs = new Map();
  const gaps = new Map(); // as → ['topic:from-to', …]
  const sequence = [];
  const running = []; // gated calls: { payload, resolve, reject }
  for (const [i, step] of scenario.steps.entries()) {
    const where = `${scenario.name} / step ${i} (${step.do})`;
    if (step.defect !== undefined && step.defect in doc.knownDefects) continue;
    switch (step.do) {
      case 'subscribe': {
        const log = [];
        logs.set(step.as, log);
        const failOn = new Set(step.failOn ?? []);
        const record = (payload, msg) => {
          const entry = step.record === 'topic' ? msg.topic : step.record === 'seq' ? `${payload}@${msg.seq}`
            : msg.attempt > 1 ? `${payload}#${msg.attempt}` : payload;
          log.push(entry);
          sequence.push(`${step.as}:${entry}`);
        };
        // A responder's reply is `<payload>:<as>`; the other handlers return nothing (they decline).
        const reply = step.handler === 'responder' || step.handler === 'gatedResponder';
        const handler = step.handler === 'gated' || step.handler === 'gatedResponder'
          ? (payload, msg) => {
            record(payload, msg);
            return new Promise((resolve, reject) => running.push({
              payload, resolve: () => resolve(reply ? `${payload}:${step.as}` : undefined), reject,
            }));
          }
          : (payload, msg) => {
            record(payload, msg);
            if (failOn.has(payload)) {
              const e = new Error(`handler refuses ${payload}`);
              thrown.add(e);
              throw e;
            }
            return reply ? `${payload}:${step.as}` : undefined;
          };
        const heard = [];
        gaps.set(step.as, heard);
        const options = step.options?.replay === undefined ? step.options
          : { ...step.options, onGap: (g) => heard.push(`${g.topic}:${g.fromSeq ?? ''}-${g.toSeq}`) };
        if (step.error !== undefined) {
          let error;
          try {
            bus.subscribe(step.pattern, handler, options);
          } catch (e) {
            error = e;
          }
          assert.ok(error instanceof EdgebusError, `${where}: expected ${step.error}, got ${error}`);
          assert.equal(error.code, step.error, where);
        } else subs.set(step.as, bus.subscribe(step.pattern, handler, options));
        break;
      }
      case 'publish':
      case 'publishAsync': {
        let result;
        let error;
        try {
          result = step.do === 'publish'
            ? bus.publish(step.topic, step.payload, step.options)
            : await bus.publishAsync(step.topic, step.payload, step.options);
        } catch (e) {
          error = e;
        }
        if (step.error !== undefined) {
          assert.ok(error instanceof EdgebusError, `${where}: expected ${step.error}, got ${error ?? result}`);
          assert.equal(error.code, step.error, where);
        } else {
          assert.equal(error, undefined, `${where}: ${error}`);
          if (step.returns !== undefined) assert.equal(result, step.returns, where);
        }
        break;
      }
      case 'clearRetained':
        assert.equal(bus.clearRetained(step.topic), step.returns, where);
        break;
      case 'expectRetained':
        assert.deepEqual(bus.retained(step.pattern).map((m) => `${m.payload}@${m.seq}`), step.retained, where);
        break;
      case 'expectGaps':
        for (const [as, want] of Object.entries(step.gaps)) assert.deepEqual(gaps.get(as), want, `${where}: ${as}`);
        break;
      case 'publishBatch': {
        let result;
        let error;
        try {
          result = bus.publishBatch(step.topic, step.payloads, step.options);
        } catch (e) {
          error = e;
        }
        if (step.error !== undefined) {
          assert.ok(error instanceof EdgebusError, `${where}: expected ${step.error}, got ${error ?? result}`);
          assert.equal(error.code, step.error, where);
        } else {
          assert.equal(error, undefined, `${where}: ${error}`);
          if (step.returns !== undefined) assert.equal(result, step.returns, where);
        }
        break;
      }
      case 'request': {
        const r = { replies: [], ended: false, error: undefined };
        requests.set(step.as, r);
        const end = (e) => { r.ended = true; r.error = e?.code; };
        if (step.many) {
          (async () => {
            for await (const v of bus.requestMany(step.topic, step.payload, step.options)) r.replies.push(v);
          })().then(() => end(), end);
        } else {
          bus.request(step.topic, step.payload, step.options).then((v) => { r.replies.push(v); end(); }, end);
        }
        await settle();
        // A request refused at the call rejects (or its loop throws) before anything else runs.
        if (step.error !== undefined) assert.equal(r.error, step.error, where);
        break;
      }
      case 'expectRequest': {
        const r = requests.get(step.as);
        assert.equal(r.ended ? 'ended' : 'pending', step.state, `${where}: state`);
        assert.deepEqual(r.replies, step.replies, `${where}: replies`);
        assert.equal(r.error, step.error, `${where}: error`);
        break;
      }
      case 'complete':
      case 'fail': {
        const at = running.findIndex((r) => r.payload === step.payload);
        assert.ok(at >= 0, `${where}: no handler call running with ${step.payload}`);
        const [r] = running.splice(at, 1);
        if (step.do === 'complete') r.resolve();
        else {
          const e = new Error(`failed ${step.payload}`);
          thrown.add(e);
          r.reject(e);
        }
        break;
      }
      case 'unsubscribe':
        assert.equal(subs.get(step.as).unsubscribe(), true, where);
        break;
      case 'advance':
        clock.advance(step.ms);
        break;
      case 'expectDeliveries':
        for (const [as, want] of Object.entries(step.deliveries)) assert.deepEqual(logs.get(as), want, `${where}: ${as}`);
        if (step.sequence !== undefined) assert.deepEqual(sequence, step.sequence, `${where}: sequence`);
        break;
      case 'expectErrors':
        assert.deepEqual(errors, step.errors, where);
        break;
      case 'expectStats':
        if (step.stats !== undefined) assertSubset(bus.stats(), step.stats, `${where}: stats()`);
        for (const [as, want] of Object.entries(step.subscriptions ?? {})) {
          assertSubset(subs.get(as).stats(), want, `${where}: ${as}.stats()`);
        }
        break;
      case 'expectStatus':
        if (step.status === null) assert.equal(bus.status(step.id), undefined, where);
        else assertSubset(bus.status(step.id), step.status, `${where}: status(${step.id})`);
        break;
      default:
        assert.fail(`${where}: unknown step`);
    }
    // Let settled handler promises and the bus's follow-up work run before the next step.
    await settle();
  }
  // Nothing is left hanging: settle whatever still runs, then the bus drains.
  for (const r of running.splice(0)) r.resolve();
  await settle();
  await bus.close();
}

for (const scenario of doc.scenarios) {
  test(`scenario: ${scenario.name}`, () => run(scenario));
}

test('every scenario step uses the documented language', () => {
  const known = new Set(['subscribe', 'publish', 'publishAsync', 'publishBatch', 'complete', 'fail', 'unsubscribe', 'advance',
    'request', 'expectDeliveries', 'expectErrors', 'expectStats', 'expectStatus', 'expectRequest', 'clearRetained',
    'expectRetained', 'expectGaps']);
  for (const s of doc.scenarios) for (const step of s.steps) assert.ok(known.has(step.do), `${s.name}: ${step.do}`);
  for (const name of Object.keys(doc.knownDefects)) {
    assert.ok(doc.scenarios.some((s) => s.steps.some((st) => st.defect === name)), `known defect ${name} is used`);
  }
});
