/**
 * The one error type of QuiverDB. `code` is stable (switch on it); `details` carries structured
 * fields such as {expected, received} or {file, offset}; `message` is for humans.
 */
export type QuiverErrorCode =
  | 'INVALID_ARGUMENT'
  | 'DIMENSION_MISMATCH'
  | 'INVALID_VECTOR'
  | 'NOT_FOUND'
  | 'DUPLICATE_ID'
  | 'MALFORMED_INPUT'
  | 'UNSUPPORTED_FORMAT'
  | 'IO_ERROR'
  | 'CORRUPT_WAL'
  | 'CORRUPT_FILE'
  | 'LOCKED'
  | 'CLOSED'
  | 'READ_ONLY'
  | 'SCHEMA_MISMATCH'
  | 'UNKNOWN_SPEC'
  | 'TRAINING_FAILED'
  | 'INCOMPATIBLE_CODES'
  | 'OUT_OF_MEMORY'
  | 'MISSING_DEPENDENCY'
  /** A failure inside the engine's own machinery (e.g. a build thread died); the operation did not take effect. */
  | 'INTERNAL'
  // The HTTP server's own codes (quiverdb/server; src/server/errors.ts maps every code to a status):
  /** No valid API key was presented (HTTP 401). */
  | 'UNAUTHENTICATED'
  /** The API key is valid but its scope or collection does not allow the request (HTTP 403). */
  | 'PERMISSION_DENIED'
  /** A request carries more bytes or items than the server's limits allow (HTTP 413). */
  | 'TOO_LARGE'
  /** Too many requests for one API key or client address; retry after the given delay (HTTP 429). */
  | 'RATE_LIMITED'
  /** The server has as many searches running and queued as it accepts; retry shortly (HTTP 503). */
  | 'OVERLOADED';

export class QuiverError extends Error {
  readonly code: QuiverErrorCode;
  readonly details: Record<string, unknown>;
  constructor(code: QuiverErrorCode, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuiverError';
    this.code = code;
    this.details = details;
  }
  toJSON(): { code: QuiverErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isQuiverError(e: unknown, code?: QuiverErrorCode): e is QuiverError {
  return e instanceof QuiverError && (code === undefined || e.code === code);
}

/** Throws INVALID_ARGUMENT unless `cond` holds. */
export function check(cond: unknown, message: string, details: Record<string, unknown> = {}): asserts cond {
  if (!cond) throw new QuiverError('INVALID_ARGUMENT', message, details);
}

/** A positive safe integer, or INVALID_ARGUMENT naming the parameter. */
export function checkPositiveInt(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new QuiverError('INVALID_ARGUMENT', `${name} must be an integer in [1, ${max}], got ${String(value)}`, {
      name, expected: `integer in [1, ${max}]`, received: value,
    });
  }
  return value;
}
