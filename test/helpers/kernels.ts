import type { Kernels } from '../../src/kernels/types.js';

/** Copies `src` into freshly allocated memory of kernels `k`; returns the pointer. */
export function put(k: Kernels, src: ArrayBufferView): number {
  const bytes = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
  const p = k.memory.alloc(bytes.length);
  k.memory.u8(p, bytes.length).set(bytes);
  return p;
}
