import { columnMeans } from '../math/linalg.js';
import { QuiverError } from '../errors.js';
import { SCORE_KIND, type RowScoring } from '../kernels/graph.js';
import type { Kernels } from '../kernels/types.js';
import { HadamardRotation, paddedDimension } from '../math/hadamard.js';
import { ByteReader, ByteWriter } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';
import { checkCodes, checkOutput, checkQuery, checkTrained, checkTrainingSample, checkVectors } from './checks.js';
import type { QuantizerContext, QuantizerFamily } from './registry.js';
import { packFastScanCodes, quantizeLookupTable } from './pq.js';
import { writeQuantizerEnvelope } from './serial.js';
import type { QuantMetric, Quantizer, QueryScorer, ScanLayout, TrainOptions } from './types.js';

/**
 * RaBitQ (Gao & Long, SIGMOD 2024) and extended RaBitQ (Gao et al., 2024): `RaBitQ{B}`, B = 1..8
 * bits per dimension, `RaBitQ{B}fast` (B >= 2) with the fast rounding mode, and `RaBitQ1fs`, 1-bit
 * codes scanned by 4-bit fast-scan (below).
 *
 * Encoding, per vector x: r = P(x - c), the residual from the data mean c rotated by a random
 * orthogonal P (src/math/hadamard.ts, padded to D = a multiple of 64); o = r / ||r||. The code is
 * the point of the grid G = {-(2^B - 1)/2, ..., +(2^B - 1)/2}^D (half-integers; B = 1 gives ±1/2,
 * i.e. sign bits) whose direction ȳ/||ȳ|| has the largest cosine with o:
 *   - exact mode: sweep the rescaling factor t; the candidate at t rounds t·|o_i| onto the grid
 *     magnitudes, and it only changes at the critical values t = (k + 1)/|o_i|; visit them in
 *     ascending order (a merge of K sorted sequences, or a radix sort for many levels), updating
 *     <ȳ,|o|> and ||ȳ||^2 in O(1) per step, and keep the best: about 2^B · D steps per vector
 *     after one sort of |o| (ExtendedCodeSearch.exact);
 *   - fast mode: round once at a rescaling factor t learned at training time (the median of the
 *     exact optimum over up to 256 training vectors): O(D) per vector, a slightly lower cosine.
 * Signs follow o, so the most significant bit of every u_t is the 1-bit RaBitQ code.
 *
 * Estimation: for a query vector q' in the rotated space (q' = Pq for 'dot', P(q - c) for 'l2'),
 * <o, q'> ~ <ō, q'> / <ō, o>, ō = ȳ/||ȳ||, which is unbiased; |error| <= eps0 · ||q'|| ·
 * sqrt((1 - <ō,o>^2) / (D - 1)) / <ō,o> with high probability (eps0 = 1.9, the paper's
 * confidence). Queries are quantized uniformly (step Δ, see the row layout below) so that
 * <u, q̄> is an integer sum on the kernels; the query's rounding error enters the bound as an
 * extra variance term Δ^2/12.
 * Scores: 'dot' -> <c, q> + ||r|| <o, q'>; 'l2' -> -(||r||^2 + ||q'||^2 - 2 ||r|| <o, q'>).
 *
 * Row layout (codeSize = B · D/8 + 16 bytes): the codes u_t = ȳ_t + (2^B - 1)/2 in [0, 2^B - 1],
 * then f32 factors add (0 for dot, -||r||^2 for l2), rescale = ||r|| / <ȳ, o>,
 * errScale = ||r|| / <ō, o>, oneMinusA2 = 1 - <ō, o>^2. The codes are stored
 *   - B = 1, 2, 3, 5, 6, 7: as B bit planes of D/8 bytes (plane k holds bit k of every u_t,
 *     dimension t at byte t >> 3, bit t & 7); the query is quantized to Bq = min(8, B + 3)
 *     unsigned bits and scored by AND + popcount over plane pairs (kernel rabitqScan, B·Bq pairs);
 *   - B = 4: as nibbles (dimension t in byte t >> 1, low nibble when t is even), B = 8: as bytes;
 *     the query is quantized to signed i16 levels of up to 11 bits and scored by i16 dot
 *     products (kernel rabitqScanDirect), several times faster than 28 or 64 plane pairs.
 *
 * Fast-scan (`RaBitQ1fs`, as the RaBitQ paper's IVF does): the same rows as RaBitQ1, but scanned in
 * blocks of 32 vectors (scanLayout; kernel rabitqFastScan). Each 4 consecutive dimensions form a
 * group whose sign bits are a 4-bit index (they are already one nibble of the plane), so <u, q'>
 * is a sum of D/4 lookups in 16-entry tables of the group's partial sums of q', quantized to u8
 * as for PQ fast-scan (step Δ = the widest group range / 255). Their rounding adds at most D/4
 * values in ±Δ/2, the same Δ^2/12 variance term in <ō, q'> units as the planes' query rounding,
 * with a Δ about 60 times smaller than 4-bit query levels for 100-d vectors. Graphs do not take
 * these codes (they score rows one at a time: use RaBitQ1 there).
 *
 * decode() returns c + P^T(rescale · ȳ) = c + P^T(||r|| ō / <ō,o>), the vector whose exact inner
 * product with any query is the estimator (so for 'dot', scores of decoded vectors equal
 * scoreBlock's up to the query's quantization). Its norm is inflated by 1/<ō,o>: the
 * mean-squared-error reconstruction would be c + P^T(||r|| <ō,o> ō), which biases inner products.
 */
