import type { KernelMemory } from './memory.js';

/**
 * Kernels for RaBitQ (bit-plane inner products, extended codes): the interface and its plain JS twin, side by side.
 * The WASM SIMD implementation lives in assembly/rabitq.ts with the same export names;
 * test/kernels-rabitq.test.ts checks the two agree on random data.
 * Pointers are byte offsets into the kernel memory; see types.ts for conventions.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface RabitqKernels {}

/** The JS twin of every RabitqKernels method, over `memory` (use memory.views() inside each call). */
export function rabitqTwin(memory: KernelMemory): RabitqKernels {
  void memory;
  return {};
}
