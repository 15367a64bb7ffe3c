// Error codes of the edge deployment and their HTTP statuses. Every refusal, over HTTP or WebSocket,
// is `{ error: { code, message } }` (HTTP) or `{ t: 'err', code, message }` (WebSocket). The edge
// throws the package's EdgebusError, the same class the core's refusals come as.

export const STATUS = {
  BAD_JSON: 400,
  BAD_REQUEST: 400,
  INVALID_TOPIC: 400,
  INVALID_PATTERN: 400,
  INVALID_OPTION: 400,
  GROUP_SPANS_HUBS: 400,
  UNKNOWN_SUBSCRIPTION: 400,
  UNAUTHORIZED: 401,
  INVALID_CLAIMS: 401,
  TOKEN_NOT_YET_VALID: 401,
  TOKEN_EXPIRED: 401,
  FORBIDDEN: 403,
  ORIGIN_NOT_ALLOWED: 403,
  GROUP_IN_USE: 409,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  MESSAGE_TOO_LARGE: 413,
  BATCH_TOO_LARGE: 413,
  PAYLOAD_TOO_DEEP: 400,
  REQUEST_TOO_LARGE: 413,
  TOO_MANY_SUBSCRIPTIONS: 429,
  TOO_MANY_CONNECTIONS: 429,
  RATE_LIMITED: 429,
  UNAVAILABLE: 503,
};

/** The code of an error thrown by the core (EdgebusError) or by the edge itself. */
export function codeOf(e) {
  return e && typeof e.code === 'string' && e.code in STATUS ? e.code : undefined;
}

export function errorResponse(code, message, headers = {}) {
  if (code === 'RATE_LIMITED' && headers['retry-after'] === undefined) headers = { ...headers, 'retry-after': '1' };
  return Response.json({ error: { code, message } }, { status: STATUS[code] ?? 400, headers });
}

/**
 * A refused WebSocket: accepted, told why in one frame, then closed (a browser sees no HTTP
 * status). The close code says what a client does next: 4401 a token to refresh, 4429 try again
 * later, 4400 a refusal that stays.
 */
export function refuseSocket(code, message, protocol) {
  const [client, server] = Object.values(new WebSocketPair());
  server.accept();
  server.send(JSON.stringify({ t: 'err', code, message }));
  const status = STATUS[code];
  server.close(status === 401 ? 4401 : status === 429 ? 4429 : 4400, message.slice(0, 120));
  return new Response(null, { status: 101, webSocket: client, headers: protocol ? { 'sec-websocket-protocol': protocol } : {} });
}
