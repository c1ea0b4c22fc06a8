import { QuiverError, type QuiverErrorCode } from '../errors.js';

/** Shared helpers of the format readers (browser-safe: no `node:` imports). */

/** True on little-endian hosts (all mainstream ones); the readers fall back to DataView otherwise. */
export const LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Largest vector dimension a reader accepts before calling the header absurd. */
export const MAX_DIMENSION = 1 << 20;

/** Builds a QuiverError whose details always name the `source` (a path or '<bytes>'). */
export function ioError(
  code: QuiverErrorCode,
  source: string,
  message: string,
  details: Record<string, unknown> = {},
  cause?: unknown,
): QuiverError {
  return new QuiverError(code, `${source}: ${message}`, { source, ...details }, cause === undefined ? undefined : { cause });
}

/**
 * Checks that `bytes` is a Uint8Array (Node Buffers are); ArrayBuffers are wrapped.
 * Anything else raises INVALID_ARGUMENT, so callers never see a TypeError from a bad argument.
 */
export function asBytes(bytes: unknown, source: string): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw new QuiverError('INVALID_ARGUMENT', `${source}: expected a Uint8Array or ArrayBuffer`, {
    source, expected: 'Uint8Array', received: describe(bytes),
  });
}

/** A short type name for error details. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

/**
 * The bytes [start, end) of `bytes` in a fresh buffer that starts at offset 0, hence aligned for
 * any typed-array view. Always a copy: the result never aliases the caller's memory.
 */
export function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(bytes.subarray(start, end));
  return out;
}

/**
 * The 4-byte-aligned view of `bytes` as elements of `size` bytes: a view when `bytes.byteOffset`
 * is already aligned, else one copy. Used by the fixed-record readers to avoid per-value DataView calls.
 */
export function alignedBytes(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : copyBytes(bytes, 0, bytes.length);
}

/** Human-readable byte count for messages. */
export function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}
