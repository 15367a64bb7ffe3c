// How a shard worker's failure is described, the same on every platform.

/**
 * Why a worker reported an error, as text. A thrown non-Error has no `message`; a worker script that
 * cannot be loaded (a 404, a wrong MIME type, a syntax error) gets an error event without one, said
 * with `hint` (what to do about it) when there is one.
 */
export function workerErrorText(e, script, hint) {
  if (e !== null && typeof e === 'object' && typeof e.message === 'string' && e.message !== '') {
    return `uncaught error: ${e.message}`;
  }
  if (e !== null && typeof e === 'object' && typeof e.type === 'string' && !('error' in e && e.error !== undefined && e.error !== null)) {
    return `the worker script ${script} could not be loaded or run (check that it is served, as JavaScript)${hint === undefined ? '' : `; ${hint}`}`;
  }
  let text;
  try { text = String(e && typeof e === 'object' && 'error' in e ? e.error : e); } catch { text = 'an unprintable value'; }
  return `uncaught error: ${text}`;
}
