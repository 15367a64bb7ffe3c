// Topic explorer: subscriptions on a real Bus; publish a topic and see which subscriptions the bus
// delivered it to, with a token-by-token explanation of each verdict.
import { Bus } from 'edgebus';
import { explain } from '../explain.js';
import { errorText, h } from '../dom.js';

const PRESETS = ['orders.eu.created', 'orders.*.created', 'orders.>', '*.eu.>', '>', '*.*', '$errors'];
const EXAMPLES = ['orders.eu.created', 'orders.us.west.created', 'billing.eu', '$errors', '$dead.jobs', 'orders..created'];

function mount(root) {
  const bus = new Bus();
  /** pattern → { sub } in subscription order */
  const subs = new Map();
  let received = new Set();

  const list = h('ul', { class: 'sub-list', 'aria-label': 'Subscriptions' });
  const patternInput = h('input', { type: 'text', id: 'pattern-input', name: 'pattern', placeholder: 'e.g. orders.*.shipped', autocomplete: 'off', spellcheck: 'false' });
  const patternError = h('p', { class: 'error', id: 'pattern-error', role: 'alert', hidden: true });
  const topicInput = h('input', { type: 'text', id: 'topic-input', name: 'topic', value: 'orders.eu.created', autocomplete: 'off', spellcheck: 'false' });
  const topicError = h('p', { class: 'error', id: 'topic-error', role: 'alert', hidden: true });
  const results = h('div', { class: 'match-results', id: 'match-results', 'aria-live': 'polite' },
    h('p', { class: 'muted' }, 'Publish a topic to see which subscriptions receive it.'));

  function addPattern(pattern) {
    if (subs.has(pattern)) return;
    const sub = bus.subscribe(pattern, () => { received.add(pattern); });
    subs.set(pattern, sub);
    renderList();
  }

  function renderList() {
    list.replaceChildren(...[...subs.keys()].map((pattern) => h('li', { 'data-pattern': pattern },
      h('code', {}, pattern),
      h('button', {
        type: 'button', class: 'icon', 'aria-label': `Unsubscribe ${pattern}`, title: 'Unsubscribe',
        onclick: () => { subs.get(pattern).unsubscribe(); subs.delete(pattern); renderList(); },
      }, '×'))));
  }

  function publish(topic) {
    topicError.hidden = true;
    received = new Set();
    try {
      bus.publish(topic, { at: Date.now() });
    } catch (err) {
      topicError.textContent = errorText(err);
      topicError.hidden = false;
      results.replaceChildren(h('p', { class: 'muted' }, `Nothing was published: the bus rejected “${topic}”.`));
      return;
    }
    renderResults(topic);
  }

  function renderResults(topic) {
    const rows = [...subs.keys()].map((pattern) => {
      const got = received.has(pattern);
      const why = explain(pattern, topic);
      const agrees = why.match === got;
      if (!agrees) console.warn(`explorer: the explanation of ${pattern} for ${topic} disagrees with the bus`);
      return h('li', { class: `match ${got ? 'yes' : 'no'}`, 'data-pattern': pattern, 'data-received': String(got) },
        h('div', { class: 'match-head' },
          h('span', { class: 'verdict' }, got ? '✓ received' : '✗ not received'),
          h('code', { class: 'match-pattern' }, pattern)),
        h('ol', { class: 'steps', 'aria-label': `Tokens of ${pattern} against ${topic}` },
          why.steps.map((s) => h('li', { class: s.ok ? 'ok' : 'bad' },
            h('code', { class: 'p' }, s.pattern || '·'),
            h('span', { class: 'arrow', 'aria-hidden': 'true' }, '→'),
            h('code', { class: 't' }, s.topic || '·'),
            h('span', { class: 'step-text' }, s.text)))),
        h('p', { class: 'reason' }, why.reason),
        agrees ? null : h('p', { class: 'error' }, 'This explanation disagrees with what the bus delivered.'));
    });
    const count = received.size;
    results.replaceChildren(
      h('p', { class: 'summary', id: 'match-summary' },
        h('code', {}, topic), ` reached ${count} of ${subs.size} subscription${subs.size === 1 ? '' : 's'}.`),
      h('ul', { class: 'matches' }, rows));
  }

  PRESETS.forEach(addPattern);

  root.append(
    h('div', { class: 'grid two' },
      h('div', { class: 'panel' },
        h('h3', {}, 'Subscriptions'),
        h('p', { class: 'muted small' }, h('code', {}, '*'), ' is exactly one token, ', h('code', {}, '>'),
          ' one or more at the end. Topics starting with ', h('code', {}, '$'), ' belong to the system.'),
        list,
        h('form', {
          class: 'inline-form', 'aria-label': 'Add a subscription',
          onsubmit: (e) => {
            e.preventDefault();
            patternError.hidden = true;
            const pattern = patternInput.value.trim();
            try {
              if (subs.has(pattern)) throw new Error(`already subscribed to “${pattern}”`);
              const sub = bus.subscribe(pattern, () => { received.add(pattern); });
              subs.set(pattern, sub);
              renderList();
              patternInput.value = '';
            } catch (err) {
              patternError.textContent = errorText(err);
              patternError.hidden = false;
            }
          },
        },
        h('label', { for: 'pattern-input' }, 'Pattern'),
        h('div', { class: 'row' }, patternInput, h('button', { type: 'submit', id: 'subscribe' }, 'Subscribe'))),
        patternError),
      h('div', { class: 'panel' },
        h('h3', {}, 'Publish'),
        h('form', {
          class: 'inline-form', 'aria-label': 'Publish a topic',
          onsubmit: (e) => { e.preventDefault(); publish(topicInput.value.trim()); },
        },
        h('label', { for: 'topic-input' }, 'Topic'),
        h('div', { class: 'row' }, topicInput, h('button', { type: 'submit', id: 'publish' }, 'Publish'))),
        h('p', { class: 'muted small' }, 'Try: ', EXAMPLES.map((t) => h('button', {
          type: 'button', class: 'chip', onclick: () => { topicInput.value = t; publish(t); },
        }, t))),
        topicError,
        results)),
  );
}

export const explorer = {
  id: 'explorer',
  title: 'Topic explorer',
  summary: 'Subscribe with wildcards, publish a topic, and see which subscriptions receive it, and why.',
  mount,
};
