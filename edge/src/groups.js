// Durable work queues on the hub that owns their topics.
//
// A stream is one work queue (`group` + `pattern`) as this hub stores it: the code and the
// `STREAM_*` settings say stream, the documentation says work queue, for the same thing. It is
// owned by the hub of the pattern's literal prefix. Each stream runs wasm `Bus`es with one group member per remote
// consumer (a subscription on some connection, on this hub or another): the member's handler
// returns a promise that the consumer's ack resolves (nack rejects it), so the core's retries,
// backoff, ack deadlines, per-key order and dead letters apply unchanged.
//
// Durability: a message for a stream is a row of the SQLite table `msgs` (stream id, sequence,
// time, bytes, attempts so far, the message) written in the same turn as the publish is answered,
// and deleted when a consumer acknowledges it (dead letters move to `dead:` keys, and wait in `dq:`
// until the owner of `$dead.<group>` took them). Stream definitions and counters (`g:`) and
// members (`gm:`) are stored too. After a restart the stored messages wait until members are
// confirmed alive, then are delivered again (at least once).
//
// Paging: only up to `STREAM_PAGE` messages of a stream are in memory (in its buses); the rest
// stay in storage and are read in sequence order as deliveries finish, so a wake never reads a
// whole stream.
//
// Attempts: each delivery's attempt number is written to the message's row before the delivery
// leaves. A message reloaded after a restart with `n` attempts already made is published into the
// stream's bus with the publish option `attempts: n`: the core counts from there (the next
// delivery is attempt `n + 1`, `maxAttempts` bounds the total) and decides retries and dead
// letters; one that already had all its attempts (the last one never acknowledged before the
// restart) is a dead letter without a further delivery. Reloaded and new messages share the one
// bus, so per-key order holds across restarts.
//
// Limits (config.js): per stream at most `STREAM_MAX_MESSAGES` messages and `STREAM_MAX_BYTES`
// bytes (a new message drops the oldest ones, like the bus's `dropOldest`; counted `dropped`),
// messages older than `STREAM_MAX_AGE_MS` expire (counted `expired`), and a stream with no members
// and no publish, join or leave for `STREAM_IDLE_MS` is deleted with its messages (counted).
//
// Namespaces: a stream belongs to the namespace of the token that created it; group names, the
// topic index and `$dead.<group>` are per namespace, so equal names in two namespaces are two
// streams.
//
// Acknowledgements: delivery tokens are 128 random bits, bound to the member they were delivered
// to. A token is *pending* from its delivery until its member acknowledges or refuses it, its ack
// deadline passes (the message is delivered again, perhaps to another member), the message dies or
// the member leaves; then it is *retired*: remembered with its member in `retired`, the LATE_ACK_TOKENS most recent
// ones of each namespace for LATE_ACK_MAX_AGE_MS (the cap's evictions count `tokensForgotten`). `ack` classifies each
// token an acknowledgement names (see there): pending for this member (applied), late (counted
// `lateAcks`, changes nothing) or refused (FORBIDDEN, counted `forbiddenAcks` by the hub). Neither
// pending nor retired tokens are stored: an instance that restarted knows none of the earlier
// ones, and a token it did not deliver is late only when the member's home vouches that an
// earlier instance of this hub delivered it to that very subscription (hub.js `_delivered`).
import { Bus, EdgebusError } from 'edgebus';
import { DEFAULT_NS } from './auth.js';

const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
const encoder = new TextEncoder();

