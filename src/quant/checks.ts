import { QuiverError } from '../errors.js';
import type { Quantizer } from './types.js';

/**
 * Input checks shared by the PQ/OPQ/RaBitQ quantizers, so that every bad input becomes the same
 * QuiverError code with {expected, received} details, whichever quantizer received it.
 */

/** TRAINING_FAILED unless sample is f32[n * dimension] of finite values with n >= minimum. */
export function checkTrainingSample(q: Pick<Quantizer, 'spec' | 'dimension' | 'minTrainingVectors'>, sample: Float32Array, n: number, minimum = q.minTrainingVectors): void {
  if (!(sample instanceof Float32Array)) {
    throw new QuiverError('INVALID_ARGUMENT', `${q.spec}: the training sample must be a Float32Array`, { expected: 'Float32Array', received: typeof sample });
  }
  if (!Number.isInteger(n) || n < 0) {
    throw new QuiverError('INVALID_ARGUMENT', `${q.spec}: the training count must be a non-negative integer, got ${n}`, { name: 'n', expected: 'integer >= 0', received: n });
  }
  if (sample.length < n * q.dimension) {
    throw new QuiverError('DIMENSION_MISMATCH', `${q.spec}: a training sample of ${n} vectors of dimension ${q.dimension} needs ${n * q.dimension} floats, got ${sample.length}`, {
      expected: n * q.dimension, received: sample.length, dimension: q.dimension,
    });
  }
  if (n < minimum) {
    throw new QuiverError('TRAINING_FAILED', `${q.spec}: training needs at least ${minimum} vectors, got ${n}`, { spec: q.spec, expected: minimum, received: n });
  }
  for (let i = 0, end = n * q.dimension; i < end; i++) {
    if (!Number.isFinite(sample[i])) {
      throw new QuiverError('TRAINING_FAILED', `${q.spec}: training vector ${Math.floor(i / q.dimension)} has a non-finite value at dimension ${i % q.dimension} (${sample[i]})`, {
        spec: q.spec, row: Math.floor(i / q.dimension), column: i % q.dimension, expected: 'finite numbers', received: sample[i],
      });
    }
  }
}

/** DIMENSION_MISMATCH unless `vectors` holds f32[n * dimension]; INVALID_VECTOR on NaN or infinity. */
export function checkVectors(q: Pick<Quantizer, 'spec' | 'dimension'>, what: string, vectors: Float32Array, n: number): void {
  if (!(vectors instanceof Float32Array)) {
    throw new QuiverError('INVALID_ARGUMENT', `${q.spec} ${what}: vectors must be a Float32Array`, { expected: 'Float32Array', received: typeof vectors });
  }
  if (!Number.isInteger(n) || n < 0 || vectors.length < n * q.dimension) {
    throw new QuiverError('DIMENSION_MISMATCH', `${q.spec} ${what}: ${n} vectors of dimension ${q.dimension} need ${n * q.dimension} floats, got ${vectors.length}`, {
      expected: n * q.dimension, received: vectors.length, dimension: q.dimension,
    });
  }
  for (let i = 0, end = n * q.dimension; i < end; i++) {
    if (!Number.isFinite(vectors[i])) {
      throw new QuiverError('INVALID_VECTOR', `${q.spec} ${what}: vector ${Math.floor(i / q.dimension)} has a non-finite value at dimension ${i % q.dimension}`, {
        row: Math.floor(i / q.dimension), column: i % q.dimension, received: vectors[i],
      });
    }
  }
}

/** DIMENSION_MISMATCH unless the query is f32[dimension]; INVALID_VECTOR on NaN or infinity. */
export function checkQuery(q: Pick<Quantizer, 'spec' | 'dimension'>, query: Float32Array): void {
  if (!(query instanceof Float32Array) || query.length !== q.dimension) {
    throw new QuiverError('DIMENSION_MISMATCH', `${q.spec} prepare: the query must be a Float32Array of dimension ${q.dimension}`, {
      expected: q.dimension, received: query instanceof Float32Array ? query.length : typeof query,
    });
  }
  for (let j = 0; j < query.length; j++) {
    if (!Number.isFinite(query[j])) {
      throw new QuiverError('INVALID_VECTOR', `${q.spec} prepare: the query has a non-finite value at dimension ${j}`, { column: j, received: query[j] });
    }
  }
}

/** INCOMPATIBLE_CODES unless `codes` holds at least n rows of codeSize bytes. */
export function checkCodes(q: Pick<Quantizer, 'spec' | 'codeSize'>, codes: Uint8Array, n: number): void {
  if (!(codes instanceof Uint8Array) || !Number.isInteger(n) || n < 0 || codes.length < n * q.codeSize) {
    throw new QuiverError('INCOMPATIBLE_CODES', `${q.spec}: ${n} codes of ${q.codeSize} bytes need ${n * q.codeSize} bytes, got ${codes instanceof Uint8Array ? codes.length : typeof codes}`, {
      spec: q.spec, expected: n * q.codeSize, received: codes instanceof Uint8Array ? codes.length : typeof codes,
    });
  }
}

/** An output buffer of at least `length` elements of the named type, or DIMENSION_MISMATCH. */
export function checkOutput(q: Pick<Quantizer, 'spec'>, what: string, out: Float32Array | Uint8Array, length: number, type: 'Float32Array' | 'Uint8Array'): void {
  const ok = type === 'Float32Array' ? out instanceof Float32Array : out instanceof Uint8Array;
  if (!ok || out.length < length) {
    throw new QuiverError('DIMENSION_MISMATCH', `${q.spec} ${what}: the output must be a ${type} of at least ${length} elements`, {
      expected: length, received: ok ? out.length : typeof out,
    });
  }
}

/** INVALID_ARGUMENT when the quantizer has not been trained (or deserialized) yet. */
export function checkTrained(q: Pick<Quantizer, 'spec' | 'trained'>, what: string): void {
  if (!q.trained) {
    throw new QuiverError('INVALID_ARGUMENT', `${q.spec}: ${what} needs a trained quantizer; call train() first`, { spec: q.spec, expected: 'trained', received: 'untrained' });
  }
}

/**
 * INCOMPATIBLE_CODES unless codes stored with (spec, fingerprint) were produced by quantizer `q`.
 * Segments store both beside their codes and call this before scoring them.
 */
export function checkCodesFingerprint(q: Pick<Quantizer, 'spec' | 'fingerprint'>, storedSpec: string, storedFingerprint: number): void {
  if (storedSpec !== q.spec || storedFingerprint >>> 0 !== q.fingerprint >>> 0) {
    throw new QuiverError('INCOMPATIBLE_CODES', `codes were written by ${storedSpec} (fingerprint ${hex(storedFingerprint)}), not by this ${q.spec} (fingerprint ${hex(q.fingerprint)})`, {
      expected: { spec: q.spec, fingerprint: q.fingerprint >>> 0 }, received: { spec: storedSpec, fingerprint: storedFingerprint >>> 0 },
    });
  }
}

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
}
