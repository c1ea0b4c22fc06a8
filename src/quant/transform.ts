import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { HadamardRotation } from '../math/hadamard.js';
import { fitLeanVecOod, fitPca, type ProjectionFit } from '../math/pca.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { checkPayloadVersion, QuantizerBase } from './common.js';
import type { QuantizerContext } from './registry.js';
import type { QuantMetric, Quantizer, QueryScorer, ScanLayout, TrainOptions } from './types.js';

/**
 * Transforms composed in front of a quantizer, and the quantizer that composes them.
 *
 * Spec grammar: transforms, then the quantizer, comma-separated, applied left to right:
 *   'ROT,SQ4'          random orthogonal rotation (Hadamard with random signs, dimension padded
 *                      to a multiple of 64), then SQ4 on the rotated vectors
 *   'PCA128,SQ8'       PCA to 128 dimensions (centred on the training mean), then SQ8
 *   'LeanVec128,LVQ8'  LeanVec reduction to 128 dimensions: PCA (in-distribution) when training
 *                      gets no sample queries; with TrainOptions.queries, the out-of-distribution
 *                      projection pair fitted to them (metric 'dot' only), see math/pca.ts
 *   'PCA256,ROT,SQ4'   transforms chain: each is trained on the previous one's output
 *
 * Score model. A transform maps data x to T(x) and a query q to T_q(q) plus an additive score
 * offset, so that score(q, x) ~ offset + score(T_q(q), T(x)):
 *   ROT: T = T_q = R (orthogonal): exact for both metrics, offset 0.
 *   PCA / LeanVec, dot: T(x) = A (x - mean), T_q(q) = B q, offset <q, mean>.
 *   PCA, l2: T(x) = P (x - mean), T_q(q) = P (q - mean), offset -||(q - mean) off the kept
 *     subspace||^2; the data's own residual off the subspace is not stored, so reduced-dimension
 *     l2 scores under-estimate distances by it (rerank with full vectors restores exactness).
 * Decoding maps back: x ~ mean + back(y) (the transpose for orthonormal axes).
 */
export interface Transform {
  /** Canonical spec part, e.g. 'ROT', 'PCA128', 'LeanVec128'. */
  readonly spec: string;
  readonly inputDimension: number;
  readonly outputDimension: number;
  readonly trained: boolean;
  /** Fewest training vectors accepted. */
  readonly minTrainingVectors: number;
  /** Fits the transform to sample: f32[n * inputDimension] (validated by the caller). */
  train(sample: Float32Array, n: number, options: TrainOptions): void;
  /** Data vectors: f32[n * inputDimension] -> out: f32[n * outputDimension]. */
  forward(vectors: Float32Array, n: number, out: Float32Array): void;
  /** One query: f32[inputDimension] -> f32[outputDimension], and the additive score offset. */
  forwardQuery(query: Float32Array): { query: Float32Array; offset: number };
  /** Approximate inverse of forward: y: f32[n * outputDimension] -> out: f32[n * inputDimension]. */
  backward(y: Float32Array, n: number, out: Float32Array): void;
  /** Trained parameters (own version byte first). */
  writePayload(): Uint8Array;
}

const PAYLOAD_VERSION = 1;
const TRANSFORM_GRAMMAR = 'ROT | PCA<k> | LeanVec<k>';

/** Grammar of the transform parts of a spec (for help texts and UNKNOWN_SPEC messages). */
export function transformGrammar(): string {
  return TRANSFORM_GRAMMAR;
}

interface TransformContext {
  inputDimension: number;
  metric: QuantMetric;
  kernels: Kernels;
}

/** A factory when `part` is a transform spec ('ROT', 'PCA<k>', 'LeanVec<k>'), else null. INVALID_ARGUMENT for bad parameters. */
export function parseTransformSpec(part: string): ((ctx: TransformContext) => Transform) | null {
  if (part === 'ROT') return (ctx) => new RotationTransform(ctx);
  const m = /^(PCA|LeanVec)([1-9][0-9]{0,5})$/.exec(part);
  if (!m) return null;
  const k = Number(m[2]);
  return (ctx) => new ProjectionTransform(ctx, m[1] as 'PCA' | 'LeanVec', k);
}

// ---- ROT ---------------------------------------------------------------------------------------

/** 'ROT': the Hadamard rotation of math/hadamard.ts, 3 rounds, padded to a multiple of 64. */
class RotationTransform implements Transform {
  readonly spec = 'ROT';
  readonly inputDimension: number;
  readonly outputDimension: number;
  readonly minTrainingVectors = 1;
  private rotation: HadamardRotation | null = null;

