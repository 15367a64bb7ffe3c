// The WebSocket protocol, client → hub. A frame is one JSON operation or an array of them:
//
//   { op: 'sub', id, pattern, group?, maxAttempts?, ackTimeoutMs? }   → { t: 'ok', op: 'sub', ref: id }
//   { op: 'sub', id, pattern, replay }                               (plain only; replay: 'retained', { last },
//                                                                     { sinceSeq: n | { topic: n }, sinceMs? }, { sinceMs })
//                                                                    → { t: 'gap', sub, gaps }? then the replayed messages, then live
//   { op: 'unsub', id }                                              → { t: 'ok', op: 'unsub', ref: id }
//   { op: 'pub', topic, payload, id?, key?, headers?, retain?, ref? } → { t: 'ok', op: 'pub', ref, stored } or dup: true, when ref is given
//                                                                     (retain: true without payload clears the retained value)
//   { op: 'req', ref, topic, payload, key?, headers?, max?, timeoutMs? } → { t: 'reply', ref, v, last? } per reply, { t: 'end', ref, code?, message? } at its end
//   { op: 'answer', to, sub, v | error | decline: true }             (a responder's answer to a request delivered to it)
//   { op: 'cancel', ref }                                            (the requester gives a request up)
//   { op: 'ack', sub, d: [tokens] } / { op: 'nack', sub, d: [tokens], error? } (work-queue deliveries)
//   { op: 'del', group, pattern, ref? }                              → { t: 'ok', op: 'del', ref, found, discarded }
//
// Acknowledgements (`ack`, `nack`; the only way to answer a delivery: there is no HTTP one). Each
// token is one of:
// - pending for this subscription (the member it was delivered to): applied;
// - late: delivered to this subscription and no longer pending (answered already, its ack deadline
//   passed and it was delivered again, perhaps to another member, the message died or was removed,
//   the owner restarted since), within LATE_ACK_MAX_AGE_MS: counted `lateAcks`, changes nothing,
//   no reply;
// - anything else: not a token's shape, named with a `sub` that is no work-queue subscription of
//   this connection, delivered to another subscription or connection, never
//   delivered (guessed, forged, from before a restart of the deployment, from another hub),
//   retired longer ago than the hubs remember: refused, changes nothing, counted `forbiddenAcks` in
//   this connection's namespace, one reply per operation with refusals:
//   `{ t: 'err', op, sub, code: 'FORBIDDEN', refused: n, message }` (no token or data echoed).
// The home refuses what it can tell alone (malformed, delivered to another subscription of this
// connection); the owner decides the rest (groups.js `ack`), with the home's word for the tokens it
// delivered to this subscription (`c.delivered`, hub.js `_delivered`).
// Everything a connection does is in its token's namespace (`c.ns`).
//
// A refused operation gets `{ t: 'err', ref?, op, code, message }` and changes nothing else: the
// connection and its other subscriptions carry on. Replies to one frame go back as one frame.
//
// Rates, per connection (token buckets): MAX_MESSAGES_PER_SECOND publishes,
// MAX_SUBSCRIBES_PER_SECOND hub registrations by `sub` and `del` (takeSubscribe), and
// UNVOUCHED_ACKS_PER_SECOND acknowledged tokens the home did not deliver to the connection
// (takeUnvouched: each goes to its owner hub to be checked there); over any, the operation (for
// acknowledgements: the tokens over the rate, named by count in a reply of their own) is refused
// RATE_LIMITED, and RATE_VIOLATIONS_TO_CLOSE frames in a row with such a refusal close the
// connection (1008).
import { checkPattern, checkReplay, checkTopic, EdgebusError, matches } from 'edgebus';
import { codeOf } from './errors.js';
import { mayPublish, maySubscribe } from './acl.js';
import { hubOfTopic, hubsOfPattern, spansHubs } from './routing.js';
import { checkGroupName } from './groups.js';

const encoder = new TextEncoder();
const SUB_KEYS = new Set(['op', 'id', 'pattern', 'group', 'maxAttempts', 'ackTimeoutMs', 'replay']);
const PUB_KEYS = new Set(['op', 'topic', 'payload', 'id', 'key', 'headers', 'retain', 'ref']);
const REQ_KEYS = new Set(['op', 'ref', 'topic', 'payload', 'key', 'headers', 'max', 'timeoutMs']);
const ANSWER_KEYS = new Set(['op', 'to', 'sub', 'v', 'error', 'decline']);
const CANCEL_KEYS = new Set(['op', 'ref']);
/** A request's token: its home hub's index, a dot, 128 random bits (unpadded base64url). */
const REQUEST_TOKEN = /^(\d{1,5})\.[A-Za-z0-9_-]{22}$/;
const DEL_KEYS = new Set(['op', 'group', 'pattern', 'ref']);
/** A delivery token's shape: 128 bits, unpadded base64url (groups.js `deliveryToken`). */
const DELIVERY_TOKEN = /^[A-Za-z0-9_-]{22}$/;
/** Tokens in one acknowledgement call to an owner hub (about 300 KiB), far under the 32 MiB RPC limit. */
const ACK_CALL_TOKENS = 8192;

