// Which hub owns a topic, and which hubs a pattern must be registered on.
//
// A hub owns the topics whose first `routeTokens` tokens hash to it. A pattern whose first
// `routeTokens` tokens are all literal can only match topics of one hub; a pattern with a wildcard
// among them can match topics of every hub.
//
// The hash is FNV-1a over the UTF-8 bytes followed by murmur3's 32-bit finalizer, then
// multiply-shift onto the hub count. The finalizer matters: routed prefixes are short and often
// differ only in their last character (`t1`, `t2`, …), and raw FNV-1a's high bits barely move
// with the last byte, which would put most such prefixes on one or two hubs.
// The bytes are those TextEncoder gives (a lone surrogate is U+FFFD), walked without encoding the
// string: this runs for every publish, and TextEncoder is a call out of the isolate on workerd.
const FNV_PRIME = 0x01000193;

export function shardOf(key, hubs) {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = c <= 0xdbff && i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        h = Math.imul(h ^ (0xf0 | (cp >> 18)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 12) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | ((cp >> 6) & 0x3f)), FNV_PRIME);
        h = Math.imul(h ^ (0x80 | (cp & 0x3f)), FNV_PRIME);
        continue;
      }
      c = 0xfffd; // a lone surrogate
    }
    h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), FNV_PRIME);
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), FNV_PRIME);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.floor(((h >>> 0) * hubs) / 4294967296);
}

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
