import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { matMul, nearestOrthogonal, symmetricFunction } from '../math/linalg.js';
import { Rng } from '../math/rng.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, QuantizerBase } from './common.js';
import { parsePqSpec, ProductQuantizer, type PqParams } from './pq.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import type { QueryScorer, ScanLayout, TrainOptions } from './types.js';

/**
 * Optimized product quantization (Ge et al., "Optimized Product Quantization", non-parametric
 * variant): `OPQ{m}x8`, `OPQ{m}x4`, `OPQ{m}x4fs`. A learned orthogonal rotation R (d x d) goes in
 * front of PQ, so that each subspace gets a share of the variance and correlated dimensions are
 * quantized together: codes are PQ codes of y = x R (row vectors).
 *
 * Training alternates, on a seeded subsample X: (1) PQ on X R (codebooks warm-started after the
 * first round); (2) with Ŷ the decoded codes, R <- argmin over orthogonal R of ||X R - Ŷ||_F,
 * the orthogonal Procrustes solution U V^T of X^T Ŷ = U S V^T (src/math/linalg.ts). Each round
 * lowers the quantization error of the training sample for fixed codes and then for fixed R.
 * A last PQ pass on X R runs the full k-means schedule.
 *
 * Scores: R is orthogonal, so <x, q> = <x R, q R> and ||x - q|| = ||x R - q R||: the query is
 * rotated once (d^2 flops) and scored with the PQ lookup table of q R; estimates are exact for
 * the decoded vectors ŷ R^T. Rotating data costs d^2 flops per vector, run through the dotMany
 * kernel in blocks of vectors.
 *
 * Payload: version, the rotation f32[d * d] row-major, then the inner PQ payload.
 */

const PAYLOAD_VERSION = 1;
/** Alternation rounds of (PQ, Procrustes). */
const ROUNDS = 4;
/** Training vectors used at most for the rotation (a seeded subsample beyond it). */
const MAX_ROTATION_VECTORS = 8192;
/** k-means iterations per PQ step of the alternation (the final pass uses the PQ default). */
const ROUND_KMEANS_ITERATIONS = 4;
/** Vectors rotated per kernel batch (bounds scratch memory to ~8 MiB for d = 512). */
const ROTATE_BATCH_BYTES = 8 << 20;

export class OptimizedProductQuantizer extends QuantizerBase {
  readonly spec: string;
  readonly codeSize: number;
  readonly minTrainingVectors: number;
  /** The product quantizer of rotated vectors. */
  readonly pq: ProductQuantizer;
  /** R: f32[d * d] row-major, y = x R. */
  private rotation: Float32Array;
  /** R^T, for decoding (lazily). */
  private rotationT: Float32Array | null = null;

  constructor(ctx: QuantizerContext, params: PqParams) {
    super(ctx);
    this.pq = new ProductQuantizer(ctx, params, 'OPQ');
    this.spec = this.pq.spec;
    this.codeSize = this.pq.codeSize;
    this.minTrainingVectors = this.pq.minTrainingVectors;
    this.rotation = identity(this.dimension);
  }

  override get scanLayout(): ScanLayout { return this.pq.scanLayout; }

  /** The learned rotation R: f32[d * d] row-major (a copy). */
  get rotationMatrix(): Float32Array { return this.rotation.slice(); }

  protected fit(sample: Float32Array, n: number, options: TrainOptions): void {
    const steps = this.fitSteps(sample, n, options);
    while (!steps.next().done) { /* straight through */ }
  }

