// Dedupe and batching, live: messages go through a Bus with an idempotence window into a batch
// subscription. Counters come from bus.stats(); each flushed batch is drawn with its size and why
// it was flushed (it filled up to maxSize, or its oldest message waited maxWaitMs, or "Flush now").
import { Bus } from 'edgebus';
import { h } from '../dom.js';

const WINDOW = 1_000;
const BURST = 25;
const SHOWN_BATCHES = 40;

function mount(root) {
  let bus;
  let policy = { maxSize: 10, maxWaitMs: 500 };
  let attempts = 0;
  let nextId = 0;
  let lastBurst = [];
  let batches = [];
  let flushPending = false;
  let stream;

  const sizeInput = h('input', { type: 'number', id: 'batch-max-size', min: 1, max: 100, value: policy.maxSize });
  const waitInput = h('input', { type: 'number', id: 'batch-max-wait', min: 10, max: 10_000, step: 10, value: policy.maxWaitMs });
  const counters = {};
  const counter = (key, label, cls = '') => {
    counters[key] = h('output', { id: `count-${key}`, 'data-count': key, 'aria-label': label }, '0');
    return h('div', { class: `stat ${cls}` }, counters[key], h('span', { 'aria-hidden': 'true' }, label));
  };
  const timeline = h('div', { class: 'timeline', id: 'batch-timeline', role: 'list', 'aria-label': 'Flushed batches, newest last' });
  const streamButton = h('button', { type: 'button', class: 'secondary', id: 'stream', 'aria-pressed': 'false', onclick: toggleStream }, 'Start stream');

  function reset() {
    stopStream();
    bus?.close();
    bus = new Bus({ dedupe: { maxIds: WINDOW } });
    attempts = 0;
    lastBurst = [];
    batches = [];
    bus.subscribe('readings.>', (messages) => {
      let reason = 'time';
      if (messages.length >= policy.maxSize) reason = 'size';
      else if (flushPending) reason = 'flush';
      flushPending = false;
      batches.push({ size: messages.length, reason });
      if (batches.length > SHOWN_BATCHES) batches.shift();
      renderTimeline();
    }, { batch: { maxSize: policy.maxSize, maxWaitMs: policy.maxWaitMs } });
    update();
    renderTimeline();
  }

  function send(ids) {
    for (const id of ids) {
      attempts++;
      bus.publish(`readings.sensor${id % 8}`, { value: Math.round(Math.random() * 100) }, { id: `m-${id}` });
    }
    update();
  }

  function sendNew(n) {
    lastBurst = Array.from({ length: n }, () => nextId++);
    send(lastBurst);
  }

  function toggleStream() {
    if (stream) return stopStream();
    streamButton.textContent = 'Stop stream';
    streamButton.setAttribute('aria-pressed', 'true');
    // Five messages every 100 ms; about a third of them repeat an id sent in the last second.
    stream = setInterval(() => {
      const ids = Array.from({ length: 5 }, () => (Math.random() < 0.33 && nextId > 0
        ? nextId - 1 - Math.floor(Math.random() * Math.min(nextId, 50))
        : nextId++));
      send(ids);
    }, 100);
  }

  function stopStream() {
    if (!stream) return;
    clearInterval(stream);
    stream = undefined;
    streamButton.textContent = 'Start stream';
    streamButton.setAttribute('aria-pressed', 'false');
  }

  function update() {
    const st = bus.stats();
    const bySize = batches.filter((b) => b.reason === 'size').length;
    const byTime = batches.filter((b) => b.reason === 'time').length;
    const byFlush = batches.filter((b) => b.reason === 'flush').length;
    const values = {
      in: attempts, duplicates: st.duplicates, accepted: st.published, delivered: st.delivered,
      waiting: st.queued, batches: batches.length, size: bySize, time: byTime, flush: byFlush,
    };
    for (const [k, v] of Object.entries(values)) counters[k].textContent = String(v);
  }

  function renderTimeline() {
    timeline.replaceChildren(...(batches.length ? batches.map((b, i) => h('div', {
      class: `batch ${b.reason}`, role: 'listitem', 'data-size': b.size, 'data-reason': b.reason,
      style: `--fill: ${Math.min(1, b.size / Math.max(policy.maxSize, 1))}`,
      title: `batch ${i + 1}: ${b.size} message${b.size === 1 ? '' : 's'}, flushed by ${b.reason}`,
    }, h('span', { class: 'batch-size' }, String(b.size)))) : [h('p', { class: 'muted' }, 'No batch flushed yet.')]));
    update();
  }

  // Time-based flushes happen on their own; keep the counters current while the page is open.
  setInterval(() => update(), 250);

  root.append(
    h('div', { class: 'grid two' },
      h('div', { class: 'panel' },
        h('h3', {}, 'Send messages'),
        h('p', { class: 'muted small' }, `Every message has an id; the bus drops an id it saw among the last ${WINDOW.toLocaleString('en')} (`,
          h('code', {}, 'new Bus({ dedupe: { maxIds } })'), '). What passes goes to ', h('code', {}, 'readings.>'),
          ', a batch subscription flushed at maxSize messages or after maxWaitMs, whichever comes first.'),
        h('div', { class: 'buttons' },
          h('button', { type: 'button', id: 'send-new', onclick: () => sendNew(BURST) }, `Send ${BURST} new`),
          h('button', { type: 'button', class: 'secondary', id: 'send-again', onclick: () => send(lastBurst) }, `Resend the last ${BURST}`),
          h('button', { type: 'button', class: 'secondary', id: 'send-one', onclick: () => sendNew(1) }, 'Send 1 new'),
          streamButton,
          h('button', { type: 'button', class: 'secondary', id: 'flush', onclick: () => { flushPending = bus.stats().queued > 0; bus.flush(); update(); } }, 'Flush now')),
        h('form', {
          class: 'policy', 'aria-label': 'Batch policy',
          onsubmit: (e) => {
            e.preventDefault();
            policy = { maxSize: Number(sizeInput.value), maxWaitMs: Number(waitInput.value) };
            reset();
          },
        },
        h('label', { for: 'batch-max-size' }, 'maxSize', sizeInput),
        h('label', { for: 'batch-max-wait' }, 'maxWaitMs', waitInput),
        h('button', { type: 'submit', class: 'secondary', id: 'apply-policy' }, 'Apply and reset'))),
      h('div', { class: 'panel' },
        h('h3', {}, 'What the bus counted'),
        h('div', { class: 'stats' },
          counter('in', 'messages in'),
          counter('duplicates', 'duplicates dropped'),
          counter('accepted', 'accepted'),
          counter('waiting', 'waiting in a batch'),
          counter('delivered', 'delivered in batches'),
          counter('batches', 'batches flushed')),
        h('div', { class: 'stats small-stats' },
          counter('size', 'flushed by size', 'keyed size'),
          counter('time', 'flushed by time', 'keyed time'),
          counter('flush', 'by “Flush now”', 'keyed flush')),
        timeline)),
  );
  reset();
}

export const dedupeBatching = {
  id: 'dedupe-batching',
  title: 'Dedupe and batching',
  summary: 'Messages in, duplicates dropped by id, batches flushed by size or by time, counted by bus.stats().',
  mount,
};
