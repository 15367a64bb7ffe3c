// Bearer tokens: `base64url(JSON claims) "." base64url(HMAC-SHA256(key, first part))`, unpadded
// base64url only. Web Crypto only, so the same code signs in Node (scripts/mint-token.mjs, tests)
// and verifies in the Worker.
//
// Claims: { pub: [patterns], sub: [patterns], exp, nbf?, ns?, admin?, kid? }. `exp` and `nbf` are
// integer seconds since the epoch; `ns` is the tenant's namespace (DEFAULT_NS without it); `admin:
// true` opens the deployment-wide /stats; `kid` names the key (EDGEBUS_SECRETS) that signed the
// token, and a token without `kid` is signed with EDGEBUS_SECRET.
import { EdgebusError } from 'edgebus';

const encoder = new TextEncoder();
const B64URL = /^[A-Za-z0-9_-]*$/;
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** The namespace of tokens that carry no `ns` claim. */
export const DEFAULT_NS = 'default';
/** Default of MAX_TOKEN_LIFETIME_S: a token may not be valid for longer than 30 days from now. */
export const MAX_TOKEN_LIFETIME_S = 30 * 24 * 3600;

function b64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/**
 * Decodes canonical unpadded base64url only: no `=`, no `+` or `/`, and unused low bits zero, checked
 * by re-encoding (atob alone accepts all of those, which made one signature spellable several ways).
 */
function fromB64url(text) {
  if (!B64URL.test(text)) throw new Error('not base64url');
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  if (b64url(out) !== text) throw new Error('not canonical base64url');
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

/** Signs claims into a token (with the key of `claims.kid` when it names one: the caller's secret). */
export async function signToken(claims, secret) {
  const body = b64url(encoder.encode(JSON.stringify(claims)));
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(secret), encoder.encode(body));
  return `${body}.${b64url(new Uint8Array(mac))}`;
}

/**
 * The verification keys of a Worker environment: `EDGEBUS_SECRET` (tokens without `kid`) and
 * `EDGEBUS_SECRETS`, `kid1:secret1,kid2:secret2` (tokens naming their `kid`), for rotation.
 */
export function keyring(env) {
  const byKid = new Map();
  const list = env?.EDGEBUS_SECRETS;
  if (typeof list === 'string' && list.trim() !== '') {
    for (const entry of list.split(',')) {
      const at = entry.indexOf(':');
      const kid = entry.slice(0, at).trim();
      const secret = entry.slice(at + 1).trim();
      if (at < 0 || !NAME.test(kid) || secret.length === 0) {
        throw new Error('edgebus: EDGEBUS_SECRETS must be `kid:secret` pairs separated by commas (kid: 1-64 of A-Z a-z 0-9 _ -)');
      }
      if (byKid.has(kid)) throw new Error(`edgebus: EDGEBUS_SECRETS names key id \`${kid}\` twice`);
      byKid.set(kid, secret);
    }
  }
  const secret = env?.EDGEBUS_SECRET;
  return { secret: typeof secret === 'string' && secret.length > 0 ? secret : undefined, byKid };
}

function isPatternList(v) {
  return Array.isArray(v) && v.every((p) => typeof p === 'string' && p.length > 0);
}

function claimsError(message) {
  return new EdgebusError('INVALID_CLAIMS', `the bearer token's claims are not valid: ${message}`);
}

/**
 * The claims of a valid token `{ pub, sub, exp, nbf?, ns, admin, kid? }`. `keys` is a keyring (or
 * one secret string, for tokens without `kid`). Throws UNAUTHORIZED (no token, malformed, unknown
 * key, bad signature), INVALID_CLAIMS, TOKEN_NOT_YET_VALID or TOKEN_EXPIRED.
 */