/**
 * Checks a payload before anything else touches it: nesting (arrays and objects) at most `maxDepth`
 * (PAYLOAD_TOO_DEEP), then at most `limit` bytes of JSON (MESSAGE_TOO_LARGE). Returns the bytes.
 * The walk is iterative and stops at the first level too deep, so a hostile payload costs no more
 * than its size.
 */
export function checkPayload(payload, limit, maxDepth = 64, at = '') {
  if (payload === undefined) throw new EdgebusError('BAD_REQUEST', `a message needs a \`payload\` (any JSON value)${at}`);
  if (payload !== null && typeof payload === 'object') {
    const stack = [payload, 1];
    while (stack.length > 0) {
      const depth = stack.pop();
      const v = stack.pop();
      if (depth > maxDepth) {
        throw new EdgebusError('PAYLOAD_TOO_DEEP', `payload nests arrays/objects deeper than ${maxDepth} levels${at}`);
      }
      const items = Array.isArray(v) ? v : Object.values(v);
      for (let i = 0; i < items.length; i++) {
        const x = items[i];
        if (x !== null && typeof x === 'object') stack.push(x, depth + 1);
      }
    }
  }
  const json = JSON.stringify(payload);
  const n = json.length > limit ? encoder.encode(json).length : utf8Length(json);
  if (n > limit) throw new EdgebusError('MESSAGE_TOO_LARGE', `payload is ${n} bytes of JSON; the limit is ${limit}${at}`);
  return n;
}

/** UTF-8 bytes of a string, without encoding it. */
export function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff) i++, n += 2; // a surrogate pair: 4 bytes for 2 units
    else n += 2;
  }
  return n;
}

/** A publish's `retain`: absent, or a boolean. */
export function checkRetain(v, at = '') {
  if (v !== undefined && typeof v !== 'boolean') throw new EdgebusError('BAD_REQUEST', `\`retain\` must be a boolean, got ${JSON.stringify(v)}${at}`);
  return v === true;
}

/**
 * A message's `id` or `key`: absent, or a string of 1-256 characters that is well-formed UTF-16 (the
 * package's Bus refuses a lone surrogate, as an id or key it would store changed: a stream's
 * delivery through it would then fail on every try).
 */
export function checkOptionalString(v, name, at = '') {
  if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 256)) {
    throw new EdgebusError('BAD_REQUEST', `\`${name}\` must be a string of 1-256 characters, got ${JSON.stringify(v)}${at}`);
  }
  if (v !== undefined && !v.isWellFormed()) {
    throw new EdgebusError('BAD_REQUEST', `\`${name}\` ${JSON.stringify(v)} contains a lone UTF-16 surrogate${at}`);
  }
}

/**
 * Checks a message's headers: an object of at most 64 string values (names of 1-256 characters),
 * at most `limit` bytes of JSON (MESSAGE_TOO_LARGE). Returns a copy.
 */
export function checkHeaders(h, limit) {
  if (h === null || typeof h !== 'object' || Array.isArray(h)) {
    throw new EdgebusError('BAD_REQUEST', '`headers` must be an object of strings');
  }
  const names = Object.keys(h);
  if (names.length > 64) throw new EdgebusError('BAD_REQUEST', `\`headers\` holds ${names.length} entries; at most 64`);
  const copy = {};
  for (const k of names) {
    if (k.length === 0 || k.length > 256) throw new EdgebusError('BAD_REQUEST', 'a header name must have 1-256 characters');
    if (typeof h[k] !== 'string') throw new EdgebusError('BAD_REQUEST', `header \`${k.slice(0, 64)}\` must be a string`);
    if (!k.isWellFormed() || !h[k].isWellFormed()) throw new EdgebusError('BAD_REQUEST', `header \`${k.slice(0, 64)}\` contains a lone UTF-16 surrogate`);
    copy[k] = h[k];
  }
  const n = utf8Length(JSON.stringify(copy));
  if (n > limit) throw new EdgebusError('MESSAGE_TOO_LARGE', `headers are ${n} bytes of JSON; the limit is ${limit}`);
  return copy;
}

