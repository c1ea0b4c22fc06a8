import { QuiverError } from '../errors.js';
import { WasmMemory } from './memory.js';
import type { Kernels } from './types.js';
import { WASM_KERNELS_BASE64 } from './wasm-bytes.generated.js';

interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  [kernel: string]: unknown;
}

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let compiled: WebAssembly.Module | null | undefined;

/** Compiles the kernel module once; null when this runtime lacks WASM SIMD. */
export function compileKernelModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  const bytes = decodeBase64(WASM_KERNELS_BASE64);
  compiled = typeof WebAssembly !== 'undefined' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  return compiled;
}

/** The WASM SIMD kernels: a fresh instance with its own memory. */
export function createWasmKernels(): Kernels {
  const mod = compileKernelModule();
  if (!mod) throw new QuiverError('UNSUPPORTED_FORMAT', 'this runtime does not support WebAssembly SIMD');
  return instantiateKernels(mod);
}

/**
 * Kernels of an instance of `mod`: on its own memory, or on `imported` (the shared build,
 * kernels-shared.wasm, imports env.memory).
 */
export function instantiateKernels(mod: WebAssembly.Module, imported?: WebAssembly.Memory): Kernels {
  const ex = new WebAssembly.Instance(mod, {
    env: { abort: () => { throw new QuiverError('INVALID_ARGUMENT', 'kernel abort'); }, ...(imported ? { memory: imported } : {}) },
  }).exports as unknown as KernelExports;
  const memory = new WasmMemory(imported ?? ex.memory, ex.heapBase());
  // Every exported function except heapBase is a kernel; the twin-agreement tests check the
  // export list equals the JS twin's (JsKernels.kernelNames()).
  const kernels: Record<string, unknown> = { name: 'wasm-simd', memory };
  for (const [key, value] of Object.entries(ex)) {
    if (typeof value === 'function' && key !== 'heapBase') kernels[key] = value;
  }
  return kernels as unknown as Kernels;
}

/** Decodes an embedded base64 module (the generated *-bytes.generated.ts files). */
export function decodeKernelBytes(base64: string): Uint8Array<ArrayBuffer> {
  return decodeBase64(base64);
}

/** Names of the kernels the WASM module exports (for the twin-agreement tests). */
export function wasmKernelNames(): string[] {
  const mod = compileKernelModule();
  if (!mod) return [];
  return WebAssembly.Module.exports(mod).filter((e) => e.kind === 'function' && e.name !== 'heapBase').map((e) => e.name).sort();
}
