import type { KernelMemory } from './memory.js';

/**
 * Kernels for scalar quantization codes (SQ8/SQ4, LVQ, binary asymmetric): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/scalar.ts with the same export names;
 * test/kernels-scalar.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface ScalarKernels {}

/** The JS twin of every ScalarKernels method, over `memory` (use memory.views() inside each call). */
export function scalarTwin(memory: KernelMemory): ScalarKernels {
  void memory;
  return {};
}
