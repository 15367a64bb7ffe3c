// edgebus remote client: `connect(url, { token })` returns a bus whose subscribe / publish /
// publishAsync / close reach an edgebus edge deployment (Cloudflare Workers) over one WebSocket.
//
// It reconnects with exponential backoff and jitter and subscribes again; every publish carries
// an id (generated when not given) and is kept until the hub acknowledges it, so publishes made
// while offline, or in flight when the connection dropped, are sent again and deduplicated by the
// hub. Publishes are paced at the hub's announced `maxMessagesPerSecond` (from `hello`), and one
// refused RATE_LIMITED or UNAVAILABLE is sent again after a backoff, not lost. A permanent refusal
// of the connection (4400-4499 close codes other than an expired token) reaches `onError` and
// stops the retries; transient failures are retried with backoff and counted in stats().
// Messages redelivered to a subscription (work queues are at-least-once) are dropped by id;
// a redelivered work-queue message that was already handled is acknowledged again, not run twice.
// Recovery: a plain subscription remembers the last seq it received per topic (the most recent
// topics, bounded) and the hub time it was first taken; on a reconnect it subscribes again with
// `replay: { sinceSeq, sinceMs }`, so the hubs replay what it missed within their history window
// (a topic it never received a message of: what was published on it since the subscription
// began), or send a gap notice (`onGap`, `stats().gaps`) for what they no longer hold.

import { EdgebusError, errorText, fail } from '../shared/errors.js';
import { ready } from '../shared/core.js';
import {
  checkHandler, checkReplay, describe, functionOption, numberOption, overflowOption, parseOnceOptions, parseRequestOptions, signalOption,
  snapshot, stringOption,
  isAborted, abortReason, addAbortListener, removeAbortListener,
  headersOption,
} from '../shared/validate.js';
import { Bus } from '../bus/bus.js';
import { checkPattern, checkTopic } from '../shared/topics.js';
import { IdempotenceFilter } from '../bus/filter.js';
import { PendingRequest, failedReplies } from '../bus/requests.js';
import { printsAs } from '../shared/inspect.js';
import { Outbox, outboxOption } from './outbox.js';

const CONNECT_OPTIONS = ['token', 'hub', 'WebSocket', 'maxBuffer', 'overflow', 'reconnect', 'connectTimeoutMs', 'dedupe', 'recover', 'onError',
  'persist', 'persistName'];
const REMOTE_SUB_OPTIONS = ['group', 'maxAttempts', 'ackTimeoutMs'];
const SUBSCRIBE_OPTIONS = [...REMOTE_SUB_OPTIONS, 'replay', 'onGap', 'signal'];
const PUBLISH_OPTIONS = ['id', 'key', 'headers', 'retain'];
/** Topics whose last seq a subscription remembers for its recovery, unless the hub says otherwise (hello). */
const RECOVER_TOPICS = 1000;
const POSITIVE = { integer: true, min: 1, max: Number.MAX_SAFE_INTEGER };
// A work-queue subscription's options, as the hub takes them (edge/src/frames.js).
const MAX_ATTEMPTS = { integer: true, min: 1, max: 1000 };
const ACK_TIMEOUT_MS = { integer: true, min: 1, max: 3600000 };
// The longest delay a JavaScript host timer takes (longer ones fire at once).
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The text of `url` (a string or a URL), read once: INVALID_ARGUMENT when it cannot be read or is
 * no URL.
 */
function urlText(url) {
  let text;
  try {
    text = typeof url === 'string' ? url : String(url);
    new URL(text);
  } catch (e) {
    throw new EdgebusError('INVALID_ARGUMENT', `url must be the URL of an edgebus deployment, got ${describe(url)}: ${errorText(e)}`, { cause: e });
  }
  return text;
}

/**
 * `value` as the JSON text sent to the hub: INVALID_ARGUMENT (naming `what`) for a value JSON
 * cannot write (a BigInt, a cycle, a throwing toJSON or getter) or writes as nothing (a function,
 * a Symbol, undefined).
 */
function jsonText(value, what) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (e) {
    throw new EdgebusError('INVALID_ARGUMENT', `${what} must be a JSON value: ${errorText(e)}`, { cause: e });
  }
  if (text === undefined) fail('INVALID_ARGUMENT', `${what} must be a JSON value, got ${describe(value)}`);
  return text;
}

/** What a handler threw, as the hub is told it: its `message`, or the value; never throws. */
function failureText(e) {
  try {
    return String(e?.message ?? e);
  } catch {
    return errorText(e);
  }
}

/**
 * Calls a subscription's handler with `message`: its result and that result's `then` when it is a
 * thenable (read once, here: a `then` getter or a revoked Proxy that throws is the handler's
 * failure, as a throw of the handler is).
 */
function runHandler(handler, message) {
  const value = handler(message.payload, message);
  const then = value !== null && (typeof value === 'object' || typeof value === 'function') ? value.then : undefined;
  return { value, then: typeof then === 'function' ? then : undefined };
}

/** Settles a handler's outcome (from runHandler): `ok(value)` or `failed(error)`, a thenable's throw included. */
function settleHandler(out, ok, failed) {
  if (out.then === undefined) {
    ok(out.value);
    return;
  }
  try {
    out.then.call(out.value, ok, failed);
  } catch (e) {
    failed(e);
  }
}

/** The /connect URL of a deployment: http(s) becomes ws(s); a URL without a path gets /connect. */
function connectUrl(url, token, hub) {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') fail('INVALID_ARGUMENT', `url must be http(s) or ws(s), got ${u.protocol}`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/connect';
  if (token !== undefined) u.searchParams.set('token', token);
  if (hub !== undefined) u.searchParams.set('hub', hub);
  return u.href;
}

/**
 * Opens the WebSocket, the token in an `Authorization` header where the runtime allows it, so
 * that it stays out of URLs (and logs): Node's WebSocket (and the `ws` package, as option
 * `WebSocket`) takes `{ headers }`; a Worker upgrades through `fetch`. Browsers cannot set
 * headers on a WebSocket: there the token goes in the URL (`?token=`). Returns the socket, or in
 * a Worker a promise of it.
 */
function openSocket(WS, url, token, hub, timeoutMs) {
  if (globalThis.navigator?.userAgent === 'Cloudflare-Workers' && WS === globalThis.WebSocket) {
    return upgradeWithFetch(url, token, hub, timeoutMs);
  }
  if (typeof globalThis.process?.versions?.node === 'string') {
    return new WS(connectUrl(url, undefined, hub), { headers: { authorization: `Bearer ${token}` } });
  }
  return new WS(connectUrl(url, token, hub));
}