function checkKeys(op, allowed) {
  for (const k of Object.keys(op)) {
    if (!allowed.has(k)) throw new EdgebusError('BAD_REQUEST', `unknown field \`${k}\` in a \`${op.op}\` operation`);
  }
}

function subId(v) {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new EdgebusError('BAD_REQUEST', `subscription \`id\` must be an integer ≥ 0, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The reply to a refused operation of connection `c`, counted in its namespace. */
function refused(hub, c, op, e) {
  const code = codeOf(e) ?? 'BAD_REQUEST';
  // Not a refusal of the input but a fault of the hub: logged and counted as an error too.
  if (codeOf(e) === undefined) hub._error(`a \`${op?.op}\` operation failed unexpectedly`, e);
  const ns = c.ns;
  if (code === 'FORBIDDEN') hub._count(ns, 'forbidden');
  else if (code === 'RATE_LIMITED') hub._count(ns, 'rateLimited');
  else if (code === 'MESSAGE_TOO_LARGE' || code === 'REQUEST_TOO_LARGE') hub._count(ns, 'tooLarge');
  else if (code === 'PAYLOAD_TOO_DEEP') hub._count(ns, 'tooDeep');
  else hub._count(ns, 'refused');
  hub._countsChanged();
  const r = { t: 'err', op: typeof op?.op === 'string' ? op.op : undefined, code, message: e?.message ?? String(e) };
  if (op?.ref !== undefined) r.ref = op.ref;
  else if (op?.op === 'sub' || op?.op === 'unsub') r.ref = op.id;
  return r;
}

/**
 * Refills the token bucket `b` (`{ tokens, at }`) at `rate` a second up to `burst`, then takes
 * `cost` from it: false, taking nothing, when it holds less.
 */
function take(b, rate, burst, cost) {
  const now = Date.now();
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
  b.at = now;
  if (b.tokens < cost) return false;
  b.tokens -= cost;
  return true;
}

/** Takes one publish from the connection's bucket (MAX_MESSAGES_PER_SECOND), or throws RATE_LIMITED. */
function takeToken(hub, c) {
  const rate = hub.cfg.MAX_MESSAGES_PER_SECOND;
  if (!take(c.publishes, rate, rate, 1)) throw new EdgebusError('RATE_LIMITED', `more than ${rate} messages per second on this connection`);
}

/**
 * The burst of a connection's subscription bucket: one second's worth, and never less than
 * MAX_SUBSCRIPTIONS wildcard subscriptions (HUBS each), so that a client can always subscribe its
 * whole set at once (a reconnect).
 */
export function subscribeBurst(cfg) {
  return Math.max(cfg.MAX_SUBSCRIBES_PER_SECOND, cfg.MAX_SUBSCRIPTIONS * cfg.HUBS);
}

/**
 * Takes `cost` from the connection's subscription bucket (MAX_SUBSCRIBES_PER_SECOND), or throws
 * RATE_LIMITED: a plain `sub` costs one per hub it is registered on (HUBS for a wildcard among
 * the routed tokens, else 1), a work-queue `sub` and a `del` one each. Each such hub is called
 * and writes storage (and an `unsub` calls them again), so unmetered, one connection churning
 * wildcard subscriptions kept its home and every hub busy, for every tenant. `unsub` takes
 * nothing: it undoes at most what `sub` did.
 */
function takeSubscribe(hub, c, cost) {
  const rate = hub.cfg.MAX_SUBSCRIBES_PER_SECOND;
  if (!take(c.subscribes, rate, subscribeBurst(hub.cfg), cost)) {
    throw new EdgebusError('RATE_LIMITED', `more than ${rate} hub registrations per second on this connection (a subscription costs one per hub it spans, a deletion one)`);
  }
}

/**
 * Takes one acknowledged token that this home did not deliver to the connection (after a restart
 * of the home, past DELIVERED_TOKENS, or guessed) from the connection's bucket
 * (UNVOUCHED_ACKS_PER_SECOND): false when it is empty. Such a token can only be judged by its
 * owner hub, so unmetered, one connection sending frames of guessed tokens kept every owner hub
 * busy checking them, for every tenant. Tokens the home delivered to this subscription are never
 * metered: the deliveries bound them.
 */
function takeUnvouched(hub, c) {
  const rate = hub.cfg.UNVOUCHED_ACKS_PER_SECOND;
  return take(c.unvouched, rate, rate, 1);
}

