// Writing short strings straight into buffers the core lends in its memory: the hot paths (topic
// resolution, id checks) then cross the boundary with a length instead of a string copy.

import { raw } from './core.js';

// Memory growth detaches the old buffer (its byteLength becomes 0): the views are then remade.
let memoryBytes = new Uint8Array(0);
function wasmBytes() {
  if (memoryBytes.byteLength === 0) memoryBytes = new Uint8Array(raw.wasm_memory().buffer);
  return memoryBytes;
}

let memoryWords = new Uint32Array(0);
/** The core's memory as 32-bit words (where it leaves a resolved route). */
export function wasmWords() {
  if (memoryWords.byteLength === 0) memoryWords = new Uint32Array(raw.wasm_memory().buffer);
  return memoryWords;
}

/**
 * Writes an ASCII string into the core's memory at `at` (at most `room` bytes) and returns its
 * length; -1 for anything else (not a string, too long, not ASCII), which takes the string path.
 */
export function writeAscii(s, at, room) {
  if (typeof s !== 'string') return -1;
  const n = s.length;
  if (n > room) return -1;
  const bytes = wasmBytes();
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return -1;
    bytes[at + i] = c;
  }
  return n;
}
