// The edgebus Worker: authenticates, validates, and routes to Durable Object hubs.
//
//   GET  /connect[?token=…][&hub=<topic prefix>]   WebSocket (see frames.js for the protocol)
//   POST /publish    { topic, payload, id?, key?, retain? } or an array of them
//   GET  /stats      an admin token: counters of every hub; any other: its namespace's figures
//   POST /admin/evict  { hub }: resets one hub in place (ctx.abort), only with EDGEBUS_DEV_ADMIN=1
//
// The token travels in `Authorization: Bearer <token>`; a WebSocket from a browser, which cannot set
// headers, offers it as the subprotocol `bearer.<token>` (next to `edgebus`) or in `?token=`.
// ALLOWED_ORIGINS (comma-separated origins; empty: any) is checked on every request that carries
// an Origin header, WebSocket upgrades included; HTTP routes answer CORS preflights for them.
//
// A connection's home hub is the owner of `hub` when given (so a client that mostly uses one
// topic prefix is served without a hop), otherwise a random hub (connections spread over hubs).
import { readConfig } from './config.js';
import { checkTopic, EdgebusError } from 'edgebus';
import { codeOf, errorResponse, refuseSocket, STATUS } from './errors.js';
import { keyring, verifyToken } from './auth.js';
import { mayPublish } from './acl.js';
import { hubName, hubOfTopic, nsDirectoryHub } from './routing.js';
import { checkOptionalString, checkPayload, checkRetain, chunksBySize } from './frames.js';
import { NS_COUNTERS } from './hub.js';

export { Hub } from './hub.js';

const ROUTES = { '/connect': 'GET', '/publish': 'POST', '/stats': 'GET' };
// Development only (tests of eviction on local workerd): never set EDGEBUS_DEV_ADMIN in production.
const ADMIN_ROUTES = { '/admin/evict': 'POST' };
const PROTOCOL = 'edgebus';
const BEARER_PROTOCOL = 'bearer.';

/** The protocols a WebSocket request offers (Sec-WebSocket-Protocol), in order. */
function offeredProtocols(request) {
  return (request.headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '');
}

function bearer(request, url) {
  const h = request.headers.get('authorization');
  if (h !== null) {
    const m = /^Bearer\s+(\S+)$/i.exec(h);
    if (m === null) throw new EdgebusError('UNAUTHORIZED', 'the Authorization header must be `Bearer <token>`');
    return m[1];
  }
  const offered = offeredProtocols(request).find((p) => p.startsWith(BEARER_PROTOCOL));
  if (offered !== undefined) return offered.slice(BEARER_PROTOCOL.length);
  return url.searchParams.get('token') ?? undefined;
}

function authenticate(request, env, url, cfg) {
  return verifyToken(bearer(request, url), keyring(env), Date.now(), { maxLifetimeS: cfg.MAX_TOKEN_LIFETIME_S });
}

function hub(env, index) {
  return env.HUB.get(env.HUB.idFromName(hubName(index)));
}

// ----- origins and CORS ---------------------------------------------------------------------------

const originLists = new Map();
/** ALLOWED_ORIGINS as a set of origins, or undefined for any origin. */
function allowedOrigins(env) {
  const raw = typeof env.ALLOWED_ORIGINS === 'string' ? env.ALLOWED_ORIGINS.trim() : '';
  if (raw === '') return undefined;
  let set = originLists.get(raw);
  if (set === undefined) {
    set = new Set();
    for (const entry of raw.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
      let origin = entry;
      try {
        origin = new URL(entry).origin; // `https://App.example.com/` → `https://app.example.com`
      } catch {
        // kept as written (e.g. `null`)
      }
      set.add(origin === 'null' ? entry : origin);
    }
    originLists.set(raw, set);
  }
  return set;
}

/** The request's Origin when it is allowed (or absent: undefined); throws ORIGIN_NOT_ALLOWED. */
function checkOrigin(request, env) {
  const origin = request.headers.get('origin');
  if (origin === null) return undefined;
  const allowed = allowedOrigins(env);
  if (allowed !== undefined && !allowed.has(origin)) {
    throw new EdgebusError('ORIGIN_NOT_ALLOWED', `origin ${origin} is not allowed (ALLOWED_ORIGINS)`);
  }
  return origin;
}

