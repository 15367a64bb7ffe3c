// The package's web entry in a real browser, driven by tests/edge/browser.test.mjs: `init()`, then
// `connect()` to the local edge server (wrangler dev), subscribe, publish, receive.
import { init, connect } from '/pkg/index.web.mjs';
import { GatedWebSocket, networkDown, networkUp } from './gated-socket.mjs';

await init();

const until = async (cond) => { while (!cond()) await new Promise((r) => setTimeout(r, 20)); };
const state = { errors: [], heard: [], jobs: [] };
let a;
let b;

window.edge = {
  state,
  networkDown,
  networkUp,

  /** Two clients: `a` publishes, `b` subscribes (plain wildcard and a work queue). */
  async start(url, token) {
    const options = { token, WebSocket: GatedWebSocket, reconnect: { initialMs: 50, maxMs: 400 }, onError: (e) => state.errors.push(`${e.code}: ${e.message}`) };
    a = connect(url, options);
    b = connect(url, options);
    const plain = b.subscribe('page.*.said', (payload, msg) => { state.heard.push([msg.topic, payload]); });
    const work = b.subscribe('page.jobs', (payload, msg) => { state.jobs.push(msg.id); }, { group: 'page-workers' });
    await Promise.all([plain.ready, work.ready, a.ready, b.ready]);
  },

  async roundTrip() {
    const first = await a.publishAsync('page.1.said', 'hello from the page', { id: 'p-1' });
    const dup = await a.publishAsync('page.1.said', 'hello from the page', { id: 'p-1' });
    await until(() => state.heard.length >= 1);
    return { first, dup, heard: state.heard.slice() };
  },

  async waitHeard(n) {
    await until(() => state.heard.length >= n);
    return state.heard.slice();
  },

  async waitOffline() {
    await until(() => !a.connected && !b.connected);
  },

  /** Publishes made while offline: work for the queue (from `a`), and plain ones from `b` to itself. */
  publishOffline() {
    const accepted = [];
    for (let i = 0; i < 10; i++) accepted.push(a.publish('page.jobs', { i }, { id: `job-${i}` }));
    for (let i = 0; i < 3; i++) accepted.push(b.publish('page.9.said', `offline-${i}`, { id: `self-${i}` }));
    return { accepted, buffered: [a.stats().buffered, b.stats().buffered] };
  },

  async waitJobs(n) {
    await until(() => state.jobs.length >= n);
    await Promise.all([a.flush(), b.flush()]);
    return { jobs: state.jobs.slice(), heard: state.heard.slice(), reconnects: [a.stats().reconnects, b.stats().reconnects] };
  },

  async close() {
    return [await a.close(), await b.close()];
  },

  /** A third client whose plain subscription recovers what it missed while offline (replay). */
  async startRecovery(url, token) {
    state.recovered = {};
    state.gaps = [];
    r = connect(url, { token, WebSocket: GatedWebSocket, reconnect: { initialMs: 50, maxMs: 400 }, onError: (e) => state.errors.push(`${e.code}: ${e.message}`) });
    const sub = r.subscribe('pr.>', (payload, msg) => { state.recovered[msg.id] = (state.recovered[msg.id] ?? 0) + 1; }, { onGap: (g) => state.gaps.push(g) });
    await sub.ready;
  },

  async waitRecovered(ids) {
    await until(() => ids.every((id) => state.recovered[id] !== undefined));
    return { recovered: { ...state.recovered }, gaps: state.gaps.slice(), stats: r.stats() };
  },

  async waitOfflineRecovery() {
    await until(() => !r.connected);
  },

  closeRecovery() { return r.close(); },
};
let r;
window.pageReady = true;
