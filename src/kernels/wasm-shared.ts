import { QuiverError } from '../errors.js';
import type { Kernels } from './types.js';
import { decodeKernelBytes, instantiateKernels } from './wasm.js';
import { WASM_SHARED_KERNELS_BASE64 } from './wasm-shared-bytes.generated.js';

/**
 * The kernels built for threads (scripts/build-wasm.mjs: kernels-shared.wasm, the same sources
 * as kernels.wasm with the memory imported and shared). Concurrent graph builds put a graph and
 * its rows in such a memory and let worker threads run hnswInsert on it, each with its own
 * instance of the module (instantiation writes the module's static data again: only zero-filled
 * scratch of kernels that insertion never calls).
 *
 * Imported only by the threaded builders (src/node/), so that a browser bundle never carries it.
 */

/** Where kernels on shared memory came from: what a thread needs to run them. */
export interface SharedKernelParts {
  readonly module: WebAssembly.Module;
  readonly memory: WebAssembly.Memory;
}

const parts = new WeakMap<Kernels, SharedKernelParts>();
let compiled: WebAssembly.Module | null | undefined;

/** Whether this runtime can run kernels on shared memory (SharedArrayBuffer, WASM threads and SIMD). */
export function sharedKernelsSupported(): boolean {
  return compileSharedModule() !== null;
}

function compileSharedModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const bytes = decodeKernelBytes(WASM_SHARED_KERNELS_BASE64);
    compiled = typeof SharedArrayBuffer !== 'undefined' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  } catch {
    compiled = null;
  }
  return compiled;
}

/** Fresh WASM kernels on a new shared memory (grows like the others, up to 4 GiB). */
export function createSharedKernels(): Kernels {
  const module = compileSharedModule();
  if (!module) throw new QuiverError('UNSUPPORTED_FORMAT', 'this runtime cannot run kernels on shared memory (no SharedArrayBuffer or WebAssembly threads)');
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
  const kernels = instantiateKernels(module, memory);
  parts.set(kernels, { module, memory });
  return kernels;
}

/** The module and memory behind kernels from createSharedKernels (undefined for any other kernels). */
export function sharedKernelParts(kernels: Kernels): SharedKernelParts | undefined {
  return parts.get(kernels);
}