function corsHeaders(origin) {
  return origin === undefined ? {} : { 'access-control-allow-origin': origin, vary: 'Origin' };
}

/** A CORS preflight of an HTTP route from an allowed origin. */
function preflight(origin, method) {
  return new Response(null, {
    status: 204,
    headers: {
      ...corsHeaders(origin),
      'access-control-allow-methods': method,
      'access-control-allow-headers': 'authorization, content-type',
      'access-control-max-age': '600',
    },
  });
}

function withHeaders(response, headers) {
  if (Object.keys(headers).length === 0 || response.status === 101) return response;
  const r = new Response(response.body, response);
  for (const [k, v] of Object.entries(headers)) r.headers.set(k, v);
  return r;
}

// ----- routes -------------------------------------------------------------------------------------


async function connect(request, env, url, cfg) {
  if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    throw new EdgebusError('BAD_REQUEST', '/connect expects a WebSocket upgrade (Upgrade: websocket)');
  }
  // A browser that offered subprotocols fails the handshake unless one is chosen: `edgebus`.
  const offered = offeredProtocols(request);
  const protocol = offered.includes(PROTOCOL) ? PROTOCOL : undefined;
  let claims;
  try {
    claims = await authenticate(request, env, url, cfg);
  } catch (e) {
    if (codeOf(e) === undefined) throw e;
    return refuseSocket(e.code, e.message, protocol);
  }
  const prefix = url.searchParams.get('hub');
  let index;
  if (prefix !== null) {
    try {
      checkTopic(prefix);
    } catch (e) {
      // Told over the socket (4400: a permanent refusal the client reports and does not retry).
      return refuseSocket('BAD_REQUEST', `\`hub\` must be a topic prefix: ${e.message}`, protocol);
    }
    index = hubOfTopic(prefix, cfg.HUBS, cfg.ROUTE_TOKENS);
  } else {
    index = Math.floor(Math.random() * cfg.HUBS);
  }
  const headers = new Headers(request.headers);
  headers.delete('authorization');
  headers.delete('sec-websocket-protocol');
  headers.set('x-edgebus-claims', JSON.stringify(claims));
  headers.set('x-edgebus-hub', String(index));
  const res = await hub(env, index).fetch(new Request(request.url, { headers }));
  if (protocol === undefined || res.webSocket === null || res.webSocket === undefined) return res;
  return new Response(null, { status: 101, webSocket: res.webSocket, headers: { 'sec-websocket-protocol': protocol } });
}

async function readJson(request, maxBytes = Infinity) {
  const declared = Number(request.headers.get('content-length'));
  if (declared > maxBytes) throw new EdgebusError('REQUEST_TOO_LARGE', `a body of ${declared} bytes; the limit is ${maxBytes}`);
  const text = await request.text();
  if (text.length > maxBytes) throw new EdgebusError('REQUEST_TOO_LARGE', `a body of ${text.length} characters; the limit is ${maxBytes} bytes`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new EdgebusError('BAD_JSON', `the body is not valid JSON: ${e.message}`);
  }
}

