import { QuiverError } from '../errors.js';
import type { Kernels } from '../kernels/types.js';
import { crc32c } from '../util/crc32c.js';
import { checkCodes, checkOutput, checkQuery, checkTrained, checkTrainingSample, checkVectors } from './checks.js';
import type { QuantizerContext } from './registry.js';
import { writeQuantizerEnvelope } from './serial.js';
import type { QuantMetric, Quantizer, QueryScorer, ScanLayout, TrainOptions } from './types.js';

/**
 * Shared plumbing of the quantizers: the train/encode/decode/prepare/serialize life cycle with
 * the argument checks of checks.ts (one error code per kind of bad input, for every quantizer),
 * fingerprints and the row scan layout.
 * A family implements the protected hooks (fit, encodeRows, decodeRows, prepareQuery,
 * writePayload) and gets validation and error reporting for free.
 */

/** The scan layout of quantizers whose codes are scanned as stored rows. */
export function rowLayout(codeSize: number): ScanLayout {
  return {
    blockRows: 1,
    blockBytes: codeSize,
    pack(rows: Uint8Array, n: number, out: Uint8Array): void {
      out.set(rows.subarray(0, n * codeSize));
    },
  };
}

/** Bytes of kernel memory owned by a scorer, freed once by release(). */
export class ScorerMemory {
  private ptrs: number[] = [];
  private released = false;
  constructor(readonly kernels: Kernels, private readonly spec: string) {}

  /** Allocates and fills f32[values.length]; returns the pointer. */
  f32(values: ArrayLike<number>): number {
    const p = this.kernels.memory.alloc(values.length * 4);
    this.kernels.memory.f32(p, values.length).set(values);
    this.ptrs.push(p);
    return p;
  }

  /** Allocates and fills i16[values.length]; returns the pointer. */
  i16(values: Int16Array): number {
    const p = this.kernels.memory.alloc(values.length * 2);
    new Int16Array(this.kernels.memory.buffer, p, values.length).set(values);
    this.ptrs.push(p);
    return p;
  }

  /** Allocates and fills u8[values.length]; returns the pointer. */
  u8(values: ArrayLike<number>): number {
    const p = this.kernels.memory.alloc(values.length);
    this.kernels.memory.u8(p, values.length).set(values);
    this.ptrs.push(p);
    return p;
  }

  /** INVALID_ARGUMENT after release (a released scorer's memory may belong to someone else). */
  check(): void {
    if (this.released) throw new QuiverError('INVALID_ARGUMENT', `${this.spec}: this query scorer was released`, { spec: this.spec, reason: 'released' });
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    for (const p of this.ptrs) this.kernels.memory.release(p);
    this.ptrs = [];
  }
}

/** Validates scoreBlock arguments shared by all scorers. */
export function checkScoreArgs(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0) throw new QuiverError('INVALID_ARGUMENT', `${what}: n must be a non-negative integer, got ${n}`, { received: n });
}

/**
 * Base of the quantizers in this package: holds the context, tracks training, computes the
 * fingerprint (CRC-32C of the family payload) and checks every argument before the hooks run.
 */
export abstract class QuantizerBase implements Quantizer {
  abstract readonly spec: string;
  abstract readonly codeSize: number;
  abstract readonly minTrainingVectors: number;
  readonly dimension: number;
  readonly metric: QuantMetric;
  readonly kernels: Kernels;
  readonly bounded: boolean = false;
  private isTrained = false;
  private print = 0;
  private layout: ScanLayout | undefined;

  constructor(ctx: QuantizerContext) {
    if (!Number.isInteger(ctx.dimension) || ctx.dimension < 1 || ctx.dimension > 65536) {
      throw new QuiverError('INVALID_ARGUMENT', `quantizer dimension must be an integer in [1, 65536], got ${ctx.dimension}`, { expected: '[1, 65536]', received: ctx.dimension });
    }
    if (ctx.metric !== 'dot' && ctx.metric !== 'l2') {
      throw new QuiverError('INVALID_ARGUMENT', `quantizer metric must be 'dot' or 'l2' (cosine collections pass unit vectors with 'dot'), got ${String(ctx.metric)}`, {
        expected: ['dot', 'l2'], received: ctx.metric,
      });
    }
    this.dimension = ctx.dimension;
    this.metric = ctx.metric;
    this.kernels = ctx.kernels;
  }