/** A Worker's WebSocket, upgraded by `fetch` with the header, shaped as the client uses one. */
async function upgradeWithFetch(url, token, hub, timeoutMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new EdgebusError('TIMEOUT', `no WebSocket upgrade within ${timeoutMs} ms`)), timeoutMs);
  });
  const http = connectUrl(url, undefined, hub).replace(/^ws/, 'http');
  const headers = { upgrade: 'websocket', authorization: `Bearer ${token}` };
  const res = await Promise.race([fetch(http, { headers }), timeout]).finally(() => clearTimeout(timer));
  if (res.webSocket == null) {
    const error = await res.json().then((b) => b?.error, () => undefined);
    fail(typeof error?.code === 'string' ? error.code : 'UNAVAILABLE', error?.message ?? `the hub answered HTTP ${res.status}, not a WebSocket upgrade`);
  }
  const ws = res.webSocket;
  const socket = { onmessage: null, onclose: null, onerror: null, send: (d) => ws.send(d), close: (c, r) => ws.close(c, r) };
  ws.addEventListener('message', (e) => socket.onmessage?.(e));
  ws.addEventListener('close', (e) => socket.onclose?.(e));
  ws.addEventListener('error', (e) => socket.onerror?.(e));
  ws.accept();
  return socket;
}

/**
 * What identifies a message for a subscription's duplicate check: its topic and id, as the hubs
 * dedupe publishes (the same id on another topic is another message). A topic has no space.
 */
function messageKey(message) {
  return `${message.topic} ${message.id}`;
}

class RemoteSubscription {
  constructor(bus, id, pattern, handler, options) {
    this._bus = bus;
    this.id = id;
    this.pattern = pattern;
    this.group = options.group;
    this.active = true;
    this._handler = handler;
    this._options = options;
    this._seen = undefined;        // the ids it had (made with its first message: RemoteBus._firstSeen)
    this._running = new Map(); // work-queue message (messageKey) → delivery tokens to acknowledge when done
    this._onGap = options.onGap;
    this._replay = options.replay; // asked for on its first subscription; recovery's on later ones
    this._lastSeq = new Map();     // topic → the last seq received (most recent topics last, bounded)
    this._sentAt = undefined;      // hub time (early by hello's latency) its first subscription was sent
    this._since = undefined;       // the same, once the hub took that subscription
    let resolve;
    let reject;
    this.ready = new Promise((res, rej) => { resolve = res; reject = rej; });
    this.ready.catch(() => {});
    this._ready = { resolve, reject };
  }
  /** Stops delivery. Returns false if already unsubscribed. */
  unsubscribe() { return this._bus._unsubscribe(this); }
  toJSON() {
    const o = { pattern: this.pattern, id: this.id, active: this.active };
    if (this.group !== undefined) o.group = this.group;
    return o;
  }
}

class RemoteBus {
  constructor(url, options) {
    printsAs(RemoteBus, 'RemoteBus');
    printsAs(RemoteSubscription, 'RemoteSubscription');
    ready();
    // Read once: nothing below (nor later) looks at the caller's objects again.
    const o = options === undefined ? {} : snapshot(options, CONNECT_OPTIONS, 'options');
    if (typeof o.token !== 'string' && typeof o.token !== 'function') {
      fail('INVALID_OPTION', 'option `token` must be a string or a function returning one (or a promise of one)');
    }
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') fail('INVALID_OPTION', 'no WebSocket implementation: pass option `WebSocket`');
    if (o.hub !== undefined) {
      try {
        checkTopic(o.hub);
      } catch (e) {
        fail('INVALID_OPTION', `option \`hub\` must be a topic prefix (like \`orders\`): ${e.message}`);
      }
    }
    url = urlText(url); // read once: each reconnect dials this text
    this._url = url;
    connectUrl(url, 'x', o.hub); // validates the URL now
    this._token = o.token;
    this._hub = o.hub;
    this._maxBuffer = numberOption(o, 'maxBuffer', 'options', POSITIVE) ?? 1000;
    this._overflow = overflowOption(o, 'options') ?? 'dropOldest';
    const rc = o.reconnect === undefined ? {} : snapshot(o.reconnect, ['initialMs', 'maxMs'], 'reconnect');
    this._backoff = {
      initialMs: numberOption(rc, 'initialMs', 'reconnect', POSITIVE) ?? 100,
      maxMs: numberOption(rc, 'maxMs', 'reconnect', POSITIVE) ?? 10000,
    };
    this._connectTimeoutMs = numberOption(o, 'connectTimeoutMs', 'options', POSITIVE) ?? 10000;
    const dedupe = o.dedupe === undefined ? {} : snapshot(o.dedupe, ['maxIds'], 'dedupe');
    this._dedupeIds = numberOption(dedupe, 'maxIds', 'dedupe', POSITIVE) ?? 10000;
    // How long the hubs remember a publish's id (hello's limits): a subscription remembers the ids
    // it had no longer, on the hubs' clock (a message's publishedAt, which is when its hub
    // recorded the id), so an id a hub took again as a new message is new here too.
    this._dedupeAgeMs = Infinity;
    this._hubNow = 0;
    this._hubClock = { now: () => this._hubNow };
    this._onError = functionOption(o, 'onError', 'options');
    if (o.recover !== undefined && typeof o.recover !== 'boolean') fail('INVALID_OPTION', `option \`recover\` must be a boolean, got ${typeof o.recover}`);
    this._recover = o.recover ?? true;
    this._recoverTopics = RECOVER_TOPICS;
    this._hubOffset = 0;       // hub clock − this clock, from the last hello (less its latency)
    this._clientId = Math.random().toString(36).slice(2, 10);
    this._seq = 0;
    this._subs = new Map();
    this._nextSub = 1;
    this._queue = [];          // publishes not sent on the current connection, in order
    this._sent = new Map();    // ref → publish sent, waiting for its acknowledgement
    this._waiters = [];        // publishAsync calls waiting for room (overflow 'wait')
    this._outgoing = [];       // operations to send at the end of this microtask
    this._sendQueued = false;
    this._ws = undefined;
    this._open = false;
    this._closing = false;
    this._shut = false;        // close() has closed the socket and settled what waited
    this._attempt = 0;
    this._timer = undefined;
    this._flushWaiters = [];
    this._rate = Infinity;     // publishes per second the hub allows (its hello), a token bucket here
    this._tokens = Infinity;
    this._refilled = 0;
    this._pumpTimer = undefined;
    this._pumpQueued = false;
    this._retryAt = 0;         // no publish before this time (after a RATE_LIMITED/UNAVAILABLE reply)
    this._refusals = 0;        // transient refusals in a row, for the backoff
    this._connectError = undefined; // an `err` frame before `hello`: why the hub refuses the connection
    this._stats = {
      published: 0, acknowledged: 0, duplicates: 0, delivered: 0, redelivered: 0, dropped: 0, reconnects: 0, errors: 0,
      retried: 0, connectFailures: 0, lastError: undefined, requests: 0, replies: 0, streamDropped: 0, gaps: 0,
    };
    this._failure = undefined;
    this._requests = new Map();  // request ref → its PendingRequest, until it ends
    this._reqSeq = 0;
    this._waits = new Set();     // once() calls: rejected with CLOSED by close()
    this._local = undefined;     // the in-page Bus holding streams' queues (stream())
    this._streams = 0;
    this.ready = new Promise((resolve, reject) => { this._onFirstOpen = resolve; this._onRefused = reject; });
    this.ready.catch(() => {});
    const store = outboxOption(o, connectUrl(url, undefined, o.hub));
    if (store !== undefined) {
      this._outbox = new Outbox(this, store);
      this._outbox.start();
    }
    this._dial();
  }