async function publish(request, env, url, cfg) {
  const claims = await authenticate(request, env, url, cfg);
  const body = await readJson(request, cfg.MAX_REQUEST_BYTES);
  const batch = Array.isArray(body);
  const msgs = batch ? body : [body];
  if (msgs.length === 0) throw new EdgebusError('BAD_REQUEST', 'an empty batch: send at least one message');
  if (msgs.length > cfg.MAX_BATCH_PUBLISH) {
    throw new EdgebusError('BATCH_TOO_LARGE', `${msgs.length} messages in one request; the limit is ${cfg.MAX_BATCH_PUBLISH}`);
  }
  const byHub = new Map();
  msgs.forEach((m, i) => {
    const at = batch ? ` (message ${i})` : '';
    if (m === null || typeof m !== 'object' || Array.isArray(m)) {
      throw new EdgebusError('BAD_REQUEST', `a message must be an object { topic, payload, id?, key? }${at}`);
    }
    for (const k of Object.keys(m)) {
      if (!['topic', 'payload', 'id', 'key', 'retain'].includes(k)) throw new EdgebusError('BAD_REQUEST', `unknown field \`${k}\`${at}`);
    }
    try {
      checkTopic(m.topic);
    } catch (e) {
      throw new EdgebusError('INVALID_TOPIC', e.message + at);
    }
    if (!mayPublish(claims, m.topic)) throw new EdgebusError('FORBIDDEN', `the token does not allow publishing to \`${m.topic}\`${at}`);
    const retain = checkRetain(m.retain, at);
    // `retain: true` without a payload clears the topic's retained value.
    const size = retain && m.payload === undefined ? 0 : checkPayload(m.payload, cfg.MAX_PAYLOAD_BYTES, cfg.MAX_PAYLOAD_DEPTH, at);
    for (const k of ['id', 'key']) checkOptionalString(m[k], k, at);
    const owner = hubOfTopic(m.topic, cfg.HUBS, cfg.ROUTE_TOKENS);
    if (!byHub.has(owner)) byHub.set(owner, []);
    byHub.get(owner).push([i, { topic: m.topic, payload: m.payload, id: m.id, key: m.key, ns: claims.ns, size, retain }]);
  });
  // The same per-token rate as a WebSocket connection's, kept at the hub the token hashes to.
  const key = await rateKey(bearer(request, url));
  const limiter = Number.parseInt(key.slice(0, 8), 16) % cfg.HUBS;
  const taken = await hub(env, limiter).rateTake(limiter, key, msgs.length, claims.ns);
  if (taken.retryAfterMs !== undefined) {
    const e = new EdgebusError('RATE_LIMITED', `more than ${cfg.PUBLISH_MESSAGES_PER_SECOND} messages per second with this token; retry in ${taken.retryAfterMs} ms`);
    e.retryAfterMs = taken.retryAfterMs;
    throw e;
  }
  const results = new Array(msgs.length);
  // Calls between hubs stay under the RPC size limit: a big batch goes in several.
  // Owners in parallel; the chunks of one owner in order.
  await Promise.all([...byHub].map(async ([owner, all]) => {
    for (const rows of chunksBySize(all, ([, m]) => m.size, cfg.FORWARD_MAX_BYTES)) await publishChunk(env, owner, rows, results);
  }));
  // `stored: false`: delivered to whoever subscribes now, but no work-queue stream keeps it.
  const rows = results.map((r) => {
    if (r === false) return { accepted: false, duplicate: true };
    if (r.error !== undefined) return { accepted: false, error: r.error };
    return { accepted: true, stored: r.stored > 0 };
  });
  if (!batch && rows[0].error !== undefined) return errorResponse(rows[0].error.code, rows[0].error.message);
  return Response.json(batch ? { results: rows } : rows[0]);
}

/** One call to an owner hub; its answers (or UNAVAILABLE for each, if the call failed) into `results`. */
async function publishChunk(env, owner, rows, results) {
  let r;
  try {
    r = await hub(env, owner).publish(owner, rows.map(([, m]) => m));
  } catch (e) {
    console.error(`edgebus: publishing ${rows.length} message(s) through hub ${owner} failed`, e);
    r = rows.map(() => ({ error: { code: 'UNAVAILABLE', message: `the owner hub did not take the message: ${e.message}` } }));
  }
  rows.forEach(([i], j) => { results[i] = r[j]; });
}

