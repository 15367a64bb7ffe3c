// The Durable Object hub: owns the topics that hash to it, holds WebSocket connections with the
// Hibernation API, and runs the edgebus wasm core for matching and work queues.
//
// Two roles, often in the same object:
// - **owner** of a topic: publishes land here. `routing` (a wasm Bus) holds one subscription per
//   (home hub, pattern) that some connection somewhere wants; a publish forwards the message once
//   to each interested home. Work-queue streams (groups.js) live here too, durably.
// - **home** of a connection: the socket is accepted here. `local` (a wasm Bus) holds one
//   subscription per (connection, subscription id); messages forwarded from owners are matched
//   again here and written into per-connection outboxes, flushed as one frame per
//   BATCH_MAX_MESSAGES messages or, by default, on the next macrotask (adaptive: what is already
//   queued shares the frame), or after BATCH_MAX_WAIT_MS when that is set.
//
// What must survive eviction is in storage: connection records (`c:<conn>`: claims and
// subscriptions; the socket's attachment holds only its id), interests (`i:<home>|<pattern>`, or
// `in:<home>|<ns> <pattern>` outside the default namespace), streams, members and their messages
// (groups.js), the idempotence window (ids.js: by namespace, topic and id) and the counters
// (`meta:counts`, and `meta:ns:<ns>` per namespace, written in the same turn as the change they
// count, so in the same implicit transaction).
//
// Namespaces (the token's `ns` claim; auth.js DEFAULT_NS without it) are separate worlds on the
// same hubs: each has its own matching Buses (`local`, `routing`: a message of one namespace is
// never matched against another's subscriptions, whatever the token patterns), its own dedupe
// window, streams (groups.js) and counters. A message carries `ns` inside the hubs when it is not
// the default's; clients never see it (groups.js `visible`).
//
// Retained values and history (as owner): each namespace's `routing` Bus keeps them (every topic
// has history, bounded by the HISTORY_* and RETAIN_* settings): the core numbers each message of a
// topic (`seq`, carried in the envelope), keeps and evicts, and answers what a replay gets
// (`replay`). logs.js stores a copy of what it holds and puts it back after a wake. As home, a
// subscription with `replay` asks the owners of its pattern for it, delivers that and then its live
// messages (held meanwhile), dropping a live one the replay already carried (by seq).
import { DurableObject } from 'cloudflare:workers';
import { Bus, EdgebusError, RequestTracker } from 'edgebus';
import { DEFAULT_NS } from './auth.js';
import { readConfig } from './config.js';
import { refuseSocket } from './errors.js';
import { hubName, hubOfTopic, hubsOfPattern, nsDirectoryHub } from './routing.js';
import { remember, Streams, visible } from './groups.js';
import { handleFrame, subscribeBurst, utf8Length } from './frames.js';
import { PublishIds } from './ids.js';
import { ReplayLog } from './logs.js';

/** The counters each namespace has its own share of (`/stats` with a non-admin token). */
export const NS_COUNTERS = ['published', 'duplicates', 'notStored', 'delivered', 'frames', 'dropped', 'rateLimited', 'tooLarge',
  'forbidden', 'forbiddenAcks', 'badFrames', 'refused', 'acked', 'lateAcks', 'dead', 'deadPublished', 'tooDeep', 'rateClosed',
  'requests', 'replies', 'lateReplies', 'requestTimeouts', 'noResponders', 'replayed', 'gaps'];

/** `<ns> <pattern>`: a pattern in its namespace (neither contains a space). */
function scoped(ns, pattern) {
  return `${ns} ${pattern}`;
}

function interestStorageKey(home, ns, pattern) {
  return ns === DEFAULT_NS ? `i:${home}|${pattern}` : `in:${home}|${scoped(ns, pattern)}`;
}