  /** Whether the WebSocket is open and greeted. */
  get connected() { return this._open; }
  get closed() { return this._closing; }

  /** Its public state: where it connects, whether it is connected or closed, its subscriptions. */
  toJSON() {
    // Without its query (where a token could be): what a log may show.
    const o = { url: String(this._url).replace(/[?#].*$/, ''), connected: this._open, closed: this._closing, subscriptions: this._subs.size };
    if (this._hub !== undefined) o.hub = this._hub;
    return o;
  }

  // ----- connection ---------------------------------------------------------------------------

  async _dial() {
    if (this._closing) return;
    let token;
    try {
      token = typeof this._token === 'function' ? await this._token() : this._token;
      if (typeof token !== 'string') fail('INVALID_OPTION', 'the token function must return a string');
    } catch (e) {
      this._report(e);
      this._retry();
      return;
    }
    if (this._closing) return;
    let ws;
    try {
      ws = openSocket(this._WebSocket, this._url, token, this._hub, this._connectTimeoutMs);
      if (typeof ws.then === 'function') {
        ws = await ws;
        if (this._closing) {
          try { ws.close(1000, 'closed by the client'); } catch { /* not open yet */ }
          return;
        }
      }
    } catch (e) {
      this._report(e);
      this._retry();
      return;
    }
    this._ws = ws;
    this._connectError = undefined;
    ws.onmessage = (e) => this._frame(ws, e.data);
    ws.onclose = (e) => this._lost(ws, e.code, e.reason);
    ws.onerror = () => {}; // followed by close
    // A handshake that neither completes nor fails (a half-started server) is abandoned.
    this._handshake = setTimeout(() => {
      if (ws !== this._ws || this._open) return;
      try { ws.close(); } catch { /* not open yet */ }
      this._lost(ws, 1006);
    }, this._connectTimeoutMs);
  }

  _retry() {
    if (this._closing || this._timer !== undefined) return;
    const { initialMs, maxMs } = this._backoff;
    const delay = Math.min(maxMs, initialMs * 2 ** Math.min(this._attempt, 30)) * (0.5 + Math.random() / 2);
    this._attempt++;
    this._timer = setTimeout(() => { this._timer = undefined; this._dial(); }, delay);
  }

  _lost(ws, code, reason) {
    if (ws !== this._ws) return;
    this._ws = undefined;
    const was = this._open;
    this._open = false;
    clearTimeout(this._pumpTimer);
    this._pumpTimer = undefined;
    // Unacknowledged publishes go back to the front of the queue, in their order.
    if (this._sent.size > 0) {
      this._queue.unshift(...this._sent.values());
      this._sent.clear();
    }
    for (const s of this._subs.values()) s._running.clear();
    // The hub forgets a connection's requests with it: those sent on it fail (those not sent yet
    // go out on the next connection).
    for (const req of [...this._requests.values()]) {
      if (req.sent) this._endRequest(req, new EdgebusError('UNAVAILABLE', 'the connection to the hub dropped while the request waited for its replies'));
    }
    if (this._closing) return;
    if (was) this._stats.reconnects++;
    const refusal = this._connectError;
    const permanent = code >= 4400 && code <= 4499 && code !== 4401 && code !== 4429;
    // The hub's typed refusal (an expired token, …) is reported; a permanent one once, below.
    if (refusal !== undefined && !permanent) this._report(refusal);
    if (code === 4401 && typeof this._token === 'string') {
      this._report(new EdgebusError('TOKEN_EXPIRED', 'the token was refused or expired and is a fixed string: not reconnecting (pass a function to refresh it)'));
      return;
    }
    if (permanent) {
      // Permanent: the same request would be refused again (a bad `hub`, a forbidden origin).
      this._failed(refusal ?? new EdgebusError('CONNECT_REFUSED', `the hub refused the connection (close code ${code}${reason ? `: ${reason}` : ''})`));
      return;
    }
    if (!was) {
      // Transient (no answer, a server error, a restart): retried with backoff, counted.
      this._stats.connectFailures++;
      this._stats.lastError = refusal ?? new EdgebusError('UNAVAILABLE', `could not connect (close code ${code})`);
    }
    this._retry();
  }

  /** A permanent refusal: reported once, no more retries; waiting publishes and subscriptions fail with it. */
  _failed(error) {
    this._stats.lastError = error;
    this._failure = error;
    this._report(error);
    this._onRefused(error);
    this._closing = true;
    clearTimeout(this._timer);
    this._timer = undefined;
    clearTimeout(this._handshake);
    for (const s of this._subs.values()) s._ready.reject(error);
    // Kept for close()'s `remaining`; their promises settle now.
    this._queue.push(...this._waiters.splice(0));
    for (const p of this._queue) p.reject(error);
    for (const w of this._flushWaiters.splice(0)) w.reject(error);
    for (const req of [...this._requests.values()]) this._endRequest(req, error);
  }

  _hello(ws, hello) {
    clearTimeout(this._handshake);
    this._open = true;
    this._attempt = 0;
    const rate = hello.limits?.maxMessagesPerSecond;
    this._rate = Number.isFinite(rate) && rate > 0 ? rate : Infinity;
    this._tokens = this._rate; // a new connection starts with a full bucket at the hub too
    this._refilled = Date.now();
    if (Number.isFinite(hello.now)) this._hubOffset = hello.now - this._refilled;
    const positions = hello.limits?.replayMaxPositions;
    if (Number.isSafeInteger(positions) && positions > 0) this._recoverTopics = Math.min(RECOVER_TOPICS, positions);
    const dedupeAge = hello.limits?.dedupeMaxAgeMs;
    if (Number.isSafeInteger(dedupeAge) && dedupeAge > 0) this._dedupeAgeMs = dedupeAge;
    const ops = [];
    for (const s of this._subs.values()) ops.push(JSON.stringify(this._subOp(s)));
    // Requests made while offline go out now, after the subscriptions.
    for (const req of this._requests.values()) {
      if (req.sent) continue;
      req.sent = true;
      ops.push(req.json);
    }
    for (let i = 0; i < ops.length; i += 1000) ws.send(`[${ops.slice(i, i + 1000).join(',')}]`);
    this._pump();
    this._onFirstOpen();
  }

  /**
   * Sends queued publishes, in order, as fast as the hub's rate allows (a token bucket of
   * `maxMessagesPerSecond` with a one-second burst, as the hub keeps); the rest wait for a timer.
   */
  _pump() {
    this._pumpQueued = false;
    if (!this._open || this._queue.length === 0 || this._pumpTimer !== undefined) return;
    const now = Date.now();
    if (now < this._retryAt) {
      this._pumpLater(this._retryAt - now);
      return;
    }
    if (this._rate !== Infinity) this._tokens = Math.min(this._rate, this._tokens + ((now - this._refilled) / 1000) * this._rate);
    else this._tokens = Infinity;
    this._refilled = now;
    // With a persistent outbox, a publish waits until it is stored.
    const free = this._outbox === undefined ? this._queue.length : this._outbox.sendable(this._queue, this._tokens);
    const n = Math.min(free, Math.floor(this._tokens));
    if (n > 0) {
      this._tokens -= n;
      const batch = this._queue.splice(0, n);
      for (const p of batch) this._sent.set(p.op.ref, p);
      // Each publish as written at its call (restored ones: now, from what the store gave).
      for (let i = 0; i < batch.length; i += 1000) this._ws.send(`[${batch.slice(i, i + 1000).map((p) => p.json ?? JSON.stringify(p.op)).join(',')}]`);
    }
    if (free > n) {
      // Wait for a useful share of the bucket (a tenth of a second's worth), not for every token.
      const want = Math.min(free - n, Math.max(1, Math.ceil(this._rate / 10)));
      this._pumpLater(Math.ceil(((want - this._tokens) / this._rate) * 1000));
    }
  }

  _pumpLater(ms) {
    this._pumpTimer = setTimeout(() => { this._pumpTimer = undefined; this._pump(); }, Math.max(1, ms));
  }

  _schedulePump() {
    if (this._pumpQueued || this._pumpTimer !== undefined) return;
    this._pumpQueued = true;
    queueMicrotask(() => this._pump());
  }

  /**
   * Sends `op` at the end of this microtask, with the others sent in it. Written as JSON now (`text`
   * when the caller has it): an op that cannot be written throws here, to its caller, and never
   * takes the others of the frame down with it.
   */
  _send(op, text = JSON.stringify(op)) {
    this._outgoing.push(text);
    if (this._sendQueued) return;
    this._sendQueued = true;
    queueMicrotask(() => {
      this._sendQueued = false;
      const texts = this._outgoing;
      this._outgoing = [];
      if (!this._open || texts.length === 0) return;
      for (let i = 0; i < texts.length; i += 1000) this._ws.send(`[${texts.slice(i, i + 1000).join(',')}]`);
    });
  }

  _report(error, context) {
    this._stats.errors++;
    if (this._onError !== undefined) {
      try {
        this._onError(error, context);
      } catch (e) {
        console.error('edgebus: onError threw', e);
      }
    } else {
      console.error('edgebus remote:', error);
    }
  }

  // ----- frames from the hub -------------------------------------------------------------------

  _frame(ws, data) {
    if (ws !== this._ws) return;
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this._report(new EdgebusError('BAD_JSON', 'the hub sent a frame that is not JSON'));
      return;
    }
    for (const x of Array.isArray(f) ? f : [f]) {
      // A part of the frame not shaped as the protocol says (a hub of another version, a proxy
      // in between) is reported, and the rest of the frame still read: never thrown out of the
      // socket's message event. (Handlers' own failures are caught where they are called.)
      try {
        this._item(ws, x);
      } catch (e) {
        this._report(new EdgebusError('BAD_JSON', `the hub sent a frame the client cannot read: ${errorText(e)}`, { cause: e }));
      }
    }
  }

  _item(ws, x) {
    switch (x.t) {
      case 'hello': this._hello(ws, x); break;
      case 'msg': this._messages(x); break;
      case 'ok': this._reply(x, undefined); break;
      case 'reply': this._requestReply(x); break;
      case 'end': this._requestEnd(x); break;
      case 'gap': this._gaps(x); break;
      case 'err':
        if (!this._open && x.op === undefined) this._connectError = new EdgebusError(x.code, x.message);
        else this._reply(x, new EdgebusError(x.code, x.message));
        break;
      default: break; // pong, and kinds a later hub may add
    }
  }

  _reply(x, error) {
    if (x.op === 'req') {
      const req = this._requests.get(x.ref);
      if (req !== undefined && error !== undefined) this._endRequest(req, error);
      return;
    }
    if (x.op === 'sub') {
      const s = this._subs.get(x.ref);
      if (s === undefined) return;
      if (error === undefined) {
        s._since ??= s._sentAt;
        s._ready.resolve();
      } else {
        s.active = false;
        this._subs.delete(s.id);
        s._ready.reject(error);
        this._report(error, { subscription: s });
      }
      return;
    }
    if (x.op === 'ack' || x.op === 'nack') {
      // A refused acknowledgement (FORBIDDEN: tokens the hub does not take from this subscription;
      // UNAVAILABLE: the owner hub did not answer) changes nothing at the hub: reported with its
      // subscription; the connection, the subscription and the other messages carry on. A message
      // whose acknowledgement did not count is delivered again after its ack deadline.
      if (error !== undefined) {
        const s = this._subs.get(x.sub);
        this._report(error, s === undefined ? { op: x.op } : { op: x.op, subscription: s });
      }
      return;
    }
    if (x.op !== 'pub') {
      if (error !== undefined) this._report(error);
      return;
    }
    const p = x.ref === undefined ? undefined : this._sent.get(x.ref);
    if (p === undefined) {
      if (error !== undefined && x.op !== 'unsub') this._report(error);
      return;
    }
    this._sent.delete(x.ref);
    if (error !== undefined && (error.code === 'RATE_LIMITED' || error.code === 'UNAVAILABLE')) {
      // Transient: sent again (same id, so the hub drops a copy it already has) after a backoff,
      // ahead of the publishes queued after it.
      this._stats.retried++;
      let at = 0;
      while (at < this._queue.length && this._queue[at].op.ref < p.op.ref) at++;
      this._queue.splice(at, 0, p);
      const delay = Math.min(this._backoff.maxMs, this._backoff.initialMs * 2 ** Math.min(this._refusals++, 30)) * (0.5 + Math.random() / 2);
      this._retryAt = Math.max(this._retryAt, Date.now() + delay);
      this._tokens = Math.min(this._tokens, 0);
      this._schedulePump();
      return;
    }
    this._refusals = 0;
    this._outbox?.settled(p);
    if (error !== undefined) {
      p.reject(error);
      if (!p.async) this._report(error, { topic: p.op.topic, id: p.op.id });
    } else {
      this._stats.acknowledged++;
      if (x.dup) this._stats.duplicates++;
      p.resolve(x.dup !== true);
    }
    this._room();
  }

  _messages(x) {
    if (x.dropped > 0) {
      this._stats.dropped += x.dropped;
      this._report(new EdgebusError('MESSAGES_DROPPED', `the hub dropped ${x.dropped} message(s) for this slow connection`));
    }
    for (const [subIds, msg, d, attempt] of x.m) {
      const message = { ...msg, attempt: attempt ?? 1 };
      for (const id of subIds) {
        const s = this._subs.get(id);
        if (s === undefined || !s.active) continue;
        if (d === undefined) this._plain(s, message);
        else this._work(s, message, d);
      }
    }
  }

  /**
   * Whether `message` is new to subscription `s` by its topic and id (recorded when `record`),
   * within the hubs' dedupe window, measured on their clock.
   */
  _firstSeen(s, message, record) {
    const at = message.publishedAt;
    if (typeof at === 'number' && Number.isFinite(at) && at >= 0) this._hubNow = at;
    s._seen ??= new IdempotenceFilter({ maxIds: this._dedupeIds, maxAgeMs: this._dedupeAgeMs, clock: this._hubClock });
    const key = messageKey(message);
    return record ? s._seen.check(key) : !s._seen.has(key);
  }

  _plain(s, message) {
    if (message.id !== undefined && !this._firstSeen(s, message, true)) {
      this._stats.duplicates++;
      return;
    }
    this._stats.delivered++;
    if (message.seq !== undefined && this._recover) {
      const seen = s._lastSeq;
      const before = seen.get(message.topic);
      if (before === undefined || message.seq > before) {
        seen.delete(message.topic);
        seen.set(message.topic, message.seq);
        // The oldest topic goes: a reconnect replays it from `sinceMs` (duplicates are dropped by id).
        if (seen.size > this._recoverTopics) seen.delete(seen.keys().next().value);
      }
    }
    if (message.rq !== undefined) {
      this._respond(s, message);
      return;
    }
    try {
      const r = s._handler(message.payload, message);
      if (r && typeof r.then === 'function') r.then(undefined, (e) => this._report(e, { subscription: s, message }));
    } catch (e) {
      this._report(e, { subscription: s, message });
    }
  }

  /**
   * A request delivered to subscription `s`: its handler's return value (or what its promise
   * resolves to, or what it passes to `message.reply`) is the answer; `undefined` declines; a
   * throw or rejection is its failure, reported here too.
   */
  _respond(s, delivered) {
    const to = delivered.rq;
    const message = { ...delivered };
    delete message.rq;
    let answered = false;
    const answer = (op) => {
      if (answered) return false;
      answered = true;
      if (!this._open) return true;
      const frame = { op: 'answer', to, sub: s.id, ...op };
      let text;
      try {
        // (A function or a Symbol, which JSON writes as nothing, is no reply either.)
        if (typeof op.v === 'function' || typeof op.v === 'symbol') jsonText(op.v, 'a reply');
        text = jsonText(frame, 'a reply');
      } catch (e) {
        // A reply JSON cannot carry: the request gets a failure instead, and it is reported.
        const error = String(e.message).slice(0, 1000);
        this._send({ op: 'answer', to, sub: s.id, error });
        this._report(e, { subscription: s, message });
        return true;
      }
      this._send(frame, text);
      return true;
    };
    message.reply = (value) => answer({ v: value === undefined ? null : value });
    const settle = (value) => answer(value === undefined ? { decline: true } : { v: value });
    const failed = (e) => {
      answer({ error: failureText(e).slice(0, 1000) });
      this._report(e, { subscription: s, message });
    };
    let out;
    try {
      out = runHandler(s._handler, message);
    } catch (e) {
      failed(e);
      return;
    }
    settleHandler(out, settle, failed);
  }

  /** The hub no longer holds messages a subscription's replay asked for: each gap to its `onGap`, or `onError`. */
  _gaps(x) {
    const s = this._subs.get(x.sub);
    if (s === undefined || !Array.isArray(x.gaps)) return;
    this._stats.gaps += x.gaps.length;
    for (const gap of x.gaps) {
      if (s._onGap === undefined) {
        const range = gap.fromSeq === undefined ? `up to seq ${gap.toSeq}` : `seq ${gap.fromSeq} to ${gap.toSeq}`;
        this._report(new EdgebusError('MESSAGES_MISSED', `messages on \`${gap.topic}\` (${range}) are no longer held by the hub: the subscription to \`${s.pattern}\` missed them`), { subscription: s, gap });
        continue;
      }
      try {
        s._onGap(gap);
      } catch (e) {
        this._report(e, { subscription: s, gap });
      }
    }
  }

  _requestReply(x) {
    const req = this._requests.get(x.ref);
    if (req === undefined) return;
    this._stats.replies++;
    req.reply(x.v, x.last === true);
    if (x.last === true) this._forgetRequest(req);
  }

  /** The hub ended a request: with `code` when it failed; `reached`, the subscriptions it reached. */
  _requestEnd(x) {
    const req = this._requests.get(x.ref);
    if (req === undefined) return;
    if (x.code === undefined) {
      this._endRequest(req, undefined);
      return;
    }
    // How the hub's core ended it, told to the request as the in-page Bus tells it: what that
    // means for a single request and for a gathering (requestMany) is the request's own rule.
    this._forgetRequest(req);
    if (x.code === 'TIMEOUT') req.ended(false, x.message);
    else if (x.code === 'HANDLER_FAILED') req.endedFailing(new EdgebusError('HANDLER_FAILED', x.message ?? x.code));
    else if (x.code === 'NO_RESPONDERS' && x.reached > 0) req.declined(false);
    else req._end(new EdgebusError(x.code, x.message ?? x.code));
  }

  _endRequest(req, error) {
    this._forgetRequest(req);
    req._end(error);
  }

  _forgetRequest(req) {
    this._requests.delete(req.id);
    if (req.timer !== undefined) clearTimeout(req.timer);
    req.timer = undefined;
  }

  /** Its requester gave `req` up (aborted it, or left its loop). */
  _giveUp(req, reason) {
    if (req.done) return;
    this._forgetRequest(req);
    if (req.sent && this._open) this._send({ op: 'cancel', ref: req.id });
    if (reason === undefined && req.replies !== undefined) req._end(undefined);
    else req.aborted(reason);
  }

  _openRequest(topic, payload, options, many) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    checkTopic(topic);
    if (payload === undefined) fail('INVALID_ARGUMENT', 'payload must be a JSON value, got undefined');
    const o = parseRequestOptions(options, many);
    if (o.timeoutMs !== Infinity && (!Number.isInteger(o.timeoutMs) || o.timeoutMs > 300000)) {
      fail('INVALID_OPTION', `option \`timeoutMs\` must be an integer of ms up to 300000 at the edge, got ${o.timeoutMs}`);
    }
    if (o.timeoutMs === Infinity) fail('INVALID_OPTION', 'option `timeoutMs` must be finite at the edge (at most 300000 ms)');
    if (o.signal !== undefined && isAborted(o.signal)) {
      throw new EdgebusError('ABORTED', 'the request was aborted before it was made', { cause: abortReason(o.signal) });
    }
    const ref = ++this._reqSeq;
    const req = new PendingRequest(this, ref, o, many);
    if (!many) {
      req.promise = new Promise((resolve, reject) => {
        req.resolve = resolve;
        req.reject = reject;
      });
    }
    req.op = { op: 'req', ref, topic, payload, timeoutMs: o.timeoutMs };
    if (many) req.op.max = o.max ?? 2 ** 30;
    if (o.key !== undefined) req.op.key = o.key;
    if (o.headers !== undefined) req.op.headers = o.headers;
    // Written now: a payload JSON cannot carry is refused at the call, not met when it is sent.
    if (typeof payload === 'function' || typeof payload === 'symbol') jsonText(payload, 'payload');
    req.json = jsonText(req.op, 'payload');
    req.sent = false;
    this._requests.set(ref, req);
    this._stats.requests++;
    // The hub keeps the deadline; this one (a little later) covers a hub that stopped answering.
    req.timer = setTimeout(() => {
      if (req.done) return;
      this._giveUp(req, undefined);
      if (!req.done) req.ended(false);
    }, o.timeoutMs + 2000);
    if (o.signal !== undefined) {
      req.onAbort = () => this._giveUp(req, abortReason(o.signal));
      addAbortListener(o.signal, req.onAbort);
    }
    if (this._open) {
      req.sent = true;
      this._send(req.op, req.json);
    }
    return req;
  }

  /**
   * A request through the hub: resolves with the first reply of the subscriptions it reaches
   * anywhere in the deployment (their handlers' return values), as `Bus.request` does: rejects
   * with NO_RESPONDERS, TIMEOUT, HANDLER_FAILED, ABORTED, FORBIDDEN (the token may not publish to
   * the topic), UNAVAILABLE (the connection dropped meanwhile), CLOSED.
   */
  request(topic, payload, options) {
    try {
      return this._openRequest(topic, payload, options, false).promise;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The replies of every subscription a request reaches, as `Bus.requestMany` yields them. */
  requestMany(topic, payload, options) {
    try {
      return this._openRequest(topic, payload, options, true).replies;
    } catch (e) {
      return failedReplies(e);
    }
  }

  _work(s, message, d) {
    const id = messageKey(message);
    if (!this._firstSeen(s, message, false)) {
      // Already handled: acknowledge again, do not run it twice.
      this._stats.duplicates++;
      this._send({ op: 'ack', sub: s.id, d: [d] });
      return;
    }
    const running = s._running.get(id);
    if (running !== undefined) {
      running.push(d);
      this._stats.redelivered++;
      return;
    }
    const tokens = [d];
    s._running.set(id, tokens);
    this._stats.delivered++;
    const done = (ok, error) => {
      if (ok) this._firstSeen(s, message, true);
      // The connection dropped meanwhile: the hub redelivers it, and (when handled) it is acknowledged then.
      if (s._running.get(id) !== tokens) return;
      s._running.delete(id);
      this._send(ok ? { op: 'ack', sub: s.id, d: tokens } : { op: 'nack', sub: s.id, d: tokens, error: failureText(error).slice(0, 500) });
      if (!ok) this._report(error, { subscription: s, message });
    };
    let out;
    try {
      out = runHandler(s._handler, message);
    } catch (e) {
      done(false, e);
      return;
    }
    settleHandler(out, () => done(true), (e) => done(false, e));
  }

  // ----- the bus API ---------------------------------------------------------------------------

  _subOp(s) {
    const op = { op: 'sub', id: s.id, pattern: s.pattern };
    for (const k of REMOTE_SUB_OPTIONS) if (s._options[k] !== undefined) op[k] = s._options[k];
    if (s.group !== undefined) return op;
    if (s._since !== undefined && this._recover) {
      // Subscribed before: the hubs replay what it missed since (work queues keep theirs anyway).
      // A topic without a position: whatever came since the subscription began was missed (had it
      // arrived, its topic would have one).
      op.replay = { sinceSeq: Object.fromEntries(s._lastSeq), sinceMs: Math.max(0, Math.floor(s._since)) };
    } else {
      // Its live delivery starts after this (the hub registers it on receiving the op).
      s._sentAt = Date.now() + this._hubOffset;
      if (s._replay !== undefined) op.replay = s._replay;
    }
    return op;
  }

  /** Subscribes on the deployment; `ready` resolves once every hub concerned has it. */
  subscribe(pattern, handler, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    checkHandler(handler);
    const o = options === undefined ? {} : snapshot(options, SUBSCRIBE_OPTIONS, 'options');
    checkPattern(pattern);
    stringOption(o, 'group', 'options');
    if (o.group === undefined && (o.maxAttempts !== undefined || o.ackTimeoutMs !== undefined)) {
      fail('INVALID_OPTION', '`maxAttempts` and `ackTimeoutMs` apply only with `group` (a work queue)');
    }
    // As the hub takes them (they are sent on every (re)subscription, as JSON).
    numberOption(o, 'maxAttempts', 'options', MAX_ATTEMPTS);
    numberOption(o, 'ackTimeoutMs', 'options', ACK_TIMEOUT_MS);
    functionOption(o, 'onGap', 'options');
    if (o.replay !== undefined) {
      if (o.group !== undefined) fail('INVALID_OPTION', '`replay` applies to plain subscriptions (a work queue keeps its messages until they are acknowledged)');
      // Checked and copied by the rule the hub applies too; the hub checks the rest (the topics
      // named are ones its pattern matches, REPLAY_MAX_POSITIONS) and refuses INVALID_OPTION.
      o.replay = checkReplay(o.replay);
    }
    const signal = signalOption(o.signal);
    if (signal !== undefined && isAborted(signal)) {
      throw new EdgebusError('ABORTED', 'the subscription\'s signal was aborted before it subscribed', { cause: abortReason(signal) });
    }
    delete o.signal;
    const s = new RemoteSubscription(this, this._nextSub++, pattern, handler, o);
    this._subs.set(s.id, s);
    if (signal !== undefined) {
      const onAbort = () => s.unsubscribe();
      addAbortListener(signal, onAbort);
      s._leave = () => removeAbortListener(signal, onAbort);
    }
    if (this._open) this._send(this._subOp(s));
    return s;
  }

  /**
   * Resolves with the first message on `pattern` (that `filter` accepts), then unsubscribes, as
   * `Bus.once`; also rejects with the hub's refusal of the subscription (FORBIDDEN…).
   */
  once(pattern, options) {
    let o;
    try {
      if (this._closing) fail('CLOSED', 'bus is closed');
      o = parseOnceOptions(options);
      checkPattern(pattern);
      if (o.signal !== undefined && isAborted(o.signal)) {
        throw new EdgebusError('ABORTED', 'once() was aborted before it subscribed', { cause: abortReason(o.signal) });
      }
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      let done = false;
      let timer;
      let onAbort;
      let sub;
      const finish = (err, message) => {
        if (done) return;
        done = true;
        this._waits.delete(finish);
        if (timer !== undefined) clearTimeout(timer);
        if (onAbort !== undefined) removeAbortListener(o.signal, onAbort);
        sub?.unsubscribe();
        if (err !== undefined) reject(err);
        else resolve(message);
      };
      sub = this.subscribe(pattern, (payload, message) => {
        if (done) return;
        if (o.filter !== undefined) {
          let ok;
          try {
            ok = o.filter(message);
          } catch (e) {
            finish(new EdgebusError('HANDLER_FAILED', `once() filter threw: ${failureText(e)}`, { cause: e }));
            return;
          }
          if (!ok) return;
        }
        finish(undefined, message);
      });
      sub.ready.catch((e) => finish(e));
      this._waits.add(finish);
      if (o.timeoutMs !== Infinity) {
        timer = setTimeout(() => finish(new EdgebusError('TIMEOUT', `no message on \`${pattern}\` within ${o.timeoutMs} ms`)), Math.min(o.timeoutMs, MAX_TIMER_MS));
      }
      if (o.signal !== undefined) {
        onAbort = () => finish(new EdgebusError('ABORTED', 'once() was aborted', { cause: abortReason(o.signal) }));
        addAbortListener(o.signal, onAbort);
      }
    });
  }

  /**
   * The messages on `pattern` for `for await`, as `Bus.stream`: they wait for the loop in a bounded
   * queue (`maxQueue`, default 10,000; `overflow` 'dropOldest' (default), 'dropNewest' or
   * 'reject', counted in `stats().streamDropped`: a remote publisher cannot be made to wait), held
   * by the core of an in-page Bus. Ends when the loop leaves, on `subscription.unsubscribe()` and
   * on close(); throws ABORTED when `signal` aborts.
   */
  stream(pattern, options) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    const o = options === undefined ? {} : snapshot(options, ['signal', 'maxQueue', 'overflow'], 'options');
    checkPattern(pattern);
    if (o.overflow === 'wait') fail('INVALID_OPTION', 'option `overflow` cannot be \'wait\' for a remote stream: the publishers are elsewhere');
    const signal = signalOption(o.signal);
    if (signal !== undefined && isAborted(signal)) {
      throw new EdgebusError('ABORTED', 'stream() was aborted before it subscribed', { cause: abortReason(signal) });
    }
    this._local ??= new Bus({ maxQueue: Infinity, onError: (e) => this._report(e) });
    const topic = `stream.s${++this._streams}`;
    const local = this._local.stream(topic, o);
    const remote = this.subscribe(pattern, (payload, message) => {
      const before = this._local.stats().dropped;
      try {
        this._local.publish(topic, message);
      } catch (e) {
        this._stats.streamDropped++;
        this._report(e, { subscription: remote, message });
        return;
      }
      this._stats.streamDropped += this._local.stats().dropped - before;
    });
    const end = () => {
      remote.unsubscribe();
      local.subscription.unsubscribe();
    };
    local.subscription._leave = ((leave) => () => { leave?.(); remote.unsubscribe(); })(local.subscription._leave);
    remote._leave = () => local.subscription.unsubscribe();
    return {
      subscription: remote,
      [Symbol.asyncIterator]() { return this; },
      async next() {
        const r = await local.next();
        return r.done ? r : { value: r.value.payload, done: false };
      },
      async return() {
        end();
        await local.return();
        return { value: undefined, done: true };
      },
    };
  }

  _unsubscribe(s) {
    if (!s.active) return false;
    s.active = false;
    if (s._leave !== undefined) {
      const leave = s._leave;
      s._leave = undefined;
      leave();
    }
    this._subs.delete(s.id);
    if (this._open) this._send({ op: 'unsub', id: s.id });
    return true;
  }

  _entry(topic, payload, options, async) {
    if (this._closing) fail('CLOSED', 'bus is closed');
    const o = options === undefined ? {} : snapshot(options, async ? [...PUBLISH_OPTIONS, 'signal'] : PUBLISH_OPTIONS, 'options');
    const signal = signalOption(o.signal);
    checkTopic(topic);
    // Undefined with `retain` clears the topic's retained value.
    if (payload === undefined && o.retain !== true) fail('INVALID_ARGUMENT', 'payload must be a JSON value, got undefined');
    for (const k of ['id', 'key']) {
      // The hub refuses an empty id or key: refused here at once.
      if (stringOption(o, k, 'options') === '') fail('INVALID_OPTION', `option \`${k}\` must not be empty`);
    }
    const ref = ++this._seq;
    const op = { op: 'pub', ref, topic, payload, id: o.id ?? `${this._clientId}-${ref}` };
    if (o.retain !== undefined) {
      if (typeof o.retain !== 'boolean') fail('INVALID_OPTION', `option \`retain\` must be a boolean, got ${typeof o.retain}`);
      if (o.retain) op.retain = true;
    }
    if (o.key !== undefined) op.key = o.key;
    if (o.headers !== undefined) op.headers = headersOption(o.headers);
    // Written now: a payload JSON cannot carry is refused at the call (not met when the buffer is
    // sent, taking the publishes sent with it down), and later changes to it are not sent.
    if (typeof payload === 'function' || typeof payload === 'symbol') jsonText(payload, 'payload');
    const json = jsonText(op, 'payload');
    const p = { op, json, async, signal, resolve: undefined, reject: undefined };
    p.promise = new Promise((resolve, reject) => { p.resolve = resolve; p.reject = reject; });
    if (!async) p.promise.catch(() => {});
    return p;
  }

  _full() {
    return this._queue.length + this._sent.size >= this._maxBuffer;
  }

  /** Admits a publish, applying the overflow policy; false when it was dropped. */
  _admit(p) {
    if (this._full()) {
      if (this._overflow === 'reject' || this._overflow === 'wait') {
        fail('QUEUE_FULL', `${this._maxBuffer} publishes are waiting for the hub (maxBuffer); nothing was sent`);
      }
      this._stats.dropped++;
      const victim = this._overflow === 'dropNewest' || this._queue.length === 0 ? p : this._queue.shift();
      const err = new EdgebusError('QUEUE_FULL', `publish to \`${victim.op.topic}\` dropped: ${this._maxBuffer} publishes are waiting for the hub (overflow '${this._overflow}')`);
      victim.reject(err);
      this._report(err, { topic: victim.op.topic, id: victim.op.id });
      if (victim === p) return false;
      this._outbox?.settled(victim);
    }
    this._stats.published++;
    this._queue.push(p);
    this._outbox?.admitted(p);
    if (this._open) this._schedulePump();
    return true;
  }

  /** Publishes; held in the buffer while offline. Returns false when the overflow policy dropped it. */
  publish(topic, payload, options) {
    return this._admit(this._entry(topic, payload, options, false));
  }

  /**
   * Resolves once the hub has taken the message (stored, for work queues): true, or false for a
   * duplicate id. With overflow 'wait' it first waits for room in the buffer.
   */
  publishAsync(topic, payload, options) {
    let p;
    try {
      p = this._entry(topic, payload, options, true);
      const signal = p.signal;
      if (signal !== undefined && isAborted(signal)) {
        throw new EdgebusError('ABORTED', 'the publish was aborted before it was made', { cause: abortReason(signal) });
      }
      if (this._overflow === 'wait' && (this._full() || this._waiters.length > 0)) {
        this._waiters.push(p);
        if (signal !== undefined) {
          // Given up while it waits for room: it leaves the waiting publishes, never sent.
          const onAbort = () => {
            const at = this._waiters.indexOf(p);
            if (at < 0) return;
            this._waiters.splice(at, 1);
            p.reject(new EdgebusError('ABORTED', 'the publish was aborted while it waited for room', { cause: abortReason(signal) }));
            this._room();
          };
          addAbortListener(signal, onAbort);
          p.promise.then(() => removeAbortListener(signal, onAbort), () => removeAbortListener(signal, onAbort));
        }
        return p.promise;
      }
      this._admit(p);
    } catch (e) {
      return Promise.reject(e);
    }
    return p.promise;
  }

  _room() {
    while (this._waiters.length > 0 && !this._full()) this._admit(this._waiters.shift());
    if (this._queue.length === 0 && this._sent.size === 0 && this._waiters.length === 0 && !this._outbox?.loading) {
      for (const w of this._flushWaiters.splice(0)) w.resolve();
    }
  }

  /**
   * Resolves when every publish so far has been acknowledged by the hub; rejects with CLOSED when
   * the client closed before that.
   */
  flush() {
    if (this._failure !== undefined) return Promise.reject(this._failure);
    if (this._shut) return this._queue.length === 0 ? Promise.resolve() : Promise.reject(this._unflushed());
    // While an earlier session's entries load, it waits for them too (they are published to come).
    if (!this._outbox?.loading && this._queue.length === 0 && this._sent.size === 0 && this._waiters.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this._flushWaiters.push({ resolve, reject }));
  }

  _unflushed() {
    return new EdgebusError('CLOSED', 'bus closed before every publish was acknowledged (close() lists the rest)');
  }

  /**
   * Later calls throw CLOSED. When connected, waits up to `timeoutMs` (default 5000) for
   * outstanding publishes to be acknowledged, then closes the socket. Resolves to
   * `{ remaining }`: the publishes the hub never acknowledged, nothing dropped silently. With a
   * persistent outbox they stay in its store for the next session, unless `discard` is true.
   */
  async close(options) {
    const o = options === undefined ? {} : snapshot(options, ['timeoutMs', 'discard'], 'options');
    const timeoutMs = numberOption(o, 'timeoutMs', 'options', { min: 0, max: MAX_TIMER_MS }) ?? 5000;
    if (o.discard !== undefined && typeof o.discard !== 'boolean') fail('INVALID_OPTION', `option \`discard\` must be a boolean, got ${typeof o.discard}`);
    // One `timeoutMs` for the whole close: each wait gets what is left of it.
    const deadline = Date.now() + timeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    if (!this._closing) {
      this._closing = true;
      // What an earlier session left is part of what this one sends (or lists).
      if (this._outbox !== undefined) await this._outbox.restoredWithin(left());
      if (this._open && (this._queue.length > 0 || this._sent.size > 0)) {
        let timer;
        await Promise.race([this.flush(), new Promise((r) => { timer = setTimeout(r, left()); })]);
        clearTimeout(timer);
      }
      if (this._timer !== undefined) clearTimeout(this._timer);
      clearTimeout(this._handshake);
      clearTimeout(this._pumpTimer);
      this._pumpTimer = undefined;
      this._timer = undefined;
      const ws = this._ws;
      this._ws = undefined;
      this._open = false;
      if (ws !== undefined) {
        try { ws.close(1000, 'closed by the client'); } catch { /* already closed */ }
      }
      this._queue = [...this._sent.values(), ...this._queue, ...this._waiters];
      this._sent.clear();
      this._waiters.length = 0;
      const err = new EdgebusError('CLOSED', 'bus closed before the hub acknowledged this publish');
      for (const p of this._queue) p.reject(err);
      // flush() calls still waiting: CLOSED, for what remains was never acknowledged.
      this._shut = true;
      for (const w of this._flushWaiters.splice(0)) {
        if (this._queue.length === 0) w.resolve();
        else w.reject(this._unflushed());
      }
      for (const req of [...this._requests.values()]) this._endRequest(req, new EdgebusError('CLOSED', 'bus closed before the request got its answer'));
      for (const end of [...this._waits]) end(new EdgebusError('CLOSED', 'bus closed'));
      // Streams end: what they hold is still read.
      if (this._local !== undefined) await this._local.close();
    }
    // Also after a permanent refusal (which closed the rest already): the outbox is closed once.
    if (this._outbox !== undefined) await this._outbox.close(this._queue, o.discard === true, left());
    return { remaining: this._queue.map((p) => ({ topic: p.op.topic, payload: p.op.payload, id: p.op.id, key: p.op.key })) };
  }

  /** Counters of this client. */
  stats() {
    return {
      ...this._stats, connected: this._open, buffered: this._queue.length + this._waiters.length,
      unacknowledged: this._sent.size, subscriptions: this._subs.size,
      restored: this._outbox?.restored ?? 0, persistFailed: this._outbox?.failed ?? 0,
    };
  }
}

/** Connects to an edgebus edge deployment; see RemoteBus. */
export function connect(url, options) {
  return new RemoteBus(url, options);
}
