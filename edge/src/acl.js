// What a token's claims allow: publishing to a topic its `pub` patterns match (the core's own
// matcher, from the package), and subscribing with a pattern its `sub` patterns cover.
import { checkPattern, matches } from 'edgebus';

/**
 * Whether every topic `pattern` matches is matched by `allowed`, token by token. Conservative: it
 * may refuse a pattern whose topics are all allowed in some other way, never the reverse
 * (tests/js/edge-acl.test.mjs checks it against the core's matcher).
 */
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

/** `topic` is already validated; a claim that is not a valid pattern allows nothing. */
export function mayPublish(claims, topic) {
  return claims.pub.some((p) => {
    try {
      return matches(p, topic);
    } catch {
      return false;
    }
  });
}

/** `pattern` is already validated; a claim that is not a valid pattern allows nothing (as for publishing). */
export function maySubscribe(claims, pattern) {
  return claims.sub.some((p) => validClaim(p) && covers(p, pattern));
}

/** Whether a claim is a pattern the core accepts (`>.x` or `a.>.b` are not: they cover nothing). */
function validClaim(p) {
  try {
    checkPattern(p);
    return true;
  } catch {
    return false;
  }
}
