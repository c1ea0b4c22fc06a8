import { QuiverError } from '../errors.js';

// A lone surrogate (a high one not followed by a low one, or a low one not preceded by a high one).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * INVALID_ARGUMENT unless `s` is well-formed UTF-16 (no lone surrogates). Every string that
 * reaches a file as UTF-8 (ids, keyword values) goes through this check: TextEncoder turns every
 * lone surrogate into U+FFFD, so two different ill-formed strings would be stored as the same bytes.
 */
export function checkWellFormed(s: string, what: string, where: Record<string, unknown> = {}): void {
  const m = LONE_SURROGATE.exec(s);
  if (m) {
    const unit = m[0].charCodeAt(0).toString(16).toUpperCase();
    throw new QuiverError('INVALID_ARGUMENT', `${what} holds a lone surrogate (U+${unit} at index ${m.index}); strings must be well-formed UTF-16 to be stored as UTF-8`, {
      ...where, expected: 'well-formed UTF-16', received: `lone surrogate U+${unit} at index ${m.index}`,
    });
  }
}

/** A short description of any value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `array(${v.length})`;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  if (typeof v === 'string') return v.length > 40 ? `string "${v.slice(0, 40)}…"` : `string "${v}"`;
  return typeof v;
}