export const RABITQ_EPS0 = 1.9;
/** Largest dimension accepted: integer inner products must stay exact in the kernels' u64/f64. */
const MAX_DIMENSION = 1 << 16;
/** 2: B = 4 and B = 8 codes are nibbles and bytes (version 1 stored bit planes for every B). */
const PAYLOAD_VERSION = 2;
const LAYOUT_CODES = { planes: 0, nibbles: 1, bytes: 2 } as const;
const FAST_TRAINING_VECTORS = 256;
const SPEC = /^RaBitQ(\d+)(fast|fs)?$/;

export const RABITQ_FAMILY: QuantizerFamily = {
  grammar: 'RaBitQ{B} | RaBitQ{B}fast | RaBitQ1fs (B = 1..8 bits per dimension; fast: B >= 2; fs = 1-bit codes by 4-bit fast-scan)',
  parse(spec) {
    const m = SPEC.exec(spec);
    if (!m) return null;
    const bits = Number(m[1]);
    const fast = m[2] === 'fast', fastScan = m[2] === 'fs';
    if (!(bits >= 1 && bits <= 8) || String(bits) !== m[1]) {
      throw new QuiverError('INVALID_ARGUMENT', `${spec}: RaBitQ takes 1 to 8 bits per dimension, got ${m[1]}`, { spec, name: 'B', expected: 'integer in [1, 8]', received: bits });
    }
    if (fast && bits === 1) {
      throw new QuiverError('INVALID_ARGUMENT', `${spec}: the fast rounding mode applies to extended codes (B >= 2); RaBitQ1 has a single code per sign pattern`, {
        spec, name: 'B', expected: 'integer in [2, 8] with "fast"', received: bits,
      });
    }
    if (fastScan && bits !== 1) {
      throw new QuiverError('INVALID_ARGUMENT', `${spec}: fast-scan ('fs') scans 1-bit codes in 4-dimension groups; use RaBitQ1fs, or RaBitQ${bits} for extended codes`, {
        spec, name: 'B', expected: '1 with "fs"', received: bits,
      });
    }
    return (ctx) => new RaBitQuantizer(ctx, bits, fast, fastScan);
  },
  deserialize(spec, payload, ctx) {
    const factory = RABITQ_FAMILY.parse(spec);
    if (!factory) throw new QuiverError('UNKNOWN_SPEC', `not a RaBitQ spec: ${spec}`, { received: spec });
    const q = factory(ctx) as RaBitQuantizer;
    q.restore(payload);
    return q;
  },
};

export class RaBitQuantizer implements Quantizer {
  readonly spec: string;
  readonly dimension: number;
  readonly metric: QuantMetric;
  readonly kernels: Kernels;
  /** Code bits per (rotated) dimension. */
  readonly bits: number;
  /** Fast rounding mode (one rounding at a learned rescaling factor) instead of the exact search. */
  readonly fast: boolean;
  /** 1-bit codes scanned by 4-bit fast-scan in blocks of 32 (`RaBitQ1fs`); rows as RaBitQ1. */
  readonly fastScan: boolean;
  /** How codes are stored: bit planes (B = 1, 2, 3, 5, 6, 7), nibbles (B = 4) or bytes (B = 8). */
  readonly layout: 'planes' | 'nibbles' | 'bytes';
  /**
   * Query quantization: bits per dimension of the unsigned query levels (planes layout), or the
   * largest magnitude of the signed i16 query levels (nibbles and bytes layouts).
   */
  readonly queryBits: number;
  /** Rotated (padded) dimension D, a multiple of 64. */
  readonly rotatedDimension: number;
  readonly codeSize: number;
  readonly scanLayout: ScanLayout;
  readonly bounded = true;
  readonly minTrainingVectors = 1;
  private isTrained = false;
  private fp = 0;
  private rotation: HadamardRotation | null = null;
  /** Data mean in input space (values rounded to f32, as serialized): f64[dimension]. */
  private centroid: Float64Array = new Float64Array(0);
  /** Rescaling factor of the fast mode (0 when unused). */
  private fastT = 0;
  private readonly planeBytes: number;
  private readonly search: ExtendedCodeSearch;
  private readonly work: Float64Array;
  private readonly absO: Float64Array;
  private readonly levels: Int32Array;

