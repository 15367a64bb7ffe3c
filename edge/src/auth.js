// Bearer tokens: `base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part))`.
// Claims: { pub: [patterns], sub: [patterns], exp: seconds since the epoch }. Web Crypto only, so the
// same code signs in Node (scripts/mint-token.mjs, tests) and verifies in the Worker.
import { EdgeError } from './errors.js';

const encoder = new TextEncoder();

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromB64url(text) {
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const keys = new Map();
function hmacKey(secret) {
  let k = keys.get(secret);
  if (k === undefined) {
    k = crypto.subtle.importKey('raw', encoder.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    keys.set(secret, k);
  }
  return k;
}

/** Signs claims into a token. */
export async function signToken(claims, secret) {
  const body = b64url(encoder.encode(JSON.stringify(claims)));
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(body));
  return `${body}.${b64url(new Uint8Array(mac))}`;
}

function isPatternList(v) {
  return Array.isArray(v) && v.every((p) => typeof p === 'string' && p.length > 0);
}

/** The claims of a valid, unexpired token; throws UNAUTHORIZED or TOKEN_EXPIRED. */
export async function verifyToken(token, secret, nowMs = Date.now()) {
  if (typeof secret !== 'string' || secret.length === 0) {
    throw new EdgeError('UNAUTHORIZED', 'the server has no EDGEBUS_SECRET configured');
  }
  if (typeof token !== 'string' || token.length === 0) {
    throw new EdgeError('UNAUTHORIZED', 'a bearer token is required (Authorization: Bearer <token>, or ?token= on WebSocket URLs)');
  }
  const dot = token.indexOf('.');
  let claims;
  try {
    if (dot < 0) throw new Error('no signature');
    const ok = await crypto.subtle.verify('HMAC', await hmacKey(secret), fromB64url(token.slice(dot + 1)), encoder.encode(token.slice(0, dot)));
    if (!ok) throw new Error('bad signature');
    claims = JSON.parse(new TextDecoder().decode(fromB64url(token.slice(0, dot))));
  } catch {
    throw new EdgeError('UNAUTHORIZED', 'the bearer token is malformed or its signature does not verify');
  }
  if (claims === null || typeof claims !== 'object' || typeof claims.exp !== 'number'
      || !isPatternList(claims.pub ?? []) || !isPatternList(claims.sub ?? [])) {
    throw new EdgeError('UNAUTHORIZED', 'the bearer token\'s claims must be { pub: [patterns], sub: [patterns], exp: seconds }');
  }
  if (claims.exp * 1000 <= nowMs) {
    throw new EdgeError('TOKEN_EXPIRED', `the bearer token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  }
  return { pub: claims.pub ?? [], sub: claims.sub ?? [], exp: claims.exp };
}

/** NATS-style match of a topic against a pattern; a leading wildcard never matches a `$` topic. */
export function matches(pattern, topic) {
  const p = pattern.split('.');
  const t = topic.split('.');
  if (topic.startsWith('$') && (p[0] === '*' || p[0] === '>')) return false;
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return t.length > i;
    if (i >= t.length) return false;
    if (p[i] !== '*' && p[i] !== t[i]) return false;
  }
  return p.length === t.length;
}

/** Whether every topic `pattern` matches is matched by `allowed` (token by token). */
export function covers(allowed, pattern) {
  const a = allowed.split('.');
  const p = pattern.split('.');
  if (pattern.startsWith('$') && (a[0] === '*' || a[0] === '>')) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '>') return p.length > i;
    if (i >= p.length) return false;
    if (p[i] === '>') return false;
    if (a[i] === '*') continue;
    if (a[i] !== p[i]) return false;
  }
  return a.length === p.length;
}

export function mayPublish(claims, topic) {
  return claims.pub.some((p) => matches(p, topic));
}

export function maySubscribe(claims, pattern) {
  return claims.sub.some((p) => covers(p, pattern));
}
