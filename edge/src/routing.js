// Which hub owns a topic, and which hubs a pattern must be registered on.
//
// A hub owns the topics whose first `routeTokens` tokens hash to it. A pattern whose first
// `routeTokens` tokens are all literal can only match topics of one hub; a pattern with a wildcard
// among them can match topics of every hub.
//
// The hash is the package's `shardOf` (the core's stable hash: FNV-1a and murmur3's finalizer,
// multiply-shift onto the hub count), the same function ShardedBus and native Rust use.
import { shardOf } from 'edgebus';

export function hubName(index) {
  return `hub-${index}`;
}

/** The hub that keeps the directory of namespace `ns`: which hubs have served it (for /stats). */
export function nsDirectoryHub(ns, hubs) {
  return shardOf(`$ns.${ns}`, hubs);
}

/** The owning hub's index of a (valid) topic, or of a pattern's literal prefix. */
export function hubOfTopic(topic, hubs, routeTokens) {
  let end = -1;
  for (let i = 0; i < routeTokens; i++) {
    end = topic.indexOf('.', end + 1);
    if (end < 0) return shardOf(topic, hubs);
  }
  return shardOf(topic.slice(0, end), hubs);
}

/** The hubs a subscription pattern must be registered on: one, or all of them. */
export function hubsOfPattern(pattern, hubs, routeTokens) {
  const tokens = pattern.split('.');
  const lead = tokens.slice(0, routeTokens);
  if (lead.every((t) => t !== '*' && t !== '>')) return [hubOfTopic(pattern, hubs, routeTokens)];
  return Array.from({ length: hubs }, (_, i) => i);
}

/** Whether `pattern` could match topics of more than one hub. */
export function spansHubs(pattern, routeTokens) {
  return pattern.split('.').slice(0, routeTokens).some((t) => t === '*' || t === '>');
}