  constructor(ctx: QuantizerContext, bits: number, fast: boolean, fastScan = false) {
    if (!Number.isInteger(ctx.dimension) || ctx.dimension < 1 || ctx.dimension > MAX_DIMENSION) {
      throw new QuiverError('INVALID_ARGUMENT', `RaBitQ: dimension must be an integer in [1, ${MAX_DIMENSION}], got ${ctx.dimension}`, {
        name: 'dimension', expected: `integer in [1, ${MAX_DIMENSION}]`, received: ctx.dimension,
      });
    }
    if (ctx.metric !== 'dot' && ctx.metric !== 'l2') {
      throw new QuiverError('INVALID_ARGUMENT', `RaBitQ: metric must be 'dot' or 'l2', got ${String(ctx.metric)}`, { name: 'metric', expected: ['dot', 'l2'], received: ctx.metric });
    }
    this.spec = `RaBitQ${bits}${fast ? 'fast' : fastScan ? 'fs' : ''}`;
    this.dimension = ctx.dimension;
    this.metric = ctx.metric;
    this.kernels = ctx.kernels;
    this.bits = bits;
    this.fast = fast;
    this.fastScan = fastScan && bits === 1;
    const D = paddedDimension(ctx.dimension, 'multiple64');
    this.layout = bits === 4 ? 'nibbles' : bits === 8 ? 'bytes' : 'planes';
    // planes: popcount work grows with the query bits, B + 3 keeps their rounding error a few
    // percent of the code's; direct layouts multiply i16 values, so the query gets up to 11 bits
    // plus sign, as long as no i32 lane of the kernel's sum can overflow
    this.queryBits = this.layout === 'planes' ? Math.min(8, bits + 3)
      : Math.min(2047, Math.floor(0x7fffffff / (Math.ceil(D / 4) * ((1 << bits) - 1))));
    this.rotatedDimension = D;
    this.planeBytes = D / 8;
    this.codeSize = bits * this.planeBytes + 16;
    const codeSize = this.codeSize;
    this.scanLayout = this.fastScan ? fastScanRabitqLayout(D, codeSize)
      : { blockRows: 1, blockBytes: codeSize, pack: (rows, n, out) => out.set(rows.subarray(0, n * codeSize)) };
    this.search = new ExtendedCodeSearch(D, bits);
    this.work = new Float64Array(D);
    this.absO = new Float64Array(D);
    this.levels = new Int32Array(D);
  }

  get trained(): boolean { return this.isTrained; }
  get fingerprint(): number { return this.fp; }

  train(sample: Float32Array, n: number, options: TrainOptions = {}): void {
    checkTrainingSample(this, sample, n);
    const d = this.dimension;
    const mean = columnMeans(sample, n, d);
    for (let j = 0; j < d; j++) mean[j] = Math.fround(mean[j]);
    const rotation = new HadamardRotation(d, { seed: options.seed ?? 0x5eed, padding: 'multiple64', rounds: 3 });
    this.install(rotation, mean, 0);
    if (this.fast) {
      // The optimal rescaling factor concentrates for rotated vectors of one dimension: learn
      // it as the median of the exact search's optimum over a sample of the training vectors.
      const m = Math.min(n, FAST_TRAINING_VECTORS);
      const ts = new Float64Array(m);
      let count = 0;
      for (let i = 0; i < m; i++) {
        const row = Math.floor((i * n) / m);
        if (this.rotateResidual(sample, row * d) === 0) continue;
        this.search.exact(this.absO, this.levels);
        ts[count++] = this.search.lastBestT;
        options.onProgress?.((i + 1) / m);
      }
      const sorted = ts.subarray(0, count).sort();
      this.fastT = count > 0 ? sorted[count >> 1] : this.search.defaultT();
    }
    this.fp = crc32c(this.payload());
    this.isTrained = true;
  }

  encode(vectors: Float32Array, n: number, out: Uint8Array): void {
    checkTrained(this, 'encode');
    checkVectors(this, 'encode', vectors, n);
    checkOutput(this, 'encode', out, n * this.codeSize, 'Uint8Array');
    const D = this.rotatedDimension, B = this.bits, pb = this.planeBytes, cs = this.codeSize, layout = this.layout;
    const half = 1 << (B - 1);
    const absO = this.absO, levels = this.levels, w = this.work;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    out.fill(0, 0, n * cs);
    for (let i = 0; i < n; i++) {
      const base = i * cs;
      const norm = this.rotateResidual(vectors, i * this.dimension);
      if (norm === 0) continue; // x = c: all-zero factors make every estimate exact
      if (B === 1) levels.fill(0);
      else if (this.fast) this.search.rounded(absO, this.fastT, levels);
      else this.search.exact(absO, levels);
      let ip = 0, ny2 = 0;
      for (let t = 0; t < D; t++) {
        const m = levels[t] + 0.5;
        ip += m * absO[t];
        ny2 += m * m;
        const u = w[t] > 0 ? half + levels[t] : half - 1 - levels[t];
        if (layout === 'planes') {
          for (let k = 0; k < B; k++) if ((u >> k) & 1) out[base + k * pb + (t >> 3)] |= 1 << (t & 7);
        } else if (layout === 'nibbles') out[base + (t >> 1)] |= u << ((t & 1) << 2);
        else out[base + t] = u;
      }
      const a = ip / Math.sqrt(ny2); // <ō, o>
      const f = base + cs - 16;
      view.setFloat32(f, this.metric === 'l2' ? -norm * norm : 0, true);
      view.setFloat32(f + 4, norm / ip, true); // ||r|| / <ȳ, o>
      view.setFloat32(f + 8, norm / a, true);
      view.setFloat32(f + 12, Math.max(0, 1 - a * a), true);
    }
  }