  get trained(): boolean { return this.isTrained; }
  get fingerprint(): number { return this.print; }
  get scanLayout(): ScanLayout {
    this.layout ??= rowLayout(this.codeSize);
    return this.layout;
  }

  /** Learns the parameters from sample (validated); called by train(). */
  protected abstract fit(sample: Float32Array, n: number, options: TrainOptions): void;
  /**
   * fit() as a generator yielding where trainAsync may pause; by default the whole fit in one
   * step (short trainings). Families with long trainings (PQ's k-means per subspace) yield inside.
   */
  protected *fitSteps(sample: Float32Array, n: number, options: TrainOptions): Generator<void, void, void> {
    this.fit(sample, n, options);
  }
  /** vectors: f32[n * dimension] (validated) -> out: u8[n * codeSize]. */
  protected abstract encodeRows(vectors: Float32Array, n: number, out: Uint8Array): void;
  /** codes: u8[n * codeSize] -> out: f32[n * dimension]. */
  protected abstract decodeRows(codes: Uint8Array, n: number, out: Float32Array): void;
  /** query: f32[dimension] (validated). */
  protected abstract prepareQuery(query: Float32Array): QueryScorer;
  /** The family's parameters, starting with its own version byte. */
  protected abstract writePayload(): Uint8Array;

  /** Marks a quantizer restored from a payload as trained. */
  protected markTrained(): void {
    this.isTrained = true;
    this.print = crc32c(this.writePayload());
  }

  train(sample: Float32Array, n: number, options: TrainOptions = {}): void {
    checkTrainingSample(this, sample, n);
    this.checkTrainingQueries(options);
    this.fit(sample, n, options);
    this.markTrained();
  }

  async trainAsync(sample: Float32Array, n: number, options: TrainOptions & { pause: () => Promise<void> }): Promise<void> {
    const { pause, ...rest } = options;
    if (typeof pause !== 'function') throw new QuiverError('INVALID_ARGUMENT', `${this.spec}: trainAsync needs a pause function`, { name: 'pause', received: typeof pause });
    const steps = this.trainSteps(sample, n, rest);
    try {
      while (!steps.next().done) await pause();
    } finally {
      steps.return(undefined);
    }
  }

  /** train() as a generator yielding where trainAsync pauses (a wrapper's training yields inside its inner quantizer's). */
  *trainSteps(sample: Float32Array, n: number, options: TrainOptions = {}): Generator<void, void, void> {
    checkTrainingSample(this, sample, n);
    this.checkTrainingQueries(options);
    yield* this.fitSteps(sample, n, options);
    this.markTrained();
  }

  private checkTrainingQueries(options: TrainOptions): void {
    if (options.queries === undefined) return;
    const qs = options.queries;
    if (!(qs instanceof Float32Array) || qs.length % this.dimension !== 0) {
      throw new QuiverError('DIMENSION_MISMATCH', `${this.spec}: sample queries must be a Float32Array of whole ${this.dimension}-d vectors`, {
        expected: `a multiple of ${this.dimension} floats`, received: qs instanceof Float32Array ? qs.length : typeof qs,
      });
    }
    checkVectors(this, 'sample queries', qs, qs.length / this.dimension);
  }

  encode(vectors: Float32Array, n: number, out: Uint8Array): void {
    checkTrained(this, 'encode');
    checkVectors(this, 'encode', vectors, n);
    checkOutput(this, 'encode', out, n * this.codeSize, 'Uint8Array');
    this.encodeRows(vectors, n, out);
  }

  decode(codes: Uint8Array, n: number, out: Float32Array): void {
    checkTrained(this, 'decode');
    checkCodes(this, codes, n);
    checkOutput(this, 'decode', out, n * this.dimension, 'Float32Array');
    this.decodeRows(codes, n, out);
  }

  prepare(query: Float32Array): QueryScorer {
    checkTrained(this, 'prepare');
    checkQuery(this, query);
    return this.prepareQuery(query);
  }

  serialize(): Uint8Array {
    checkTrained(this, 'serialize');
    return writeQuantizerEnvelope({ spec: this.spec, dimension: this.dimension, metric: this.metric, payload: this.writePayload() });
  }
}

/** Throws CORRUPT_FILE unless a payload's version byte is one this family reads. */
export function checkPayloadVersion(version: number, supported: number, spec: string): void {
  if (version !== supported) {
    throw new QuiverError('UNSUPPORTED_FORMAT', `${spec}: payload version ${version} is not supported (this build reads ${supported})`, { spec, expected: supported, received: version });
  }
}