export async function handleFrame(hub, c, data) {
  const replies = [];
  if (c.claims.exp * 1000 <= Date.now()) {
    hub._expire(c);
    return;
  }
  let ops;
  try {
    if (typeof data !== 'string') throw new EdgebusError('BAD_JSON', 'frames must be text (JSON)');
    if (data.length > hub.cfg.MAX_REQUEST_BYTES) {
      throw new EdgebusError('REQUEST_TOO_LARGE', `a frame of ${data.length} characters; the limit is ${hub.cfg.MAX_REQUEST_BYTES} bytes`);
    }
    try {
      ops = JSON.parse(data);
    } catch (e) {
      throw new EdgebusError('BAD_JSON', `the frame is not valid JSON: ${e.message}`);
    }
    if (!Array.isArray(ops)) ops = [ops];
    if (ops.length === 0 || ops.length > 1000) throw new EdgebusError('BAD_REQUEST', 'a frame carries 1 to 1000 operations');
  } catch (e) {
    hub._count(c.ns, 'badFrames');
    hub._countsChanged();
    send(c, [refused(hub, c, undefined, e)]);
    return;
  }
  const pubs = new Map();   // owner hub → [{ msg, op }]
  const acks = new Map();   // `${owner}|${ok}|${sub}` → { owner, ok, sub, tokens, vouched, of, error }
  const answered = [];      // per ack/nack operation: { op, sub, refused }, in order
  for (const op of ops) {
    try {
      if (op === null || typeof op !== 'object' || Array.isArray(op)) throw new EdgebusError('BAD_REQUEST', 'an operation must be an object with `op`');
      switch (op.op) {
        case 'pub': {
          checkKeys(op, PUB_KEYS);
          checkTopic(op.topic);
          if (!mayPublish(c.claims, op.topic)) throw new EdgebusError('FORBIDDEN', `the token does not allow publishing to \`${op.topic}\``);
          const retain = checkRetain(op.retain);
          const size = retain && op.payload === undefined ? 0 : checkPayload(op.payload, hub.cfg.MAX_PAYLOAD_BYTES, hub.cfg.MAX_PAYLOAD_DEPTH);
          checkOptionalString(op.id, 'id');
          checkOptionalString(op.key, 'key');
          const headers = op.headers === undefined ? undefined : checkHeaders(op.headers, hub.cfg.MAX_HEADER_BYTES);
          takeToken(hub, c);
          const owner = hubOfTopic(op.topic, hub.cfg.HUBS, hub.cfg.ROUTE_TOKENS);
          const msg = { topic: op.topic, payload: op.payload, ns: c.ns, size };
          if (retain) msg.retain = true;
          if (op.id !== undefined) msg.id = op.id;
          if (op.key !== undefined) msg.key = op.key;
          if (headers !== undefined) msg.headers = headers;
          if (!pubs.has(owner)) pubs.set(owner, []);
          pubs.get(owner).push({ msg, op });
          break;
        }
        case 'req': {
          checkKeys(op, REQ_KEYS);
          if (!Number.isSafeInteger(op.ref) || op.ref < 0) throw new EdgebusError('BAD_REQUEST', `a request needs \`ref\`, an integer ≥ 0, got ${JSON.stringify(op.ref)}`);
          checkTopic(op.topic);
          if (!mayPublish(c.claims, op.topic)) throw new EdgebusError('FORBIDDEN', `the token does not allow publishing to \`${op.topic}\``);
          const size = checkPayload(op.payload, hub.cfg.MAX_PAYLOAD_BYTES, hub.cfg.MAX_PAYLOAD_DEPTH);
          checkOptionalString(op.key, 'key');
          const headers = op.headers === undefined ? undefined : checkHeaders(op.headers, hub.cfg.MAX_HEADER_BYTES);
          const max = intOption(op, 'max', 1, 2 ** 30) ?? 1;
          const timeoutMs = intOption(op, 'timeoutMs', 1, hub.cfg.MAX_REQUEST_TIMEOUT_MS) ?? 5000;
          if (c.reqs.has(op.ref)) throw new EdgebusError('BAD_REQUEST', `request ref ${op.ref} is already waiting on this connection`);
          if (c.reqs.size >= hub.cfg.MAX_PENDING_REQUESTS) {
            throw new EdgebusError('TOO_MANY_REQUESTS', `a connection may wait on ${hub.cfg.MAX_PENDING_REQUESTS} requests at once`);
          }
          takeToken(hub, c);
          const owner = hubOfTopic(op.topic, hub.cfg.HUBS, hub.cfg.ROUTE_TOKENS);
          const rq = hub.openRequest(c, op.ref, max, timeoutMs);
          const msg = { topic: op.topic, payload: op.payload, ns: c.ns, size, rq };
          if (op.key !== undefined) msg.key = op.key;
          if (headers !== undefined) msg.headers = headers;
          if (!pubs.has(owner)) pubs.set(owner, []);
          pubs.get(owner).push({ msg, op });
          break;
        }
        case 'answer': {
          checkKeys(op, ANSWER_KEYS);
          const m = typeof op.to === 'string' ? REQUEST_TOKEN.exec(op.to) : null;
          const delivered = m === null ? undefined : c.asked.get(op.to)?.get(op.sub);
          if (delivered === undefined) {
            // Not a request delivered to this subscription of this connection: refused, whatever it guessed.
            throw new EdgebusError('FORBIDDEN', 'no request with this token was delivered to this subscription of this connection');
          }
          let kind = 'reply';
          let value;
          if (op.decline === true) kind = 'decline';
          else if (op.error !== undefined) {
            kind = 'failure';
            value = String(op.error).slice(0, 1000);
          } else {
            checkPayload(op.v === undefined ? null : op.v, hub.cfg.MAX_PAYLOAD_BYTES, hub.cfg.MAX_PAYLOAD_DEPTH);
            value = op.v === undefined ? null : op.v;
          }
          c.asked.get(op.to).delete(op.sub);
          if (c.asked.get(op.to).size === 0) c.asked.delete(op.to);
          hub.answerRequest(Number(m[1]), op.to, delivered, kind, value);
          break;
        }
        case 'cancel':
          checkKeys(op, CANCEL_KEYS);
          hub.cancelRequest(c, op.ref);
          break;
        case 'sub':
          // Earlier publishes of the frame go first, so that order within a frame holds.
          await flushPubs(hub, c, pubs, replies);
          replies.push(await subscribe(hub, c, op));
          break;
        case 'unsub': {
          await flushPubs(hub, c, pubs, replies);
          const id = subId(op.id);
          if (!(await hub.removeSub(c, id))) throw new EdgebusError('UNKNOWN_SUBSCRIPTION', `no subscription with id ${id}`);
          replies.push({ t: 'ok', op: 'unsub', ref: op.id });
          break;
        }
        case 'ack':
        case 'nack': {
          if (!Array.isArray(op.d)) throw new EdgebusError('BAD_REQUEST', '`d` must be an array of delivery tokens');
          const entry = { op: op.op, sub: op.sub, refused: 0, limited: 0, why: undefined };
          answered.push(entry);
          if (!Number.isSafeInteger(op.sub) || c.subs.get(op.sub)?.group === undefined) {
            // No token was delivered to a subscription this connection does not have.
            entry.sub = Number.isSafeInteger(op.sub) ? op.sub : undefined;
            entry.why = `${JSON.stringify(op.sub ?? null).slice(0, 40)} is not a work-queue subscription of this connection`;
            entry.refused = op.d.length;
            hub._count(c.ns, 'forbiddenAcks', entry.refused);
            hub._countsSoon(); // written before the reply leaves
            break;
          }
          const owner = c.subs.get(op.sub).owner;
          const key = `${owner}|${op.op === 'ack'}|${op.sub}`;
          let batch = acks.get(key);
          if (batch === undefined) {
            batch = { owner, ok: op.op === 'ack', sub: op.sub, tokens: [], vouched: [], of: [], error: undefined };
            acks.set(key, batch);
          }
          if (typeof op.error === 'string') batch.error = op.error;
          const now = Date.now();
          for (const d of op.d) {
            const known = typeof d === 'string' ? c.delivered.get(d) : undefined;
            if (typeof d !== 'string' || !DELIVERY_TOKEN.test(d) || (known !== undefined && known.sub !== op.sub)) {
              entry.refused++;
              continue;
            }
            // Delivered here to this subscription: the home's word goes with it (once: answered now).
            let boot = null;
            if (known !== undefined) {
              c.delivered.delete(d);
              if (now - known.at <= hub.cfg.LATE_ACK_MAX_AGE_MS) boot = known.boot;
            } else if (!takeUnvouched(hub, c)) {
              entry.limited++;
              continue;
            }
            batch.tokens.push(d);
            batch.vouched.push(boot);
            batch.of.push(entry);
          }
          if (entry.refused > 0) hub._count(c.ns, 'forbiddenAcks', entry.refused);
          if (entry.limited > 0) hub._count(c.ns, 'rateLimited', entry.limited);
          if (entry.refused > 0 || entry.limited > 0) hub._countsSoon(); // written before the reply leaves
          break;
        }
        case 'del':
          await flushPubs(hub, c, pubs, replies);
          replies.push(await deleteGroup(hub, c, op));
          break;
        default:
          throw new EdgebusError('BAD_REQUEST', `unknown op ${JSON.stringify(op.op)} (known: sub, unsub, pub, req, answer, cancel, ack, nack, del)`);
      }
    } catch (e) {
      replies.push(refused(hub, c, op, e));
    }
  }
  await flushPubs(hub, c, pubs, replies);
  if (answered.length > 0) await sendAcks(hub, c, acks, answered, replies);
  if (replies.length > 0) {
    hub._countsBeforeSend();
    send(c, replies);
  }
  rateViolations(hub, c, replies);
}