  decode(codes: Uint8Array, n: number, out: Float32Array): void {
    checkTrained(this, 'decode');
    checkCodes(this, codes, n);
    checkOutput(this, 'decode', out, n * this.dimension, 'Float32Array');
    const D = this.rotatedDimension, B = this.bits, pb = this.planeBytes, cs = this.codeSize, d = this.dimension, layout = this.layout;
    const centre = (1 << B) / 2 - 0.5;
    const w = this.work, c = this.centroid, rotation = this.rotation!;
    const view = new DataView(codes.buffer, codes.byteOffset, codes.byteLength);
    for (let i = 0; i < n; i++) {
      const base = i * cs;
      const rescale = view.getFloat32(base + cs - 12, true);
      for (let t = 0; t < D; t++) {
        let u = 0;
        if (layout === 'planes') for (let k = 0; k < B; k++) u |= ((codes[base + k * pb + (t >> 3)] >> (t & 7)) & 1) << k;
        else if (layout === 'nibbles') u = (codes[base + (t >> 1)] >> ((t & 1) << 2)) & 15;
        else u = codes[base + t];
        w[t] = rescale * (u - centre);
      }
      rotation.inverse(w);
      for (let j = 0; j < d; j++) out[i * d + j] = c[j] + w[j];
    }
  }

  prepare(query: Float32Array): QueryScorer {
    checkTrained(this, 'prepare');
    checkQuery(this, query);
    const D = this.rotatedDimension, d = this.dimension, pb = this.planeBytes, Bq = this.queryBits;
    const w = new Float64Array(D);
    const c = this.centroid;
    let outBias = 0;
    if (this.metric === 'dot') {
      for (let j = 0; j < d; j++) { w[j] = query[j]; outBias += query[j] * c[j]; }
    } else {
      for (let j = 0; j < d; j++) w[j] = query[j] - c[j];
    }
    this.rotation!.forward(w);
    let low = Infinity, high = -Infinity, norm2 = 0;
    for (let t = 0; t < D; t++) {
      const v = w[t];
      if (v < low) low = v;
      if (v > high) high = v;
      norm2 += v * v;
    }
    if (this.metric === 'l2') outBias = -norm2;
    const centre = (1 << this.bits) / 2 - 0.5;
    const outScale = this.metric === 'dot' ? 1 : 2;
    const mem = this.kernels.memory;
    const kernels = this.kernels, cs = this.codeSize, B = this.bits;
    let delta: number, paramsPtr: number, run: (codesPtr: number, n: number, outPtr: number, boundsPtr: number) => void;
    let rowScoring: RowScoring | undefined;
    if (this.fastScan) {
      // u8 tables of each 4-dimension group's partial sums of q' (see the header)
      const m = D / 4;
      const lut = new Float32Array(m * 16);
      let sumW = 0;
      for (let g = 0; g < m; g++) {
        const w0 = w[4 * g], w1 = w[4 * g + 1], w2 = w[4 * g + 2], w3 = w[4 * g + 3];
        sumW += w0 + w1 + w2 + w3;
        for (let j = 0; j < 16; j++) lut[g * 16 + j] = (j & 1 ? w0 : 0) + (j & 2 ? w1 : 0) + (j & 4 ? w2 : 0) + (j & 8 ? w3 : 0);
      }
      const { table, bias, scale } = quantizeLookupTable(lut, m);
      delta = scale;
      paramsPtr = mem.alloc(32 + table.length);
      const tablePtr = paramsPtr + 32;
      // <ȳ, q'> = <u, q'> - sum(q') / 2, <u, q'> ~ bias + scale * S
      const [, , , , , boundVar, quantVar, boundScale] = paramParams(scale, 0, 0, outScale, outBias, norm2, D);
      mem.f32(paramsPtr, 8).set([scale, bias - sumW / 2, outScale, outBias, boundVar, quantVar, boundScale, 0]);
      mem.u8(tablePtr, table.length).set(table);
      run = (codesPtr, n, outPtr, boundsPtr) => kernels.rabitqFastScan(codesPtr, n, m, tablePtr, paramsPtr, outPtr, boundsPtr);
    } else if (this.layout === 'planes') {
      // unsigned levels over [low, high], as bit planes for AND + popcount
      const top = (1 << Bq) - 1;
      delta = (high - low) / top;
      const planes = new Uint8Array(Bq * pb);
      let sumLevels = 0;
      for (let t = 0; t < D; t++) {
        const level = delta > 0 ? Math.min(top, Math.max(0, Math.round((w[t] - low) / delta))) : 0;
        sumLevels += level;
        for (let j = 0; j < Bq; j++) if ((level >> j) & 1) planes[j * pb + (t >> 3)] |= 1 << (t & 7);
      }
      paramsPtr = mem.alloc(32 + planes.length);
      const planesPtr = paramsPtr + 32;
      mem.f32(paramsPtr, 8).set(paramParams(delta, low, -centre * (delta * sumLevels + D * low), outScale, outBias, norm2, D));
      mem.u8(planesPtr, planes.length).set(planes);
      run = (codesPtr, n, outPtr, boundsPtr) => kernels.rabitqScan(codesPtr, n, cs, B, pb, planesPtr, Bq, paramsPtr, outPtr, boundsPtr);
      rowScoring = { kind: SCORE_KIND.RABITQ_PLANES, d: D, stride: cs, scale: 0, bias: 0, p0: planesPtr, p1: paramsPtr, bits: B | (Bq << 8) };
    } else {
      // signed levels in [-queryBits, queryBits] for the i16 dot products
      const top = Bq;
      const maxAbs = Math.max(-low, high);
      delta = maxAbs / top;
      const levels = new Int16Array(D);
      let sumLevels = 0;
      for (let t = 0; t < D; t++) {
        const level = delta > 0 ? Math.min(top, Math.max(-top, Math.round(w[t] / delta))) : 0;
        levels[t] = level;
        sumLevels += level;
      }
      paramsPtr = mem.alloc(32 + 2 * D);
      const levelsPtr = paramsPtr + 32;
      mem.f32(paramsPtr, 8).set(paramParams(delta, 0, -centre * delta * sumLevels, outScale, outBias, norm2, D));
      mem.views().i16.set(levels, levelsPtr >> 1);
      run = (codesPtr, n, outPtr, boundsPtr) => kernels.rabitqScanDirect(codesPtr, n, cs, D, B, levelsPtr, paramsPtr, outPtr, boundsPtr);
      rowScoring = { kind: SCORE_KIND.RABITQ_DIRECT, d: D, stride: cs, scale: 0, bias: 0, p0: levelsPtr, p1: paramsPtr, bits: B };
    }
    let live = true;
    return {
      // a graph search scores one row with the same kernel: the estimate (bounds are not used there)
      rowScoring,
      scoreBlock(codesPtr, n, outPtr, boundsPtr = 0) {
        if (!live) throw new QuiverError('INVALID_ARGUMENT', 'this query scorer was released', { expected: 'live scorer', received: 'released' });
        run(codesPtr, n, outPtr, boundsPtr);
      },
      release() {
        if (live) { live = false; mem.release(paramsPtr); }
      },
    };
  }

