import { QuiverError } from '../errors.js';
import { WasmMemory } from './memory.js';
import type { Kernels } from './types.js';
import { WASM_KERNELS_BASE64 } from './wasm-bytes.generated.js';

interface KernelExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  dotMany(q: number, base: number, n: number, d: number, out: number): void;
  l2Many(q: number, base: number, n: number, d: number, out: number): void;
  f16ToF32(src: number, n: number, dst: number): void;
  dotManyF16(q: number, base: number, n: number, d: number, out: number): void;
  l2ManyF16(q: number, base: number, n: number, d: number, out: number): void;
  i8DotMany(q: number, base: number, n: number, d: number, out: number): void;
  hammingMany(q: number, base: number, n: number, nbytes: number, out: number): void;
  mulInPlace(a: number, b: number, n: number): void;
  topkPush(scores: number, n: number, idBase: number, sign: number, heapKeys: number, heapIds: number, k: number, size: number): number;
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
  const ex = new WebAssembly.Instance(mod, {
    env: { abort: () => { throw new QuiverError('INVALID_ARGUMENT', 'kernel abort'); } },
  }).exports as unknown as KernelExports;
  const memory = new WasmMemory(ex.memory, ex.heapBase());
  return {
    name: 'wasm-simd',
    memory,
    dotMany: ex.dotMany,
    l2Many: ex.l2Many,
    f16ToF32: ex.f16ToF32,
    dotManyF16: ex.dotManyF16,
    l2ManyF16: ex.l2ManyF16,
    i8DotMany: ex.i8DotMany,
    hammingMany: ex.hammingMany,
    mulInPlace: ex.mulInPlace,
    topkPush: ex.topkPush,
  };
}
