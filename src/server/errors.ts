import type { FastifyError } from 'fastify';
import { QuiverError, type QuiverErrorCode } from '../errors.js';

/**
 * The HTTP status of each error code. Client mistakes are 4xx, never 5xx; a 5xx means the server
 * or its storage failed. A Record over every code, so that a new code does not compile until it
 * has a status here.
 */
export const HTTP_STATUS: Readonly<Record<QuiverErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  DIMENSION_MISMATCH: 400,
  INVALID_VECTOR: 400,
  MALFORMED_INPUT: 400,
  UNKNOWN_SPEC: 400,
  UNAUTHENTICATED: 401,
  // the key is valid but not for this: wrong scope, another collection; a read-only server's writes
  PERMISSION_DENIED: 403,
  READ_ONLY: 403,
  NOT_FOUND: 404,
  // the request contradicts what is stored: retrying it unchanged fails again
  DUPLICATE_ID: 409,
  SCHEMA_MISMATCH: 409,
  TOO_LARGE: 413,
  // a body in a media type other than JSON
  UNSUPPORTED_FORMAT: 415,
  // another process holds the collection's writer lock (WebDAV's Locked: retry once it lets go)
  LOCKED: 423,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  IO_ERROR: 500,
  CORRUPT_FILE: 500,
  CORRUPT_WAL: 500,
  TRAINING_FAILED: 500,
  INCOMPATIBLE_CODES: 500,
  MISSING_DEPENDENCY: 500,
  // the collection closed under the request (shutdown, or dropped meanwhile): retry elsewhere or later
  CLOSED: 503,
  OUT_OF_MEMORY: 503,
  OVERLOADED: 503,
};

/** The body of every error response. */
export interface ErrorBody {
  error: { code: QuiverErrorCode; message: string; details: Record<string, unknown> };
}

/** The status of a QuiverError (ENOSPC is 507 Insufficient Storage: the disk is full, not broken). */
export function statusOf(e: QuiverError): number {
  if (e.code === 'IO_ERROR' && e.details.errno === 'ENOSPC') return 507;
  return HTTP_STATUS[e.code] ?? 500;
}

/** One entry of Fastify's validation errors (ajv's shape). */
interface ValidationEntry {
  instancePath?: string;
  keyword?: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** Arrays whose length is a server limit (maxItems there is TOO_LARGE, not a malformed body); '' is a batch of search requests. */
const COUNTED_ARRAYS = /^(\/(records|ids|vectors))?$/;

/**
 * Turns what Fastify throws (validation, body parsing, limits) into a QuiverError with the
 * right code; passes QuiverErrors through. Anything else is INTERNAL: a bug or a failure of the
 * server, whose message is not shown to the client (it is logged).
 */
export function toQuiverError(err: unknown): QuiverError {
  if (err instanceof QuiverError) return err;
  const fe = err as FastifyError & { validation?: ValidationEntry[]; validationContext?: string };
  if (Array.isArray(fe.validation) && fe.validation.length > 0) return fromValidation(mostSpecific(fe.validation), fe.validationContext ?? 'body');
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new QuiverError('TOO_LARGE', 'the request body is larger than the server accepts', { limit: 'bodyLimit' });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new QuiverError('MALFORMED_INPUT', fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'the request body is empty; a JSON object is expected' : 'the request body is not valid JSON', { where: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return new QuiverError('UNSUPPORTED_FORMAT', 'request bodies must be JSON (content-type: application/json)', { expected: 'application/json' });
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new QuiverError('TOO_LARGE', 'a path segment (collection name or record id) is longer than the server accepts', { limit: 'maxParamLength' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new QuiverError('MALFORMED_INPUT', 'the request body does not match its content-length', { where: 'body' });
  }
  // any other 4xx Fastify raises (a bad header, an aborted upload) is still the client's: keep it 4xx
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // messages may quote the URL: keep them short
    return new QuiverError('MALFORMED_INPUT', typeof fe.message === 'string' ? fe.message.slice(0, 200) : 'malformed request', { reason: fe.code ?? String(fe.statusCode) });
  }
  return new QuiverError('INTERNAL', 'internal server error', {}, { cause: err });
}

/**
 * The error to report. Validation stops at the first error, except across the branches of a
 * union (a search body is a request, an array of requests or a vector batch): then each branch
 * reports its own first error, and the one deepest in the body is from the branch the client
 * meant (`{"k": "5"}` fails at /k as a request, at the top as an array: /k is what is wrong).
 * At equal depth, a branch that got the right kind of value (its error is not "must be
 * <type>") says more: 9 requests for 8 fail on maxItems as an array, on their type as a request.
 * Remaining ties go to the first branch.
 */
function mostSpecific(entries: ValidationEntry[]): ValidationEntry {
  const rank = (v: ValidationEntry) => (v.keyword === 'anyOf' || v.keyword === 'oneOf' ? -1 : (v.instancePath ?? '').split('/').length * 2 + (v.keyword === 'type' ? 0 : 1));
  let best = entries[0];
  for (const v of entries) if (rank(v) > rank(best)) best = v;
  return best;
}

function fromValidation(v: ValidationEntry, part: string): QuiverError {
  const path = v.instancePath ?? '';
  const details = { where: part, path, keyword: v.keyword, ...(v.params ?? {}) };
  // ajv does not name the unknown field in its message; the client needs it most
  const extra = v.keyword === 'additionalProperties' ? v.params?.additionalProperty : undefined;
  const message = typeof extra === 'string' ? `${part}${path} has an unknown field "${extra.slice(0, 100)}"` : `${part}${path} ${v.message ?? 'is invalid'}`;
  if (part === 'body' && v.keyword === 'maxItems' && COUNTED_ARRAYS.test(path)) return new QuiverError('TOO_LARGE', message, details);
  // a component of a vector that is not a (finite) number: what the library calls INVALID_VECTOR
  if (part === 'body' && v.keyword === 'type' && /\/vectors?(\/\d+)+$/.test(path)) return new QuiverError('INVALID_VECTOR', message, details);
  return new QuiverError('INVALID_ARGUMENT', message, details);
}

/**
 * Removes server paths from what a client sees: the data directory is replaced by nothing, so
 * `/srv/quiver/docs` reads `docs` (errors from the engine name the directory they concern).
 */
export function scrubPaths(e: QuiverError, dataDir: string): ErrorBody {
  const prefix = dataDir.endsWith('/') ? dataDir : `${dataDir}/`;
  const scrub = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string') return v.split(prefix).join('').split(dataDir).join('.');
    if (depth > 8 || v === null || typeof v !== 'object') return v;
    if (Array.isArray(v)) return v.map((x) => scrub(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = scrub(x, depth + 1);
    return out;
  };
  return { error: { code: e.code, message: scrub(e.message, 0) as string, details: scrub(e.details, 0) as Record<string, unknown> } };
}
