// Durable work queues on the hub that owns their topics.
//
// A stream is one queue group on one pattern (`group` + `pattern`), owned by the hub of the
// pattern's literal prefix. Each stream runs its own wasm `Bus` with one group member per remote
// consumer (a subscription on some connection, on this hub or another): the member's handler
// returns a promise that the consumer's ack resolves (nack rejects it), so the core's retries,
// backoff, ack deadlines, per-key order and dead letters apply unchanged. A stream has its own bus
// so that a message stored for one group can be given back to exactly that group after a restart.
//
// Durability: a message for a stream is written to storage (`q:<sid>:<time>:<n>`) before the
// publisher is answered, and deleted when a consumer acknowledges it (dead letters move to
// `dead:`, and wait in `dq:` until the owner of `$dead.<group>` took them). Stream definitions
// (`g:`) and members (`gm:`) are stored too. After a restart the stored messages wait until
// members are confirmed alive, then are delivered again (at least once).
//
// Namespaces: a stream belongs to the namespace of the token that created it; group names, the
// topic index and `$dead.<group>` are per namespace, so equal names in two namespaces are two
// streams. Delivery tokens are 128 random bits, bound to the member they were delivered to: an
// acknowledgement from any other member is refused (FORBIDDEN) and changes nothing.
import { Bus } from 'edgebus';
import { DEFAULT_NS } from './auth.js';
import { EdgeError } from './errors.js';

const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function checkGroupName(group) {
  if (typeof group !== 'string' || !GROUP_NAME.test(group)) {
    throw new EdgeError('INVALID_OPTION', `group must be 1-64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(group)}`);
  }
}

function memberKey(home, conn, sub) {
  return `${home}|${conn}|${sub}`;
}

/** A stream's key; the default namespace's keys are those of before namespaces (stored streams stay). */
function streamKey(ns, group, pattern) {
  return ns === DEFAULT_NS ? `${group} ${pattern}` : `${ns}/${group} ${pattern}`;
}

/** An unguessable delivery token: 128 random bits, base64url. */
function deliveryToken() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** A message as its consumers see it: without the hub's internal namespace field. */
export function visible(env) {
  if (env?.ns === undefined) return env;
  const rest = { ...env };
  delete rest.ns;
  return rest;
}

export class Streams {
  constructor(hub) {
    this.hub = hub;
    this.streams = new Map();   // key → stream
    this.pending = new Map();   // delivery token → { resolve, reject, stream, member, id }
    this.indexes = new Map();   // namespace → Bus with one plain subscription per stream pattern
    this.matched = [];
    this.nextSid = 1;
    this.seq = 0;
    this.acked = 0;
    this.lateAcks = 0;
    this.dead = 0;
    this.deadNotPublished = 0;
  }

  /** Loads definitions, members and stored messages. Remote members wait for `verify`. */
  async load(storage) {
    this.nextSid = (await storage.get('g:next')) ?? 1;
    for (const [k, def] of await storage.list({ prefix: 'g:' })) {
      if (k !== 'g:next') this._open(def);
    }
    const bySid = new Map([...this.streams.values()].map((s) => [s.sid, s]));
    for (const [k, env] of await storage.list({ prefix: 'q:' })) {
      const s = bySid.get(Number(k.split(':')[1]));
      if (s === undefined) continue;
      s.records.set(env.id, k);
      s.waiting.push(env);
    }
    for (const [k, m] of await storage.list({ prefix: 'gm:' })) {
      const s = this.streams.get(m.stream);
      if (s !== undefined) s.unverified.push({ key: k, ...m });
    }
    for (const s of this.streams.values()) s.verified = s.unverified.length === 0;
  }

  /** Confirms stored members with their home hubs (outside the load, so hubs never wait on each other). */
  async verify(liveConns) {
    for (const s of this.streams.values()) {
      if (s.verified) continue;
      const rows = s.unverified.splice(0);
      for (const m of rows) {
        let alive;
        try {
          alive = (await liveConns(m.home, [m.conn])).includes(m.conn);
        } catch {
          alive = false;
        }
        if (alive) this._addMember(s, m.home, m.conn, m.sub);
        else this.hub.ctx.storage.delete(m.key);
      }
      s.verified = true;
      this._feed(s);
    }
  }