  serialize(): Uint8Array {
    checkTrained(this, 'serialize');
    return writeQuantizerEnvelope({ spec: this.spec, dimension: this.dimension, metric: this.metric, payload: this.payload() });
  }

  /** Restores trained parameters from a payload written by serialize() (deserializeQuantizer). */
  restore(payload: Uint8Array): void {
    const r = new ByteReader(payload, `${this.spec} payload`);
    const version = r.u8('version');
    if (version !== PAYLOAD_VERSION) {
      throw new QuiverError('UNSUPPORTED_FORMAT', `${this.spec}: payload version ${version} is not supported (read: ${PAYLOAD_VERSION})`, { expected: PAYLOAD_VERSION, received: version });
    }
    const bits = r.u8('bits'), fast = r.u8('fast'), layout = r.u8('layout');
    if (bits !== this.bits || (fast === 1) !== this.fast || layout !== LAYOUT_CODES[this.layout]) {
      r.fail('payload parameters disagree with the spec', { expected: { bits: this.bits, fast: this.fast, layout: LAYOUT_CODES[this.layout] }, received: { bits, fast, layout } });
    }
    const rotation = HadamardRotation.readFrom(r);
    if (rotation.inputDim !== this.dimension || rotation.dim !== this.rotatedDimension) {
      r.fail('rotation dimension disagrees with the quantizer', { expected: this.dimension, received: rotation.inputDim });
    }
    const fastT = r.f64('fastT');
    const centroid = Float64Array.from(r.f32Array(this.dimension, 'centroid'));
    if (r.remaining !== 0) r.fail(`${r.remaining} unexpected trailing bytes`);
    this.install(rotation, centroid, fastT);
    this.fp = crc32c(payload);
    this.isTrained = true;
  }

  private payload(): Uint8Array {
    const w = new ByteWriter(64 + this.dimension * 4);
    w.u8(PAYLOAD_VERSION).u8(this.bits).u8(this.fast ? 1 : 0).u8(LAYOUT_CODES[this.layout]);
    this.rotation!.writeTo(w);
    w.f64(this.fastT);
    w.typed(Float32Array.from(this.centroid));
    return w.finish().slice();
  }

  private install(rotation: HadamardRotation, centroid: Float64Array, fastT: number): void {
    this.rotation = rotation;
    this.centroid = centroid;
    this.fastT = fastT;
  }

  /**
   * work = P(x - c) for the vector at src[off .. off + dimension); absO = |work| / ||work||.
   * Returns ||x - c|| (0 leaves absO undefined).
   */
  private rotateResidual(src: Float32Array, off: number): number {
    const w = this.work, d = this.dimension, D = this.rotatedDimension, c = this.centroid;
    for (let j = 0; j < d; j++) w[j] = src[off + j] - c[j];
    w.fill(0, d);
    this.rotation!.forward(w);
    let n2 = 0;
    for (let t = 0; t < D; t++) n2 += w[t] * w[t];
    if (n2 === 0) return 0;
    const norm = Math.sqrt(n2), inv = 1 / norm, absO = this.absO;
    for (let t = 0; t < D; t++) absO[t] = Math.abs(w[t]) * inv;
    return norm;
  }
}

/**
 * The fast-scan layout of RaBitQ1 rows (D rotated dimensions, codeSize = D/8 + 16 bytes): blocks
 * of 32 vectors, each the D/4 groups' nibbles as pqFastScan reads them (16 bytes per group: byte
 * j holds vector j's nibble low, vector j + 16's high), then the 32 vectors' f32 factors as four
 * arrays add[32], rescale[32], errScale[32], oneMinusA2[32]: blockBytes = 4D + 512.
 */
