// A page with `connect(url, { persist: 'indexeddb', persistName })`, driven by
// tests/edge/outbox-browser.test.mjs: it publishes while the deployment is down, is reloaded, and
// the reloaded page sends what the earlier one left. IndexedDB is read directly to see what the
// outbox holds.
import { init, connect } from '/pkg/index.web.mjs';
import { GatedWebSocket, networkDown, networkUp } from './gated-socket.mjs';

await init();

const until = async (cond) => { while (!(await cond())) await new Promise((r) => setTimeout(r, 20)); };
const errors = [];
let bus;

/** The entries in the outbox database of `name`, oldest first (read as any page could). */
function stored(name) {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(`edgebus-outbox ${name}`);
    req.onsuccess = () => {
      const db = req.result;
      if (!db.objectStoreNames.contains('entries')) {
        db.close();
        resolve([]);
        return;
      }
      const all = db.transaction('entries').objectStore('entries').getAll();
      all.onsuccess = () => { db.close(); resolve(all.result); };
      all.onerror = () => { db.close(); reject(all.error); };
    };
    req.onerror = () => reject(req.error);
  });
}

window.outbox = {
  errors,
  networkDown,
  networkUp,
  connect(url, token, name, { offline = false } = {}) {
    if (offline) networkDown();
    bus = connect(url, {
      token, persist: 'indexeddb', persistName: name, WebSocket: GatedWebSocket,
      reconnect: { initialMs: 50, maxMs: 400 }, onError: (e) => errors.push(`${e.code}: ${e.message}`),
    });
  },
  ready() { return bus.ready; },
  publish(ids) { return ids.map((id) => bus.publish('pg.jobs', { id }, { id })); },
  flush() { return bus.flush(); },
  stats() { const s = bus.stats(); return { restored: s.restored, persistFailed: s.persistFailed, buffered: s.buffered, acknowledged: s.acknowledged, duplicates: s.duplicates }; },
  waitOffline() { return until(() => !bus.connected); },
  /** Resolves with the stored ids once there are `n` of them. */
  async waitStored(name, n) {
    await until(async () => (await stored(name)).length === n);
    return (await stored(name)).map((e) => e.id);
  },
  async storedIds(name) { return (await stored(name)).map((e) => e.id); },
  /** Deletes the outbox database of `name`: 'deleted', or 'blocked' when a connection held it open. */
  deletable(name) {
    return new Promise((resolve, reject) => {
      let blocked = false;
      const req = indexedDB.deleteDatabase(`edgebus-outbox ${name}`);
      req.onblocked = () => { blocked = true; };
      req.onsuccess = () => resolve(blocked ? 'blocked' : 'deleted');
      req.onerror = () => reject(req.error);
    });
  },
  async close() {
    const r = await bus.close();
    return r.remaining.map((p) => p.id);
  },
  /** Another app on this origin, with its own name (called online): what it restored. */
  async other(url, token) {
    const o = connect(url, { token, persist: 'indexeddb', persistName: 'another-app', WebSocket: GatedWebSocket });
    await o.flush(); // after its load: what it restored is counted
    const restored = o.stats().restored;
    await o.close({ timeoutMs: 0 });
    return restored;
  },
};
window.pageReady = true;
