// Errors of the JavaScript layer: one class with a stable `code`, used by every part of the package
// (Bus, ShardedBus, the remote client) and by the edge deployment, which imports it from the package.

/** An error with a stable `code`. */
export class EdgebusError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = 'EdgebusError';
    this.code = code;
  }
}

export function fail(code, message) {
  throw new EdgebusError(code, message);
}

/** Rethrows an error raised by the core as an EdgebusError (same code and message). */
export function fromCore(e) {
  if (e instanceof EdgebusError) return e;
  if (e && typeof e.code === 'string' && e.name === 'EdgebusError') {
    return new EdgebusError(e.code, e.message);
  }
  return e;
}

/** The text of a thrown value (a handler's error, for a dead letter; an unreadable option). */
export function errorText(err) {
  try {
    if (err instanceof Error) return err.message;
    return typeof err === 'string' ? err : String(err);
  } catch {
    return 'an unprintable value was thrown';
  }
}