/**
 * A frame with rate-limited operations (publishes, subscriptions, deletions) is a violation;
 * RATE_VIOLATIONS_TO_CLOSE of them in a row (no frame in between that kept to the limits) close
 * the connection with 1008 (policy violation):
 * a flooder stops costing the hub, and its backlog of frames is not worked off.
 */
function rateViolations(hub, c, replies) {
  let limited = false;
  for (const r of replies) if (r.code === 'RATE_LIMITED') limited = true;
  if (!limited) {
    c.violations = 0;
    return;
  }
  c.violations = (c.violations ?? 0) + 1;
  if (c.violations < hub.cfg.RATE_VIOLATIONS_TO_CLOSE || c.closed) return;
  hub._count(c.ns, 'rateClosed');
  hub._countsChanged();
  try {
    const { MAX_MESSAGES_PER_SECOND, MAX_SUBSCRIBES_PER_SECOND, UNVOUCHED_ACKS_PER_SECOND } = hub.cfg;
    c.ws.send(JSON.stringify({
      t: 'err', code: 'RATE_LIMITED',
      message: `${c.violations} frames in a row over ${MAX_MESSAGES_PER_SECOND} messages, ${MAX_SUBSCRIBES_PER_SECOND} hub registrations or ${UNVOUCHED_ACKS_PER_SECOND} unvouched acknowledgements per second: closing`,
    }));
    c.ws.close(1008, 'rate limit exceeded repeatedly');
  } catch {
    // already closing
  }
  hub._dropSocket(c.ws);
}