/** The rate-limit key of a bearer token: a hash (the token itself is not kept). */
async function rateKey(token) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token ?? ''));
  return [...new Uint8Array(digest, 0, 16)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function requireAdmin(claims, what) {
  if (claims.admin !== true) throw new EdgebusError('FORBIDDEN', `${what} needs a token with the \`admin: true\` claim`);
}

/**
 * Resets hub `hub` in place: `ctx.abort()` discards the instance (memory, timers, pending calls)
 * as an eviction does, and the next call creates a new one from storage. Answers the instance ids
 * before and after. An admin token only.
 */
async function evict(request, env, url, cfg) {
  requireAdmin(await authenticate(request, env, url, cfg), '/admin/evict');
  const body = await readJson(request);
  const index = body?.hub;
  if (!Number.isSafeInteger(index) || index < 0 || index >= cfg.HUBS) {
    throw new EdgebusError('BAD_REQUEST', `\`hub\` must be a hub index from 0 to ${cfg.HUBS - 1}, got ${JSON.stringify(index)}`);
  }
  const before = (await hub(env, index).stats(index)).boot;
  try {
    await hub(env, index).evict(index);
  } catch {
    // The abort's own error, thrown to this caller by design.
  }
  const after = (await hub(env, index).stats(index)).boot;
  return Response.json({ hub: index, before, after });
}

/**
 * An admin token sees every hub (instance ids included): HUBS calls, waking hibernated hubs. Any
 * other token sees its namespace: its counters summed over the hubs, its connections and its
 * work-queue streams; nothing of other namespaces, and no instance ids. That view asks the
 * namespace's directory hub which hubs have served the namespace, then those hubs only.
 */
async function stats(request, env, url, cfg) {
  const claims = await authenticate(request, env, url, cfg);
  const admin = claims.admin === true;
  let served;
  if (!admin) {
    const dir = nsDirectoryHub(claims.ns, cfg.HUBS);
    served = await hub(env, dir).nsHubs(dir, claims.ns);
  }
  const hubs = await Promise.all(admin
    ? Array.from({ length: cfg.HUBS }, (_, i) => hub(env, i).stats(i))
    : served.map((i) => hub(env, i).stats(i, claims.ns)));
  const total = {};
  if (!admin) for (const k of ['connections', 'subscriptions', ...NS_COUNTERS]) total[k] = 0;
  for (const h of hubs) {
    for (const [k, v] of Object.entries(h)) if (typeof v === 'number' && k !== 'hub') total[k] = (total[k] ?? 0) + v;
  }
  if (admin) return Response.json({ hubs: cfg.HUBS, routeTokens: cfg.ROUTE_TOKENS, total, perHub: hubs });
  return Response.json({
    ns: claims.ns, hubs: cfg.HUBS, routeTokens: cfg.ROUTE_TOKENS, servedBy: served, total, groups: hubs.flatMap((h) => h.groups),
  });
}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const method = ROUTES[url.pathname] ?? (env.EDGEBUS_DEV_ADMIN === '1' ? ADMIN_ROUTES[url.pathname] : undefined);
    let cors = {};
    try {
      const cfg = readConfig(env);
      if (method === undefined) throw new EdgebusError('NOT_FOUND', `no route ${url.pathname} (routes: ${Object.keys(ROUTES).join(', ')})`);
      const origin = checkOrigin(request, env);
      cors = corsHeaders(origin);
      if (request.method === 'OPTIONS' && url.pathname !== '/connect') {
        return preflight(origin, method);
      }
      if (request.method !== method) {
        return errorResponse('METHOD_NOT_ALLOWED', `${url.pathname} takes ${method}, not ${request.method}`, { allow: method, ...cors });
      }
      if (url.pathname === '/connect') return await connect(request, env, url, cfg);
      if (url.pathname === '/publish') return withHeaders(await publish(request, env, url, cfg), cors);
      if (url.pathname === '/admin/evict') return withHeaders(await evict(request, env, url, cfg), cors);
      return withHeaders(await stats(request, env, url, cfg), cors);
    } catch (e) {
      const code = codeOf(e);
      if (code !== undefined) {
        const retry = e.retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))) };
        return errorResponse(code, e.message, { ...cors, ...retry });
      }
      console.error('edgebus: unexpected error', e);
      return errorResponse('UNAVAILABLE', `the request could not be served: ${e?.message ?? e}`, cors);
    }
  },
};
export { STATUS };
