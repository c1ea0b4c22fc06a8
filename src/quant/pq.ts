import { QuiverError } from '../errors.js';
import { kmeansSteps } from '../math/kmeans.js';
import { Rng } from '../math/rng.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, QuantizerBase, ScorerMemory } from './common.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import { scorer } from './scalar.js';
import type { QueryScorer, ScanLayout, TrainOptions } from './types.js';

/**
 * Product quantization: `PQ{m}x8`, `PQ{m}x4` and the 4-bit fast-scan variant `PQ{m}x4fs`.
 *
 * The d dimensions split into m contiguous subspaces of d/m dimensions; each subspace has a
 * codebook of k = 2^b centroids learned by k-means (src/math/kmeans.ts) on a seeded subsample of
 * the training vectors, and a vector's code is the index of the nearest centroid per subspace.
 * Scores are asymmetric (ADC): the query stays in floats and a lookup table holds, per subspace,
 * its score against every centroid (dot: <q_s, c>; l2: -||q_s - c||^2), so that a vector's
 * estimate is a sum of m table entries (kernels pqScan8 / pqScan4), exact for the decoded vector.
 *
 * Rows: PQ{m}x8 = m bytes; PQ{m}x4 and PQ{m}x4fs = ceil(m/2) bytes (subspace 2t in the low
 * nibble of byte t). No per-vector factors.
 *
 * Fast-scan (x4fs, scan layout blocks of 32 vectors, kernel pqFastScan): the table is quantized
 * to u8, per subspace lut_s(c) = round((T_s(c) - min_s) / Δ) with one Δ = max_s range_s / 255
 * shared by all subspaces (so sums stay comparable), and the estimate is
 * sum_s min_s + Δ * sum_s lut_s(code_s). A block stores, per subspace, 16 bytes whose byte j holds
 * the codes of vectors j (low nibble) and j + 16 (high nibble): one i8x16.swizzle applies a
 * subspace's table to 16 vectors. The quantized table costs at most Δ/2 per subspace.
 */

const PAYLOAD_VERSION = 1;
const SPEC = /^PQ(\d+)x(\d+)(fs)?$/;
/** Training vectors used at most, per codebook size (a seeded subsample beyond it). */
const MAX_TRAINING_VECTORS: Record<4 | 8, number> = { 4: 8192, 8: 16384 };
/** Lloyd iterations per subspace codebook. */
const KMEANS_ITERATIONS: Record<4 | 8, number> = { 4: 16, 8: 10 };
/** Vectors encoded per batch (bounds the kernel scratch memory). */
const ENCODE_BATCH = 8192;

export interface PqParams {
  m: number;
  bits: 4 | 8;
  fastScan: boolean;
}

/** Parses 'PQ{m}x{b}[fs]' for dimension d; null if not a PQ spec; INVALID_ARGUMENT on bad parameters. */
export function parsePqSpec(spec: string, prefix: 'PQ' | 'OPQ' = 'PQ'): ((d: number) => PqParams) | null {
  const m = (prefix === 'PQ' ? SPEC : /^OPQ(\d+)x(\d+)(fs)?$/).exec(spec);
  if (!m) return null;
  const subspaces = Number(m[1]), bits = Number(m[2]), fastScan = m[3] !== undefined;
  if (bits !== 4 && bits !== 8) {
    throw new QuiverError('INVALID_ARGUMENT', `${spec}: ${prefix} codes have 4 or 8 bits per subspace, got ${m[2]}`, { spec, name: 'bits', expected: [4, 8], received: bits });
  }
  if (fastScan && bits !== 4) {
    throw new QuiverError('INVALID_ARGUMENT', `${spec}: fast-scan ('fs') needs 4-bit codes (${prefix}${subspaces}x4fs)`, { spec, name: 'bits', expected: 4, received: bits });
  }
  if (!(subspaces >= 1) || String(subspaces) !== m[1]) {
    throw new QuiverError('INVALID_ARGUMENT', `${spec}: the number of subspaces m must be at least 1`, { spec, name: 'm', expected: 'integer >= 1', received: subspaces });
  }
  return (d) => {
    if (d % subspaces !== 0) {
      throw new QuiverError('INVALID_ARGUMENT', `${spec}: dimension ${d} is not divisible by m = ${subspaces} subspaces`, {
        spec, d, m: subspaces, expected: `m dividing d = ${d}`, received: subspaces,
      });
    }
    return { m: subspaces, bits: bits as 4 | 8, fastScan };
  };
}

