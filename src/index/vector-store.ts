import type { Kernels } from '../kernels/types.js';

/**
 * Full-precision f32 vectors addressed by dense ordinals 0..count-1, living in kernel memory
 * in fixed-size chunks so the scan kernels read them in place (no copy per search).
 * For cosine, a parallel chunk holds each vector's inverse norm (the raw vector is kept, so
 * get() returns exactly what was stored).
 */
export class VectorStore {
  readonly dimension: number;
  readonly chunkRows: number;
  private readonly chunks: number[] = []; // ptr of f32[chunkRows * dimension]
  private readonly invNormChunks: number[] = []; // ptr of f32[chunkRows], only if withInvNorms
  private n = 0;

  constructor(readonly kernels: Kernels, dimension: number, readonly withInvNorms: boolean, chunkRows?: number) {
    this.dimension = dimension;
    // ~4 MiB chunks: large enough that a scan crosses into WASM rarely, small enough to grow smoothly
    this.chunkRows = chunkRows ?? Math.max(256, Math.min(65536, 2 ** Math.round(Math.log2((4 << 20) / (dimension * 4)))));
  }

  get count(): number { return this.n; }
  get chunkCount(): number { return this.chunks.length; }
  /** Pointer to the first vector of chunk c. */
  chunkPtr(c: number): number { return this.chunks[c]; }
  /** Pointer to the inverse norms of chunk c (cosine only). */
  invNormPtr(c: number): number { return this.invNormChunks[c]; }
  /** Rows in use in chunk c. */
  rowsIn(c: number): number { return Math.min(this.chunkRows, this.n - c * this.chunkRows); }

  /** Bytes of kernel memory held by this store. */
  get bytes(): number {
    return this.chunks.length * this.chunkRows * (this.dimension + (this.withInvNorms ? 1 : 0)) * 4;
  }

  /** Appends one vector (f32[dimension]); returns its ordinal. */
  append(v: Float32Array, invNorm = 1): number {
    const ord = this.n;
    if (ord === this.chunks.length * this.chunkRows) {
      this.chunks.push(this.kernels.memory.alloc(this.chunkRows * this.dimension * 4));
      if (this.withInvNorms) this.invNormChunks.push(this.kernels.memory.alloc(this.chunkRows * 4));
    }
    this.n++;
    this.set(ord, v, invNorm);
    return ord;
  }

  /**
   * Appends n rows by handing each contiguous piece of fresh kernel memory to `fill(dest)`, which
   * must write the rows' raw f32 bytes into it (e.g. a file read straight into kernel memory, with
   * no intermediate buffer). norms: f32[n] for cosine stores. Views passed to `fill` are valid only
   * during the call.
   */
  appendFilled(n: number, fill: (dest: Uint8Array) => void, norms?: Float32Array): void {
    const rowBytes = this.dimension * 4;
    let done = 0;
    while (done < n) {
      const ord = this.n;
      if (ord === this.chunks.length * this.chunkRows) {
        this.chunks.push(this.kernels.memory.alloc(this.chunkRows * rowBytes));
        if (this.withInvNorms) this.invNormChunks.push(this.kernels.memory.alloc(this.chunkRows * 4));
      }
      const c = (ord / this.chunkRows) | 0, r = ord - c * this.chunkRows;
      const take = Math.min(n - done, this.chunkRows - r);
      const m = this.kernels.memory;
      fill(m.u8(this.chunks[c] + r * rowBytes, take * rowBytes));
      if (this.withInvNorms) {
        const inv = m.f32(this.invNormChunks[c] + r * 4, take);
        for (let i = 0; i < take; i++) { const nv = norms ? norms[done + i] : 0; inv[i] = nv > 0 ? 1 / nv : 0; }
      }
      this.n += take;
      done += take;
    }
  }

