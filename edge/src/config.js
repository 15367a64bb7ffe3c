// Settings of the edge deployment, from the Worker's environment (wrangler.toml [vars]). Every
// hub and the Worker read the same values, so a topic's owner is the same everywhere.

const DEFAULTS = {
  HUBS: 8,                        // Durable Object hubs topics are spread over
  ROUTE_TOKENS: 1,                // leading topic tokens hashed to pick the hub
  MAX_PAYLOAD_BYTES: 65536,       // one message's JSON payload
  MAX_PAYLOAD_DEPTH: 64,          // nesting of arrays and objects in one payload
  MAX_REQUEST_BYTES: 67108864,    // one POST /publish body (checked before it is parsed)
  MAX_SUBSCRIPTIONS: 100,         // per WebSocket connection
  MAX_PENDING_REQUESTS: 1000,     // requests one WebSocket connection waits on at once
  MAX_REQUEST_TIMEOUT_MS: 300000, // the longest a request may wait for replies (its timeoutMs)
  ASKED_REQUESTS: 10000,          // requests a home hub remembers per connection it delivered, until the client answers them
  MAX_HEADER_BYTES: 8192,         // one message's headers, as JSON
  MAX_CONNECTIONS: 1000,          // WebSocket connections one namespace holds at one hub; beyond it a connection is refused
  MAX_MESSAGES_PER_SECOND: 1000,  // publishes per WebSocket connection and per token on POST /publish (token bucket, 1 s burst)
  MAX_SUBSCRIBES_PER_SECOND: 100, // hub registrations by `sub` (1 per hub it spans) and `del` (1) per WebSocket connection
  UNVOUCHED_ACKS_PER_SECOND: 1000, // acknowledged tokens per WebSocket connection that its home hub did not deliver to it (token bucket, 1 s burst)
  RATE_VIOLATIONS_TO_CLOSE: 10,   // frames in a row with rate-limited publishes before the socket is closed (1008)
  MAX_BATCH_PUBLISH: 1000,        // messages in one POST /publish
  BATCH_MAX_MESSAGES: 100,        // messages in one frame to a client
  BATCH_MAX_WAIT_MS: 0,           // how long a message may wait for a fuller frame; 0: adaptive (next macrotask)
  FORWARD_MAX_BYTES: 8388608,     // payload bytes in one call between hubs (under the 32 MiB RPC limit)
  FORWARD_ATTEMPTS: 3,            // tries of a forward to a home hub before the publish is answered UNAVAILABLE
  OUTBOX_LIMIT: 10000,            // messages waiting for one slow client before the oldest drop
  ACK_TIMEOUT_MS: 30000,          // default work-queue ack deadline
  MAX_ATTEMPTS: 5,                // default work-queue attempts
  LATE_ACK_TOKENS: 100000,        // retired delivery tokens an owner hub remembers per namespace (acknowledged, timed out, dead), to tell a late acknowledgement from a forged one
  LATE_ACK_MAX_AGE_MS: 3600000,   // how long after it retired a token's acknowledgement is late rather than refused (1 hour)
  DELIVERED_TOKENS: 10000,        // delivery tokens a home hub remembers per connection until the client answers them
  MAX_TOKEN_LIFETIME_S: 2592000,  // a token's exp may be at most this far ahead (30 days)
  DEDUPE_MAX_IDS: 100000,         // publish ids remembered per hub (durable idempotence window)
  DEDUPE_MAX_AGE_MS: 600000,      // how long an id is remembered
  STREAM_MAX_MESSAGES: 100000,    // stored messages per work-queue stream; beyond it the oldest drop
  STREAM_MAX_BYTES: 67108864,     // stored bytes (message JSON) per stream; beyond it the oldest drop
  STREAM_MAX_AGE_MS: 604800000,   // a stored message older than this expires (7 days)
  STREAM_IDLE_MS: 604800000,      // a stream with no members and no activity this long is deleted
  STREAM_PAGE: 500,               // messages of one stream held in memory for delivery
  MAX_GROUPS_PER_NAMESPACE: 1000, // work queues (a group on a pattern) one namespace may have at an owner hub
  HISTORY_WINDOW_MS: 120000,      // how long a topic's messages stay replayable (a reconnecting client's window)
  HISTORY_MAX_MESSAGES: 100,      // messages of history per topic
  HISTORY_MAX_TOPICS: 10000,      // topics with history, per namespace at its owner hub
  HISTORY_MAX_BYTES: 8388608,     // bytes (payloads and headers) of history, per namespace at its owner hub
  RETAIN_MAX_TOPICS: 10000,       // retained values, per namespace at its owner hub
  RETAIN_MAX_BYTES: 8388608,      // bytes (payloads and headers) of retained values, per namespace at its owner hub
  REPLAY_MAX_POSITIONS: 1000,     // topics one \`sub\` may name in replay.sinceSeq
  REPLAY_MAX_MESSAGES: 10000,     // messages one \`sub\`'s replay carries at most (the newest; the older are gaps)
  REPLAY_MAX_BYTES: 4194304,      // bytes (payloads and headers) one \`sub\`'s replay carries at most (likewise)
};

export function readConfig(env) {
  const cfg = {};
  for (const [k, d] of Object.entries(DEFAULTS)) {
    const raw = env?.[k];
    const v = raw === undefined || raw === '' ? d : Number(raw);
    if (!Number.isInteger(v) || v < (k === 'BATCH_MAX_WAIT_MS' ? 0 : 1)) {
      throw new Error(`edgebus: setting ${k} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    cfg[k] = v;
  }
  // POST /publish per token: the WebSocket rate unless set on its own.
  const raw = env?.PUBLISH_MESSAGES_PER_SECOND;
  cfg.PUBLISH_MESSAGES_PER_SECOND = raw === undefined || raw === '' ? cfg.MAX_MESSAGES_PER_SECOND : Number(raw);
  if (!Number.isInteger(cfg.PUBLISH_MESSAGES_PER_SECOND) || cfg.PUBLISH_MESSAGES_PER_SECOND < 1) {
    throw new Error(`edgebus: setting PUBLISH_MESSAGES_PER_SECOND must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return cfg;
}