export function checkGroupName(group) {
  if (typeof group !== 'string' || !GROUP_NAME.test(group)) {
    throw new EdgebusError('INVALID_OPTION', `group must be 1-64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(group)}`);
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

/**
 * Adds `key` → `value` (with `at`, its time) to `map`, a memory in insertion order bounded by `cap`
 * entries and `maxAgeMs`: the oldest beyond either go. Returns how many the cap evicted before
 * their age (to be counted).
 */
export function remember(map, key, value, cap, maxAgeMs) {
  map.set(key, value);
  let forgotten = 0;
  for (const [k, x] of map) {
    const fresh = value.at - x.at <= maxAgeMs;
    if (map.size > cap) {
      if (fresh) forgotten++;
    } else if (fresh) {
      break;
    }
    map.delete(k);
  }
  return forgotten;
}

function pad(seq) {
  return String(seq).padStart(12, '0');
}

const STREAM_COUNTS = ['done', 'redelivered', 'dead', 'dropped', 'expired'];

export class Streams {
  constructor(hub) {
    this.hub = hub;
    this.cfg = hub.cfg;
    this.sql = hub.ctx.storage.sql;
    this.streams = new Map();   // key → stream
    this.pending = new Map();   // delivery token → { resolve, reject, s, member, seq }
    this.retired = new Map();   // namespace → Map(delivery token → { key, at } (member key)): no longer pending, oldest first
    this.indexes = new Map();   // namespace → Bus with one plain subscription per stream pattern
    this.matched = [];
    this.nextSid = 1;
    this.acked = 0;
    this.lateAcks = 0;
    this.dead = 0;
    this.deadNotPublished = 0;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS msgs (sid INTEGER NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
      bytes INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, env TEXT NOT NULL, PRIMARY KEY (sid, seq))`);
  }

  /** Loads definitions and members, and counts stored messages (read later, a page at a time). */
  async load(storage) {
    this.nextSid = (await storage.get('g:next')) ?? 1;
    for (const [k, def] of await storage.list({ prefix: 'g:' })) {
      if (k !== 'g:next') this._open(def);
    }
    const bySid = new Map([...this.streams.values()].map((s) => [s.sid, s]));
    await this._migrate(storage, bySid);
    // One aggregate per stream (no message is read): counts for the limits, and the last publish,
    // which is activity for the idle deletion (not written to the definition on every publish).
    for (const row of this.sql.exec('SELECT sid, count(*) AS n, sum(bytes) AS b, max(seq) AS m, max(at) AS t FROM msgs GROUP BY sid')) {
      const s = bySid.get(row.sid);
      if (s === undefined) continue;
      s.count = row.n;
      s.bytes = row.b;
      s.nextSeq = row.m + 1;
      s.touched = Math.max(s.touched, row.t);
    }
    for (const [k, m] of await storage.list({ prefix: 'gm:' })) {
      const s = this.streams.get(m.stream);
      if (s !== undefined) s.unverified.push({ key: k, ...m });
    }
    for (const s of this.streams.values()) s.verified = s.unverified.length === 0;
  }

  /** Messages stored by an earlier version as `q:` keys move into the table once. */
  async _migrate(storage, bySid) {
    const old = await storage.list({ prefix: 'q:' });
    if (old.size === 0) return;
    const seqs = new Map();
    for (const [k, env] of old) {
      const sid = Number(k.split(':')[1]);
      if (bySid.has(sid)) {
        const seq = (seqs.get(sid) ?? 0) + 1;
        seqs.set(sid, seq);
        const json = JSON.stringify(env);
        this.sql.exec('INSERT INTO msgs (sid, seq, at, bytes, attempts, env) VALUES (?, ?, ?, ?, 0, ?)',
          sid, seq, env.publishedAt ?? Date.now(), encoder.encode(json).length, json);
      }
    }
    const keys = [...old.keys()];
    for (let i = 0; i < keys.length; i += 128) await storage.delete(keys.slice(i, i + 128));
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
        } catch (e) {
          console.error(`edgebus hub ${this.hub.index}: could not confirm member ${m.conn} of \`${s.group}\` with hub ${m.home}; dropped:`, e);
          alive = false;
        }
        if (alive) this._addMember(s, m.home, m.conn, m.sub);
        else this.hub.ctx.storage.delete(m.key);
      }
      s.verified = true;
      if (!this.streams.has(s.key)) continue; // deleted meanwhile
      this._fill(s);
    }
  }

  _open(def) {
    const s = {
      ns: DEFAULT_NS, ...def, bus: new Bus({ maxQueue: Infinity }), subs: new Map(), members: new Map(), mem: new Map(), unverified: [], verified: true,
      tokenBySeq: new Map(), count: 0, bytes: 0, nextSeq: 1, cursor: 0,
    };
    for (const k of STREAM_COUNTS) s[k] = def[k] ?? 0;
    s.touched = def.touched ?? Date.now();
    this.streams.set(def.key, s);
    if (def.sid >= this.nextSid) this.nextSid = def.sid + 1;
    let index = this.indexes.get(s.ns);
    if (index === undefined) {
      index = new Bus();
      this.indexes.set(s.ns, index);
    }
    s.indexSub = index.subscribe(def.pattern, () => { this.matched.push(s); });
    s.bus.subscribe(`$dead.${s.group}`, (dead) => this._dead(s, dead));
    return s;
  }

  /** A member's subscription to the stream's bus. */
  _subscribeMember(s, member) {
    s.subs.set(member.key, s.bus.subscribe(s.pattern, (seq, msg) => this._deliver(s, member, seq, msg.attempt), {
      group: s.group, maxAttempts: s.maxAttempts, ackTimeoutMs: s.ackTimeoutMs, concurrency: 100,
    }));
  }

  /** Streams of namespace `ns` a topic reaches (valid topic). */
  route(topic, ns = DEFAULT_NS) {
    this.matched.length = 0;
    this.indexes.get(ns)?.publish(topic, null);
    return this.matched;
  }

  /** Stores a new message of stream `s` (synchronously, in the caller's turn) and delivers it when it fits the page. */
  store(s, env, now) {
    const json = JSON.stringify(env);
    const bytes = encoder.encode(json).length;
    const seq = s.nextSeq++;
    this.sql.exec('INSERT INTO msgs (sid, seq, at, bytes, attempts, env) VALUES (?, ?, ?, ?, 0, ?)', s.sid, seq, now, bytes, json);
    s.count++;
    s.bytes += bytes;
    s.touched = now;
    this._limit(s, now);
    this._fill(s);
  }

  /**
   * Expires the oldest messages over the age limit and drops the oldest over the count and byte
   * limits (the bus's `dropOldest`). Reads only the head of the stream (sequence order is time order).
   */
  _limit(s, now) {
    const { STREAM_MAX_MESSAGES, STREAM_MAX_BYTES, STREAM_MAX_AGE_MS } = this.cfg;
    const cutoff = now - STREAM_MAX_AGE_MS;
    let changed = false;
    for (let more = s.count > 0; more;) {
      const over = s.count > STREAM_MAX_MESSAGES || s.bytes > STREAM_MAX_BYTES;
      const n = over ? Math.min(256, Math.max(1, s.count - STREAM_MAX_MESSAGES)) : 1;
      const rows = [...this.sql.exec('SELECT seq, at, bytes FROM msgs WHERE sid = ? ORDER BY seq LIMIT ?', s.sid, n)];
      more = rows.length > 0;
      for (const r of rows) {
        if (r.at <= cutoff) this._remove(s, r.seq, r.bytes, 'expired');
        else if (s.count > STREAM_MAX_MESSAGES || s.bytes > STREAM_MAX_BYTES) this._remove(s, r.seq, r.bytes, 'dropped');
        else {
          more = false;
          break;
        }
        changed = true;
      }
      if (s.count === 0) more = false;
    }
    if (changed) this._saveDef(s);
  }

  /** Deletes a stored message that no delivery finished (a limit): counted, and skipped if it is in memory. */
  _remove(s, seq, bytes, why) {
    this.sql.exec('DELETE FROM msgs WHERE sid = ? AND seq = ?', s.sid, seq);
    s.count--;
    s.bytes -= bytes;
    s[why]++;
    this.hub.counts[why === 'dropped' ? 'streamDropped' : 'streamExpired']++;
    this.hub._countsChanged();
    const e = s.mem.get(seq);
    if (e !== undefined) e.removed = true;
  }

  /** Reads stored messages into the buses up to a page, in sequence order, once members can take them. */
  _fill(s) {
    if (s.filling) return;
    s.filling = true;
    try {
      while (this._fillOnce(s));
    } finally {
      s.filling = false;
    }
  }

  /** One read of stored messages; true when another may be needed. */
  _fillOnce(s) {
    if (s.members.size === 0 || !s.verified || this.streams.get(s.key) !== s) return false;
    const room = this.cfg.STREAM_PAGE - s.mem.size;
    if (room <= 0 || s.cursor >= s.nextSeq - 1) return false;
    const now = Date.now();
    const rows = [...this.sql.exec('SELECT seq, at, bytes, attempts, env FROM msgs WHERE sid = ? AND seq > ? ORDER BY seq LIMIT ?', s.sid, s.cursor, room)];
    if (rows.length === 0) {
      s.cursor = s.nextSeq - 1;
      return false;
    }
    let finished = false;
    for (const r of rows) {
      s.cursor = r.seq;
      const env = JSON.parse(r.env);
      const e = { seq: r.seq, env, bytes: r.bytes, attempts: r.attempts, removed: false };
      if (r.at <= now - this.cfg.STREAM_MAX_AGE_MS) {
        this._remove(s, r.seq, r.bytes, 'expired');
        this._saveDef(s);
        finished = true;
        continue;
      }
      s.mem.set(r.seq, e);
      // The core counts the attempts made before (a restart) and decides what comes next; one
      // that had them all is dead at once (`_dead`, in this call: the page may refill).
      const o = { id: env.id, attempts: r.attempts };
      if (env.key !== undefined) o.key = env.key;
      s.bus.publish(env.topic, r.seq, o);
      if (!s.mem.has(r.seq)) finished = true;
    }
    return finished || rows.length === room;
  }

  /** A message of the page is finished (acknowledged, dead, or removed): out of memory; the page refills. */
  _finish(s, e) {
    s.mem.delete(e.seq);
    if (this.streams.get(s.key) === s) this._fill(s);
  }

  async join(home, conn, sub, pattern, group, opts, ns = DEFAULT_NS) {
    checkGroupName(group);
    const key = streamKey(ns, group, pattern);
    let s = this.streams.get(key);
    const want = { maxAttempts: opts.maxAttempts, ackTimeoutMs: opts.ackTimeoutMs };
    const now = Date.now();
    if (s === undefined) {
      // A tenant's work queues at this hub are bounded: each holds memory, storage and a copy of
      // every publish it matches, which other tenants of the hub share.
      let held = 0;
      for (const x of this.streams.values()) if (x.ns === ns) held++;
      if (held >= this.cfg.MAX_GROUPS_PER_NAMESPACE) {
        throw new EdgebusError('TOO_MANY_SUBSCRIPTIONS',
          `namespace \`${ns}\` has ${held} work queues at hub ${this.hub.index} (MAX_GROUPS_PER_NAMESPACE); a queue without members goes after STREAM_IDLE_MS`);
      }
      const def = { key, sid: this.nextSid++, group, pattern, ...want, touched: now };
      if (ns !== DEFAULT_NS) def.ns = ns;
      await this.hub.ctx.storage.put({ 'g:next': this.nextSid, [`g:${key}`]: def });
      s = this._open(def);
      this.hub._scheduleAlarm();
    } else if (s.maxAttempts !== want.maxAttempts || s.ackTimeoutMs !== want.ackTimeoutMs) {
      throw new EdgebusError('INVALID_OPTION', `group \`${group}\` on \`${pattern}\` has maxAttempts ${s.maxAttempts} and ackTimeoutMs ${s.ackTimeoutMs}; members must agree`);
    }
    s.touched = now;
    this._saveDef(s);
    await this.hub.ctx.storage.put(`gm:${key}|${memberKey(home, conn, sub)}`, { stream: key, home, conn, sub });
    this._addMember(s, home, conn, sub);
    this._fill(s);
  }

  _addMember(s, home, conn, sub) {
    const mk = memberKey(home, conn, sub);
    if (s.members.has(mk)) return;
    const member = { home, conn, sub, key: mk, tokens: new Set() };
    s.members.set(mk, member);
    this._subscribeMember(s, member);
  }

  _deliver(s, member, seq, attempt) {
    const e = s.mem.get(seq);
    // Removed by a limit or a deletion while in memory: nothing to deliver, the core may forget it.
    if (e === undefined || e.removed) {
      if (e !== undefined) this._finish(s, e);
      return undefined;
    }
    // The attempt is stored before the delivery leaves (same turn: the output gate holds the send).
    this.sql.exec('UPDATE msgs SET attempts = ? WHERE sid = ? AND seq = ?', attempt, s.sid, seq);
    e.attempts = attempt;
    return new Promise((resolve, reject) => {
      const d = deliveryToken();
      // The previous delivery's token (its ack deadline passed): retired, its acknowledgement is late.
      const previous = s.tokenBySeq.get(seq);
      if (previous !== undefined) this._retire(previous);
      if (attempt > 1) s.redelivered++;
      s.tokenBySeq.set(seq, d);
      this.pending.set(d, { resolve, reject, s, member, seq });
      member.tokens.add(d);
      // `o`: this instance, so that the home can vouch for the token after this hub restarted.
      this.hub.forward(member.home, { g: [member.conn, member.sub], e: e.env, d, a: attempt, o: this.hub.bootId });
    });
  }

  /**
   * A pending token is no longer (answered, timed out, dead, its member left): remembered as
   * retired, bounded per namespace (another tenant's deliveries never push a tenant's out).
   */
  _retire(d) {
    const p = this.pending.get(d);
    if (p === undefined) return;
    this.pending.delete(d);
    p.member.tokens.delete(d);
    let retired = this.retired.get(p.s.ns);
    if (retired === undefined) {
      retired = new Map();
      this.retired.set(p.s.ns, retired);
    }
    const { LATE_ACK_TOKENS, LATE_ACK_MAX_AGE_MS } = this.cfg;
    this.hub.counts.tokensForgotten += remember(retired, d, { key: p.member.key, at: Date.now() }, LATE_ACK_TOKENS, LATE_ACK_MAX_AGE_MS);
  }

  /**
   * Acknowledges (ok) or refuses deliveries on behalf of member `from` ({ home, conn, sub, ns }).
   * `vouched[i]` is the instance (`bootId`) of this hub that delivered `tokens[i]` to that very
   * subscription, as its home remembers it, or null when the home does not know the token. Each
   * token is:
   * - pending for this member: applied (acknowledged, or refused and retried by the core);
   * - late: pending for this member but its message was dropped or expired meanwhile; retired
   *   here from this member within LATE_ACK_MAX_AGE_MS; or not known here at all but
   *   vouched for as delivered by an earlier instance of this hub (which forgot it in a restart or
   *   an eviction): counted `lateAcks`, changes nothing;
   * - anything else (pending for or retired from another member, retired longer ago than this hub
   *   remembers, delivered by this instance but forgotten, never delivered): refused.
   * Returns `{ refused }`: the indexes of the refused tokens (counted by the caller).
   */
  ack(tokens, vouched, ok, reason, from) {
    const refused = [];
    const mk = memberKey(from.home, from.conn, from.sub);
    const now = Date.now();
    for (let i = 0; i < tokens.length; i++) {
      const d = tokens[i];
      const p = this.pending.get(d);
      if (p === undefined || p.member.key !== mk) {
        const r = this.retired.get(from.ns ?? DEFAULT_NS)?.get(d);
        const late = p === undefined && (r === undefined
          ? typeof vouched[i] === 'string' && vouched[i] !== this.hub.bootId
          : r.key === mk && now - r.at <= this.cfg.LATE_ACK_MAX_AGE_MS);
        if (late) {
          this.lateAcks++;
          this.hub._nsCount(from.ns, 'lateAcks');
        } else {
          refused.push(i);
        }
        continue;
      }
      this._retire(d);
      const s = p.s;
      if (s.tokenBySeq.get(p.seq) === d) s.tokenBySeq.delete(p.seq);
      const e = s.mem.get(p.seq);
      if (e === undefined || e.removed) {
        // Dropped or expired by a limit while in flight: nothing left to acknowledge or retry (the
        // core is told it is done, the page moves on). Late.
        this.lateAcks++;
        this.hub._nsCount(from.ns, 'lateAcks');
        p.resolve();
        if (e !== undefined) this._finish(s, e);
        continue;
      }
      if (ok) {
        this.sql.exec('DELETE FROM msgs WHERE sid = ? AND seq = ?', s.sid, p.seq);
        s.count--;
        s.bytes -= e.bytes;
        s.done++;
        s.touched = Date.now();
        this.acked++;
        this.hub._nsCount(s.ns, 'acked');
        this._saveDef(s);
        p.resolve();
        this._finish(s, e);
      } else {
        p.reject(new Error(typeof reason === 'string' ? reason.slice(0, 500) : 'refused by the consumer'));
      }
    }
    return { refused };
  }

  leave(home, conn, sub, reason = 'the consumer left') {
    const mk = memberKey(home, conn, sub);
    for (const [key, s] of this.streams) {
      const member = s.members.get(mk);
      if (member === undefined) continue;
      s.members.delete(mk);
      s.subs.get(mk)?.unsubscribe();
      s.subs.delete(mk);
      // Retired, so that an acknowledgement that crossed the leave is late, not refused.
      for (const d of [...member.tokens]) {
        const p = this.pending.get(d);
        this._retire(d);
        if (p !== undefined) p.reject(new Error(reason));
      }
      s.touched = Date.now();
      this._saveDef(s);
      this.hub.ctx.storage.delete(`gm:${key}|${mk}`);
      if (s.members.size === 0) this.hub._scheduleAlarm();
    }
  }

  /**
   * Deletes a stream and its stored messages (explicitly, or idle). Refused while it has members:
   * they would wait on a stream that no longer exists. Answers how many messages were discarded.
   */
  delete(group, pattern, why, ns = DEFAULT_NS) {
    const key = streamKey(ns, group, pattern);
    const s = this.streams.get(key);
    if (s === undefined) return { found: false, discarded: 0 };
    if (s.members.size > 0 || s.unverified.length > 0) {
      throw new EdgebusError('GROUP_IN_USE', `group \`${group}\` on \`${pattern}\` has ${s.members.size + s.unverified.length} member(s); they must unsubscribe first`);
    }
    const discarded = s.count;
    this.sql.exec('DELETE FROM msgs WHERE sid = ?', s.sid);
    this.streams.delete(key);
    s.indexSub.unsubscribe();
    for (const e of s.mem.values()) e.removed = true;
    for (const sub of s.subs.values()) sub.unsubscribe();
    for (const [d, p] of this.pending) if (p.s === s) this.pending.delete(d);
    this.hub.ctx.storage.delete(`g:${key}`);
    this.hub.counts.streamsDeleted++;
    this.hub.counts.streamDiscarded += discarded;
    console.log(`edgebus hub ${this.hub.index}: stream \`${group}\` on \`${pattern}\` deleted (${why}), ${discarded} stored message(s) discarded (namespace ${ns})`);
    return { found: true, discarded };
  }

  /** Applies the age limit and deletes idle memberless streams. */
  sweep(now) {
    for (const s of [...this.streams.values()]) {
      if (s.members.size === 0 && s.unverified.length === 0 && now - s.touched >= this.cfg.STREAM_IDLE_MS) {
        this.delete(s.group, s.pattern, `idle for ${this.cfg.STREAM_IDLE_MS} ms`, s.ns);
      } else {
        this._limit(s, now);
      }
    }
  }

  /** When `sweep` next has something to do (undefined: nothing to watch). */
  nextDue() {
    let next = Infinity;
    for (const s of this.streams.values()) {
      if (s.members.size === 0) next = Math.min(next, s.touched + this.cfg.STREAM_IDLE_MS);
      if (s.count > 0) {
        for (const row of this.sql.exec('SELECT at FROM msgs WHERE sid = ? ORDER BY seq LIMIT 1', s.sid)) {
          next = Math.min(next, row.at + this.cfg.STREAM_MAX_AGE_MS + 1);
        }
      }
    }
    return next === Infinity ? undefined : next;
  }

  _saveDef(s) {
    const def = { key: s.key, sid: s.sid, group: s.group, pattern: s.pattern, maxAttempts: s.maxAttempts, ackTimeoutMs: s.ackTimeoutMs, touched: s.touched };
    if (s.ns !== DEFAULT_NS) def.ns = s.ns;
    for (const k of STREAM_COUNTS) def[k] = s[k];
    if (this.streams.get(s.key) === s) this.hub.ctx.storage.put(`g:${s.key}`, def);
  }

  /** A message that failed its last attempt in the core (its attempts include those before a restart). */
  _dead(s, dead) {
    const seq = dead.message?.payload;
    const e = s.mem.get(seq);
    // The last delivery's token (an ack timeout leaves it pending): acknowledging it now is late.
    const d = s.tokenBySeq.get(seq);
    if (d !== undefined) {
      s.tokenBySeq.delete(seq);
      this._retire(d);
    }
    if (e === undefined) return;
    if (e.removed) {
      this._finish(s, e);
      return;
    }
    this._deadLetter(s, e, dead.attempts, dead.error);
  }

  /**
   * Archives a dead message under `dead:` and writes its letter to the dead-letter outbox (`dq:`)
   * until the hub that owns `$dead.<group>` has taken it (hub.js `deadLetter`). A dead letter of a
   * message that was itself on a `$dead.` topic is archived and counted but not published again:
   * a failing dead-letter consumer must not feed itself forever.
   */
  _deadLetter(s, e, attempts, error) {
    const env = e.env;
    this.dead++;
    s.dead++;
    this.hub._nsCount(s.ns, 'dead');
    this.sql.exec('DELETE FROM msgs WHERE sid = ? AND seq = ?', s.sid, e.seq);
    s.count--;
    s.bytes -= e.bytes;
    this._saveDef(s);
    const storage = this.hub.ctx.storage;
    const rest = `${s.sid}:${pad(e.seq)}:${this.hub.bootId}`;
    storage.put(`dead:${rest}`, { ...env, group: s.group, attempts, error });
    if (env.topic.startsWith('$dead.')) {
      this.deadNotPublished++;
    } else {
      // `ns` travels beside the letter to its `$dead` owner and is not part of its payload.
      const letter = { group: s.group, topic: env.topic, attempts, error, message: visible(env) };
      if (s.ns !== DEFAULT_NS) letter.ns = s.ns;
      storage.put(`dq:${rest}`, letter);
      this.hub.deadLetter(`dq:${rest}`, letter);
    }
    this.hub._countsChanged();
    this._finish(s, e);
  }

  /** Per-stream figures: every stream, or those of namespace `ns`. */
  stats(ns) {
    const rows = [...this.streams.values()].filter((s) => ns === undefined || s.ns === ns);
    return rows.map((s) => ({
      ...(ns === undefined ? { ns: s.ns } : {}), group: s.group, pattern: s.pattern, members: s.members.size, stored: s.count, bytes: s.bytes,
      waiting: s.count - [...s.mem.values()].filter((e) => !e.removed).length,
      inFlight: [...s.members.values()].reduce((n, m) => n + m.tokens.size, 0),
      done: s.done, redelivered: s.redelivered, dead: s.dead, dropped: s.dropped, expired: s.expired,
    }));
  }
}