export class ProductQuantizer extends QuantizerBase {
  readonly spec: string;
  /** Subspaces. */
  readonly m: number;
  /** Bits per subspace code (4 or 8). */
  readonly bits: 4 | 8;
  readonly fastScan: boolean;
  /** Centroids per subspace, 2^bits. */
  readonly k: number;
  /** Dimensions per subspace, d / m. */
  readonly subDim: number;
  readonly codeSize: number;
  readonly minTrainingVectors: number;
  /** f32[m * k * subDim]: centroid c of subspace s at (s * k + c) * subDim. */
  private codebooks: Float32Array;
  private fsLayout: ScanLayout | undefined;

  /** specPrefix: 'PQ', or 'OPQ' for the product quantizer inside OPQ (same codes, rotated input). */
  constructor(ctx: QuantizerContext, params: PqParams, specPrefix: 'PQ' | 'OPQ' = 'PQ') {
    super(ctx);
    this.spec = `${specPrefix}${params.m}x${params.bits}${params.fastScan ? 'fs' : ''}`;
    this.m = params.m;
    this.bits = params.bits;
    this.fastScan = params.fastScan;
    this.k = 1 << params.bits;
    this.subDim = this.dimension / this.m;
    this.codeSize = this.bits === 8 ? this.m : (this.m + 1) >> 1;
    this.minTrainingVectors = this.k;
    this.codebooks = new Float32Array(this.m * this.k * this.subDim);
  }

  /** Codebooks: f32[m * k * subDim] (a copy). */
  get centroids(): Float32Array { return this.codebooks.slice(); }

  override get scanLayout(): ScanLayout {
    if (!this.fastScan) return super.scanLayout;
    this.fsLayout ??= fastScanLayout(this.m);
    return this.fsLayout;
  }

  protected fit(sample: Float32Array, n: number, options: TrainOptions): void {
    this.trainCodebooks(sample, n, { seed: options.seed, onProgress: options.onProgress });
  }

  protected override *fitSteps(sample: Float32Array, n: number, options: TrainOptions): Generator<void, void, void> {
    yield* this.trainCodebookSteps(sample, n, { seed: options.seed, onProgress: options.onProgress });
  }

  /**
   * Learns the codebooks from sample: f32[n * d] (n >= k, validated by the caller), optionally
   * warm-started from the current ones (OPQ's alternation). Subsamples to at most
   * MAX_TRAINING_VECTORS rows with a seeded draw.
   */
  trainCodebooks(sample: Float32Array, n: number, options: { seed?: number; iterations?: number; warmStart?: boolean; onProgress?: (f: number) => void } = {}): void {
    const steps = this.trainCodebookSteps(sample, n, options);
    while (!steps.next().done) { /* straight through */ }
  }

  /** trainCodebooks as a generator: one k-means per subspace, yielding inside each (kmeansSteps). */
  *trainCodebookSteps(sample: Float32Array, n: number, options: { seed?: number; iterations?: number; warmStart?: boolean; onProgress?: (f: number) => void }): Generator<void, void, void> {
    const d = this.dimension, m = this.m, k = this.k, sd = this.subDim;
    const seed = options.seed ?? 1;
    const cap = MAX_TRAINING_VECTORS[this.bits];
    let rows: Uint32Array | null = null;
    let count = n;
    if (n > cap) {
      rows = new Rng(seed ^ 0x51ab).sample(n, cap);
      rows.sort();
      count = cap;
    }
    const sub = new Float32Array(count * sd);
    for (let s = 0; s < m; s++) {
      for (let i = 0; i < count; i++) {
        const src = (rows ? rows[i] : i) * d + s * sd;
        for (let j = 0; j < sd; j++) sub[i * sd + j] = sample[src + j];
      }
      const res = yield* kmeansSteps(this.kernels, sub, count, sd, k, {
        seed: seed + 7919 * s,
        maxIterations: options.iterations ?? KMEANS_ITERATIONS[this.bits],
        initialCentroids: options.warmStart ? this.codebooks.slice(s * k * sd, (s + 1) * k * sd) : undefined,
      });
      this.codebooks.set(res.centroids, s * k * sd);
      options.onProgress?.((s + 1) / m);
      // a pause between subspaces too: each k-means may be shorter than a slice
      if (s + 1 < m) yield;
    }
  }

