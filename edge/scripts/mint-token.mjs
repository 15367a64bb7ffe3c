#!/usr/bin/env node
// Mints a development token signed with the same secret as the Worker's EDGEBUS_SECRET.
//
//   node edge/scripts/mint-token.mjs --secret <secret> [--pub 'orders.>'] [--sub 'orders.*'] [--ttl 3600]
//
// --pub and --sub may repeat; --ttl is in seconds (default 3600). The secret may come from
// EDGEBUS_SECRET instead of --secret. Prints the token.
import { parseArgs } from 'node:util';
import { signToken } from '../src/auth.js';

const { values } = parseArgs({
  options: {
    secret: { type: 'string' },
    pub: { type: 'string', multiple: true, default: [] },
    sub: { type: 'string', multiple: true, default: [] },
    ttl: { type: 'string', default: '3600' },
  },
});
const secret = values.secret ?? process.env.EDGEBUS_SECRET;
if (!secret) {
  console.error('mint-token: give --secret or set EDGEBUS_SECRET');
  process.exit(2);
}
const ttl = Number(values.ttl);
if (!Number.isFinite(ttl)) {
  console.error(`mint-token: --ttl must be a number of seconds, got ${values.ttl}`);
  process.exit(2);
}
const exp = Math.floor(Date.now() / 1000) + ttl;
console.log(await signToken({ pub: values.pub, sub: values.sub, exp }, secret));
