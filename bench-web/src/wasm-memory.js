// The size of edgebus's WebAssembly memory, for the memory scenario. The package does not expose its
// instance, so the page notes the memory of the instance created while `init()` runs.

let memory;

/** Runs `init` while watching WebAssembly instantiation, and keeps the new instance's memory. */
export async function initWatchingMemory(init) {
  const { instantiate, instantiateStreaming } = WebAssembly;
  const keep = (result) => {
    const instance = result instanceof WebAssembly.Instance ? result : result.instance;
    if (instance?.exports?.memory instanceof WebAssembly.Memory) memory = instance.exports.memory;
    return result;
  };
  WebAssembly.instantiate = (...args) => instantiate.apply(WebAssembly, args).then(keep);
  if (instantiateStreaming) {
    WebAssembly.instantiateStreaming = (...args) => instantiateStreaming.apply(WebAssembly, args).then(keep);
  }
  try {
    await init();
  } finally {
    WebAssembly.instantiate = instantiate;
    if (instantiateStreaming) WebAssembly.instantiateStreaming = instantiateStreaming;
  }
}

/**
 * Where the package instantiates its module synchronously at import (the Node entry), the runner
 * wraps `WebAssembly.Instance` before importing it and passes the new instance's memory here.
 */
export function noteWasmMemory(m) {
  if (m instanceof WebAssembly.Memory) memory = m;
}

/** Bytes of edgebus's WebAssembly memory now (0 if it was not seen). */
export function wasmMemoryBytes() {
  return memory ? memory.buffer.byteLength : 0;
}

export const wasmMemoryKnown = () => memory !== undefined;