  /** Marks codebooks set by trainCodebooks (outside train()) as trained. */
  finishTraining(): void {
    this.markTrained();
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const d = this.dimension, m = this.m, k = this.k, sd = this.subDim, cs = this.codeSize;
    const mem = this.kernels.memory;
    const batch = Math.min(n, ENCODE_BATCH);
    const ptrs: number[] = [];
    const alloc = (bytes: number): number => { const p = mem.alloc(bytes); ptrs.push(p); return p; };
    try {
      const subPtr = alloc(batch * sd * 4), idsPtr = alloc(batch * 4), distPtr = alloc(batch * 4);
      const centT = alloc(m * k * sd * 4), halfNorms = alloc(m * k * 4);
      // every subspace's codebook, transposed, with its half norms (once per call)
      const ct = mem.f32(centT, m * k * sd), hn = mem.f32(halfNorms, m * k);
      for (let s = 0; s < m; s++) {
        for (let c = 0; c < k; c++) {
          let norm = 0;
          for (let j = 0; j < sd; j++) {
            const v = this.codebooks[(s * k + c) * sd + j];
            ct[s * k * sd + j * k + c] = v;
            norm += v * v;
          }
          hn[s * k + c] = norm / 2;
        }
      }
      out.fill(0, 0, n * cs);
      for (let start = 0; start < n; start += batch) {
        const count = Math.min(batch, n - start);
        for (let s = 0; s < m; s++) {
          const sub = mem.f32(subPtr, count * sd);
          for (let i = 0; i < count; i++) {
            const src = (start + i) * d + s * sd;
            for (let j = 0; j < sd; j++) sub[i * sd + j] = vectors[src + j];
          }
          this.kernels.nearestCentroids(subPtr, count, sd, centT + s * k * sd * 4, k, halfNorms + s * k * 4, idsPtr, distPtr);
          const ids = mem.u32(idsPtr, count);
          if (this.bits === 8) {
            for (let i = 0; i < count; i++) out[(start + i) * cs + s] = ids[i];
          } else {
            const shift = s & 1 ? 4 : 0, byte = s >> 1;
            for (let i = 0; i < count; i++) out[(start + i) * cs + byte] |= ids[i] << shift;
          }
        }
      }
    } finally {
      for (const p of ptrs) mem.release(p);
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const d = this.dimension, m = this.m, k = this.k, sd = this.subDim, cs = this.codeSize, cb = this.codebooks;
    for (let i = 0; i < n; i++) {
      for (let s = 0; s < m; s++) {
        const c = this.bits === 8 ? codes[i * cs + s] : (codes[i * cs + (s >> 1)] >> (s & 1 ? 4 : 0)) & 15;
        const src = (s * k + c) * sd, dst = i * d + s * sd;
        for (let j = 0; j < sd; j++) out[dst + j] = cb[src + j];
      }
    }
  }

  /** The float lookup table of a query: f32[m * k], entry (s, c) = score of q_s against centroid c of subspace s. */
  lookupTable(query: Float32Array): Float32Array {
    const m = this.m, k = this.k, sd = this.subDim, cb = this.codebooks;
    const lut = new Float32Array(m * k);
    const dot = this.metric === 'dot';
    for (let s = 0; s < m; s++) {
      const q0 = s * sd;
      for (let c = 0; c < k; c++) {
        const o = (s * k + c) * sd;
        let acc = 0;
        if (dot) for (let j = 0; j < sd; j++) acc += query[q0 + j] * cb[o + j];
        else for (let j = 0; j < sd; j++) { const t = query[q0 + j] - cb[o + j]; acc -= t * t; }
        lut[s * k + c] = acc;
      }
    }
    return lut;
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    return this.scorerFor(this.lookupTable(query), 0);
  }

  /** A scorer over lut: f32[m * k] plus a constant `offset` added to every score. */
  scorerFor(lut: Float32Array, offset: number): QueryScorer {
    const mem = new ScorerMemory(this.kernels, this.spec);
    const kern = this.kernels, m = this.m;
    if (!this.fastScan) {
      // every code takes exactly one entry of subspace 0: the offset rides on those
      if (offset !== 0) for (let c = 0; c < this.k; c++) lut[c] += offset;
      const lp = mem.f32(lut);
      return this.bits === 8 ? scorer(mem, (codes, n, out) => kern.pqScan8(lp, codes, n, m, out)) : scorer(mem, (codes, n, out) => kern.pqScan4(lp, codes, n, m, out));
    }
    const { table, bias, scale } = quantizeLookupTable(lut, m);
    const tp = mem.u8(table), pp = mem.f32([bias + offset, scale]);
    return scorer(mem, (codes, n, out) => kern.pqFastScan(codes, n, m, tp, pp, out));
  }

  protected writePayload(): Uint8Array {
    return new ByteWriter(16 + this.codebooks.length * 4)
      .u8(PAYLOAD_VERSION).u8(this.bits).u8(this.fastScan ? 1 : 0).u32(this.m)
      .typed(this.codebooks).finish().slice();
  }

  /** The codebook payload as serialize() embeds it, for quantizers that contain a PQ (OPQ). */
  payloadBytes(): Uint8Array {
    return this.writePayload();
  }

  /** Restores codebooks from writePayload() bytes (reader positioned at the payload start). */
  readPayload(r: ByteReader): void {
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, this.spec);
    const bits = r.u8('bits'), fs = r.u8('fastScan'), m = r.u32('m');
    if (bits !== this.bits || (fs === 1) !== this.fastScan || m !== this.m) {
      r.fail('payload parameters disagree with the spec', { expected: { bits: this.bits, fastScan: this.fastScan, m: this.m }, received: { bits, fastScan: fs, m } });
    }
    this.codebooks = r.f32Array(this.m * this.k * this.subDim, 'codebooks');
    for (let i = 0; i < this.codebooks.length; i++) if (!Number.isFinite(this.codebooks[i])) r.fail(`codebook value ${i} is not finite`);
  }