export function fastScanRabitqLayout(D: number, codeSize: number): ScanLayout {
  const m = D / 4, codeBytes = m * 16, blockBytes = codeBytes + 512;
  return {
    blockRows: 32,
    blockBytes,
    pack(rows: Uint8Array, n: number, out: Uint8Array): void {
      out.fill(0, 0, Math.ceil(n / 32) * blockBytes);
      // plane byte g >> 1 holds group g's 4 sign bits in its low (g even) or high nibble: PQ's nibble order
      packFastScanCodes(rows, n, codeSize, m, out, blockBytes);
      for (let i = 0; i < n; i++) {
        const row = i * codeSize, base = (i >> 5) * blockBytes, v = i & 31;
        const f = row + codeSize - 16, to = base + codeBytes + v * 4;
        for (let k = 0; k < 4; k++) for (let b = 0; b < 4; b++) out[to + k * 128 + b] = rows[f + k * 4 + b];
      }
    },
  };
}

/**
 * The kernels' f32[8] parameters: delta, low, constTerm, outScale, outBias, then the bound's
 * variance terms ||q'||^2 / (D - 1) and delta^2 / 12 (the query's rounding) and eps0 * outScale.
 */
function paramParams(delta: number, low: number, constTerm: number, outScale: number, outBias: number, norm2: number, D: number): number[] {
  return [delta, low, constTerm, outScale, outBias, norm2 / (D - 1), (delta * delta) / 12, RABITQ_EPS0 * outScale];
}

/**
 * The code search of extended RaBitQ over grid magnitudes m_i = k_i + 1/2, k_i in [0, K],
 * K = 2^(B-1) - 1: maximise cos = sum m_i |o_i| / sqrt(sum m_i^2) for one unit vector's |o|
 * (signs are chosen to match o). The candidates are the roundings k_i(t) = min(K, floor(t·|o_i|))
 * for t > 0, which change only at the critical values t = (k+1)/|o_i|; visiting those in
 * ascending order updates <ȳ,|o|> by |o_i| and ||ȳ||^2 by 2(k+1) per step.
 *
 * exact() never heaps over the D dimensions. For B <= 4 it generates the critical values as a
 * K-way merge: sorted by |o_i| descending, the values of level k+1 form the ascending sequence
 * (k+1)/|o_(j)|, so the smallest of K sequence heads (a linear scan, K <= 7) is the next one:
 * O(D log D + K^2 D). For B >= 5 (K >= 15) it radix-sorts all K·D values at once
 * (sortedEvents): O(K D). sweep() is the textbook version (a heap over dimensions,
 * O(K·D log D)) kept as the reference the tests compare exact() against.
 * Typed-array scratch sized once per (dimension, bits); not re-entrant.
 */
export class ExtendedCodeSearch {
  /** Largest k_i, K = 2^(B-1) - 1. */
  readonly maxLevel: number;
  /** A rescaling factor t whose rounding is the optimum of the last exact()/sweep() call. */
  lastBestT = 0;
  private readonly order: Int32Array;
  private readonly sortKeys: Float64Array;
  private readonly inverse: Float64Array;
  private readonly sortedAbs: Float64Array;
  private readonly seqKeys: Float64Array;
  private readonly seqPos: Int32Array;
  private readonly bestPos: Int32Array;
  private readonly heapKeys: Float64Array;
  private readonly heapIds: Int32Array;
  private readonly current: Int32Array;
  private eventKeys = new Float64Array(0);
  private eventKeys2 = new Float64Array(0);
  private events = new Uint32Array(0);
  private events2 = new Uint32Array(0);
  private readonly radixCounts = new Uint32Array(2048);

  constructor(readonly dim: number, readonly bits: number) {
    const K = (1 << (bits - 1)) - 1;
    this.maxLevel = K;
    this.order = new Int32Array(dim);
    this.sortKeys = new Float64Array(dim);
    this.inverse = new Float64Array(dim);
    this.sortedAbs = new Float64Array(dim);
    this.seqKeys = new Float64Array(Math.max(1, K));
    this.seqPos = new Int32Array(Math.max(1, K) + 1);
    this.bestPos = new Int32Array(Math.max(1, K) + 1);
    this.heapKeys = new Float64Array(dim);
    this.heapIds = new Int32Array(dim);
    this.current = new Int32Array(dim);
  }

  /**
   * Exact search: levels (out: i32[dim]) <- an optimal k; returns the optimal cosine.
   * absO: f64[dim], |o_i| of a unit vector.
   */
  exact(absO: Float64Array, levels: Int32Array): number {
    const D = this.dim, K = this.maxLevel;
    let ip0 = 0;
    for (let i = 0; i < D; i++) ip0 += 0.5 * absO[i];
    const n20 = 0.25 * D;
    levels.fill(0, 0, D);
    // dimensions with |o_i| > 0, by |o_i| descending (zeros never leave level 0)
    const order = this.order, keys = this.sortKeys;
    let nz = 0;
    for (let i = 0; i < D; i++) if (absO[i] > 0) { order[nz] = i; keys[nz] = -absO[i]; nz++; }
    if (K === 0 || nz === 0) {
      this.lastBestT = nz > 0 ? 0.5 / maxOf(absO, D) : 1;
      return ip0 / Math.sqrt(n20);
    }
    quickSortByKey(keys, order, 0, nz - 1);
    const inv = this.inverse, sa = this.sortedAbs;
    for (let j = 0; j < nz; j++) { sa[j] = -keys[j]; inv[j] = 1 / sa[j]; }
    if (K > 7) return this.sortedEvents(nz, ip0, n20, levels);
    // Few levels: the merge snapshots the K sequence positions at each improvement.
    const best = this.merge(nz, ip0, n20);
    // level of sorted dimension j = number of sequences whose position passed j (positions are
    // non-increasing in the level, since a dimension reaches level k before level k+1)
    const pos = this.bestPos;
    pos[K] = 0;
    for (let s = 0; s < K; s++) for (let j = pos[s + 1]; j < pos[s]; j++) levels[order[j]] = s + 1;
    this.lastBestT = best.t;
    return Math.sqrt(best.score);
  }