  /**
   * The alternation as a generator (trainAsync pauses at its yields): inside PQ's k-means, between
   * batches of rotated rows and rows of X^T Ŷ, and around each Procrustes step (one
   * eigendecomposition of d x d, the one piece left whole: about 0.1 s at d = 512 here).
   */
  protected override *fitSteps(sample: Float32Array, n: number, options: TrainOptions): Generator<void, void, void> {
    const d = this.dimension;
    const seed = options.seed ?? 1;
    let x = sample.subarray(0, n * d), count = n;
    if (n > MAX_ROTATION_VECTORS) {
      const rows = new Rng(seed ^ 0x0f9a).sample(n, MAX_ROTATION_VECTORS).sort();
      count = rows.length;
      const sub = new Float32Array(count * d);
      for (let i = 0; i < count; i++) sub.set(sample.subarray(rows[i] * d, rows[i] * d + d), i * d);
      x = sub;
    }
    let r = identity(d);
    const y = new Float32Array(count * d), yHat = new Float32Array(count * d);
    const codes = new Uint8Array(count * this.pq.codeSize);
    for (let round = 0; round < ROUNDS; round++) {
      yield* rotateRowsSteps(this.kernels, x, count, d, r, y);
      yield* this.pq.trainCodebookSteps(y, count, { seed, iterations: ROUND_KMEANS_ITERATIONS, warmStart: round > 0 });
      this.pq.finishTraining();
      yield;
      this.pq.encode(y, count, codes);
      this.pq.decode(codes, count, yHat);
      yield;
      const cross = yield* crossProductSteps(this.kernels, x, yHat, count, d);
      r = Float32Array.from(procrustes(cross, r, d));
      options.onProgress?.((round + 1) / (ROUNDS + 1));
      yield;
    }
    this.rotation = r;
    this.rotationT = null;
    // final codebooks on the whole (PQ-capped) sample under the learned rotation
    const all = new Float32Array(n * d);
    yield* rotateRowsSteps(this.kernels, sample, n, d, r, all);
    yield* this.pq.trainCodebookSteps(all, n, { seed, warmStart: true });
    this.pq.finishTraining();
    options.onProgress?.(1);
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    const d = this.dimension;
    const batch = Math.max(1, Math.min(n, Math.floor(ROTATE_BATCH_BYTES / (8 * d))));
    const y = new Float32Array(batch * d);
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      rotateRows(this.kernels, vectors.subarray(s * d, (s + m) * d), m, d, this.rotation, y);
      this.pq.encode(y.subarray(0, m * d), m, out.subarray(s * this.codeSize, (s + m) * this.codeSize));
    }
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    const d = this.dimension;
    const y = new Float32Array(n * d);
    this.pq.decode(codes, n, y);
    this.rotationT ??= transposeF32(this.rotation, d);
    rotateRows(this.kernels, y, n, d, this.rotationT, out); // x = y R^T
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    const d = this.dimension, r = this.rotation;
    const q = new Float32Array(d);
    for (let i = 0; i < d; i++) {
      const qi = query[i];
      if (qi === 0) continue;
      const ro = i * d;
      for (let j = 0; j < d; j++) q[j] += qi * r[ro + j];
    }
    return this.pq.scorerFor(this.pq.lookupTable(q), 0);
  }

  protected writePayload(): Uint8Array {
    const inner = this.pq.payloadBytes();
    return new ByteWriter(16 + this.rotation.length * 4 + inner.length)
      .u8(PAYLOAD_VERSION).u32(this.dimension).typed(this.rotation).blob(inner).finish().slice();
  }

  static fromPayload(ctx: QuantizerContext, params: PqParams, payload: Uint8Array): OptimizedProductQuantizer {
    const q = new OptimizedProductQuantizer(ctx, params);
    const r = new ByteReader(payload, `${q.spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, q.spec);
    const d = r.u32('dimension');
    if (d !== q.dimension) r.fail('rotation dimension disagrees with the quantizer', { expected: q.dimension, received: d });
    q.rotation = r.f32Array(d * d, 'rotation');
    for (let i = 0; i < q.rotation.length; i++) if (!Number.isFinite(q.rotation[i])) r.fail(`rotation entry ${i} is not finite`);
    const inner = new ByteReader(r.blob('pq payload'), `${q.spec} pq payload`);
    q.pq.readPayload(inner);
    if (inner.remaining !== 0 || r.remaining !== 0) r.fail('unexpected trailing bytes');
    q.pq.finishTraining();
    q.markTrained();
    return q;
  }
}

/**
 * The rotation maximising tr(R^T (X^T Ŷ)) + mu tr(R^T R_prev): Procrustes with a slight pull
 * (mu = 1e-4 ||X^T Ŷ||_F) towards the previous rotation. Real embeddings often span fewer than d
 * directions, leaving X^T Ŷ singular and its Procrustes solution free in the null space; the
 * pull fixes those directions to the previous rotation and keeps the matrix well conditioned
 * (X^T Ŷ ~ C R_prev with C >= 0, so adding mu R_prev lifts every singular value by about mu).
 */
function procrustes(cross: Float64Array, previous: Float32Array, d: number): Float64Array {
  let frob = 0;
  for (let i = 0; i < d * d; i++) frob += cross[i] * cross[i];
  const mu = 1e-4 * Math.sqrt(frob);
  const m = new Float64Array(d * d);
  for (let i = 0; i < d * d; i++) m[i] = cross[i] + mu * previous[i];
  return polarFactor(m, d);
}

/**
 * The orthogonal polar factor of m: f64[d * d] (= U V^T for m = U S V^T, the Procrustes
 * solution), computed as m (m^T m)^(-1/2) through one symmetric eigendecomposition: about half
 * the work of a full SVD. Falls back to the SVD when m is (nearly) singular.
 */
function polarFactor(m: Float64Array, d: number): Float64Array {
  const gram = new Float64Array(d * d);
  for (let r = 0; r < d; r++) {
    for (let i = 0; i < d; i++) {
      const a = m[r * d + i];
      if (a === 0) continue;
      for (let j = i; j < d; j++) gram[i * d + j] += a * m[r * d + j];
    }
  }
  for (let i = 0; i < d; i++) for (let j = 0; j < i; j++) gram[i * d + j] = gram[j * d + i];
  let largest = 0, smallest = Infinity;
  const inverseRoot = symmetricFunction(gram, d, (lambda) => {
    largest = Math.max(largest, lambda);
    smallest = Math.min(smallest, lambda);
    return lambda > 0 ? 1 / Math.sqrt(lambda) : 0;
  });
  if (!(smallest > 1e-10 * largest)) return nearestOrthogonal(m, d);
  return matMul(m, inverseRoot, d, d, d);
}

function transposeF32(a: Float32Array, d: number): Float32Array {
  const t = new Float32Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) t[j * d + i] = a[i * d + j];
  return t;
}

function identity(d: number): Float32Array {
  const r = new Float32Array(d * d);
  for (let i = 0; i < d; i++) r[i * d + i] = 1;
  return r;
}

/** Multiply-adds between the pauses of the stepped rotations and cross products (as kmeansSteps). */
const SLICE_MACS = 2 ** 27;

/**
 * out = x R for n rows: x: f32[n * d], r: f32[d * d] row-major, out: f32[n * d]. Runs on the
 * dotMany kernel: column j of R (copied as a row) against a block of rows, one call per column.
 */
export function rotateRows(kernels: Kernels, x: Float32Array, n: number, d: number, r: Float32Array, out: Float32Array): void {
  const steps = rotateRowsSteps(kernels, x, n, d, r, out);
  while (!steps.next().done) { /* straight through */ }
}

/** rotateRows as a generator, yielding after about SLICE_MACS multiply-adds. */
function* rotateRowsSteps(kernels: Kernels, x: Float32Array, n: number, d: number, r: Float32Array, out: Float32Array): Generator<void, void, void> {
  const mem = kernels.memory;
  const batch = Math.max(1, Math.min(n, Math.floor(ROTATE_BATCH_BYTES / (4 * d)), Math.ceil(SLICE_MACS / (d * d))));
  const colsPtr = mem.alloc(d * d * 4), xPtr = mem.alloc(batch * d * 4), outPtr = mem.alloc(batch * 4);
  try {
    const cols = mem.f32(colsPtr, d * d);
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) cols[j * d + i] = r[i * d + j];
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      mem.f32(xPtr, m * d).set(x.subarray(s * d, (s + m) * d));
      for (let j = 0; j < d; j++) {
        kernels.dotMany(colsPtr + j * d * 4, xPtr, m, d, outPtr);
        const o = mem.f32(outPtr, m);
        for (let v = 0; v < m; v++) out[(s + v) * d + j] = o[v];
      }
      if (s + m < n) yield;
    }
  } finally {
    mem.release(colsPtr); mem.release(xPtr); mem.release(outPtr);
  }
}

/**
 * X^T Y: f64[d * d] for x, y: f32[n * d] row-major, on the dotMany kernel (columns of X and Y
 * transposed into rows of n, then one call per row of the result); a generator yielding after
 * about SLICE_MACS multiply-adds.
 */
function* crossProductSteps(kernels: Kernels, x: Float32Array, y: Float32Array, n: number, d: number): Generator<void, Float64Array, void> {
  const mem = kernels.memory;
  const xt = mem.alloc(n * d * 4), yt = mem.alloc(n * d * 4), row = mem.alloc(d * 4);
  try {
    const xv = mem.f32(xt, n * d), yv = mem.f32(yt, n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) { xv[j * n + i] = x[i * d + j]; yv[j * n + i] = y[i * d + j]; }
    const out = new Float64Array(d * d);
    let work = 0;
    for (let a = 0; a < d; a++) {
      kernels.dotMany(xt + a * n * 4, yt, d, n, row);
      const r = mem.f32(row, d);
      for (let b = 0; b < d; b++) out[a * d + b] = r[b];
      work += n * d;
      if (work >= SLICE_MACS && a + 1 < d) { work = 0; yield; }
    }
    return out;
  } finally {
    mem.release(xt); mem.release(yt); mem.release(row);
  }
}

/** Registry entry: 'OPQ{m}x8', 'OPQ{m}x4', 'OPQ{m}x4fs'. */
export const OPQ_FAMILY: QuantizerFamily = {
  grammar: 'OPQ{m}x8 | OPQ{m}x4 | OPQ{m}x4fs (PQ after a learned rotation)',
  parse(spec) {
    const params = parsePqSpec(spec, 'OPQ');
    if (!params) return null;
    return (ctx) => new OptimizedProductQuantizer(ctx, params(ctx.dimension));
  },
  deserialize(spec, payload, ctx) {
    const params = parsePqSpec(spec, 'OPQ');
    if (!params) throw new QuiverError('UNKNOWN_SPEC', `not an OPQ spec: ${spec}`, { received: spec });
    return OptimizedProductQuantizer.fromPayload(ctx, params(ctx.dimension), payload);
  },
};