  _open(def) {
    const s = {
      ns: DEFAULT_NS, ...def, bus: new Bus({ maxQueue: Infinity }), members: new Map(), waiting: [], records: new Map(),
      unverified: [], verified: true, tokenById: new Map(), done: 0, redelivered: 0, dead: 0,
    };
    this.streams.set(def.key, s);
    if (def.sid >= this.nextSid) this.nextSid = def.sid + 1;
    let index = this.indexes.get(s.ns);
    if (index === undefined) {
      index = new Bus();
      this.indexes.set(s.ns, index);
    }
    index.subscribe(def.pattern, () => { this.matched.push(s); });
    s.bus.subscribe(`$dead.${def.group}`, (dead) => this._dead(s, dead));
    return s;
  }

  /** Streams of namespace `ns` a topic reaches (valid topic). */
  route(topic, ns = DEFAULT_NS) {
    this.matched.length = 0;
    this.indexes.get(ns)?.publish(topic, null);
    return this.matched;
  }

  /** A new stored message: the key it is stored under (the caller persists before enqueueing). */
  storageKey(s, env) {
    this.seq = (this.seq + 1) % 1e6;
    return `q:${s.sid}:${String(env.publishedAt).padStart(14, '0')}:${String(this.seq).padStart(6, '0')}`;
  }

  enqueue(s, env, key) {
    s.records.set(env.id, key);
    if (s.members.size === 0 || !s.verified) s.waiting.push(env);
    else s.bus.publish(env.topic, env, env.key === undefined ? { id: env.id } : { id: env.id, key: env.key });
  }

  _feed(s) {
    if (s.members.size === 0 || !s.verified) return;
    for (const env of s.waiting.splice(0)) {
      if (s.records.has(env.id)) s.bus.publish(env.topic, env, env.key === undefined ? { id: env.id } : { id: env.id, key: env.key });
    }
  }

  async join(home, conn, sub, pattern, group, opts, ns = DEFAULT_NS) {
    checkGroupName(group);
    const key = streamKey(ns, group, pattern);
    let s = this.streams.get(key);
    const want = { maxAttempts: opts.maxAttempts, ackTimeoutMs: opts.ackTimeoutMs };
    if (s === undefined) {
      const def = { key, sid: this.nextSid++, group, pattern, ...want };
      if (ns !== DEFAULT_NS) def.ns = ns;
      await this.hub.ctx.storage.put({ 'g:next': this.nextSid, [`g:${key}`]: def });
      s = this._open(def);
    } else if (s.maxAttempts !== want.maxAttempts || s.ackTimeoutMs !== want.ackTimeoutMs) {
      throw new EdgeError('INVALID_OPTION', `group \`${group}\` on \`${pattern}\` has maxAttempts ${s.maxAttempts} and ackTimeoutMs ${s.ackTimeoutMs}; members must agree`);
    }
    await this.hub.ctx.storage.put(`gm:${key}|${memberKey(home, conn, sub)}`, { stream: key, home, conn, sub });
    this._addMember(s, home, conn, sub);
    this._feed(s);
  }

  _addMember(s, home, conn, sub) {
    const mk = memberKey(home, conn, sub);
    if (s.members.has(mk)) return;
    const member = { home, conn, sub, key: mk, tokens: new Set(), subscription: undefined };
    member.subscription = s.bus.subscribe(s.pattern, (env, msg) => this._deliver(s, member, env, msg.attempt), {
      group: s.group, maxAttempts: s.maxAttempts, ackTimeoutMs: s.ackTimeoutMs, concurrency: 100,
    });
    s.members.set(mk, member);
  }

  _deliver(s, member, env, attempt) {
    return new Promise((resolve, reject) => {
      const d = deliveryToken();
      const previous = s.tokenById.get(env.id);
      if (previous !== undefined) this.pending.delete(previous);
      if (attempt > 1) s.redelivered++;
      s.tokenById.set(env.id, d);
      this.pending.set(d, { resolve, reject, s, member, id: env.id });
      member.tokens.add(d);
      this.hub.forward(member.home, { g: [member.conn, member.sub], e: env, d, a: attempt });
    });
  }

