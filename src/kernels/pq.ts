import type { KernelMemory } from './memory.js';

/**
 * Kernels for product quantization (lookup-table scans, 4-bit fast-scan): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/pq.ts with the same export names;
 * test/kernels-pq.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface PqKernels {}

/** The JS twin of every PqKernels method, over `memory` (use memory.views() inside each call). */
export function pqTwin(memory: KernelMemory): PqKernels {
  void memory;
  return {};
}