  constructor(ctx: TransformContext, rotation?: HadamardRotation) {
    this.inputDimension = ctx.inputDimension;
    this.outputDimension = (rotation ?? new HadamardRotation(ctx.inputDimension, { padding: 'multiple64' })).dim;
    this.rotation = rotation ?? null;
  }

  get trained(): boolean { return this.rotation !== null; }

  train(_sample: Float32Array, _n: number, options: TrainOptions): void {
    // data-independent: training only draws the random signs from the seed
    this.rotation = new HadamardRotation(this.inputDimension, { padding: 'multiple64', seed: (options.seed ?? 0x5eed) >>> 0 });
  }

  forward(vectors: Float32Array, n: number, out: Float32Array): void {
    this.rotation!.apply(vectors, n, out);
  }

  forwardQuery(query: Float32Array): { query: Float32Array; offset: number } {
    const out = new Float32Array(this.outputDimension);
    this.rotation!.apply(query, 1, out);
    return { query: out, offset: 0 };
  }

  backward(y: Float32Array, n: number, out: Float32Array): void {
    this.rotation!.applyInverse(y, n, out);
  }

  writePayload(): Uint8Array {
    return this.rotation!.toBytes();
  }

  static fromPayload(ctx: TransformContext, payload: Uint8Array): RotationTransform {
    const rotation = HadamardRotation.fromBytes(payload, 'ROT payload');
    if (rotation.inputDim !== ctx.inputDimension) {
      throw new QuiverError('CORRUPT_FILE', `ROT payload: rotation of dimension ${rotation.inputDim} where ${ctx.inputDimension} was expected`, { expected: ctx.inputDimension, received: rotation.inputDim });
    }
    return new RotationTransform(ctx, rotation);
  }
}

// ---- PCA / LeanVec ------------------------------------------------------------------------------

/** Vectors projected per batch with the kernels (bounds the scratch memory to ~8 MiB). */
const PROJECT_BATCH_BYTES = 8 << 20;

/** 'PCA<k>' and 'LeanVec<k>': a linear projection to k dimensions after centring (see the header). */
class ProjectionTransform implements Transform {
  readonly spec: string;
  readonly inputDimension: number;
  readonly outputDimension: number;
  readonly minTrainingVectors: number;
  private readonly metric: QuantMetric;
  private readonly kernels: Kernels;
  private fit: ProjectionFit | null = null;
  /** Whether the query projection differs from the data projection (LeanVec fitted to queries). */
  private outOfDistribution = false;
  /** A as f32 rows in kernel memory for batch projection (lazily), and A * mean per output. */
  private dataRows32: Float32Array | null = null;
  private projectedMean: Float64Array | null = null;

  constructor(ctx: TransformContext, readonly kind: 'PCA' | 'LeanVec', k: number) {
    if (k > ctx.inputDimension) {
      throw new QuiverError('INVALID_ARGUMENT', `${kind}${k} reduces to ${k} dimensions, more than the input's ${ctx.inputDimension}`, {
        spec: `${kind}${k}`, expected: `k <= ${ctx.inputDimension}`, received: k,
      });
    }
    this.spec = `${kind}${k}`;
    this.inputDimension = ctx.inputDimension;
    this.outputDimension = k;
    this.metric = ctx.metric;
    this.kernels = ctx.kernels;
    // enough vectors that the covariance is not rank-deficient in the kept subspace
    this.minTrainingVectors = Math.max(2, Math.min(k + 1, 1000));
  }

  get trained(): boolean { return this.fit !== null; }
  /** Share of the training data's variance the projection keeps (diagnostics; NaN before training). */
  get keptVariance(): number { return this.fit?.keptVariance ?? NaN; }

  train(sample: Float32Array, n: number, options: TrainOptions): void {
    const d = this.inputDimension, k = this.outputDimension;
    const fitOptions = { kernels: this.kernels, seed: options.seed };
    if (this.kind === 'LeanVec' && options.queries && options.queries.length >= d) {
      if (this.metric !== 'dot') {
        throw new QuiverError('INVALID_ARGUMENT', `${this.spec}: out-of-distribution fitting (sample queries given) supports metric 'dot' only, got '${this.metric}'`, {
          spec: this.spec, expected: 'dot', received: this.metric,
        });
      }
      this.fit = fitLeanVecOod(sample, n, options.queries, Math.floor(options.queries.length / d), d, k, fitOptions);
      this.outOfDistribution = true;
    } else {
      this.fit = fitPca(sample, n, d, k, fitOptions);
      this.outOfDistribution = false;
    }
    this.prepareRows();
  }

