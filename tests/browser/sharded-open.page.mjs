// ShardedBus in a page that is not cross-origin isolated: no SharedArrayBuffer, so the workers tell
// the main thread what they run in messages instead of shared memory. The runner
// (sharded-open.test.mjs in this folder) calls window.scenarios[name]() and checks it resolves.
import { init, ShardedBus, EdgebusError } from '/pkg/index.web.mjs';

const handlers = new URL('/tests/js/fixtures/order-handlers.mjs', location.href);

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

function equal(a, b, what) {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  if (x !== y) throw new Error(`${what}: expected ${y}, got ${x}`);
}

await init();

window.scenarios = {
  async environment() {
    check(crossOriginIsolated === false, 'the page is not cross-origin isolated');
    check(typeof SharedArrayBuffer === 'undefined', 'no SharedArrayBuffer');
  },

  // A handler stuck in a CPU loop, noticed without shared memory: replaced, reported, given up.
  async stuckHandler() {
    const seen = [];
    const bus = new ShardedBus({
      workers: 1, handlers, data: { counts: new ArrayBuffer(16) }, timeoutMs: 100, maxRedeliveries: 1,
      onError: (e, msg, info) => seen.push([e.code, msg.payload.n, info.shard, e.redelivered]),
    });
    bus.publish('jobs.stuck', { n: 0, loop: true }, { key: 'k' });
    bus.publish('jobs.after', { n: 1 }, { key: 'k' });
    bus.publish('never.settles', { n: 2 }); // a worker free to run its timers reports it itself
    await bus.drain();
    equal(seen.filter((x) => x[1] === 0), [['HANDLER_TIMEOUT', 0, 0, true], ['HANDLER_TIMEOUT', 0, 0, false]], 'the stuck one');
    // Those that had not started are sent again without using up their redeliveries.
    equal(seen.filter((x) => x[1] !== 0), [['HANDLER_TIMEOUT', 2, 0, undefined]], 'the one that never settles, reported by its worker');
    const st = bus.stats();
    equal([st.timedOut, st.failed, st.done, st.restarts, st.redelivered, st.inFlight], [2, 2, 2, 2, 5, 0],
      'timedOut, failed, done, restarts, redelivered, inFlight');
    await bus.close();
  },

  // The runner answers the worker script with a 404 for this one.
  async workerScriptFails() {
    const bus = new ShardedBus({ workers: 1, handlers });
    let error;
    try {
      await bus.ready;
    } catch (e) {
      error = e;
    }
    check(error instanceof EdgebusError && error.code === 'WORKER_FAILED', `WORKER_FAILED, got ${error && error.message}`);
    check(!/undefined/.test(error.message), `no "undefined" in: ${error.message}`);
    check(/worker script .* could not be loaded/.test(error.message), `says the script could not be loaded: ${error.message}`);
  },
};
window.scenariosReady = true;
