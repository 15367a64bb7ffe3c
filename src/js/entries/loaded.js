// `init` and `initSync` of the entries that load the WebAssembly module themselves (Node, bundlers,
// workerd): nothing is left for them to do.

/** Resolves at once: the module is already loaded. */
export function init() {
  return Promise.resolve();
}

/** Does nothing: the module is already loaded. */
export function initSync() {}