/**
 * Hands a frame's acknowledgements to their owners (a call per owner, kind and subscription, of up
 * to ACK_CALL_TOKENS tokens) and answers each operation that had refused tokens with one FORBIDDEN
 * reply.
 */
async function sendAcks(hub, c, acks, answered, replies) {
  for (const { owner, ok, sub, tokens, vouched, of, error } of acks.values()) {
    const from = { home: hub.index, conn: c.id, sub, ns: c.ns };
    for (let at = 0; at < tokens.length; at += ACK_CALL_TOKENS) {
      const n = Math.min(ACK_CALL_TOKENS, tokens.length - at);
      try {
        const r = await hub._peer(owner).ack(owner, tokens.slice(at, at + n), vouched.slice(at, at + n), ok, error, from);
        for (const i of r?.refused ?? []) of[at + i].refused++;
      } catch (e) {
        hub._error(`${ok ? 'acknowledging' : 'refusing'} ${n} delivery(ies) at hub ${owner} failed`, e);
        replies.push({ t: 'err', op: ok ? 'ack' : 'nack', sub, code: 'UNAVAILABLE', message: `the owner hub did not take the acknowledgement: ${e.message}` });
      }
    }
  }
  for (const e of answered) {
    if (e.refused > 0) replies.push(forbiddenAck(e));
    if (e.limited > 0) replies.push(limitedAck(e, hub.cfg.UNVOUCHED_ACKS_PER_SECOND));
  }
}

function limitedAck({ op, sub, limited }, rate) {
  return {
    t: 'err', op, sub, code: 'RATE_LIMITED', limited,
    message: `${limited} delivery token(s) not taken: more than ${rate} per second on this connection that this hub did not deliver to it; they changed nothing`,
  };
}

function forbiddenAck({ op, sub, refused, why }) {
  const reason = why ?? `not delivered to subscription ${sub} of this connection, or retired longer ago than the hubs remember`;
  return { t: 'err', op, sub, code: 'FORBIDDEN', refused, message: `${refused} delivery token(s) refused: ${reason}; they changed nothing` };
}

