import type { GraphKernels } from './graph.js';
import type { KernelMemory } from './memory.js';
import type { PqKernels } from './pq.js';
import type { RabitqKernels } from './rabitq.js';
import type { ScalarKernels } from './scalar.js';
import type { SparseKernels } from './sparse.js';

/**
 * Batch numeric primitives. Every pointer is a byte offset into `memory`; f32/u32/i32 pointers
 * must be 4-byte aligned and u16 pointers 2-byte aligned. One call handles a block of n vectors,
 * so the JS/WASM boundary is crossed once per block, never per vector.
 *
 * Two implementations exist: `wasm-simd` (assembly/, WASM SIMD) and `js` (src/kernels/js.ts,
 * the reference twin). Results agree up to float summation order.
 */
export interface Kernels extends DenseKernels, ScalarKernels, PqKernels, RabitqKernels, GraphKernels, SparseKernels {
  readonly name: 'wasm-simd' | 'js';
  readonly memory: KernelMemory;
}

/**
 * Float kernels over raw f32/f16 vectors, int8 dot products, Hamming distance and top-k.
 * Twins: src/kernels/js.ts; WASM: assembly/dense.ts. Other families (one file each, interface +
 * JS twin together): scalar.ts (scalar/LVQ codes), pq.ts (product quantization, fast-scan),
 * rabitq.ts (RaBitQ), each with its AssemblyScript twin under assembly/ of the same name.
 */
export interface DenseKernels {
  /** out[i] = <q, base[i]>. q: f32[d], base: f32[n*d] row-major, out: f32[n]. */
  dotMany(q: number, base: number, n: number, d: number, out: number): void;
  /** out[i] = ||q - base[i]||^2 (squared L2). Shapes as dotMany. */
  l2Many(q: number, base: number, n: number, d: number, out: number): void;
  /** dst[i] = float(src[i]). src: u16[n] IEEE half bits, dst: f32[n]. */
  f16ToF32(src: number, n: number, dst: number): void;
  /** out[i] = <q, base[i]>. q: f32[d], base: u16[n*d] half floats, out: f32[n]. */
  dotManyF16(q: number, base: number, n: number, d: number, out: number): void;
  /** out[i] = ||q - base[i]||^2. q: f32[d], base: u16[n*d] half floats, out: f32[n]. */
  l2ManyF16(q: number, base: number, n: number, d: number, out: number): void;
  /** out[i] = sum_j q[j]*base[i*d+j]. q: i8[d], base: i8[n*d], out: i32[n]. */
  i8DotMany(q: number, base: number, n: number, d: number, out: number): void;
  /** out[i] = popcount(q XOR base[i]). q: u8[nbytes], base: u8[n*nbytes], out: u32[n]. */
  hammingMany(q: number, base: number, n: number, nbytes: number, out: number): void;
  /** a[i] *= b[i]. a, b: f32[n]. */
  mulInPlace(a: number, b: number, n: number): void;
  /**
   * Gathers n rows of rowBytes bytes: row i of dst (u8[n * rowBytes]) is row r of src, r = ids[i]
   * (u32[n]), or map[ids[i]] when map (u32[]) is not 0.
   */
  gatherRows(src: number, rowBytes: number, ids: number, n: number, map: number, dst: number): void;
  /**
   * Bounded top-k: pushes keys scores[i]*sign (ids idBase+i) into a min-heap of capacity k
   * held in heapKeys: f32[k] and heapIds: u32[k], which already holds `size` entries.
   * Returns the new size. Ties keep the smaller id (ids must arrive in increasing order); NaN never enters.
   */
  topkPush(scores: number, n: number, idBase: number, sign: number, heapKeys: number, heapIds: number, k: number, size: number): number;
}
