import { QuiverError } from '../errors.js';
import { JsKernels } from './js.js';
import type { Kernels } from './types.js';
import { compileKernelModule, createWasmKernels } from './wasm.js';

export type { Kernels } from './types.js';
export { KernelMemory, ArrayMemory, WasmMemory, type MemoryViews } from './memory.js';
export { JsKernels, decodeF16, F16_TABLE } from './js.js';
export { createWasmKernels, wasmKernelNames } from './wasm.js';

export type KernelChoice = 'auto' | 'wasm' | 'js';

function envChoice(): KernelChoice {
  const g = globalThis as { process?: { env?: Record<string, string | undefined> } };
  const v = g.process?.env?.QUIVER_KERNELS?.toLowerCase();
  if (v === undefined || v === '' || v === 'auto') return 'auto';
  if (v === 'js' || v === 'wasm') return v;
  throw new QuiverError('INVALID_ARGUMENT', `QUIVER_KERNELS must be auto, wasm or js, got "${v}"`, { expected: ['auto', 'wasm', 'js'], received: v });
}

/** Whether this runtime can run the WASM SIMD kernels (feature probe: validates the module). */
export function wasmSimdSupported(): boolean {
  try {
    return compileKernelModule() !== null;
  } catch {
    return false;
  }
}

/**
 * New kernels with their own memory. 'auto' (default) picks WASM SIMD when the runtime
 * supports it and the JS twin otherwise; the QUIVER_KERNELS environment variable (auto|wasm|js)
 * overrides 'auto', e.g. QUIVER_KERNELS=js to force the reference implementation.
 */
export function createKernels(choice: KernelChoice = 'auto'): Kernels {
  const c = choice === 'auto' ? envChoice() : choice;
  if (c === 'js') return new JsKernels();
  if (c === 'wasm') return createWasmKernels();
  return wasmSimdSupported() ? createWasmKernels() : new JsKernels();
}

/**
 * Resolves a kernel choice once (probe, environment), then makes fresh kernels of that kind on
 * each call: every segment gets its own instance and memory, released with the segment.
 */
export function kernelFactory(choice: KernelChoice = 'auto'): { newKernels: () => Kernels; name: Kernels['name'] } {
  const first = createKernels(choice);
  const resolved: KernelChoice = first.name === 'js' ? 'js' : 'wasm';
  let spare: Kernels | null = first;
  return {
    name: first.name,
    newKernels: () => {
      if (spare) { const k = spare; spare = null; return k; }
      return createKernels(resolved);
    },
  };
}