  /**
   * Many levels (B >= 5): all K·nz critical values are generated and sorted at once, by an LSD
   * radix sort on the high 32 bits of their float64 keys (three 11-bit passes) followed by an
   * insertion-sort pass on the full keys (the radix order is exact up to keys that share their top
   * 32 bits, so that pass moves few elements); then one linear scan finds the best prefix.
   * About 4x faster than the merge at K = 127, where its heap has 7 levels.
   */
  private sortedEvents(nz: number, ip: number, n2: number, levels: Int32Array): number {
    const K = this.maxLevel, inv = this.inverse, sa = this.sortedAbs, order = this.order;
    const E = K * nz;
    if (this.eventKeys.length < E) {
      this.eventKeys = new Float64Array(E); this.eventKeys2 = new Float64Array(E);
      this.events = new Uint32Array(E); this.events2 = new Uint32Array(E);
    }
    let keys = this.eventKeys, keys2 = this.eventKeys2, ev = this.events, ev2 = this.events2;
    for (let s = 0, e = 0; s < K; s++) for (let j = 0; j < nz; j++, e++) { keys[e] = (s + 1) * inv[j]; ev[e] = s * nz + j; }
    const count = this.radixCounts;
    for (let shift = 0; shift < 32; shift += 11) {
      const hi = new Uint32Array(keys.buffer, keys.byteOffset, 2 * E);
      count.fill(0);
      for (let e = 0; e < E; e++) count[(hi[2 * e + 1] >>> shift) & 2047]++;
      let sum = 0;
      for (let b = 0; b < 2048; b++) { const c = count[b]; count[b] = sum; sum += c; }
      for (let e = 0; e < E; e++) {
        const dst = count[(hi[2 * e + 1] >>> shift) & 2047]++;
        keys2[dst] = keys[e]; ev2[dst] = ev[e];
      }
      const tk = keys; keys = keys2; keys2 = tk;
      const te = ev; ev = ev2; ev2 = te;
    }
    for (let a = 1; a < E; a++) {
      const k = keys[a];
      if (!(k < keys[a - 1])) continue;
      const v = ev[a];
      let b = a - 1;
      while (b >= 0 && keys[b] > k) { keys[b + 1] = keys[b]; ev[b + 1] = ev[b]; b--; }
      keys[b + 1] = k; ev[b + 1] = v;
    }
    let best = (ip * ip) / n2, bestSteps = 0, bestT = 0.5 * keys[0];
    for (let e = 0; e < E; e++) {
      const code = ev[e], s = Math.floor(code / nz), j = code - s * nz;
      ip += sa[j];
      n2 += 2 * (s + 1);
      const sc = (ip * ip) / n2;
      if (sc > best) { best = sc; bestSteps = e + 1; bestT = e + 1 < E ? 0.5 * (keys[e] + keys[e + 1]) : keys[e] * 1.0001; }
    }
    for (let e = 0; e < bestSteps; e++) levels[order[ev[e] % nz]]++;
    this.lastBestT = bestT;
    return Math.sqrt(best);
  }

  /**
   * Few levels (B <= 4, K <= 7): the K-way merge of critical values over the nz sorted
   * dimensions, from the all-zero rounding (<ȳ,|o|> = ip, ||ȳ||^2 = n2). The smallest of the K
   * sequence heads is found by a linear scan (exhausted heads are +inf). Returns the best state
   * (score = cos^2, a t inside its interval) and leaves its sequence positions in bestPos.
   */
  private merge(nz: number, ip: number, n2: number): { score: number; t: number } {
    const K = this.maxLevel, inv = this.inverse, sa = this.sortedAbs;
    const hk = this.seqKeys, pos = this.seqPos, bestPos = this.bestPos;
    for (let s = 0; s < K; s++) { pos[s] = 0; bestPos[s] = 0; hk[s] = (s + 1) * inv[0]; }
    let best = (ip * ip) / n2, bestT = 0.5 * inv[0];
    for (;;) {
      let s = 0, t = hk[0];
      for (let q = 1; q < K; q++) if (hk[q] < t) { t = hk[q]; s = q; }
      if (t === Infinity) break;
      ip += sa[pos[s]];
      n2 += 2 * (s + 1); // (k + 1/2)^2 - (k - 1/2)^2 with k = s + 1
      const next = ++pos[s];
      hk[s] = next < nz ? (s + 1) * inv[next] : Infinity;
      const sc = (ip * ip) / n2;
      if (sc > best) {
        // the new state is the rounding at every t between this critical value and the next
        best = sc;
        let t2 = hk[0];
        for (let q = 1; q < K; q++) if (hk[q] < t2) t2 = hk[q];
        bestT = t2 < Infinity ? 0.5 * (t + t2) : t * 1.0001;
        for (let q = 0; q < K; q++) bestPos[q] = pos[q];
      }
    }
    return { score: best, t: bestT };
  }

