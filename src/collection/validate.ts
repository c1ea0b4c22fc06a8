import { QuiverError } from '../errors.js';
import { checkWellFormed, describe } from '../util/strings.js';

export { describe } from '../util/strings.js';

export type Metric = 'cosine' | 'dot' | 'l2';
export const METRICS: readonly Metric[] = ['cosine', 'dot', 'l2'];

/**
 * What callers may pass as a vector: an array of finite numbers, a Float32Array (used as is) or a
 * Float64Array (converted; values must fit in float32). Its length must equal the dimension.
 */
export type VectorLike = readonly number[] | Float32Array | Float64Array;

/**
 * Checks one vector's length and values; returns it as a Float32Array: written into `into`
 * (f32[dimension]) when given, else a copy when the input was not a Float32Array, else the input
 * itself. `where` names it in errors (e.g. record id).
 */
export function toVector(v: unknown, dimension: number, where: Record<string, unknown>, into?: Float32Array): Float32Array {
  if (!(v instanceof Float32Array) && !(v instanceof Float64Array) && !Array.isArray(v)) {
    throw new QuiverError('INVALID_VECTOR', `vector must be an array of numbers or a Float32Array, got ${describe(v)}`, {
      ...where, expected: 'number[] | Float32Array', received: describe(v),
    });
  }
  if (v.length !== dimension) {
    throw new QuiverError('DIMENSION_MISMATCH', `vector has dimension ${v.length}, the collection expects ${dimension}`, {
      ...where, expected: dimension, received: v.length,
    });
  }
  const out = into ?? (v instanceof Float32Array ? v : new Float32Array(dimension));
  for (let i = 0; i < dimension; i++) {
    const x = (v as ArrayLike<unknown>)[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new QuiverError('INVALID_VECTOR', `vector[${i}] is ${describe(x)}; every component must be a finite number`, {
        ...where, index: i, received: describe(x),
      });
    }
    if (out !== v) out[i] = x;
  }
  // a float64 value can overflow float32
  if (out !== v) for (let i = 0; i < dimension; i++) if (!Number.isFinite(out[i])) {
    throw new QuiverError('INVALID_VECTOR', `vector[${i}] = ${(v as ArrayLike<number>)[i]} overflows float32`, { ...where, index: i });
  }
  return out;
}

/** Euclidean norm (float64 accumulation). */
export function norm(v: ArrayLike<number>, offset = 0, length = v.length - offset): number {
  let s = 0;
  for (let i = 0; i < length; i++) s += v[offset + i] * v[offset + i];
  return Math.sqrt(s);
}

export function checkId(id: unknown, where: Record<string, unknown>): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new QuiverError('INVALID_ARGUMENT', `record id must be a non-empty string, got ${describe(id)}`, {
      ...where, field: 'id', expected: 'non-empty string', received: describe(id),
    });
  }
  if (id.length > 1024) {
    throw new QuiverError('INVALID_ARGUMENT', `record id is ${id.length} characters; the limit is 1024`, { ...where, field: 'id', expected: '<= 1024 characters', received: id.length });
  }
  // stored as UTF-8: a lone surrogate would become U+FFFD and two ids could become one
  checkWellFormed(id, 'record id', { ...where, field: 'id' });
  return id;
}

/** Metadata must be a plain JSON object (it is persisted as JSON). */
export function checkMetadata(m: unknown, where: Record<string, unknown>): Record<string, unknown> | undefined {
  if (m === undefined || m === null) return undefined;
  if (!isPlainObject(m)) {
    throw new QuiverError('INVALID_ARGUMENT', `metadata must be a plain object, got ${describe(m)}`, { ...where, field: 'metadata', received: describe(m) });
  }
  checkJson(m, 'metadata', where, 0);
  return m;
}

function checkJson(v: unknown, path: string, where: Record<string, unknown>, depth: number): void {
  if (depth > 32) throw new QuiverError('INVALID_ARGUMENT', `${path} nests deeper than 32 levels`, { ...where, field: path });
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new QuiverError('INVALID_ARGUMENT', `${path} is ${v}; JSON holds only finite numbers`, { ...where, field: path, received: String(v) });
    return;
  }
  if (Array.isArray(v)) { v.forEach((x, i) => checkJson(x, `${path}[${i}]`, where, depth + 1)); return; }
  if (isPlainObject(v)) { for (const [k, x] of Object.entries(v)) checkJson(x, `${path}.${k}`, where, depth + 1); return; }
  throw new QuiverError('INVALID_ARGUMENT', `${path} is ${describe(v)}, which JSON cannot hold`, { ...where, field: path, received: describe(v) });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}