export async function verifyToken(token, keys, nowMs = Date.now(), { maxLifetimeS = MAX_TOKEN_LIFETIME_S } = {}) {
  const ring = typeof keys === 'string' || keys === undefined ? { secret: keys || undefined, byKid: new Map() } : keys;
  if (ring.secret === undefined && ring.byKid.size === 0) {
    throw new EdgebusError('UNAUTHORIZED', 'the server has no EDGEBUS_SECRET (or EDGEBUS_SECRETS) configured');
  }
  if (typeof token !== 'string' || token.length === 0) {
    throw new EdgebusError('UNAUTHORIZED', 'a bearer token is required (Authorization: Bearer <token>; for WebSockets also ?token= or the `bearer.<token>` subprotocol)');
  }
  const parts = token.split('.');
  let claims;
  let mac;
  try {
    if (parts.length !== 2) throw new Error('not two parts');
    mac = fromB64url(parts[1]);
    claims = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(fromB64url(parts[0])));
  } catch {
    throw new EdgebusError('UNAUTHORIZED', 'the bearer token is malformed: expected two parts of unpadded base64url joined by `.`');
  }
  if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
    throw new EdgebusError('UNAUTHORIZED', 'the bearer token is malformed: its first part is not a JSON object');
  }
  let secret = ring.secret;
  if (claims.kid !== undefined) {
    secret = typeof claims.kid === 'string' ? ring.byKid.get(claims.kid) : undefined;
    if (secret === undefined) throw new EdgebusError('UNAUTHORIZED', `the bearer token names key id ${JSON.stringify(claims.kid)}, which this server does not know (EDGEBUS_SECRETS)`);
  } else if (secret === undefined) {
    throw new EdgebusError('UNAUTHORIZED', 'the bearer token names no key id (`kid`) and the server has no EDGEBUS_SECRET');
  }
  if (!(await crypto.subtle.verify('HMAC', await hmacKey(secret), mac, encoder.encode(parts[0])))) {
    throw new EdgebusError('UNAUTHORIZED', 'the bearer token\'s signature does not verify');
  }
  const now = Math.floor(nowMs / 1000);
  if (!isPatternList(claims.pub ?? []) || !isPatternList(claims.sub ?? [])) throw claimsError('`pub` and `sub` must be lists of patterns');
  if (!Number.isSafeInteger(claims.exp)) throw claimsError(`\`exp\` must be an integer of seconds since the epoch, got ${JSON.stringify(claims.exp)}`);
  if (claims.nbf !== undefined && !Number.isSafeInteger(claims.nbf)) throw claimsError(`\`nbf\` must be an integer of seconds since the epoch, got ${JSON.stringify(claims.nbf)}`);
  if (claims.ns !== undefined && (typeof claims.ns !== 'string' || !NAME.test(claims.ns))) throw claimsError(`\`ns\` must be 1-64 characters of A-Z a-z 0-9 _ -, got ${JSON.stringify(claims.ns)}`);
  if (claims.admin !== undefined && typeof claims.admin !== 'boolean') throw claimsError(`\`admin\` must be true or false, got ${JSON.stringify(claims.admin)}`);
  if (claims.exp - now > maxLifetimeS) {
    throw claimsError(`\`exp\` is ${claims.exp - now} s from now; this server accepts tokens valid for at most ${maxLifetimeS} s (MAX_TOKEN_LIFETIME_S)`);
  }
  if (claims.nbf !== undefined && claims.nbf > now) {
    throw new EdgebusError('TOKEN_NOT_YET_VALID', `the bearer token is not valid before ${new Date(claims.nbf * 1000).toISOString()} (nbf)`);
  }
  if (claims.exp * 1000 <= nowMs) {
    throw new EdgebusError('TOKEN_EXPIRED', `the bearer token expired at ${new Date(claims.exp * 1000).toISOString()}`);
  }
  const out = { pub: claims.pub ?? [], sub: claims.sub ?? [], exp: claims.exp, ns: claims.ns ?? DEFAULT_NS, admin: claims.admin === true };
  if (claims.nbf !== undefined) out.nbf = claims.nbf;
  if (claims.kid !== undefined) out.kid = claims.kid;
  return out;
}