  static fromPayload(ctx: QuantizerContext, params: PqParams, payload: Uint8Array): ProductQuantizer {
    const q = new ProductQuantizer(ctx, params);
    const r = new ByteReader(payload, `${q.spec} payload`);
    q.readPayload(r);
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    q.markTrained();
    return q;
  }
}

/**
 * Quantizes a float table lut: f32[m * 16] to u8 for fast-scan (see the header): returns the
 * table u8[m * 16], bias = sum_s min_s and scale = Δ, so that bias + scale * sum_s table_s(c_s)
 * estimates sum_s lut_s(c_s) within m * Δ / 2.
 */
export function quantizeLookupTable(lut: Float32Array, m: number): { table: Uint8Array; bias: number; scale: number } {
  const mins = new Float64Array(m);
  let range = 0, bias = 0;
  for (let s = 0; s < m; s++) {
    let lo = Infinity, hi = -Infinity;
    for (let c = 0; c < 16; c++) { const v = lut[s * 16 + c]; if (v < lo) lo = v; if (v > hi) hi = v; }
    mins[s] = lo;
    bias += lo;
    range = Math.max(range, hi - lo);
  }
  const scale = range > 0 ? range / 255 : 1;
  const table = new Uint8Array(m * 16);
  for (let s = 0; s < m; s++) {
    for (let c = 0; c < 16; c++) table[s * 16 + c] = Math.min(255, Math.round((lut[s * 16 + c] - mins[s]) / scale));
  }
  return { table, bias, scale };
}

/** The fast-scan layout of m-subspace 4-bit rows: blocks of 32 vectors, m * 16 bytes each. */
export function fastScanLayout(m: number): ScanLayout {
  const rowBytes = (m + 1) >> 1, blockBytes = m * 16;
  return {
    blockRows: 32,
    blockBytes,
    pack(rows: Uint8Array, n: number, out: Uint8Array): void {
      out.fill(0, 0, Math.ceil(n / 32) * blockBytes);
      packFastScanCodes(rows, n, rowBytes, m, out, blockBytes);
    },
  };
}

/**
 * ORs the m 4-bit codes of n rows (row i at rows[i * rowStride], code s in the low nibble of byte
 * s >> 1 when s is even, the high one when odd) into fast-scan blocks of 32 vectors that start
 * every blockBytes bytes of out (zeroed by the caller): code s of vector v of a block at byte
 * s * 16 + (v & 15), low nibble for v < 16, high for v >= 16. Shared by PQ and RaBitQ1fs layouts.
 */
export function packFastScanCodes(rows: Uint8Array, n: number, rowStride: number, m: number, out: Uint8Array, blockBytes: number): void {
  for (let i = 0; i < n; i++) {
    const row = i * rowStride, base = (i >> 5) * blockBytes, v = i & 31, byte = v & 15, shift = v < 16 ? 0 : 4;
    for (let s = 0; s < m; s++) out[base + s * 16 + byte] |= ((rows[row + (s >> 1)] >> ((s & 1) << 2)) & 15) << shift;
  }
}

/** Registry entry: 'PQ{m}x8', 'PQ{m}x4', 'PQ{m}x4fs'. */
export const PQ_FAMILY: QuantizerFamily = {
  grammar: 'PQ{m}x8 | PQ{m}x4 | PQ{m}x4fs (m subspaces dividing the dimension; fs = 4-bit fast-scan)',
  parse(spec) {
    const params = parsePqSpec(spec, 'PQ');
    if (!params) return null;
    return (ctx) => new ProductQuantizer(ctx, params(ctx.dimension));
  },
  deserialize(spec, payload, ctx) {
    const params = parsePqSpec(spec, 'PQ');
    if (!params) throw new QuiverError('UNKNOWN_SPEC', `not a PQ spec: ${spec}`, { received: spec });
    return ProductQuantizer.fromPayload(ctx, params(ctx.dimension), payload);
  },
};
