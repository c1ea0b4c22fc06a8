import { ArrayMemory, type KernelMemory } from './memory.js';
import { graphTwin, type GraphKernels } from './graph.js';
import { pqTwin, type PqKernels } from './pq.js';
import { rabitqTwin, type RabitqKernels } from './rabitq.js';
import { scalarTwin, type ScalarKernels } from './scalar.js';
import { sparseTwin, type SparseKernels } from './sparse.js';
import type { Kernels } from './types.js';

/** Half-float bits -> number, for all 65536 values (the JS twin's f16 decoder). */
export const F16_TABLE: Float32Array = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = decodeF16(h);
  return t;
})();

/** IEEE 754 binary16 bits -> value, written from the definition (reference for the SIMD path). */
export function decodeF16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// The family twins (scalar.ts, pq.ts, rabitq.ts) are mixed into JsKernels at construction.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface JsKernels extends ScalarKernels, PqKernels, RabitqKernels, GraphKernels, SparseKernels {}

/**
 * The reference twin of every kernel: plain loops over the same pointer-addressed memory.
 * Accumulates in float64, so it is at least as accurate as the SIMD path. The dense kernels
 * are methods here; the other families' twins come from their own files.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class JsKernels implements Kernels {
  readonly name = 'js' as const;
  readonly memory: KernelMemory;
  private viewOf: ArrayBuffer | null = null;
  private F32!: Float32Array;
  private U32!: Uint32Array;
  private I32!: Int32Array;
  private U16!: Uint16Array;
  private U8!: Uint8Array;
  private I8!: Int8Array;

  constructor(memory: KernelMemory = new ArrayMemory()) {
    this.memory = memory;
    Object.assign(this, scalarTwin(memory), pqTwin(memory), rabitqTwin(memory), sparseTwin(memory), graphTwin(memory, () => this));
  }

  /** Names of every kernel (dense methods and family twins); the WASM module must export each. */
  static kernelNames(): string[] {
    const k = new JsKernels();
    const dense = Object.getOwnPropertyNames(JsKernels.prototype).filter((n) => n !== 'constructor' && n !== 'views' && typeof (k as unknown as Record<string, unknown>)[n] === 'function');
    const families = Object.keys(k).filter((n) => typeof (k as unknown as Record<string, unknown>)[n] === 'function');
    return [...new Set([...dense, ...families])].sort();
  }

  private views(): void {
    const b = this.memory.buffer;
    if (b === this.viewOf) return;
    this.viewOf = b;
    this.F32 = new Float32Array(b, 0, b.byteLength >> 2);
    this.U32 = new Uint32Array(b, 0, b.byteLength >> 2);
    this.I32 = new Int32Array(b, 0, b.byteLength >> 2);
    this.U16 = new Uint16Array(b, 0, b.byteLength >> 1);
    this.U8 = new Uint8Array(b);
    this.I8 = new Int8Array(b);
  }

  dotMany(q: number, base: number, n: number, d: number, out: number): void {
    this.views();
    const F = this.F32, qi = q >> 2;
    let r = base >> 2;
    for (let i = 0; i < n; i++, r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) s += F[qi + j] * F[r + j];
      F[(out >> 2) + i] = s;
    }
  }

  l2Many(q: number, base: number, n: number, d: number, out: number): void {
    this.views();
    const F = this.F32, qi = q >> 2;
    let r = base >> 2;
    for (let i = 0; i < n; i++, r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) { const t = F[qi + j] - F[r + j]; s += t * t; }
      F[(out >> 2) + i] = s;
    }
  }

  f16ToF32(src: number, n: number, dst: number): void {
    this.views();
    const H = this.U16, F = this.F32, s = src >> 1, o = dst >> 2;
    for (let i = 0; i < n; i++) F[o + i] = F16_TABLE[H[s + i]];
  }

  dotManyF16(q: number, base: number, n: number, d: number, out: number): void {
    this.views();
    const F = this.F32, H = this.U16, qi = q >> 2;
    let r = base >> 1;
    for (let i = 0; i < n; i++, r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) s += F[qi + j] * F16_TABLE[H[r + j]];
      F[(out >> 2) + i] = s;
    }
  }

  l2ManyF16(q: number, base: number, n: number, d: number, out: number): void {
    this.views();
    const F = this.F32, H = this.U16, qi = q >> 2;
    let r = base >> 1;
    for (let i = 0; i < n; i++, r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) { const t = F[qi + j] - F16_TABLE[H[r + j]]; s += t * t; }
      F[(out >> 2) + i] = s;
    }
  }

  i8DotMany(q: number, base: number, n: number, d: number, out: number): void {
    this.views();
    const B = this.I8;
    let r = base;
    for (let i = 0; i < n; i++, r += d) {
      let s = 0;
      for (let j = 0; j < d; j++) s += B[q + j] * B[r + j];
      this.I32[(out >> 2) + i] = s;
    }
  }

  hammingMany(q: number, base: number, n: number, nbytes: number, out: number): void {
    this.views();
    const B = this.U8;
    let r = base;
    for (let i = 0; i < n; i++, r += nbytes) {
      let s = 0;
      for (let j = 0; j < nbytes; j++) s += POPCOUNT8[B[q + j] ^ B[r + j]];
      this.U32[(out >> 2) + i] = s;
    }
  }

  gatherRows(src: number, rowBytes: number, ids: number, n: number, map: number, dst: number): void {
    this.views();
    const U = this.U32, B = this.U8;
    for (let i = 0; i < n; i++) {
      let r = U[(ids >> 2) + i];
      if (map) r = U[(map >> 2) + r];
      B.copyWithin(dst + i * rowBytes, src + r * rowBytes, src + (r + 1) * rowBytes);
    }
  }

  mulInPlace(a: number, b: number, n: number): void {
    this.views();
    const F = this.F32, ai = a >> 2, bi = b >> 2;
    for (let i = 0; i < n; i++) F[ai + i] = F[ai + i] * F[bi + i];
  }

  topkPush(scores: number, n: number, idBase: number, sign: number, heapKeys: number, heapIds: number, k: number, size: number): number {
    this.views();
    const F = this.F32, U = this.U32, s0 = scores >> 2, hk = heapKeys >> 2, hi = heapIds >> 2;
    for (let i = 0; i < n; i++) {
      const key = Math.fround(F[s0 + i] * sign);
      if (key !== key) continue;
      if (size < k) {
        // sift up
        let pos = size++;
        const id = idBase + i;
        while (pos > 0) {
          const p = (pos - 1) >> 1;
          if (!(key < F[hk + p] || (key === F[hk + p] && id > U[hi + p]))) break;
          F[hk + pos] = F[hk + p]; U[hi + pos] = U[hi + p]; pos = p;
        }
        F[hk + pos] = key; U[hi + pos] = idBase + i;
      } else if (key > F[hk]) {
        // replace root, sift down
        let pos = 0;
        for (;;) {
          let c = 2 * pos + 1;
          if (c >= size) break;
          if (c + 1 < size && (F[hk + c + 1] < F[hk + c] || (F[hk + c + 1] === F[hk + c] && U[hi + c + 1] > U[hi + c]))) c++;
          if (!(F[hk + c] < key || (F[hk + c] === key && U[hi + c] > idBase + i))) break;
          F[hk + pos] = F[hk + c]; U[hi + pos] = U[hi + c]; pos = c;
        }
        F[hk + pos] = key; U[hi + pos] = idBase + i;
      }
    }
    return size;
  }
}

const POPCOUNT8 = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1];
  return t;
})();
