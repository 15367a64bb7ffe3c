// Where the web entry finds the .wasm when `init()` is given nothing: beside the entry (this module is
// bundled into a file of pkg/ itself, next to `web/`). The development entry (web.dev.js) replaces
// it with the bytes it carries.

let source = () => new URL('./web/edgebus_bg.wasm', import.meta.url);

/** The default input of `init()`: a URL, or bytes. */
export function defaultWasm() {
  return source();
}

/** Replaces the default input of `init()` (the development entry). */
export function useDefaultWasm(fn) {
  source = fn;
}
