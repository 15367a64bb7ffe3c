#!/usr/bin/env node
// Mints a development token signed with the same key as the Worker's.
//
//   node edge/scripts/mint-token.mjs --secret <secret> [--pub 'orders.>'] [--sub 'orders.*'] [--ttl 3600]
//       [--ns <namespace>] [--admin] [--nbf <seconds from now>] [--kid <key id>]
//
// --pub and --sub may repeat; --ttl is in seconds from now (default 3600), --nbf too (the token is
// valid from then on; default: no nbf). --ns puts the token in a namespace (default: none, the
// default namespace); --admin grants the deployment-wide /stats. --kid names the key that signs
// it: its secret comes from --secret or from EDGEBUS_SECRETS (`kid:secret,…`), as the Worker has
// it. Without --kid the secret comes from --secret or EDGEBUS_SECRET. Prints the token.
import { parseArgs } from 'node:util';
import { keyring, signToken } from '../src/auth.js';

function usage(message) {
  console.error(`mint-token: ${message}`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      secret: { type: 'string' },
      pub: { type: 'string', multiple: true, default: [] },
      sub: { type: 'string', multiple: true, default: [] },
      ttl: { type: 'string', default: '3600' },
      ns: { type: 'string' },
      admin: { type: 'boolean', default: false },
      nbf: { type: 'string' },
      kid: { type: 'string' },
    },
  }));
} catch (e) {
  usage(e.message);
}

function seconds(flag, text) {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) usage(`--${flag} must be a whole number of seconds, got ${text}`);
  return n;
}

let secret = values.secret;
if (secret === undefined) {
  let ring;
  try {
    ring = keyring(process.env);
  } catch (e) {
    usage(e.message);
  }
  secret = values.kid === undefined ? ring.secret : ring.byKid.get(values.kid);
}
if (!secret) {
  usage(values.kid === undefined
    ? 'give --secret or set EDGEBUS_SECRET'
    : `give --secret or set EDGEBUS_SECRETS with a key \`${values.kid}\``);
}
const now = Math.floor(Date.now() / 1000);
const claims = { pub: values.pub, sub: values.sub, exp: now + seconds('ttl', values.ttl) };
if (values.nbf !== undefined) claims.nbf = now + seconds('nbf', values.nbf);
if (values.ns !== undefined) {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(values.ns)) usage(`--ns must be 1-64 characters of A-Z a-z 0-9 _ -, got ${values.ns}`);
  claims.ns = values.ns;
}
if (values.admin) claims.admin = true;
if (values.kid !== undefined) claims.kid = values.kid;
console.log(await signToken(claims, secret));