  /**
   * Acknowledges (ok) or refuses deliveries on behalf of member `from` ({ home, conn, sub, ns }).
   * Tokens unknown here (late, or from before a restart) are counted as late; tokens delivered to
   * another member are refused and counted. Returns the storage keys to delete and the refusals.
   */
  ack(tokens, ok, reason, from) {
    const deletes = [];
    let forbidden = 0;
    const mk = memberKey(from.home, from.conn, from.sub);
    for (const d of tokens) {
      const p = this.pending.get(d);
      if (p === undefined) {
        this.lateAcks++;
        this.hub._nsCount(from.ns, 'lateAcks');
        continue;
      }
      if (p.member.key !== mk) {
        forbidden++;
        continue;
      }
      this.pending.delete(d);
      p.member.tokens.delete(d);
      if (p.s.tokenById.get(p.id) === d) p.s.tokenById.delete(p.id);
      if (ok) {
        const key = p.s.records.get(p.id);
        if (key !== undefined) { deletes.push(key); p.s.records.delete(p.id); }
        p.s.done++;
        this.acked++;
        this.hub._nsCount(p.s.ns, 'acked');
        p.resolve();
      } else {
        p.reject(new Error(typeof reason === 'string' ? reason.slice(0, 500) : 'refused by the consumer'));
      }
    }
    return { deletes, forbidden };
  }

  leave(home, conn, sub, reason = 'the consumer left') {
    for (const [key, s] of this.streams) {
      const mk = memberKey(home, conn, sub);
      const member = s.members.get(mk);
      if (member === undefined) continue;
      s.members.delete(mk);
      member.subscription.unsubscribe();
      for (const d of member.tokens) {
        const p = this.pending.get(d);
        this.pending.delete(d);
        if (p !== undefined) p.reject(new Error(reason));
      }
      this.hub.ctx.storage.delete(`gm:${key}|${mk}`);
    }
  }

  /**
   * A message that failed its last attempt: archived under `dead:` and written to the
   * dead-letter outbox (`dq:`) until the hub that owns `$dead.<group>` has taken it (hub.js
   * `deadLetter`). A dead letter of a message that was itself on a `$dead.` topic is archived and
   * counted but not published again: a failing dead-letter consumer must not feed itself forever.
   */
  _dead(s, dead) {
    const env = dead.message?.payload;
    const key = s.records.get(env?.id);
    this.dead++;
    s.dead++;
    this.hub._nsCount(s.ns, 'dead');
    this.hub._countsChanged();
    // The last delivery's token (an ack timeout leaves it pending): acknowledging it now is late.
    const d = s.tokenById.get(env?.id);
    if (d !== undefined) {
      s.tokenById.delete(env.id);
      this.pending.get(d)?.member.tokens.delete(d);
      this.pending.delete(d);
    }
    if (key === undefined) return;
    s.records.delete(env.id);
    const storage = this.hub.ctx.storage;
    const rest = key.slice(2);
    storage.put(`dead:${rest}`, { ...env, group: s.group, attempts: dead.attempts, error: dead.error });
    const message = visible(env);
    storage.delete(key);
    if (env.topic.startsWith('$dead.')) {
      this.deadNotPublished++;
      return;
    }
    // `ns` travels beside the letter to its `$dead` owner and is not part of its payload.
    const letter = { group: s.group, topic: env.topic, attempts: dead.attempts, error: dead.error, message };
    if (s.ns !== DEFAULT_NS) letter.ns = s.ns;
    storage.put(`dq:${rest}`, letter);
    this.hub.deadLetter(`dq:${rest}`, letter);
  }

  /** Per-stream figures: every stream, or those of namespace `ns`. */
  stats(ns) {
    const rows = [...this.streams.values()].filter((s) => ns === undefined || s.ns === ns);
    return rows.map((s) => ({
      ...(ns === undefined ? { ns: s.ns } : {}), group: s.group, pattern: s.pattern, members: s.members.size, stored: s.records.size,
      waiting: s.waiting.length, inFlight: [...s.members.values()].reduce((n, m) => n + m.tokens.size, 0),
      done: s.done, redelivered: s.redelivered, dead: s.dead,
    }));
  }
}