  private prepareRows(): void {
    const f = this.fit!, d = this.inputDimension, k = this.outputDimension;
    this.dataRows32 = Float32Array.from(f.data);
    this.projectedMean = new Float64Array(k);
    for (let i = 0; i < k; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += f.data[i * d + j] * f.mean[j];
      this.projectedMean[i] = s;
    }
  }

  forward(vectors: Float32Array, n: number, out: Float32Array): void {
    // A (x - mean) = A x - A mean. One dotMany call per output coordinate over a batch of
    // vectors (block calls, never per vector), then a transpose into row-major output.
    const d = this.inputDimension, k = this.outputDimension;
    const kern = this.kernels, mem = kern.memory;
    const batch = Math.max(1, Math.min(n, Math.floor(PROJECT_BATCH_BYTES / (4 * d))));
    const rowsPtr = mem.alloc(k * d * 4);
    const xPtr = mem.alloc(batch * d * 4);
    const outPtr = mem.alloc(batch * 4);
    try {
      mem.f32(rowsPtr, k * d).set(this.dataRows32!);
      const pm = this.projectedMean!;
      for (let s = 0; s < n; s += batch) {
        const m = Math.min(batch, n - s);
        mem.f32(xPtr, m * d).set(vectors.subarray(s * d, (s + m) * d));
        for (let i = 0; i < k; i++) {
          kern.dotMany(rowsPtr + i * d * 4, xPtr, m, d, outPtr);
          const o = mem.f32(outPtr, m), shift = pm[i];
          for (let v = 0; v < m; v++) out[(s + v) * k + i] = o[v] - shift;
        }
      }
    } finally {
      mem.release(rowsPtr); mem.release(xPtr); mem.release(outPtr);
    }
  }

  forwardQuery(query: Float32Array): { query: Float32Array; offset: number } {
    const f = this.fit!, d = this.inputDimension, k = this.outputDimension;
    const out = new Float32Array(k);
    if (this.metric === 'dot') {
      // <q, x> = <q, mean> + <q, x - mean> ~ <q, mean> + <B q, A (x - mean)>
      let offset = 0;
      for (let j = 0; j < d; j++) offset += query[j] * f.mean[j];
      for (let i = 0; i < k; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += f.query[i * d + j] * query[j];
        out[i] = s;
      }
      return { query: out, offset };
    }
    // l2 (PCA axes, orthonormal): q - mean splits into its projection and a residual that adds
    // -||residual||^2 to every score
    let total = 0, kept = 0;
    for (let j = 0; j < d; j++) total += (query[j] - f.mean[j]) ** 2;
    for (let i = 0; i < k; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += f.data[i * d + j] * (query[j] - f.mean[j]);
      out[i] = s;
      kept += s * s;
    }
    return { query: out, offset: -Math.max(0, total - kept) };
  }

  backward(y: Float32Array, n: number, out: Float32Array): void {
    const f = this.fit!, d = this.inputDimension, k = this.outputDimension;
    for (let v = 0; v < n; v++) {
      for (let j = 0; j < d; j++) {
        let s = f.mean[j];
        for (let i = 0; i < k; i++) s += f.back[j * k + i] * y[v * k + i];
        out[v * d + j] = s;
      }
    }
  }

  writePayload(): Uint8Array {
    const f = this.fit!, d = this.inputDimension, k = this.outputDimension;
    const w = new ByteWriter(64 + 8 * (d + 3 * k * d));
    w.u8(PAYLOAD_VERSION).u8(this.outOfDistribution ? 1 : 0).u32(d).u32(k).f64(f.keptVariance);
    w.typed(f.mean).typed(f.data).typed(f.back);
    if (this.outOfDistribution) w.typed(f.query);
    return w.finish().slice();
  }