  /** The textbook sweep with a heap over dimensions (reference for exact()); same contract. */
  sweep(absO: Float64Array, levels: Int32Array): number {
    const D = this.dim, K = this.maxLevel;
    const keys = this.heapKeys, ids = this.heapIds, cur = this.current;
    let ip = 0, size = 0;
    for (let i = 0; i < D; i++) {
      cur[i] = 0;
      ip += 0.5 * absO[i];
      if (absO[i] > 0 && K > 0) { keys[size] = 1 / absO[i]; ids[size] = i; size++; }
    }
    let n2 = 0.25 * D;
    for (let p = (size >> 1) - 1; p >= 0; p--) siftDown(keys, ids, size, p);
    let best = (ip * ip) / n2, bestLevels = cur.slice(0, D), bestT = size > 0 ? 0.5 * keys[0] : 1;
    while (size > 0) {
      const i = ids[0], t = keys[0];
      const k = ++cur[i];
      ip += absO[i];
      n2 += 2 * k;
      if (k < K) {
        keys[0] = (k + 1) / absO[i];
        siftDown(keys, ids, size, 0);
      } else {
        size--;
        if (size > 0) { keys[0] = keys[size]; ids[0] = ids[size]; siftDown(keys, ids, size, 0); }
      }
      const sc = (ip * ip) / n2;
      if (sc > best) { best = sc; bestLevels = cur.slice(0, D); bestT = size > 0 ? 0.5 * (t + keys[0]) : t * 1.0001; }
    }
    levels.set(bestLevels);
    this.lastBestT = bestT;
    return Math.sqrt(best);
  }

  /** Fast mode: levels (out: i32[dim]) <- min(floor(t·|o_i|), K); returns the cosine reached. */
  rounded(absO: Float64Array, t: number, levels: Int32Array): number {
    const K = this.maxLevel;
    let ip = 0, n2 = 0;
    for (let i = 0; i < this.dim; i++) {
      const k = Math.min(K, Math.floor(t * absO[i]));
      levels[i] = k;
      const m = k + 0.5;
      ip += m * absO[i];
      n2 += m * m;
    }
    return ip / Math.sqrt(n2);
  }

  /** A rescaling factor for a Gaussian-like unit vector when no training vector was usable. */
  defaultT(): number {
    return ((this.maxLevel + 1) * Math.sqrt(this.dim)) / 2.5;
  }
}

function maxOf(a: Float64Array, n: number): number {
  let m = 0;
  for (let i = 0; i < n; i++) if (a[i] > m) m = a[i];
  return m;
}

/** Sorts keys[lo..hi] ascending, permuting ids alongside (quicksort, insertion sort below 16). */
function quickSortByKey(keys: Float64Array, ids: Int32Array, lo: number, hi: number): void {
  while (hi - lo > 16) {
    const mid = (lo + hi) >> 1;
    // median of three as the pivot
    if (keys[mid] < keys[lo]) swap(keys, ids, mid, lo);
    if (keys[hi] < keys[lo]) swap(keys, ids, hi, lo);
    if (keys[hi] < keys[mid]) swap(keys, ids, hi, mid);
    const pivot = keys[mid];
    let i = lo, j = hi;
    while (i <= j) {
      while (keys[i] < pivot) i++;
      while (keys[j] > pivot) j--;
      if (i <= j) { swap(keys, ids, i, j); i++; j--; }
    }
    // recurse into the smaller side, loop on the larger (bounded stack)
    if (j - lo < hi - i) { quickSortByKey(keys, ids, lo, j); lo = i; } else { quickSortByKey(keys, ids, i, hi); hi = j; }
  }
  for (let a = lo + 1; a <= hi; a++) {
    const k = keys[a], id = ids[a];
    let b = a - 1;
    while (b >= lo && keys[b] > k) { keys[b + 1] = keys[b]; ids[b + 1] = ids[b]; b--; }
    keys[b + 1] = k; ids[b + 1] = id;
  }
}

function swap(keys: Float64Array, ids: Int32Array, a: number, b: number): void {
  const k = keys[a]; keys[a] = keys[b]; keys[b] = k;
  const i = ids[a]; ids[a] = ids[b]; ids[b] = i;
}

/** Min-heap on keys (ties: smaller id first), parallel ids. */
function siftDown(keys: Float64Array, ids: Int32Array, size: number, pos: number): void {
  const key = keys[pos], id = ids[pos];
  for (;;) {
    let c = 2 * pos + 1;
    if (c >= size) break;
    if (c + 1 < size && (keys[c + 1] < keys[c] || (keys[c + 1] === keys[c] && ids[c + 1] < ids[c]))) c++;
    if (!(keys[c] < key || (keys[c] === key && ids[c] < id))) break;
    keys[pos] = keys[c]; ids[pos] = ids[c];
    pos = c;
  }
  keys[pos] = key; ids[pos] = id;
}