async function flushPubs(hub, c, pubs, replies) {
  if (pubs.size === 0) return;
  const byOwner = [...pubs];
  pubs.clear();
  // Owners in parallel; the chunks of one owner one after the other, so that order holds.
  await Promise.all(byOwner.map(async ([owner, all]) => {
    for (const rows of chunksBySize(all, (r) => r.msg.size, hub.cfg.FORWARD_MAX_BYTES)) await publishChunk(hub, c, owner, rows, replies);
  }));
}

/** One call to an owner hub; its refusals are the connection's (counted in its namespace). */
async function publishChunk(hub, c, owner, rows, replies) {
  try {
    const msgs = rows.map((r) => r.msg);
    const res = await (owner === hub.index ? hub._publish(owner, msgs, true) : hub._peer(owner).publish(owner, msgs));
    rows.forEach((r, i) => {
      const x = res[i];
      if (r.msg.rq !== undefined) {
        // A request: its owner says how many subscriptions it reached (or why it was refused).
        if (x?.error !== undefined) hub.requestRefused(r.msg.rq, new EdgebusError(x.error.code, x.error.message));
        else hub.requestReached(r.msg.rq, x.responders ?? 0);
        return;
      }
      if (x?.error !== undefined) replies.push(refused(hub, c, r.op, new EdgebusError(x.error.code, x.error.message)));
      else if (r.op.ref !== undefined) {
        replies.push(x === false ? { t: 'ok', op: 'pub', ref: r.op.ref, dup: true } : { t: 'ok', op: 'pub', ref: r.op.ref, stored: x.stored > 0 });
      }
    });
  } catch (e) {
    hub._error(`publishing ${rows.length} message(s) through hub ${owner} failed`, e);
    for (const r of rows) {
      const err = new EdgebusError('UNAVAILABLE', `the owner hub did not take the message: ${e.message}`);
      if (r.msg.rq !== undefined) hub.requestRefused(r.msg.rq, err);
      else replies.push(refused(hub, c, r.op, err));
    }
  }
}

/**
 * Splits `rows` into runs of at most `max` bytes (by `sizeOf`; a row over `max` goes alone), so no
 * call between Durable Objects comes near the 32 MiB RPC limit.
 */