  static fromPayload(ctx: TransformContext, kind: 'PCA' | 'LeanVec', k: number, payload: Uint8Array): ProjectionTransform {
    const t = new ProjectionTransform(ctx, kind, k);
    const r = new ByteReader(payload, `${t.spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, t.spec);
    const ood = r.u8('out-of-distribution flag');
    const d = r.u32('input dimension'), kk = r.u32('output dimension');
    if (ood > 1 || d !== ctx.inputDimension || kk !== k) r.fail('projection shape does not match the spec', { expected: { d: ctx.inputDimension, k }, received: { d, k: kk } });
    const keptVariance = r.f64('kept variance');
    const f64 = (len: number, what: string): Float64Array => {
      const b = r.bytesView(len * 8, what);
      const a = new Float64Array(len);
      new Uint8Array(a.buffer).set(b);
      for (let i = 0; i < len; i++) if (!Number.isFinite(a[i])) r.fail(`${what} holds a non-finite value`);
      return a;
    };
    const mean = f64(d, 'mean'), data = f64(k * d, 'data projection'), back = f64(d * k, 'inverse projection');
    const query = ood ? f64(k * d, 'query projection') : data;
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    t.fit = { mean, data, query, back, keptVariance };
    t.outOfDistribution = ood === 1;
    t.prepareRows();
    return t;
  }
}

function transformFromPayload(part: string, ctx: TransformContext, payload: Uint8Array): Transform {
  if (part === 'ROT') return RotationTransform.fromPayload(ctx, payload);
  const m = /^(PCA|LeanVec)([1-9][0-9]{0,5})$/.exec(part);
  if (!m) throw new QuiverError('UNKNOWN_SPEC', `unknown transform "${part}" (available: ${TRANSFORM_GRAMMAR})`, { received: part, expected: TRANSFORM_GRAMMAR });
  return ProjectionTransform.fromPayload(ctx, m[1] as 'PCA' | 'LeanVec', Number(m[2]), payload);
}

// ---- the composed quantizer ---------------------------------------------------------------------

/**
 * Transforms followed by an inner quantizer. Codes, scan layout and bounds are the inner
 * quantizer's; queries go through each transform's forwardQuery, and the accumulated offset is
 * added to every score (one affineInPlace per block).
 */
export class TransformedQuantizer extends QuantizerBase {
  readonly spec: string;
  readonly codeSize: number;
  readonly minTrainingVectors: number;
  override readonly bounded: boolean;

  constructor(ctx: QuantizerContext, readonly transforms: Transform[], readonly inner: Quantizer) {
    super(ctx);
    if (transforms.length === 0) throw new QuiverError('INVALID_ARGUMENT', 'a transformed quantizer needs at least one transform', { received: 0 });
    let dim = ctx.dimension;
    for (const t of transforms) {
      if (t.inputDimension !== dim) throw new QuiverError('INVALID_ARGUMENT', `transform ${t.spec} expects dimension ${t.inputDimension}, gets ${dim}`, { expected: t.inputDimension, received: dim });
      dim = t.outputDimension;
    }
    if (inner.dimension !== dim || inner.metric !== ctx.metric) {
      throw new QuiverError('INVALID_ARGUMENT', `inner quantizer ${inner.spec} has dimension ${inner.dimension}, the transforms output ${dim}`, { expected: dim, received: inner.dimension });
    }
    this.spec = [...transforms.map((t) => t.spec), inner.spec].join(',');
    this.codeSize = inner.codeSize;
    this.bounded = inner.bounded;
    this.minTrainingVectors = Math.max(inner.minTrainingVectors, ...transforms.map((t) => t.minTrainingVectors));
  }

  override get scanLayout(): ScanLayout { return this.inner.scanLayout; }

  protected fit(sample: Float32Array, n: number, options: TrainOptions): void {
    const steps = this.fitSteps(sample, n, options);
    while (!steps.next().done) { /* straight through */ }
  }

  /** The transforms trained in turn (short), then the inner quantizer, pausing inside its training when it can. */
  protected override *fitSteps(sample: Float32Array, n: number, options: TrainOptions): Generator<void, void, void> {
    let x = sample;
    let queries = options.queries;
    for (const t of this.transforms) {
      t.train(x, n, { ...options, queries });
      const y = new Float32Array(n * t.outputDimension);
      t.forward(x, n, y);
      x = y;
      if (queries) {
        // sample queries follow the query path of the transform
        const nq = queries.length / t.inputDimension;
        const next = new Float32Array(nq * t.outputDimension);
        for (let i = 0; i < nq; i++) next.set(t.forwardQuery(queries.subarray(i * t.inputDimension, (i + 1) * t.inputDimension)).query, i * t.outputDimension);
        queries = next;
      }
    }
    if (this.inner instanceof QuantizerBase) yield* this.inner.trainSteps(x, n, { ...options, queries });
    else this.inner.train(x, n, { ...options, queries });
  }

  private forwardAll(vectors: Float32Array, n: number): Float32Array {
    let x: Float32Array = vectors.subarray(0, n * this.dimension);
    for (const t of this.transforms) {
      const y = new Float32Array(n * t.outputDimension);
      t.forward(x, n, y);
      x = y;
    }
    return x;
  }

  protected encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void {
    this.inner.encode(this.forwardAll(vectors, n), n, out);
  }

  protected decodeRows(codes: Uint8Array, n: number, out: Float32Array): void {
    let y: Float32Array = new Float32Array(n * this.inner.dimension);
    this.inner.decode(codes, n, y);
    for (let i = this.transforms.length - 1; i >= 0; i--) {
      const t = this.transforms[i];
      const x = i === 0 ? out : new Float32Array(n * t.inputDimension);
      t.backward(y, n, x);
      y = x;
    }
  }

  protected prepareQuery(query: Float32Array): QueryScorer {
    let q = query;
    let offset = 0;
    for (const t of this.transforms) {
      const r = t.forwardQuery(q);
      q = r.query;
      offset += r.offset;
    }
    const inner = this.inner.prepare(q);
    const kernels = this.kernels;
    const shift = Math.fround(offset);
    // a graph search scores rows of the inner codes: the same scoring with the shift in its bias
    const rowScoring = inner.rowScoring ? { ...inner.rowScoring, bias: Math.fround(inner.rowScoring.bias + shift) } : undefined;
    return {
      ...(rowScoring ? { rowScoring } : {}),
      scoreBlock(codesPtr: number, n: number, outPtr: number, boundsPtr?: number): void {
        inner.scoreBlock(codesPtr, n, outPtr, boundsPtr);
        if (shift !== 0 && n > 0) kernels.affineInPlace(outPtr, n, 1, shift);
      },
      release(): void { inner.release(); },
    };
  }

  protected writePayload(): Uint8Array {
    const w = new ByteWriter(1024);
    w.u8(PAYLOAD_VERSION).u8(this.transforms.length);
    for (const t of this.transforms) w.string(t.spec).blob(t.writePayload());
    w.blob(this.inner.serialize());
    return w.finish().slice();
  }

  /**
   * Restores a composed quantizer; `restoreInner` deserializes the nested inner quantizer
   * (the registry passes deserializeQuantizer, avoiding an import cycle).
   */
  static fromPayload(spec: string, payload: Uint8Array, ctx: QuantizerContext, restoreInner: (bytes: Uint8Array, kernels: Kernels, source: string) => Quantizer): TransformedQuantizer {
    const r = new ByteReader(payload, `${spec} payload`);
    checkPayloadVersion(r.u8('version'), PAYLOAD_VERSION, spec);
    const count = r.u8('transform count');
    const parts = spec.split(',');
    if (count !== parts.length - 1) r.fail(`payload holds ${count} transforms, the spec names ${parts.length - 1}`, { expected: parts.length - 1, received: count });
    const transforms: Transform[] = [];
    let dim = ctx.dimension;
    for (let i = 0; i < count; i++) {
      const part = r.string('transform spec');
      if (part !== parts[i]) r.fail(`transform ${i} is ${part}, the spec says ${parts[i]}`, { expected: parts[i], received: part });
      const t = transformFromPayload(part, { inputDimension: dim, metric: ctx.metric, kernels: ctx.kernels }, r.blob('transform payload'));
      transforms.push(t);
      dim = t.outputDimension;
    }
    const inner = restoreInner(r.blob('inner quantizer'), ctx.kernels, `${spec} inner quantizer`);
    if (inner.spec !== parts[parts.length - 1] || inner.dimension !== dim || inner.metric !== ctx.metric) {
      r.fail(`inner quantizer ${inner.spec} (d=${inner.dimension}) does not match the spec`, { expected: { spec: parts[parts.length - 1], dimension: dim }, received: { spec: inner.spec, dimension: inner.dimension } });
    }
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    const q = new TransformedQuantizer(ctx, transforms, inner);
    q.markTrained();
    return q;
  }
}

/**
 * Builds an untrained composed quantizer for 'T1,...,Tn,Q': transforms sized from ctx.dimension,
 * the inner quantizer from `createInner` at the last transform's output dimension. Null when
 * `spec` has no transform part.
 */
export function createTransformed(spec: string, ctx: QuantizerContext, createInner: (spec: string, ctx: QuantizerContext) => Quantizer): Quantizer | null {
  const parts = spec.split(',');
  if (parts.length < 2) return null;
  const transforms: Transform[] = [];
  let dim = ctx.dimension;
  for (const part of parts.slice(0, -1)) {
    const factory = parseTransformSpec(part);
    if (!factory) {
      throw new QuiverError('UNKNOWN_SPEC', `unknown transform "${part}" in "${spec}" (transforms: ${TRANSFORM_GRAMMAR}; they precede the quantizer)`, {
        received: spec, part, expected: TRANSFORM_GRAMMAR,
      });
    }
    const t = factory({ inputDimension: dim, metric: ctx.metric, kernels: ctx.kernels });
    transforms.push(t);
    dim = t.outputDimension;
  }
  const inner = createInner(parts[parts.length - 1], { ...ctx, dimension: dim });
  return new TransformedQuantizer(ctx, transforms, inner);
}