export class Hub extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.cfg = readConfig(env);
    this.bootId = Math.random().toString(36).slice(2, 8);
    this.index = -1;
    this.local = new Bus({ maxQueue: Infinity });     // the default namespace's (as home)
    this.routing = this._routingBus();                // the default namespace's (as owner)
    this.nsBuses = new Map();        // `local|<ns>` / `routing|<ns>` → Bus of another namespace
    this.streams = new Streams(this);
    this.conns = new Map();          // conn id → connection state (sockets of this hub)
    this.connOf = new WeakMap();     // WebSocket → its connection state (else found by its attachment)
    this.interests = new Map();      // `${home}|${ns} ${pattern}` → routing subscription (as owner)
    this.wanted = new Map();         // `${ns} ${pattern}` → { count, busy } (as home)
    this.boxes = new Map();          // home index → box { items, last, patterns, bytes, done } (forwarding, this microtask)
    this.boxQueued = false;
    this.homeChains = new Map();     // home index → the last forward to it (forwards to one home go in order)
    this.collect = undefined;        // boxes the message being published went into
    this.sizes = new WeakMap();      // envelope → payload bytes of JSON (for splitting forwards)
    this.buckets = new Map();        // rate-limit key (POST /publish token) → { tokens, at }
    this.dirty = new Set();          // connections with a pending frame
    this.flushTimer = undefined;
    this.countsDirty = false;        // counters changed but not yet written (_countsSoon)
    this.countsTimer = undefined;
    this.sending = undefined;        // frames made ready, sent together after their count is written (_sendFrames)
    this.lastFrame = undefined;      // { entries, frame }: the last frame made while `sending` (shared by equal outboxes)
    this.jsonCache = new WeakMap();  // envelope → its JSON as clients see it (_json)
    this.idSeq = 0;
    this.alarmAt = undefined;        // the scheduled alarm (stream limits and idle deletion)
    this.goneMembers = [];           // [owner, conn, sub] of work-queue members whose sockets a restart ended
    this.ids = new PublishIds(this.ctx.storage.sql, this.cfg); // the idempotence window
    this.logs = new ReplayLog(this.ctx.storage.sql); // the stored copy of the routing Buses' logs
    this.logOps = [];             // storage writes of the logs, waiting for the next write of the counters (_logged)
    this.counts = {
      published: 0, duplicates: 0, delivered: 0, frames: 0, forwarded: 0, forwardFailed: 0,
      dropped: 0, rateLimited: 0, tooLarge: 0, forbidden: 0, forbiddenAcks: 0, badFrames: 0, refused: 0,
      deadPublished: 0, deadRetries: 0, streamDropped: 0, streamExpired: 0, streamsDeleted: 0,
      streamDiscarded: 0, notStored: 0, errors: 0, forwardRetries: 0, rateClosed: 0, tooDeep: 0, tokensForgotten: 0,
      requests: 0, replies: 0, lateReplies: 0, requestTimeouts: 0, noResponders: 0, replayed: 0, gaps: 0,
    };
    this.nsCounts = new Map();       // namespace → its share of the counters (see _nsCount)
    this.nsConns = new Map();        // namespace → its open connections here (MAX_CONNECTIONS)
    this.nsDirty = new Set();
    this.nsRegistered = new Set();   // namespaces whose directory lists this hub (`meta:nsreg:<ns>`)
    this.nsRegistering = new Map();
    this.nsDirectory = new Map();    // as a directory: namespace → hubs that served it (`nsdir:<ns>`)
    this.deadOutbox = new Map();     // `dq:` key → dead letter not yet taken by its `$dead` owner
    this.deadTimer = undefined;
    this.deadSending = false;
    this.deadFailures = 0;
    // Requests of this hub's connections (as their home): the core's rules in a tracker of their
    // own, since their responders are on other hubs and are learnt of from the owner's answer.
    this.tracker = new RequestTracker();
    this.reqs = new Map();           // request token → { c, ref, id, reached, failure }
    this.reqsById = new Map();       // tracker id → the same
    this.reqTimer = undefined;
    this.reqTimerAt = Infinity;
    this.answerSeq = 0;              // numbers the responders this hub delivers requests to
    this.askedNow = undefined;       // during receive(): request token → subscriptions it reached here
    this.answersOut = new Map();     // home index → answers to send it (this microtask)
    this.ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"op":"ping"}', '{"t":"pong"}'));
    this.ready = this.ctx.blockConcurrencyWhile(() => this._load());
  }

  async _load() {
    const storage = this.ctx.storage;
    this.index = (await storage.get('meta:index')) ?? -1;
    const saved = (await storage.get('meta:counts')) ?? {};
    for (const k of Object.keys(this.counts)) this.counts[k] = saved[k] ?? 0;
    for (const [k, v] of await storage.list({ prefix: 'meta:ns:' })) this.nsCounts.set(k.slice(8), v);
    for (const [k] of await storage.list({ prefix: 'meta:nsreg:' })) this.nsRegistered.add(k.slice(11));
    for (const [k, v] of await storage.list({ prefix: 'nsdir:' })) this.nsDirectory.set(k.slice(6), new Set(v));
    // Retained values and history back into the core, seqs preserved; what its limits no longer
    // keep (the time window passed while the hub was away) is trimmed from storage too.
    for (const [ns, entries] of this.logs.load()) {
      const bus = this._bus('routing', ns);
      bus.restore(entries);
      this.logs.trimAll(ns, bus);
      // What the restore's limits took is trimmed above, every stored topic at once.
      bus._takeLogChanges();
    }
    for (const [k] of await storage.list({ prefix: 'i:' })) {
      const [home, pattern] = splitOnce(k.slice(2), '|');
      this._addInterest(Number(home), pattern, DEFAULT_NS);
    }
    for (const [k] of await storage.list({ prefix: 'in:' })) {
      const [home, rest] = splitOnce(k.slice(3), '|');
      const [ns, pattern] = splitOnce(rest, ' ');
      this._addInterest(Number(home), pattern, ns);
    }
    const records = await storage.list({ prefix: 'c:' });
    for (const ws of this.ctx.getWebSockets()) {
      const a = ws.deserializeAttachment();
      const rec = a && records.get(`c:${a.conn}`);
      if (rec === undefined) continue;
      records.delete(`c:${a.conn}`);
      // Deliveries made before this instance are not in `c.delivered`: the owner checks those alone.
      const c = this._conn(ws, a.conn, rec.claims);
      for (const [id, s] of Object.entries(rec.subs)) this._restoreSub(c, Number(id), s);
    }
    // Records of sockets that are gone (an eviction or a restart ended them): their interests
    // elsewhere are cleaned lazily (receive()); their work-queue memberships are left at their
    // owners once this hub is entered (_enter), so that what they held is refused now (retried, or
    // dead on its last attempt) rather than at its ack deadline.
    for (const [k, rec] of records) {
      for (const [id, s] of Object.entries(rec.subs)) if (s.group !== undefined) this.goneMembers.push([s.owner, k.slice(2), Number(id)]);
    }
    if (records.size > 0) await storage.delete([...records.keys()]);
    await this.streams.load(storage);
    this.streams.acked = saved.acked ?? 0;
    this.streams.lateAcks = saved.lateAcks ?? 0;
    this.streams.dead = saved.dead ?? 0;
    this.streams.deadNotPublished = saved.deadNotPublished ?? 0;
    for (const [k, letter] of await storage.list({ prefix: 'dq:' })) this.deadOutbox.set(k, letter);
    this.alarmAt = (await storage.getAlarm()) ?? undefined;
  }

  /** Called on every entry: learns which hub this is (the caller names it on every call). */
  async _enter(index) {
    await this.ready;
    if (this.index !== index && index >= 0) {
      this.index = index;
      await this.ctx.storage.put('meta:index', index);
    }
    // Stored work-queue members are confirmed with their homes once, after a restart.
    if (this.verifying === undefined && this.index >= 0) {
      this.verifying = this.streams.verify((home, conns) => this._peer(home).liveConns(conns));
      if (this.deadOutbox.size > 0) this._sendDeadSoon();
    }
    // The first call after a restart answers once the owners have let go of the lost members, so
    // that nothing is delivered to them meanwhile (an attempt spent on nobody). Taken once: a call
    // from an owner meanwhile does not wait, so hubs never wait on each other in a circle.
    if (this.goneMembers.length > 0 && this.index >= 0) await this._leaveGone(this.goneMembers.splice(0));
  }

  /**
   * Leaves the work queues of connections a restart of this hub ended. An owner that cannot be
   * reached drops the member itself the first time it forwards to it (_cleanup), as after any lost
   * connection.
   */
  _leaveGone(members) {
    return Promise.all(members.map(([owner, conn, sub]) => this._peer(owner).leaveGroup(owner, this.index, conn, sub, 'the consumer\'s connection is gone')
      .catch(() => {})));
  }

  _peer(index) {
    return index === this.index ? this : this.env.HUB.get(this.env.HUB.idFromName(hubName(index)));
  }

  /**
   * The matching Bus of a namespace: `kind` is 'local' (as home) or 'routing' (as owner). Created
   * for a subscription; a publish to a namespace without one here matches nothing (undefined).
   */
  _bus(kind, ns, create = true) {
    if (ns === DEFAULT_NS || ns === undefined) return this[kind];
    const key = `${kind}|${ns}`;
    let bus = this.nsBuses.get(key);
    if (bus === undefined && create) {
      bus = kind === 'routing' ? this._routingBus() : new Bus({ maxQueue: Infinity });
      this.nsBuses.set(key, bus);
    }
    return bus;
  }

  /** A namespace's Bus as owner: matching, plus its retained values and history (the core's). */
  _routingBus() {
    const c = this.cfg;
    const bus = new Bus({
      maxQueue: Infinity,
      retain: { maxTopics: c.RETAIN_MAX_TOPICS, maxBytes: c.RETAIN_MAX_BYTES },
      history: { topics: ['>'], maxMessages: c.HISTORY_MAX_MESSAGES, maxAgeMs: c.HISTORY_WINDOW_MS, maxTopics: c.HISTORY_MAX_TOPICS, maxBytes: c.HISTORY_MAX_BYTES },
      sizeOf: (env) => this._sizeOf(env),
    });
    // The topics whose logs lose something, told by the core, are trimmed in storage (_logsChanged).
    bus._reportLogChanges();
    return bus;
  }

  // ----- connections ----------------------------------------------------------------------------

  async fetch(request) {
    await this._enter(Number(request.headers.get('x-edgebus-hub')));
    const claims = JSON.parse(request.headers.get('x-edgebus-claims'));
    const ns = claims.ns ?? DEFAULT_NS;
    if ((this.nsConns.get(ns) ?? 0) >= this.cfg.MAX_CONNECTIONS) return this._refuseConnection(ns);
    await this._nsHere(ns);
    const [client, server] = Object.values(new WebSocketPair());
    const conn = crypto.randomUUID().replaceAll('-', '').slice(0, 16);
    this.ctx.acceptWebSocket(server, [conn]);
    server.serializeAttachment({ conn });
    await this.ctx.storage.put(`c:${conn}`, { claims, subs: {} });
    this._conn(server, conn, claims);
    const c = this.cfg;
    server.send(JSON.stringify({
      t: 'hello', conn, ns: claims.ns ?? DEFAULT_NS, hub: this.index, hubs: c.HUBS, routeTokens: c.ROUTE_TOKENS, now: Date.now(),
      limits: {
        maxPayloadBytes: c.MAX_PAYLOAD_BYTES, maxSubscriptions: c.MAX_SUBSCRIPTIONS, maxMessagesPerSecond: c.MAX_MESSAGES_PER_SECOND,
        maxSubscribesPerSecond: c.MAX_SUBSCRIBES_PER_SECOND, maxConnections: c.MAX_CONNECTIONS,
        historyWindowMs: c.HISTORY_WINDOW_MS, replayMaxPositions: c.REPLAY_MAX_POSITIONS, dedupeMaxAgeMs: c.DEDUPE_MAX_AGE_MS,
      },
    }));
    return new Response(null, { status: 101, webSocket: client });
  }

  /**
   * A connection over the namespace's share of this hub (MAX_CONNECTIONS): accepted, told why in
   * one frame and closed with 4429, which a client takes as "try again later" (counted `refused`).
   * One tenant opening sockets without end holds this hub's memory for every tenant otherwise.
   */
  _refuseConnection(ns) {
    this._count(ns, 'refused');
    this._countsChanged();
    return refuseSocket('TOO_MANY_CONNECTIONS',
      `namespace ${JSON.stringify(ns).slice(0, 80)} holds ${this.cfg.MAX_CONNECTIONS} connections at this hub, its most: close one or try again later`);
  }


  _conn(ws, id, claims) {
    const c = {
      ws, id, claims, ns: claims.ns ?? DEFAULT_NS, subs: new Map(), outbox: [], last: undefined, lastEntry: undefined,
      delivered: new Map(), // work-queue delivery token → { sub, boot, at } (receive), until the client answers it
      publishes: { tokens: this.cfg.MAX_MESSAGES_PER_SECOND, at: Date.now() }, // the bucket of `pub` (frames.js takeToken)
      busy: Promise.resolve(), closed: false,
      subscribes: { tokens: subscribeBurst(this.cfg), at: Date.now() }, // the bucket of `sub` and `del` (frames.js takeSubscribe)
      unvouched: { tokens: this.cfg.UNVOUCHED_ACKS_PER_SECOND, at: Date.now() }, // acknowledged tokens this hub did not deliver (frames.js takeUnvouched)
      reqs: new Map(),  // request ref → its token, while it waits (as requester)
      asked: new Map(), // request token → Map(subscription id → responder number), until answered (as responder)
    };
    this.conns.set(id, c);
    this.connOf.set(ws, c);
    this.nsConns.set(c.ns, (this.nsConns.get(c.ns) ?? 0) + 1);
    return c;
  }

  /** The open connection of a socket of this hub, or undefined. */
  _connOf(ws) {
    const c = this.connOf.get(ws);
    if (c !== undefined && !c.closed) return c;
    return this.conns.get(ws.deserializeAttachment()?.conn);
  }

  async webSocketMessage(ws, data) {
    await this.ready;
    const c = this._connOf(ws);
    if (c === undefined) {
      ws.close(1011, 'unknown connection');
      return;
    }
    // Frames of one connection are handled in order, even when one waits on another hub.
    const run = c.busy.then(() => handleFrame(this, c, data));
    c.busy = run.catch(() => {});
    return run;
  }

  async webSocketClose(ws, code) {
    // Completes the closing handshake (the client waits for it).
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, 'closed');
    } catch {
      // already closed
    }
    await this._dropSocket(ws);
  }

  async webSocketError(ws) {
    await this._dropSocket(ws);
  }

  async _dropSocket(ws) {
    await this.ready;
    const c = this._connOf(ws);
    if (c === undefined || c.closed) return;
    c.closed = true;
    this.conns.delete(c.id);
    const left = (this.nsConns.get(c.ns) ?? 1) - 1;
    if (left > 0) this.nsConns.set(c.ns, left);
    else this.nsConns.delete(c.ns);
    this.dirty.delete(c);
    await c.busy;
    // Its requests end with it: nobody is left to hear their replies.
    for (const ref of [...c.reqs.keys()]) this.cancelRequest(c, ref);
    for (const id of [...c.subs.keys()]) await this.removeSub(c, id, false);
    await this.ctx.storage.delete(`c:${c.id}`);
  }

  /** Which of these connection ids are still open here. */
  async liveConns(ids) {
    await this.ready;
    return ids.filter((id) => this.conns.has(id));
  }

  async saveConn(c) {
    const subs = {};
    for (const [id, s] of c.subs) subs[id] = { pattern: s.pattern, group: s.group, opts: s.opts, owner: s.owner };
    await this.ctx.storage.put(`c:${c.id}`, { claims: c.claims, subs });
  }

  // ----- subscriptions (as home) ---------------------------------------------------------------

  _restoreSub(c, id, s) {
    const sub = { ...s, local: undefined };
    if (s.group === undefined) {
      sub.local = this._bus('local', c.ns).subscribe(s.pattern, (env) => this._toConn(c, id, env));
      const w = this.wanted.get(scoped(c.ns, s.pattern));
      if (w === undefined) this.wanted.set(scoped(c.ns, s.pattern), { count: 1, busy: Promise.resolve() });
      else w.count++;
    }
    c.subs.set(id, sub);
  }

  /**
   * A plain subscription: local matching plus interest at every hub that can own its topics. With
   * `replay` (frames.js checked it, and split its positions by owner: `replay.byHub`), what the
   * owners replay comes first, then the live messages, held until then.
   */
  async addPlainSub(c, id, pattern, hubs, replay) {
    const sub = { pattern, local: undefined, hold: replay === undefined ? undefined : [], floor: undefined };
    sub.local = this._bus('local', c.ns).subscribe(pattern, (env) => this._live(c, id, sub, env));
    c.subs.set(id, sub);
    let w = this.wanted.get(scoped(c.ns, pattern));
    if (w === undefined) {
      w = { count: 0, busy: Promise.resolve() };
      this.wanted.set(scoped(c.ns, pattern), w);
    }
    w.count++;
    if (w.count === 1) {
      w.busy = w.busy.then(() => Promise.all(hubs.map((h) => this._peer(h).addInterest(h, this.index, pattern, c.ns))));
    }
    try {
      await w.busy;
    } catch (e) {
      await this.removeSub(c, id, false);
      throw new EdgebusError('UNAVAILABLE', `could not register the subscription on every hub: ${e.message}`);
    }
    if (replay !== undefined) await this._replay(c, id, sub, replay);
  }

  /** A live message for subscription `id` of `c`: held while its replay is asked, dropped when the replay carried it. */
  _live(c, id, sub, env) {
    if (sub.hold !== undefined) {
      sub.hold.push(env);
      return;
    }
    if (sub.floor !== undefined && env.seq !== undefined && env.seq <= (sub.floor.get(env.topic) ?? -1)) return;
    this._toConn(c, id, env);
  }

  /**
   * Asks the owners of a subscription's topics (registered there already, so whatever they
   * publish from now on comes live) what its replay gets, and delivers it: the gap notices first
   * (one `gap` frame), then the messages, oldest first, then the live ones held meanwhile, less
   * those the replay carried (same topic, seq at most the replay's last). Which messages and which
   * gaps is the owners' cores' answer; the token's right to them is the subscription's own (its
   * pattern was allowed, and only topics it matches are replayed), as for live delivery.
   */
  async _replay(c, id, sub, replay) {
    let answers;
    try {
      // The bounds of one replay, shared by its owners (each keeps its newest; the rest are gaps).
      const owners = replay.byHub.size;
      const limit = { maxMessages: Math.floor(this.cfg.REPLAY_MAX_MESSAGES / owners), maxBytes: Math.floor(this.cfg.REPLAY_MAX_BYTES / owners) };
      answers = await Promise.all([...replay.byHub].map(([h, r]) => this._peer(h).replayOf(h, c.ns, sub.pattern, r, limit)));
    } catch (e) {
      await this.removeSub(c, id, false);
      throw new EdgebusError('UNAVAILABLE', `the replay of \`${sub.pattern}\` could not be read from every hub: ${e.message}`);
    }
    if (c.subs.get(id) !== sub) return; // unsubscribed or closed meanwhile
    const messages = [];
    const gaps = [];
    for (const a of answers) {
      if (a.error !== undefined) {
        await this.removeSub(c, id, false);
        throw new EdgebusError(a.error.code, a.error.message);
      }
      messages.push(...a.messages);
      gaps.push(...a.gaps);
    }
    // Each owner's answer is in its core's order; across owners (topics of different hubs), by time.
    if (answers.length > 1) messages.sort((a, b) => a.publishedAt - b.publishedAt);
    if (gaps.length > 0) {
      this._count(c.ns, 'gaps', gaps.length);
      this._count(c.ns, 'frames');
      this._countsChanged();
      try {
        c.ws.send(JSON.stringify({ t: 'gap', sub: id, gaps }));
      } catch {
        // The socket closed meanwhile; webSocketClose cleans up.
      }
    }
    sub.floor = new Map();
    for (const env of messages) {
      if (env.seq > (sub.floor.get(env.topic) ?? -1)) sub.floor.set(env.topic, env.seq);
      this._toConn(c, id, env);
    }
    if (messages.length > 0) this._count(c.ns, 'replayed', messages.length);
    const held = sub.hold;
    sub.hold = undefined;
    for (const env of held) this._live(c, id, sub, env);
    if (sub.floor.size === 0) sub.floor = undefined;
    // Sent now, ahead of the subscription's `ok`: a client that has `ok` has had its replay.
    this._flushConn(c);
    this._sendFrames();
  }

  /**
   * As owner: what a new subscription to `pattern` in namespace `ns` with `replay` would get first
   * (the core's `replay`, within `limit`: the newest messages that fit, the older ones reported as
   * gaps), requests left out (their answers are over); errors come back as values.
   */
  async replayOf(self, ns, pattern, replay, limit) {
    await this._enter(self);
    let r;
    try {
      r = this._bus('routing', ns).replay(pattern, replay, limit);
    } catch (e) {
      return { error: { code: typeof e.code === 'string' ? e.code : 'UNAVAILABLE', message: e.message } };
    }
    const messages = [];
    for (const m of r.messages) {
      const env = m.payload;
      // A request stored before requests went unnumbered: its answers are over.
      if (env.rq !== undefined) continue;
      env.seq ??= m.seq;
      messages.push(visible(env));
    }
    return { messages, gaps: r.gaps };
  }

  async addGroupSub(c, id, pattern, group, opts, owner) {
    c.subs.set(id, { pattern, group, opts, owner });
    let r;
    try {
      r = await this._peer(owner).joinGroup(owner, this.index, c.id, id, pattern, group, opts, c.ns);
    } catch (e) {
      r = { error: { code: 'UNAVAILABLE', message: `the owner hub of \`${pattern}\` is unavailable: ${e.message}` } };
    }
    if (r?.error !== undefined) {
      c.subs.delete(id);
      throw new EdgebusError(r.error.code, r.error.message);
    }
  }

  async removeSub(c, id, save = true) {
    const s = c.subs.get(id);
    if (s === undefined) return false;
    c.subs.delete(id);
    if (s.group !== undefined) {
      try {
        await this._peer(s.owner).leaveGroup(s.owner, this.index, c.id, id);
      } catch {
        // The owner drops members it cannot reach when delivering to them.
      }
    } else {
      s.local.unsubscribe();
      const w = this.wanted.get(scoped(c.ns, s.pattern));
      if (w !== undefined && --w.count === 0) {
        const hubs = hubsOfPattern(s.pattern, this.cfg.HUBS, this.cfg.ROUTE_TOKENS);
        w.busy = w.busy.then(() => Promise.all(hubs.map((h) => this._peer(h).removeInterest(h, this.index, s.pattern, c.ns))))
          .catch(() => {});
        await w.busy;
        if (w.count === 0) this.wanted.delete(scoped(c.ns, s.pattern));
      }
    }
    if (s.group !== undefined) for (const [d, x] of c.delivered) if (x.sub === id) c.delivered.delete(d);
    if (save) await this.saveConn(c);
    return true;
  }

  // ----- interests and streams (as owner; called by homes) -------------------------------------

  async addInterest(self, home, pattern, ns = DEFAULT_NS) {
    await this._enter(self);
    if (this._addInterest(home, pattern, ns)) await this.ctx.storage.put(interestStorageKey(home, ns, pattern), 1);
  }

  _addInterest(home, pattern, ns) {
    const sp = scoped(ns, pattern);
    const key = `${home}|${sp}`;
    if (this.interests.has(key)) return false;
    this.interests.set(key, this._bus('routing', ns).subscribe(pattern, (env) => this.forward(home, env, sp)));
    return true;
  }

  async removeInterest(self, home, pattern, ns = DEFAULT_NS) {
    await this._enter(self);
    const key = `${home}|${scoped(ns, pattern)}`;
    const sub = this.interests.get(key);
    if (sub === undefined) return;
    sub.unsubscribe();
    this.interests.delete(key);
    await this.ctx.storage.delete(interestStorageKey(home, ns, pattern));
  }

  /** Adds a work-queue member; errors come back as values (`{ error: { code, message } }`). */
  async joinGroup(self, home, conn, sub, pattern, group, opts, ns = DEFAULT_NS) {
    await this._enter(self);
    await this._nsHere(ns);
    try {
      await this.streams.join(home, conn, sub, pattern, group, opts, ns);
      return {};
    } catch (e) {
      return { error: { code: typeof e.code === 'string' ? e.code : 'UNAVAILABLE', message: e.message } };
    }
  }

  async leaveGroup(self, home, conn, sub, reason) {
    await this._enter(self);
    this.streams.leave(home, conn, sub, reason);
  }

  /**
   * Acknowledges (ok) or refuses deliveries for member `from` ({ home, conn, sub, ns }), which must
   * be the member each token was delivered to; `vouched` as groups.js `ack` takes it. Resolves to
   * `{ refused }`: indexes of the tokens refused (counted `forbiddenAcks` in the caller's namespace).
   */
  async ack(self, tokens, vouched, ok, reason, from) {
    await this._enter(self);
    const { refused } = this.streams.ack(tokens, vouched, ok, reason, from);
    if (refused.length > 0) this._count(from.ns, 'forbiddenAcks', refused.length);
    this._countsChanged();
    return { refused };
  }

  /** Deletes a work-queue stream of namespace `ns` and its stored messages (frame op `del`); errors come back as values. */
  async deleteGroup(self, group, pattern, ns = DEFAULT_NS) {
    await this._enter(self);
    try {
      const r = this.streams.delete(group, pattern, 'deleted by a client', ns);
      this._countsChanged();
      return r;
    } catch (e) {
      return { error: { code: typeof e.code === 'string' ? e.code : 'UNAVAILABLE', message: e.message } };
    }
  }

  /** Stream limits and idle deletion, on the Durable Object alarm. */
  async alarm() {
    await this.ready;
    this.alarmAt = undefined;
    this.streams.sweep(Date.now());
    this._countsChanged();
    this._scheduleAlarm();
  }

  /** Sets the alarm to the next time streams need a sweep, if that is earlier than the one set. */
  _scheduleAlarm() {
    const next = this.streams.nextDue();
    if (next === undefined || (this.alarmAt !== undefined && this.alarmAt <= next)) return;
    this.alarmAt = next;
    this.ctx.storage.setAlarm(next);
  }

  // ----- publishing (as owner) -----------------------------------------------------------------

  /**
   * Publishes validated, authorized messages `{ topic, payload, id?, key?, ns?, dedupeId? }`.
   * Resolves to one result per message: `false` for a duplicate id (on its topic, within the
   * namespace `ns`, DEFAULT_NS by default; `dedupeId`, when given, is the key of the window instead
   * of the id: a dead letter's outbox key), otherwise `{ stored }`: the number of work-queue streams that stored it (0: delivered to
   * whoever subscribes now, kept by no durable group). The dedupe window, the stored messages and
   * the counters are written in this turn, before the answer leaves (one implicit transaction).
   */
  async publish(self, msgs) {
    return this._publish(self, msgs, false);
  }

  /**
   * publish(), also called directly for a connection of this hub (`local`): then, when nothing
   * durable is written (no id, no stream), the counters wait for the next thing that leaves (see
   * _countsSoon), so that a backlog of publish frames costs one storage commit, not one each.
   */
  async _publish(self, msgs, local) {
    await this._enter(self);
    for (const m of msgs) if (!this.nsRegistered.has(m.ns ?? DEFAULT_NS)) await this._nsHere(m.ns ?? DEFAULT_NS);
    const out = new Array(msgs.length);
    const boxesOf = new Array(msgs.length);
    const now = Date.now();
    let streamed = false;
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      const ns = m.ns ?? DEFAULT_NS;
      const key = m.rq === undefined ? m.dedupeId ?? m.id : undefined;
      if (key !== undefined && !this.ids.first(ns, m.topic, key, now)) {
        this._count(ns, 'duplicates');
        out[i] = false;
        continue;
      }
      this._count(ns, 'published');
      const env = { topic: m.topic, payload: m.payload, id: m.id ?? `${this.bootId}-${(++this.idSeq).toString(36)}`, publishedAt: now };
      if (m.key !== undefined) env.key = m.key;
      if (m.headers !== undefined) env.headers = m.headers;
      if (m.rq !== undefined) env.rq = m.rq;
      if (ns !== DEFAULT_NS) env.ns = ns;
      if (m.size !== undefined) this.sizes.set(env, m.size + envelopeBytes(env));
      this.collect = new Set();
      // A request matches the namespace's subscriptions, if it has any; anything else is also
      // kept for replay, so the namespace's Bus is made for it.
      const bus = this._bus('routing', ns, m.rq === undefined);
      const before = bus?.logOf(env.topic);
      try {
        if (m.rq !== undefined) {
          // A request's message (its answers are this hub's tracker's): neither numbered nor kept.
          bus?._publishForeignRequest(env.topic, env);
        } else if (m.retain === true && m.payload === undefined) {
          // `retain` without a payload clears the topic's retained value; it is delivered as a message too.
          bus.clearRetained(env.topic);
          bus.publish(env.topic, env);
        } else {
          bus?.publish(env.topic, env, m.retain === true ? { retain: true } : undefined);
        }
      } finally {
        boxesOf[i] = this.collect;
        this.collect = undefined;
      }
      if (bus !== undefined && m.rq === undefined) this._logged(ns, bus, env, m.retain === true && m.payload !== undefined, before);
      if (m.rq !== undefined) {
        // A request reaches plain subscriptions; work-queue streams do not store it.
        this._count(ns, 'requests');
        out[i] = { stored: 0, responders: 0 };
        continue;
      }
      const streams = this.streams.route(env.topic, ns);
      if (streams.length === 0) this._count(ns, 'notStored');
      else streamed = true;
      out[i] = { stored: streams.length };
      for (const st of [...streams]) this.streams.store(st, env, now);
    }
    this._logsChanged();
    if (local && !streamed && !msgs.some((m) => (m.dedupeId ?? m.id) !== undefined)) this._countsSoon();
    else this._countsChanged();
    // The messages stored now expire at now + STREAM_MAX_AGE_MS: the alarm must come by then (an
    // alarm set for later, e.g. an idle deletion, would otherwise expire them late).
    if (streamed && (this.alarmAt === undefined || this.alarmAt > now + this.cfg.STREAM_MAX_AGE_MS + 1)) {
      this.alarmAt = now + this.cfg.STREAM_MAX_AGE_MS + 1;
      this.ctx.storage.setAlarm(this.alarmAt);
    }
    // The answer waits for the forwards to the subscribers' home hubs (each retried up to
    // FORWARD_ATTEMPTS times): a message that did not reach every home is answered UNAVAILABLE and
    // its id forgotten, so that the publisher's retry is taken, not refused as a duplicate.
    const all = new Set();
    for (const b of boxesOf) if (b !== undefined) for (const box of b) all.add(box);
    if (all.size === 0) return out;
    await Promise.all([...all].map((box) => box.done));
    // A request's responders: the subscriptions each home it went to delivered it to.
    for (let i = 0; i < msgs.length; i++) {
      if (msgs[i].rq === undefined || boxesOf[i] === undefined) continue;
      let n = 0;
      for (const box of boxesOf[i]) {
        for (const [token, k] of box.result?.asked ?? []) if (token === msgs[i].rq) n += k;
      }
      out[i].responders = n;
    }
    for (let i = 0; i < msgs.length; i++) {
      if (boxesOf[i] === undefined || out[i] === false) continue;
      const failed = [...boxesOf[i]].find((box) => box.failed !== undefined);
      if (failed === undefined) continue;
      const key = msgs[i].dedupeId ?? msgs[i].id;
      if (key !== undefined) this.ids.forget(msgs[i].ns ?? DEFAULT_NS, msgs[i].topic, key);
      out[i] = { error: { code: 'UNAVAILABLE', message: `not delivered to the subscribers of hub ${failed.home} (${failed.failed}); publish it again` } };
    }
    return out;
  }

  /**
   * After a publish into `bus` (namespace `ns`'s routing Bus): when the core tracks its topic, the
   * message takes the seq the core gave it and is stored (`retained`: as the topic's retained
   * value), and the topic's stored rows are trimmed to what the core still holds. The writes wait
   * in `logOps` for the counters' next write (_countsChanged), which comes before anything that
   * reflects them leaves (a frame, a forward, an answer: the output gate holds it until they are
   * stored), so a backlog of publish frames is one storage commit, not one each. A number that
   * reached anyone is stored: a restart never gives it again (a client's position on it would
   * hide the message that got it). `before`: the topic's log before the publish (see
   * ReplayLog.trim).
   */
  _logged(ns, bus, env, retained, before) {
    const log = bus.logOf(env.topic);
    if (log === undefined) {
      // Not tracked (a `$` topic without a retained value), or forgotten by the core.
      this.logOps.push({ ns, topic: env.topic, env: undefined, retained: false, log: undefined, keep: undefined });
      return;
    }
    env.seq = log.lastSeq;
    const keep = retained ? undefined : before;
    this.logOps.push({ ns, topic: env.topic, env, retained, log, keep });
    this.logsTouched ??= new Map();
    this.logsTouched.set(bus, ns);
  }

  /**
   * After a batch of publishes: every topic whose log the core says lost something (a message or
   * its retained value evicted by a limit, its own or one across topics, expired by the time
   * window, replaced, cleared; or the log forgotten) is trimmed in storage with the batch's
   * writes, to what the core holds then. (A loss outside a publish, an expiry seen by a replay,
   * is in the next batch's list.)
   */
  _logsChanged() {
    const touched = this.logsTouched;
    if (touched === undefined) return;
    this.logsTouched = undefined;
    for (const [bus, ns] of touched) {
      for (const topic of bus._takeLogChanges()) {
        this.logOps.push({ ns, topic, env: undefined, retained: false, log: bus.logOf(topic), keep: undefined, changed: true });
      }
    }
  }

  /**
   * The token bucket of a POST /publish caller (`key`: its token), at the hub the key hashes to:
   * PUBLISH_MESSAGES_PER_SECOND (by default MAX_MESSAGES_PER_SECOND) with a one-second burst, as
   * a WebSocket connection has. A batch is
   * taken whole when the bucket holds min(n, rate) (the excess is owed and delays the next one);
   * otherwise `{ retryAfterMs }`.
   */
  async rateTake(self, key, n, ns = DEFAULT_NS) {
    await this._enter(self);
    const rate = this.cfg.PUBLISH_MESSAGES_PER_SECOND;
    const now = Date.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      if (this.buckets.size >= 10000) {
        for (const [k, x] of this.buckets) if (x.tokens + ((now - x.at) / 1000) * rate >= rate) this.buckets.delete(k);
      }
      b = { tokens: rate, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    const need = Math.min(n, rate);
    if (b.tokens < need) {
      // Counted in the namespace here, so this hub must be in its directory (its /stats asks only those).
      if (!this.nsRegistered.has(ns)) await this._nsHere(ns);
      this._count(ns, 'rateLimited', n);
      this._countsChanged();
      return { retryAfterMs: Math.ceil(((need - b.tokens) / rate) * 1000) };
    }
    b.tokens -= n;
    return {};
  }

  /**
   * Bytes of an envelope: its payload as JSON in UTF-8 (as the publisher's check measured it, else
   * measured once, alike: none for a clearing message), headers, topic, id and key: what limits of
   * bytes (history, retained values, a replay, a forward) count. A message put back after a wake
   * weighs what it weighed when it was published, so the limits cut where they did.
   */
  _sizeOf(env) {
    let n = this.sizes.get(env);
    if (n === undefined) {
      n = (env.payload === undefined ? 0 : utf8Length(JSON.stringify(env.payload))) + envelopeBytes(env);
      this.sizes.set(env, n);
    }
    return n;
  }

  /**
   * Queues an item for a home hub: one RPC per home per microtask, split so that no call carries
   * more than FORWARD_MAX_BYTES of payloads (the RPC limit is 32 MiB). Forwards to one home go in
   * order, each retried up to FORWARD_ATTEMPTS times with backoff.
   */
  forward(home, item, pattern) {
    let box = this.boxes.get(home);
    if (box !== undefined && pattern !== undefined && box.last === item) {
      box.patterns.add(pattern); // one message, several patterns of the same home: once
      this.collect?.add(box);
      return;
    }
    const n = this._sizeOf(item.e ?? item);
    if (box !== undefined && box.items.length > 0 && box.bytes + n > this.cfg.FORWARD_MAX_BYTES) {
      this.boxes.delete(home);
      this._sendBox(home, box);
      box = undefined;
    }
    if (box === undefined) {
      box = { home, items: [], last: undefined, patterns: new Set(), bytes: 0, failed: undefined, done: undefined, settle: undefined, result: undefined };
      box.done = new Promise((resolve) => { box.settle = resolve; });
      this.boxes.set(home, box);
    }
    if (pattern !== undefined) {
      box.patterns.add(pattern);
      box.last = item;
    }
    box.items.push(item);
    box.bytes += n;
    this.collect?.add(box);
    if (!this.boxQueued) {
      this.boxQueued = true;
      Promise.resolve().then(() => this._sendBoxes()); // a microtask (queueMicrotask is a call out of the isolate)
    }
  }

  _sendBoxes() {
    this.boxQueued = false;
    const boxes = this.boxes;
    this.boxes = new Map();
    for (const [home, box] of boxes) this._sendBox(home, box);
    if (boxes.size > 0) this._countsSoon(); // written before a forward leaves (_sendBox) or a frame
  }

  _sendBox(home, box) {
    this.counts.forwarded += box.items.length;
    const patterns = [...box.patterns];
    if (home === this.index) {
      this.receive(this.index, box.items, patterns).then((r) => {
        box.result = r;
        this._cleanup(home, r);
      }).finally(box.settle);
      return;
    }
    const send = async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          // The counts behind this forward are stored first (the output gate holds the call until then).
          this._countsBeforeSend();
          box.result = await this._peer(home).receive(home, box.items, patterns);
          this._cleanup(home, box.result);
          return;
        } catch (e) {
          if (attempt >= this.cfg.FORWARD_ATTEMPTS) {
            box.failed = e?.message ?? String(e);
            this.counts.forwardFailed += box.items.length;
            this._error(`forwarding ${box.items.length} message(s) to hub ${home} failed ${attempt} times`, e);
            return;
          }
          this.counts.forwardRetries += box.items.length;
          this._countsChanged();
          await new Promise((r) => setTimeout(r, 50 * 4 ** (attempt - 1)));
        }
      }
    };
    const chain = (this.homeChains.get(home) ?? Promise.resolve()).then(send).finally(box.settle);
    this.homeChains.set(home, chain);
    chain.then(() => {
      if (this.homeChains.get(home) === chain) this.homeChains.delete(home);
    });
  }

  /** Drops interests and members a home no longer has (after its connections were lost). */
  _cleanup(home, r) {
    if (r === undefined) return;
    for (const sp of r.stalePatterns) {
      const [ns, p] = splitOnce(sp, ' ');
      this.removeInterest(this.index, home, p, ns);
    }
    for (const [conn, sub] of r.goneMembers) this.streams.leave(home, conn, sub, 'the consumer\'s connection is gone');
  }

  // ----- requests -------------------------------------------------------------------------------
  //
  // As the requester's home: a request is opened in the tracker waiting for one report, the
  // owner's: how many subscriptions (on every home it forwarded the request to) it reached. Each
  // responder's answer comes back here by the hub index in the request's token; the tracker says
  // what it does (the core's rules, as for a Bus), and the requester gets `reply` and `end` frames.
  // As a responder's home: a request delivered to a connection's subscription is remembered there
  // (c.asked) until the client answers it; an answer for anything else is refused.

  /** Opens a request of connection `c` (its `ref`); returns its token. */
  openRequest(c, ref, max, timeoutMs) {
    const id = this.tracker.open({ max, reports: 1, timeoutMs });
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    const token = `${this.index}.${btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}`;
    const r = { c, ref, id, token, reached: undefined, failure: undefined };
    this.reqs.set(token, r);
    this.reqsById.set(id, r);
    c.reqs.set(ref, token);
    this._armRequestTimer();
    return token;
  }

  /** The owner's report: the request reached `responders` subscriptions. */
  requestReached(token, responders) {
    const r = this.reqs.get(token);
    if (r === undefined) return;
    r.reached = responders;
    const v = this.tracker.reached(r.id, 0, responders);
    if (v === 'noResponders') {
      this._count(r.c.ns, 'noResponders');
      this._endRequest(r, 'NO_RESPONDERS', responders === 0
        ? 'no subscription matches the request\'s topic'
        : 'every subscription the request reached completed without a reply');
    } else if (v === 'failed') {
      this._endRequest(r, 'HANDLER_FAILED', r.failure);
    } else if (v === 'replied') {
      this._endRequest(r);
    }
  }

  /** The request could not be published (refused by its owner, or the owner unavailable). */
  requestRefused(token, e) {
    const r = this.reqs.get(token);
    if (r === undefined) return;
    this.tracker.cancel(r.id);
    this._endRequest(r, e.code ?? 'UNAVAILABLE', e.message);
  }

  /** The requester gives its request `ref` up. */
  cancelRequest(c, ref) {
    const token = c.reqs.get(ref);
    if (token === undefined) return;
    const r = this.reqs.get(token);
    if (r !== undefined) {
      this.tracker.cancel(r.id);
      this._forget(r);
    }
  }

  /** A responder's answer, for the requester's home `home` (this hub or another). */
  answerRequest(home, token, responder, kind, value) {
    if (home === this.index) {
      this._answered([[token, responder, kind, value]]);
      return;
    }
    let list = this.answersOut.get(home);
    if (list === undefined) {
      list = [];
      this.answersOut.set(home, list);
      if (this.answersOut.size === 1) {
        Promise.resolve().then(() => {
          const out = this.answersOut;
          this.answersOut = new Map();
          for (const [h, answers] of out) {
            this._peer(h).answered(h, answers).catch((e) => this._error(`answers to requests of hub ${h} were not delivered`, e));
          }
        });
      }
    }
    list.push([token, responder, kind, value]);
  }

  /** Answers from responders (RPC from their home hubs). */
  async answered(self, answers) {
    await this._enter(self);
    this._answered(answers);
  }

  _answered(answers) {
    for (const [token, responder, kind, value] of answers) {
      const r = this.reqs.get(token);
      if (r === undefined) {
        // Its request ended (or its hub restarted since): late, counted in no namespace it could name.
        this.counts.lateReplies++;
        continue;
      }
      const v = this.tracker.answer(r.id, responder, kind);
      const last = v.endsWith('Last');
      if (v === 'late') {
        this._count(r.c.ns, 'lateReplies');
      } else if (v === 'reply' || v === 'replyLast') {
        this._count(r.c.ns, 'replies');
        this._toRequester(r, last ? { t: 'reply', ref: r.ref, v: value, last: true } : { t: 'reply', ref: r.ref, v: value });
        if (last) this._forget(r);
      } else if (v === 'failed' || v === 'failedLast') {
        r.failure = `a responder failed: ${value}`;
        if (last) this._endRequest(r, 'HANDLER_FAILED', r.failure);
      } else if (v === 'completeLast') {
        // A gathering the core ended complete: the replies it took are its answer.
        this._endRequest(r);
      } else if (v === 'declinedFailedLast') {
        this._endRequest(r, 'HANDLER_FAILED', r.failure ?? 'a responder failed');
      } else if (v === 'declinedLast') {
        // Every responder answered, none with a reply, none failing.
        this._count(r.c.ns, 'noResponders');
        this._endRequest(r, 'NO_RESPONDERS', 'every subscription the request reached completed without a reply');
      }
    }
    this._countsChanged();
  }

  /** Remembers that request `token` was delivered to subscription `subId` of connection `c`. */
  _asked(c, token, subId) {
    let subs = c.asked.get(token);
    if (subs === undefined) {
      if (c.asked.size >= this.cfg.ASKED_REQUESTS) c.asked.delete(c.asked.keys().next().value);
      subs = new Map();
      c.asked.set(token, subs);
    }
    if (subs.has(subId)) return;
    this.answerSeq = (this.answerSeq % 2 ** 36) + 1;
    subs.set(subId, this.index * 2 ** 36 + this.answerSeq);
    if (this.askedNow !== undefined) this.askedNow.set(token, (this.askedNow.get(token) ?? 0) + 1);
  }

  /** Ends request `r` for its requester: `code` and `message` when it failed. */
  _endRequest(r, code, message) {
    this._forget(r);
    const f = { t: 'end', ref: r.ref };
    if (code !== undefined) {
      f.code = code;
      f.message = message;
    }
    if (r.reached !== undefined) f.reached = r.reached;
    this._toRequester(r, f);
  }

  _forget(r) {
    this.reqs.delete(r.token);
    this.reqsById.delete(r.id);
    if (r.c.reqs.get(r.ref) === r.token) r.c.reqs.delete(r.ref);
  }

  _toRequester(r, frame) {
    if (r.c.closed) return;
    this._count(r.c.ns, 'frames');
    try {
      r.c.ws.send(JSON.stringify(frame));
    } catch {
      // The socket closed meanwhile; webSocketClose cleans up.
    }
  }

  /** A timer for the earliest request deadline; due requests end with TIMEOUT (or, gathering, end). */
  _armRequestTimer() {
    const at = this.tracker.nextDeadline();
    if (at === undefined || at >= this.reqTimerAt) return;
    if (this.reqTimer !== undefined) clearTimeout(this.reqTimer);
    this.reqTimerAt = at;
    this.reqTimer = setTimeout(() => {
      this.reqTimer = undefined;
      this.reqTimerAt = Infinity;
      for (const id of this.tracker.due()) {
        const r = this.reqsById.get(id);
        if (r === undefined) continue;
        this._count(r.c.ns, 'requestTimeouts');
        this._endRequest(r, 'TIMEOUT', r.failure === undefined ? 'no reply in time' : `no reply in time (${r.failure})`);
      }
      this._countsChanged();
      this._armRequestTimer();
    }, Math.max(0, at - Date.now()));
  }

  // ----- dead letters (as the hub of a work-queue stream) -------------------------------------

  /**
   * A work-queue message that failed its last attempt (stored under `key` by groups.js): published
   * on `$dead.<group>` through its owner hub like any message, so plain subscribers of that topic
   * receive it and a work queue on it stores it. The stored letter is deleted once the owner took
   * it; until then it is retried with backoff, and again after a restart.
   */
  deadLetter(key, letter) {
    this.deadOutbox.set(key, letter);
    this._sendDeadSoon();
  }

  _sendDeadSoon(delay = 0) {
    if (this.deadTimer !== undefined || this.deadSending) return;
    this.deadTimer = setTimeout(() => {
      this.deadTimer = undefined;
      this._sendDead();
    }, delay);
  }

  async _sendDead() {
    if (this.deadSending || this.index < 0 || this.deadOutbox.size === 0) return;
    this.deadSending = true;
    const byOwner = new Map();
    for (const [key, letter] of this.deadOutbox) {
      const topic = `$dead.${letter.group}`;
      const owner = hubOfTopic(topic, this.cfg.HUBS, this.cfg.ROUTE_TOKENS);
      if (!byOwner.has(owner)) byOwner.set(owner, []);
      const { ns = DEFAULT_NS, ...payload } = letter;
      // Its id names the message by its id and topic (ids are per topic); its window key is its
      // outbox key (unique per dead message, kept across restarts): a letter handed over twice is
      // a duplicate, and no publish (of an id a publisher chose) makes a letter one.
      const id = `${letter.message.id}@${letter.topic}@${topic}`;
      byOwner.get(owner).push([key, { topic, payload, id, ns, dedupeId: `${this.index}:${key}` }]);
    }
    let failed = false;
    await Promise.all([...byOwner].map(async ([owner, rows]) => {
      try {
        await this._peer(owner).publish(owner, rows.map(([, m]) => m));
      } catch (e) {
        failed = true;
        this.counts.deadRetries += rows.length;
        this._error(`handing ${rows.length} dead letter(s) to hub ${owner} failed; retried with backoff`, e);
        return;
      }
      for (const [key, m] of rows) {
        this.deadOutbox.delete(key);
        this._nsCount(m.ns, 'deadPublished');
      }
      this.counts.deadPublished += rows.length;
      const deletes = [];
      for (let i = 0; i < rows.length; i += 128) deletes.push(this.ctx.storage.delete(rows.slice(i, i + 128).map(([key]) => key)));
      this._countsChanged();
      await Promise.all(deletes);
    }));
    this.deadSending = false;
    this._countsChanged();
    if (failed) this._sendDeadSoon(Math.min(30000, 500 * 2 ** Math.min(this.deadFailures++, 6)));
    else {
      this.deadFailures = 0;
      if (this.deadOutbox.size > 0) this._sendDeadSoon();
    }
  }

  // ----- delivering (as home) -------------------------------------------------------------------

  /** Messages from an owner hub (or this one) for the connections here. */
  async receive(self, items, patterns) {
    if (self !== this.index) await this._enter(self);
    const goneMembers = [];
    // Requests among the items: how many subscriptions of this hub's connections each reached.
    const asked = new Map();
    this.askedNow = asked;
    for (const it of items) {
      if (it.g === undefined) {
        this._bus('local', it.ns, false)?.publish(it.topic, it);
        continue;
      }
      const [connId, subId] = it.g;
      const c = this.conns.get(connId);
      if (c === undefined || c.subs.get(subId)?.group === undefined) {
        goneMembers.push(it.g);
        continue;
      }
      this._delivered(c, it.d, subId, it.o);
      c.last = undefined;
      this._push(c, { subs: [subId], env: it.e, d: it.d, a: it.a });
    }
    this.askedNow = undefined;
    return { stalePatterns: patterns.filter((p) => !this.wanted.has(p)), goneMembers, asked: [...asked] };
  }

  /**
   * Remembers a work-queue delivery to connection `c` until the client answers it: to refuse its
   * acknowledgement through another subscription at once, and to vouch for it to its owner (`boot`:
   * the owner instance that delivered it) once the owner restarted and forgot it. At most
   * DELIVERED_TOKENS per connection, for LATE_ACK_MAX_AGE_MS (the cap's evictions count
   * `tokensForgotten`); a token no longer remembered here is checked by its owner alone.
   */
  _delivered(c, d, sub, boot) {
    const { DELIVERED_TOKENS, LATE_ACK_MAX_AGE_MS } = this.cfg;
    this.counts.tokensForgotten += remember(c.delivered, d, { sub, boot, at: Date.now() }, DELIVERED_TOKENS, LATE_ACK_MAX_AGE_MS);
  }

  _toConn(c, subId, env) {
    if (env.rq !== undefined) this._asked(c, env.rq, subId);
    if (c.last === env) {
      c.lastEntry.subs.push(subId);
      return;
    }
    const entry = { subs: [subId], env };
    this._push(c, entry); // may flush the outbox (and reset `last`) first
    c.last = env;
    c.lastEntry = entry;
  }

  _push(c, entry) {
    // A full outbox leaves as a frame when the next message comes, not when it fills: its last
    // entry may still gain subscription ids (_toConn: the same message for another subscription
    // of this connection), which would otherwise arrive again in the next frame.
    if (c.outbox.length >= this.cfg.BATCH_MAX_MESSAGES) this._flushConn(c);
    if (c.outbox.length >= this.cfg.OUTBOX_LIMIT) {
      c.outbox.shift();
      c.droppedSinceFrame = (c.droppedSinceFrame ?? 0) + 1;
      this._count(c.ns, 'dropped');
    }
    c.outbox.push(entry);
    this.dirty.add(c);
    if (this.flushTimer === undefined) {
      const flush = () => {
        this.flushTimer = undefined;
        // Every frame of this flush is counted in one write, issued before the first send.
        this.sending ??= [];
        for (const d of this.dirty) this._flushConn(d);
        this.dirty.clear();
        this._sendFrames();
        this._countsBeforeSend(); // when no frame left (closed connections), counts of _countsSoon still are
      };
      // 0 (the default) is adaptive: the next macrotask, so input already queued (other frames,
      // forwards) shares the frame and frames grow with the backlog, without a fixed wait.
      this.flushTimer = setTimeout(flush, this.cfg.BATCH_MAX_WAIT_MS);
    }
  }

  _flushConn(c) {
    const entries = c.outbox;
    if (entries.length === 0 || c.closed) return;
    c.outbox = [];
    c.last = undefined;
    if (c.claims.exp * 1000 <= Date.now()) {
      this._expire(c);
      return;
    }
    const dropped = c.droppedSinceFrame ? `,"dropped":${c.droppedSinceFrame}` : '';
    c.droppedSinceFrame = 0;
    let frame;
    // Subscribers of the same topics get the same messages in the same order: the frame made for
    // the previous connection is this one's too when the entries are the same (the common fan-out).
    const prev = this.lastFrame;
    if (dropped === '' && prev !== undefined && sameEntries(prev.entries, entries)) {
      frame = prev.frame;
    } else {
      const parts = new Array(entries.length);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        const j = this._json(e.env);
        parts[i] = e.d === undefined ? `[${JSON.stringify(e.subs)},${j}]` : `[${JSON.stringify(e.subs)},${j},"${e.d}",${e.a}]`;
      }
      frame = `{"t":"msg","m":[${parts.join(',')}]${dropped}}`;
      this.lastFrame = dropped === '' ? { entries, frame } : undefined;
    }
    // Counted before it leaves, so the stored counters never trail what clients received.
    this._count(c.ns, 'frames');
    this._count(c.ns, 'delivered', entries.length);
    if (this.sending === undefined) {
      // A full outbox outside a flush: its frame leaves at the end of this turn, with the others
      // that fill meanwhile (a message for 100 connections fills 100 outboxes), after one write.
      this.sending = [];
      Promise.resolve().then(() => this._sendFrames());
    }
    this.sending.push([c, frame, entries.length]);
  }

  /**
   * A message's JSON as clients see it, made once for every frame that carries it and, at its
   * owner, taken by its stored row (logs.js `record`) when a frame made it first. `keep` false:
   * not cached (a row's own: a history holds its messages for minutes, and their JSON would be
   * held as long).
   */
  _json(env, keep = true) {
    let j = this.jsonCache.get(env);
    if (j === undefined) {
      j = JSON.stringify(visible(env));
      if (keep) this.jsonCache.set(env, j);
    }
    return j;
  }

  /** Sends the frames made ready (`sending`), after one write of the counters that include them. */
  _sendFrames() {
    const frames = this.sending;
    this.sending = undefined;
    this.lastFrame = undefined;
    if (frames === undefined || frames.length === 0) return;
    this._countsChanged();
    for (const [c, frame, n] of frames) this._sendFrame(c, frame, n);
  }

  _sendFrame(c, frame, n) {
    try {
      c.ws.send(frame);
    } catch (e) {
      this._count(c.ns, 'frames', -1);
      this._count(c.ns, 'delivered', -n);
      this._count(c.ns, 'dropped', n);
      this._error(`a frame of ${n} message(s) to connection ${c.id} could not be sent; dropped`, e);
    }
  }

  _expire(c) {
    this._count(c.ns, 'refused');
    this._countsChanged();
    try {
      c.ws.send(JSON.stringify({ t: 'err', code: 'TOKEN_EXPIRED', message: 'the bearer token expired; reconnect with a fresh one' }));
      c.ws.close(4401, 'token expired');
    } catch {
      // already closing
    }
    this._dropSocket(c.ws);
  }

  // ----- statistics -----------------------------------------------------------------------------

  /**
   * Counters survive hibernation, restarts and crashes: written when they change, in the same turn
   * as the state change they count (so in its implicit transaction; the output gate holds every
   * answer until both are stored). Several changes in one turn are one write.
   */
  _countsChanged() {
    this.countsDirty = false;
    this._flushLogs();
    this.ctx.storage.put('meta:counts', {
      ...this.counts, acked: this.streams.acked, lateAcks: this.streams.lateAcks, dead: this.streams.dead,
      deadNotPublished: this.streams.deadNotPublished,
    });
    if (this.nsDirty.size === 0) return;
    const dirty = [...this.nsDirty];
    this.nsDirty.clear();
    for (let i = 0; i < dirty.length; i += 128) {
      this.ctx.storage.put(Object.fromEntries(dirty.slice(i, i + 128).map((ns) => [`meta:ns:${ns}`, this.nsCounts.get(ns)])));
    }
  }

  /**
   * Writes the retained values and history rows waiting since their publishes (_logged): every
   * message's row in order (several per statement, their JSON the one their frames carry), then
   * each topic trimmed once, to what the core held after the last of them (from the log before
   * the first: a trim is to a window that only moves on, so the last one leaves what trimming
   * after each would have), with the other topics whose logs the core listed as changed
   * (_logsChanged).
   */
  _flushLogs() {
    if (this.logOps.length === 0) return;
    const ops = this.logOps;
    this.logOps = [];
    const trims = new Map(); // `<ns> <topic>` → { ns, topic, log, keep }
    const rows = [];
    for (const op of ops) {
      if (op.env !== undefined) rows.push(op);
      const key = `${op.ns} ${op.topic}`;
      const t = trims.get(key);
      if (t === undefined) trims.set(key, { ns: op.ns, topic: op.topic, log: op.log, keep: op.keep });
      else {
        t.log = op.log;
        // A retained value set since the first publish: the flags are rewritten. (A loss the
        // core listed after a publish of the topic is within what trimming from the log before
        // that publish covers: its window's start or its retained value moved, or it went.)
        if (op.keep === undefined && op.changed !== true) t.keep = undefined;
      }
    }
    this.logs.record(rows, (env) => this._json(env, false));
    for (const t of trims.values()) this.logs.trim(t.ns, t.topic, t.log, t.keep);
  }

  /**
   * Counters changed by a publish from a connection of this hub that stored nothing (no id, no
   * work-queue stream): written before the first thing that reflects them leaves (a frame, a
   * reply, a forward to another hub, a /stats answer: `_countsBeforeSend`, in the same turn as the
   * send, so the output gate holds it until they are stored), or on the next macrotask at the
   * latest (with the pending flush, if there is one: its frames and these counts in one write).
   * A crash before then loses only counts of messages nobody received nor was answered
   * about. Written at once instead, each publish frame of a backlog was its own storage commit,
   * which held a hub's intake near 1,000 frames per second on local workerd whatever the frames
   * out; now the frames queued for the hub are handled first and their counts are one write.
   */
  _countsSoon() {
    this.countsDirty = true;
    if (this.countsTimer !== undefined) return;
    this.countsTimer = setTimeout(() => {
      this.countsTimer = undefined;
      // A pending flush writes them with its frames (one write, one commit, for both).
      if (this.flushTimer === undefined) this._countsBeforeSend();
    }, 0);
  }

  /** Writes counters that _countsSoon left pending: call before anything that reflects them leaves. */
  _countsBeforeSend() {
    if (this.countsDirty) this._countsChanged();
  }

  /** Adds to a hub counter and to namespace `ns`'s share of it (written with the next _countsChanged). */
  _count(ns, key, n = 1) {
    this.counts[key] += n;
    this._nsCount(ns, key, n);
  }

  /** Adds to namespace `ns`'s share of a counter only (groups.js keeps the hub-wide ones itself). */
  _nsCount(ns = DEFAULT_NS, key, n = 1) {
    let counts = this.nsCounts.get(ns);
    if (counts === undefined) {
      counts = {};
      this.nsCounts.set(ns, counts);
    }
    counts[key] = (counts[key] ?? 0) + n;
    this.nsDirty.add(ns);
  }

  /**
   * Makes sure the directory of namespace `ns` (on hub nsDirectoryHub) lists this hub: once per hub
   * and namespace, stored, before this hub first counts or holds anything of it. A namespace's
   * /stats then asks only the hubs that served it. A directory that cannot be reached is logged
   * and asked again next time; the request goes on.
   */
  async _nsHere(ns) {
    if (this.nsRegistered.has(ns) || this.index < 0) return;
    let p = this.nsRegistering.get(ns);
    if (p === undefined) {
      const dir = nsDirectoryHub(ns, this.cfg.HUBS);
      p = this._peer(dir).nsJoin(dir, ns, this.index)
        .then(() => this.ctx.storage.put(`meta:nsreg:${ns}`, 1))
        .then(() => { this.nsRegistered.add(ns); })
        .catch((e) => this._error(`joining the directory of namespace ${ns} at hub ${dir} failed`, e))
        .finally(() => this.nsRegistering.delete(ns));
      this.nsRegistering.set(ns, p);
    }
    await p;
  }

  /** As the directory of namespace `ns`: records that hub `hub` serves it. */
  async nsJoin(self, ns, hub) {
    await this._enter(self);
    let hubs = this.nsDirectory.get(ns);
    if (hubs === undefined) {
      hubs = new Set();
      this.nsDirectory.set(ns, hubs);
    }
    if (hubs.has(hub)) return;
    hubs.add(hub);
    await this.ctx.storage.put(`nsdir:${ns}`, [...hubs]);
  }

  /** As the directory of namespace `ns`: the hubs that have served it. */
  async nsHubs(self, ns) {
    await this._enter(self);
    return [...(this.nsDirectory.get(ns) ?? [])].sort((a, b) => a - b);
  }

  /**
   * What the cores of these routing Buses hold for replay: `retained` values, `history` messages
   * and `logTopics`, in `logBytes`; `logEvicted`: what their limits evicted since this instance
   * started (gauges, not stored counters).
   */
  _logStats(buses) {
    const out = { retained: 0, history: 0, logTopics: 0, logBytes: 0, logEvicted: 0 };
    for (const bus of buses) {
      if (bus === undefined) continue;
      const l = bus.logStats();
      out.retained += l.retained;
      out.history += l.history;
      out.logTopics += l.topics;
      out.logBytes += l.bytes;
      out.logEvicted += l.evicted;
    }
    return out;
  }

  /** A hub error: counted (`errors`, besides its own counter) and logged with its context. */
  _error(what, e) {
    this.counts.errors++;
    this._countsChanged();
    console.error(`edgebus hub ${this.index} (${this.bootId}): ${what}:`, e);
  }

  /** Development only (worker.js `/admin/evict`): discards this instance as an eviction would. */
  async evict(self) {
    await this._enter(self);
    this.ctx.abort('evicted by /admin/evict');
  }

  /**
   * This hub's figures: every namespace's (the admin view), or namespace `ns`'s only (its
   * counters, connections, subscriptions and streams; no instance id).
   */
  async stats(self, ns) {
    await this._enter(self);
    this._countsBeforeSend(); // no answer shows counts that are not stored
    if (ns !== undefined) {
      let connections = 0;
      let subscriptions = 0;
      for (const c of this.conns.values()) {
        if (c.ns !== ns) continue;
        connections++;
        subscriptions += c.subs.size;
      }
      const counts = Object.fromEntries(NS_COUNTERS.map((k) => [k, this.nsCounts.get(ns)?.[k] ?? 0]));
      return { connections, subscriptions, ...counts, ...this._logStats([this._bus('routing', ns, false)]), groups: this.streams.stats(ns) };
    }
    let subscriptions = 0;
    for (const c of this.conns.values()) subscriptions += c.subs.size;
    return {
      hub: this.index, boot: this.bootId, connections: this.conns.size, subscriptions, interests: this.interests.size,
      ...this.counts, ...this._logStats([this.routing, ...[...this.nsBuses].filter(([k]) => k.startsWith('routing|')).map(([, b]) => b)]),
      groups: this.streams.stats(), acked: this.streams.acked, lateAcks: this.streams.lateAcks,
      dead: this.streams.dead, deadPending: this.deadOutbox.size, deadNotPublished: this.streams.deadNotPublished,
    };
  }
}

/** What an envelope carries besides its payload: its headers as JSON, topic, id, key, and some framing. */
function envelopeBytes(env) {
  return (env.headers === undefined ? 0 : JSON.stringify(env.headers).length) + (env.topic?.length ?? 0) +
    (env.id?.length ?? 0) + (env.key?.length ?? 0) + 64;
}

/** Whether two outboxes make the same frame: the same messages, subscription ids, no work-queue delivery. */
function sameEntries(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.env !== y.env || x.d !== undefined || y.d !== undefined || x.subs.length !== y.subs.length) return false;
    for (let k = 0; k < x.subs.length; k++) if (x.subs[k] !== y.subs[k]) return false;
  }
  return true;
}

function splitOnce(s, sep) {
  const i = s.indexOf(sep);
  return [s.slice(0, i), s.slice(i + 1)];
}