export function chunksBySize(rows, sizeOf, max) {
  const out = [];
  let cur = [];
  let bytes = 0;
  for (const r of rows) {
    const n = sizeOf(r) + 256; // topic, id, key and framing
    if (cur.length > 0 && bytes + n > max) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(r);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

async function subscribe(hub, c, op) {
  checkKeys(op, SUB_KEYS);
  const id = subId(op.id);
  checkPattern(op.pattern);
  if (c.subs.has(id)) throw new EdgebusError('BAD_REQUEST', `subscription id ${id} is already in use on this connection`);
  if (!maySubscribe(c.claims, op.pattern)) throw new EdgebusError('FORBIDDEN', `the token does not allow subscribing to \`${op.pattern}\``);
  if (c.subs.size >= hub.cfg.MAX_SUBSCRIPTIONS) {
    throw new EdgebusError('TOO_MANY_SUBSCRIPTIONS', `a connection may hold ${hub.cfg.MAX_SUBSCRIPTIONS} subscriptions`);
  }
  const { HUBS, ROUTE_TOKENS } = hub.cfg;
  if (op.group === undefined) {
    for (const k of ['maxAttempts', 'ackTimeoutMs']) {
      if (op[k] !== undefined) throw new EdgebusError('INVALID_OPTION', `\`${k}\` applies only with \`group\` (a work queue)`);
    }
    const hubs = hubsOfPattern(op.pattern, HUBS, ROUTE_TOKENS);
    const replay = op.replay === undefined ? undefined : replayByHub(op.replay, op.pattern, hubs, hub.cfg);
    takeSubscribe(hub, c, hubs.length);
    await hub.addPlainSub(c, id, op.pattern, hubs, replay);
  } else {
    if (op.replay !== undefined) throw new EdgebusError('INVALID_OPTION', '`replay` applies to plain subscriptions (a work queue keeps its messages until they are acknowledged)');
    checkGroupName(op.group);
    if (spansHubs(op.pattern, ROUTE_TOKENS)) {
      throw new EdgebusError('GROUP_SPANS_HUBS', `a work-queue pattern needs its first ${ROUTE_TOKENS} token(s) literal (one owner hub), got \`${op.pattern}\``);
    }
    const opts = {
      maxAttempts: intOption(op, 'maxAttempts', 1, 1000) ?? hub.cfg.MAX_ATTEMPTS,
      ackTimeoutMs: intOption(op, 'ackTimeoutMs', 1, 3600000) ?? hub.cfg.ACK_TIMEOUT_MS,
    };
    takeSubscribe(hub, c, 1);
    await hub.addGroupSub(c, id, op.pattern, op.group, opts, hubOfTopic(op.pattern, HUBS, ROUTE_TOKENS));
  }
  await hub.saveConn(c);
  return { t: 'ok', op: 'sub', ref: op.id };
}

/** Deletes a work-queue stream and its stored messages: the token must allow subscribing to its pattern. */
async function deleteGroup(hub, c, op) {
  checkKeys(op, DEL_KEYS);
  checkGroupName(op.group);
  checkPattern(op.pattern);
  if (!maySubscribe(c.claims, op.pattern)) throw new EdgebusError('FORBIDDEN', `the token does not allow subscribing to \`${op.pattern}\``);
  const { HUBS, ROUTE_TOKENS } = hub.cfg;
  if (spansHubs(op.pattern, ROUTE_TOKENS)) {
    throw new EdgebusError('GROUP_SPANS_HUBS', `a work-queue pattern needs its first ${ROUTE_TOKENS} token(s) literal (one owner hub), got \`${op.pattern}\``);
  }
  const owner = hubOfTopic(op.pattern, HUBS, ROUTE_TOKENS);
  takeSubscribe(hub, c, 1);
  let r;
  try {
    r = await hub._peer(owner).deleteGroup(owner, op.group, op.pattern, c.ns);
  } catch (e) {
    hub._error(`deleting group \`${op.group}\` at hub ${owner} failed`, e);
    throw new EdgebusError('UNAVAILABLE', `the owner hub of \`${op.pattern}\` is unavailable: ${e.message}`);
  }
  if (r?.error !== undefined) throw new EdgebusError(r.error.code, r.error.message);
  const reply = { t: 'ok', op: 'del', found: r.found, discarded: r.discarded };
  if (op.ref !== undefined) reply.ref = op.ref;
  return reply;
}

/**
 * Checks a `sub`'s `replay` by the package's rule (`checkReplay`: the shapes a Bus's `replay`
 * takes, INVALID_OPTION otherwise) and splits it by owner hub: `{ byHub: Map(hub → replay) }`,
 * each hub asked only for the positions of the topics it owns (a position a hub does not hold
 * would be a gap there). Every topic named must be one the pattern matches: a replay reaches
 * nothing the subscription could not.
 */
export function replayByHub(replay, pattern, hubs, cfg) {
  const bad = (why) => new EdgebusError('INVALID_OPTION', `\`replay\` ${why}`);
  const r = checkReplay(replay);
  const byHub = new Map();
  const sinceSeq = r === 'retained' ? undefined : r.sinceSeq;
  if (sinceSeq === undefined || typeof sinceSeq === 'number') {
    for (const h of hubs) byHub.set(h, r);
    return { byHub };
  }
  const topics = Object.keys(sinceSeq);
  if (topics.length > cfg.REPLAY_MAX_POSITIONS) throw bad(`sinceSeq names ${topics.length} topics; at most ${cfg.REPLAY_MAX_POSITIONS}`);
  const parts = new Map(hubs.map((h) => [h, []]));
  for (const topic of topics) {
    try {
      checkTopic(topic);
    } catch (e) {
      throw bad(`sinceSeq names an invalid topic: ${e.message}`);
    }
    if (!matches(pattern, topic)) throw bad(`sinceSeq names \`${topic}\`, which the pattern \`${pattern}\` does not match`);
    parts.get(hubs.length === 1 ? hubs[0] : hubOfTopic(topic, cfg.HUBS, cfg.ROUTE_TOKENS)).push([topic, sinceSeq[topic]]);
  }
  for (const [h, rows] of parts) {
    // Every hub is asked, with no position when it owns none of the topics named: its core
    // decides what that means (from `sinceMs`, or from the start).
    const part = { sinceSeq: Object.fromEntries(rows) };
    if (r.sinceMs !== undefined) part.sinceMs = r.sinceMs;
    byHub.set(h, part);
  }
  return { byHub };
}

function intOption(op, name, min, max) {
  const v = op[name];
  if (v === undefined) return undefined;
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new EdgebusError('INVALID_OPTION', `\`${name}\` must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function send(c, replies) {
  try {
    c.ws.send(JSON.stringify(replies.length === 1 ? replies[0] : replies));
  } catch {
    // The socket closed meanwhile; webSocketClose cleans up.
  }
}
