// Worker sharding, live: a ShardedBus runs a CPU-bound handler in N module Web Workers. Each key's
// messages go to one worker and run in publish order. The worker bars come from bus.stats()
// (perShard: done, in flight, queued); the per-key rows from what the handlers recorded in shared
// memory as they ran (sequence numbers in the order they ran, and which worker ran them).
import { ShardedBus } from 'edgebus';
import { errorText, h } from '../dom.js';

// The workers run sharding-shard.js, which Vite bundles with the handlers (the `worker` option).
const startWorker = () => new Worker(new URL('./sharding-shard.js', import.meta.url), { type: 'module' });
const MAX_KEYS = 32;
const MAX_PER_KEY = 500;
const SHOWN_SEQS = 12;
const cores = globalThis.navigator?.hardwareConcurrency || 2;
const DEFAULT_WORKERS = Math.max(2, Math.min(cores, 8));

/** Whether `seqs` is exactly 0, 1, 2, … (in order, none missing, none twice). */
const inOrder = (seqs) => seqs.every((s, i) => s === i);

function mount(root) {
  let bus;
  let run; // { keys, perKey, workMs, shared views, started, finished }
  let timer;

  const input = (id, value, min, max, step = 1) => h('input', { type: 'number', id, name: id, value, min, max, step, required: true });
  const workersInput = input('shard-workers', DEFAULT_WORKERS, 1, 16);
  const keysInput = input('shard-keys', 8, 1, MAX_KEYS);
  const perKeyInput = input('shard-per-key', 40, 1, MAX_PER_KEY);
  const workInput = input('shard-work-ms', 5, 0, 50, 0.5);
  const startButton = h('button', { type: 'submit', id: 'shard-start' }, 'Start');
  const stopButton = h('button', { type: 'button', class: 'secondary', id: 'shard-stop', disabled: true, onclick: stop }, 'Stop');
  const status = h('p', { id: 'shard-status', role: 'status', class: 'muted' }, 'Choose the workers and the load, then press Start.');
  const error = h('p', { class: 'error', id: 'shard-error', role: 'alert', hidden: true });
  const shardList = h('div', { class: 'shard-list', id: 'shard-list', role: 'list', 'aria-label': 'Workers' },
    h('p', { class: 'muted' }, 'No bus running yet.'));
  const keyTable = h('tbody', { id: 'shard-keys-body' });
  const totals = h('p', { class: 'summary', id: 'shard-totals' });

  if (!globalThis.crossOriginIsolated) {
    root.append(h('p', { class: 'error', id: 'shard-unavailable' }, 'This demo records what the workers did in shared memory, ' +
      'which needs a cross-origin isolated page (served with Cross-Origin-Opener-Policy: same-origin and ' +
      'Cross-Origin-Embedder-Policy: require-corp, as `node pkg-scripts/web.mjs serve` does).'));
    return;
  }

  async function start(event) {
    event.preventDefault();
    error.hidden = true;
    await stopBus();
    const workers = Number(workersInput.value);
    const keys = Number(keysInput.value);
    const perKey = Number(perKeyInput.value);
    const workMs = Number(workInput.value);
    const data = {
      seen: new SharedArrayBuffer(4 * keys), order: new SharedArrayBuffer(4 * keys * perKey),
      owner: new SharedArrayBuffer(4 * keys), stride: perKey,
    };
    run = {
      keys, perKey, workMs, workers, started: 0, finished: undefined,
      seen: new Int32Array(data.seen), order: new Int32Array(data.order), owner: new Int32Array(data.owner),
    };
    startButton.disabled = true;
    stopButton.disabled = false;
    status.textContent = `Starting ${workers} worker${workers === 1 ? '' : 's'}…`;
    let current;
    try {
      current = bus = new ShardedBus({ workers, worker: startWorker, data, maxQueue: Infinity });
      await bus.ready;
    } catch (err) {
      fail(err);
      return;
    }
    if (current !== bus) return; // stopped while starting
    renderScaffold();
    run.started = performance.now();
    // Interleaved: sequence 0 of every key, then sequence 1 of every key, and so on.
    for (let seq = 0; seq < perKey; seq++) {
      for (let k = 0; k < keys; k++) {
        bus.publish('jobs.render', { keyIndex: k, seq, workMs }, { key: `user-${k}` });
      }
    }
    status.textContent = `Published ${keys * perKey} messages; the workers are handling them…`;
    timer = setInterval(update, 100);
    update();
    try {
      await bus.drain();
    } catch (err) {
      fail(err);
      return;
    }
    if (current !== bus) return;
    run.finished = performance.now();
    clearInterval(timer);
    update();
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  function fail(err) {
    clearInterval(timer);
    error.textContent = `The bus failed: ${errorText(err)}`;
    error.hidden = false;
    status.textContent = 'Stopped.';
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  async function stopBus() {
    clearInterval(timer);
    const old = bus;
    bus = undefined;
    if (old && !old.closed) return old.terminate();
    return 0;
  }

  async function stop() {
    const stats = bus?.stats();
    const abandoned = await stopBus();
    if (stats) update(stats);
    status.textContent = `Stopped: the workers were terminated with ${abandoned} message${abandoned === 1 ? '' : 's'} not handled.`;
    startButton.disabled = false;
    stopButton.disabled = true;
  }

  function renderScaffold() {
    shardList.replaceChildren(...Array.from({ length: run.workers }, (_, i) => h('div', { class: 'shard', role: 'listitem', 'data-shard': i },
      h('div', { class: 'shard-head' },
        h('strong', {}, `worker ${i}`),
        h('span', { class: 'shard-counts muted small', 'data-counts': '' })),
      h('div', {
        class: 'shard-bar', role: 'progressbar', 'aria-label': `worker ${i}: messages handled`,
        'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0,
      },
      h('div', { class: 'shard-done' }), h('div', { class: 'shard-flight' })))));
    keyTable.replaceChildren(...Array.from({ length: run.keys }, (_, k) => h('tr', { 'data-key': `user-${k}` },
      h('th', { scope: 'row' }, h('code', {}, `user-${k}`)),
      h('td', { 'data-col': 'worker' }, '—'),
      h('td', { class: 'num', 'data-col': 'seen' }, `0 / ${run.perKey}`),
      h('td', { 'data-col': 'seqs' }, h('code', { class: 'seqs' }, '')),
      h('td', { 'data-col': 'order' }, ''))));
  }

  /** Reads the bus's counters and the handlers' records, and shows them. */
  function update(stats = bus?.stats()) {
    if (!run || !stats) return;
    stats.perShard.forEach((s, i) => {
      const el = shardList.querySelector(`[data-shard="${i}"]`);
      if (!el) return;
      const total = s.done + s.failed + s.dropped + s.inFlight + s.queued;
      const share = (x) => (total === 0 ? 0 : (100 * x) / total);
      el.dataset.done = String(s.done);
      el.dataset.total = String(total);
      el.querySelector('.shard-done').style.width = `${share(s.done)}%`;
      el.querySelector('.shard-flight').style.width = `${share(s.inFlight)}%`;
      el.querySelector('.shard-bar').setAttribute('aria-valuenow', share(s.done).toFixed(0));
      el.querySelector('[data-counts]').textContent = `${s.done} of ${total} done · ${s.inFlight} in flight · ` +
        `${s.queued} queued${s.latency.count ? ` · p50 ${s.latency.p50Ms.toFixed(0)} ms` : ''}`;
    });
    for (let k = 0; k < run.keys; k++) {
      const row = keyTable.querySelector(`[data-key="user-${k}"]`);
      const n = Math.min(Atomics.load(run.seen, k), run.perKey);
      const seqs = Array.from(run.order.subarray(k * run.perKey, k * run.perKey + n));
      const owner = Atomics.load(run.owner, k);
      const ordered = inOrder(seqs);
      row.dataset.seen = String(n);
      row.dataset.seqs = seqs.join(' ');
      row.dataset.inOrder = String(ordered);
      row.dataset.worker = owner > 0 ? String(owner - 1) : owner < 0 ? 'several' : '';
      row.querySelector('[data-col="worker"]').textContent = owner > 0 ? `worker ${owner - 1}` : owner < 0 ? '✗ several workers' : '—';
      row.querySelector('[data-col="seen"]').textContent = `${n} / ${run.perKey}`;
      const tail = seqs.slice(-SHOWN_SEQS);
      row.querySelector('.seqs').textContent = (seqs.length > SHOWN_SEQS ? '… ' : '') + tail.join(' ');
      const cell = row.querySelector('[data-col="order"]');
      cell.className = ordered ? 'order ok' : 'order bad';
      cell.textContent = n === 0 ? '' : ordered ? (n === run.perKey ? '✓ all in order' : '✓ in order so far') : '✗ out of order';
    }
    totals.textContent = `${stats.done} of ${stats.published} messages handled by ${stats.workers} worker${stats.workers === 1 ? '' : 's'}` +
      (stats.failed ? `, ${stats.failed} failed` : '') + (stats.dropped ? `, ${stats.dropped} dropped` : '') +
      (stats.restarts ? `, ${stats.restarts} worker restarts` : '') + '.';
    if (run.finished !== undefined) {
      const seconds = (run.finished - run.started) / 1000;
      const cpu = (stats.done * run.workMs) / 1000;
      status.textContent = `Done: ${stats.done} messages in ${seconds.toFixed(2)} s of wall time for about ` +
        `${cpu.toFixed(2)} s of handler work, on ${stats.workers} worker${stats.workers === 1 ? '' : 's'}.`;
      shardList.dataset.state = 'done';
    } else {
      shardList.dataset.state = 'running';
    }
  }

  root.append(
    h('div', { class: 'grid two' },
      h('div', { class: 'panel' },
        h('h3', {}, 'Run a load'),
        h('p', { class: 'muted small' }, 'Each message is ', h('code', {}, "publish('jobs.render', { seq }, { key })"),
          '; its handler, in a Web Worker, burns the CPU for the chosen time. Messages of one key go to one worker ',
          'and run in publish order; different keys run in parallel.'),
        h('form', { class: 'policy', id: 'shard-form', 'aria-label': 'Sharding load', onsubmit: start },
          h('label', { for: 'shard-workers' }, 'workers', workersInput),
          h('label', { for: 'shard-keys' }, 'keys', keysInput),
          h('label', { for: 'shard-per-key' }, 'messages per key', perKeyInput),
          h('label', { for: 'shard-work-ms' }, 'work per message (ms)', workInput),
          h('div', { class: 'buttons' }, startButton, stopButton)),
        h('p', { class: 'muted small' }, `This device reports ${cores} logical core${cores === 1 ? '' : 's'} `,
          '(', h('code', {}, 'navigator.hardwareConcurrency'), ').'),
        status, error),
      h('div', { class: 'panel' },
        h('h3', {}, 'Workers (from bus.stats().perShard)'),
        shardList,
        totals)),
    h('div', { class: 'panel' },
      h('h3', {}, 'Per key: sequence numbers in the order they ran'),
      h('div', { class: 'table-scroll' },
        h('table', { class: 'keys', id: 'shard-key-table' },
          h('caption', { class: 'muted small' }, 'Recorded by the handlers as they ran; ✓ when they ran as 0, 1, 2, … with none missing.'),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col' }, 'key'),
            h('th', { scope: 'col' }, 'ran in'),
            h('th', { scope: 'col', class: 'num' }, 'handled'),
            h('th', { scope: 'col' }, 'last sequence numbers'),
            h('th', { scope: 'col' }, 'order'))),
          keyTable))),
  );
}

export const sharding = {
  id: 'sharding',
  title: 'Worker sharding',
  summary: 'A ShardedBus runs a CPU-bound handler in Web Workers: per-worker progress from bus.stats(), and per key the order the messages ran in.',
  mount,
};
