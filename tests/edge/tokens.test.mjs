// Token hygiene against `wrangler dev`: only canonical unpadded base64url signatures verify; `nbf`
// is honoured; `kid` picks a key of EDGEBUS_SECRETS (rotation), next to EDGEBUS_SECRET for tokens
// without one; `exp` must be an integer at most MAX_TOKEN_LIFETIME_S ahead; each refusal a 401
// with its own code. The mint-token script makes every claim.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { EdgeServer, RawSocket, edgeDir } from './support/server.mjs';
import { signToken } from '../../edge/src/auth.js';

const DAY = 86400;
const keys = { k1: 'first-key-secret', k2: 'second-key-secret' };
const server = new EdgeServer({ keys, vars: { MAX_TOKEN_LIFETIME_S: DAY } });
const now = () => Math.floor(Date.now() / 1000);
const msg = { topic: 'orders.a', payload: 1 };

before(async () => {
  await server.start();
}, { timeout: 120_000 });
after(() => server.dispose());

async function expect(token, status, code) {
  const r = await server.post('/publish', msg, token);
  assert.equal(r.status, status, JSON.stringify(r.body));
  if (code !== undefined) {
    assert.equal(r.body.error.code, code);
    assert.ok(r.body.error.message.length > 20, r.body.error.message);
  }
  return r;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

test('only the canonical base64url spelling of a signature verifies', async () => {
  // A token whose signature has `-` or `_`, to respell in the standard alphabet.
  let token;
  for (let i = 0; token === undefined; i++) {
    const t = await server.token({ pub: ['orders.>'], sub: [], ttl: 3600 + i });
    if (/[-_]/.test(t.split('.')[1])) token = t;
  }
  await expect(token, 200);
  const [body, sig] = token.split('.');
  assert.equal(sig.length, 43, '32 bytes: 2 unused low bits in the last character');
  const last = ALPHABET.indexOf(sig.at(-1));
  const variants = {
    padded: `${body}.${sig}=`,
    'standard alphabet': `${body}.${sig.replaceAll('-', '+').replaceAll('_', '/')}`,
    'unused bits set': `${body}.${sig.slice(0, -1)}${ALPHABET[last ^ 1]}`,
    'other unused bits set': `${body}.${sig.slice(0, -1)}${ALPHABET[last ^ 3]}`,
    'padded body': `${body}=.${sig}`,
    'three parts': `${token}.${sig}`,
  };
  for (const [name, t] of Object.entries(variants)) {
    const r = await server.post('/publish', msg, t);
    assert.deepEqual([r.status, r.body.error?.code], [401, 'UNAUTHORIZED'], name);
  }
});

test('nbf: a token is refused before it, with its own code, over HTTP and WebSocket', async () => {
  const early = await server.token({ pub: ['orders.>'], nbf: now() + 120 });
  const r = await expect(early, 401, 'TOKEN_NOT_YET_VALID');
  assert.match(r.body.error.message, /not valid before/);
  await expect(await server.token({ pub: ['orders.>'], nbf: now() - 5 }), 200);
  const s = await RawSocket.open(`${server.wsUrl}/connect?token=${early}`);
  assert.equal((await s.waitFor((f) => f.t === 'err')).code, 'TOKEN_NOT_YET_VALID');
  assert.equal((await s.closedPromise).code, 4401);
  await expect(await server.token({ pub: ['orders.>'], nbf: 'soon' }), 401, 'INVALID_CLAIMS');
});

test('exp: a finite integer within MAX_TOKEN_LIFETIME_S', async () => {
  const sign = (exp) => signToken({ pub: ['orders.>'], sub: [], exp }, server.secret);
  for (const exp of [1e300, now() + 3600.5, '9999999999', null, Number.MAX_SAFE_INTEGER + 2]) {
    await expect(await sign(exp), 401, 'INVALID_CLAIMS');
  }
  const tooLong = await expect(await sign(now() + 2 * DAY), 401, 'INVALID_CLAIMS');
  assert.match(tooLong.body.error.message, /MAX_TOKEN_LIFETIME_S/);
  await expect(await sign(now() + DAY - 60), 200);
  await expect(await sign(now() - 1), 401, 'TOKEN_EXPIRED');
});

test('kid: a key of EDGEBUS_SECRETS signs tokens naming it; EDGEBUS_SECRET signs those without', async () => {
  const claims = { pub: ['orders.>'], sub: [], exp: now() + 600 };
  await expect(await signToken({ ...claims, kid: 'k1' }, keys.k1), 200);
  await expect(await signToken({ ...claims, kid: 'k2' }, keys.k2), 200);
  await expect(await signToken(claims, server.secret), 200);
  const wrongKey = await expect(await signToken({ ...claims, kid: 'k2' }, keys.k1), 401, 'UNAUTHORIZED');
  assert.match(wrongKey.body.error.message, /signature/);
  const unknown = await expect(await signToken({ ...claims, kid: 'k3' }, keys.k1), 401, 'UNAUTHORIZED');
  assert.match(unknown.body.error.message, /"k3"/);
  await expect(await signToken(claims, keys.k1), 401, 'UNAUTHORIZED');
  await expect(await signToken({ ...claims, kid: 'k1' }, server.secret), 401, 'UNAUTHORIZED');
  await expect(await signToken({ ...claims, ns: 'has space' }, server.secret), 401, 'INVALID_CLAIMS');
  await expect(await signToken({ ...claims, admin: 'yes' }, server.secret), 401, 'INVALID_CLAIMS');
});

test('mint-token makes ns, admin, nbf and kid claims the server accepts', async () => {
  const mint = (...args) => execFileSync(process.execPath, [join(edgeDir, 'scripts', 'mint-token.mjs'), ...args], {
    env: { ...process.env, EDGEBUS_SECRETS: `k1:${keys.k1},k2:${keys.k2}` }, encoding: 'utf8',
  }).trim();
  const admin = mint('--kid', 'k2', '--admin', '--ttl', '600');
  const all = await server.stats(admin);
  assert.equal(all.perHub.length, 8);
  const tenant = mint('--secret', server.secret, '--ns', 'acme', '--pub', 'orders.>', '--nbf=-10');
  const claims = JSON.parse(Buffer.from(tenant.split('.')[0], 'base64url').toString());
  assert.deepEqual(Object.keys(claims).sort(), ['exp', 'nbf', 'ns', 'pub', 'sub']);
  await expect(tenant, 200);
  assert.equal((await server.stats(tenant)).ns, 'acme');
  const later = mint('--kid', 'k1', '--pub', 'orders.>', '--nbf', '300');
  await expect(later, 401, 'TOKEN_NOT_YET_VALID');
  assert.throws(() => mint('--kid', 'k9'), /EDGEBUS_SECRETS with a key `k9`/);
});