  /** Overwrites the vector at `ord`. */
  set(ord: number, v: Float32Array, invNorm = 1): void {
    const c = (ord / this.chunkRows) | 0, r = ord - c * this.chunkRows;
    // cached whole-memory views: a fresh view per row costs more than copying the row
    const f32 = this.kernels.memory.views().f32;
    f32.set(v, (this.chunks[c] >> 2) + r * this.dimension);
    if (this.withInvNorms) f32[(this.invNormChunks[c] >> 2) + r] = invNorm;
  }

  /**
   * Copies rows [from, from + n) into `out` (f32[n * dimension]): one copy per chunk the range
   * touches, not one per row (seals and merges stream segments through this).
   */
  readRange(from: number, n: number, out: Float32Array): void {
    const d = this.dimension, f32 = this.kernels.memory.views().f32;
    for (let done = 0; done < n;) {
      const ord = from + done;
      const c = (ord / this.chunkRows) | 0, r = ord - c * this.chunkRows;
      const take = Math.min(n - done, this.chunkRows - r);
      const at = (this.chunks[c] >> 2) + r * d;
      out.set(f32.subarray(at, at + take * d), done * d);
      done += take;
    }
  }

  /**
   * Copies rows ords[from .. from + n) within kernel memory to `vecPtr` (f32[n * dimension]) and,
   * when `invPtr` is not 0 (a store with inverse norms), their inverse norms to `invPtr` (f32[n]):
   * the gather step of an exact search over a list of rows (src/index/gathered.ts).
   */
  gather(ords: Uint32Array, from: number, n: number, vecPtr: number, invPtr: number): void {
    const d = this.dimension, f32 = this.kernels.memory.views().f32;
    const dst = vecPtr >> 2, invDst = invPtr >> 2;
    for (let i = 0; i < n; i++) {
      const ord = ords[from + i];
      const c = (ord / this.chunkRows) | 0, r = ord - c * this.chunkRows;
      const at = (this.chunks[c] >> 2) + r * d;
      f32.copyWithin(dst + i * d, at, at + d);
      if (invPtr) f32[invDst + i] = f32[(this.invNormChunks[c] >> 2) + r];
    }
  }

  /** Copies the vector at `ord` into `out` (or a new array). */
  get(ord: number, out: Float32Array = new Float32Array(this.dimension)): Float32Array {
    const c = (ord / this.chunkRows) | 0, r = ord - c * this.chunkRows;
    const at = (this.chunks[c] >> 2) + r * this.dimension;
    out.set(this.kernels.memory.views().f32.subarray(at, at + this.dimension));
    return out;
  }

  /** Moves the last vector into `ord` and drops the last slot (swap-remove). Returns the old ordinal of the moved vector, or -1. */
  removeSwapLast(ord: number): number {
    const last = this.n - 1;
    let moved = -1;
    if (ord !== last) {
      const m = this.kernels.memory;
      const d = this.dimension;
      const cs = (last / this.chunkRows) | 0, rs = last - cs * this.chunkRows;
      const cd = (ord / this.chunkRows) | 0, rd = ord - cd * this.chunkRows;
      m.f32(this.chunks[cd] + rd * d * 4, d).set(m.f32(this.chunks[cs] + rs * d * 4, d));
      if (this.withInvNorms) m.f32(this.invNormChunks[cd] + rd * 4, 1)[0] = m.f32(this.invNormChunks[cs] + rs * 4, 1)[0];
      moved = last;
    }
    this.n--;
    // give back a chunk that became empty, keeping one spare to avoid thrash at a boundary
    while (this.chunks.length > 1 && (this.chunks.length - 2) * this.chunkRows >= this.n) {
      this.kernels.memory.release(this.chunks.pop()!);
      if (this.withInvNorms) this.kernels.memory.release(this.invNormChunks.pop()!);
    }
    return moved;
  }

  /** Releases all kernel memory. */
  clear(): void {
    for (const p of this.chunks) this.kernels.memory.release(p);
    for (const p of this.invNormChunks) this.kernels.memory.release(p);
    this.chunks.length = 0;
    this.invNormChunks.length = 0;
    this.n = 0;
  }
}
