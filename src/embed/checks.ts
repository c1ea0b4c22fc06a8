import { QuiverError, checkPositiveInt } from '../errors.js';
import { checkWellFormed, describe } from '../util/strings.js';
import type { EmbedOptions } from './types.js';

/**
 * Argument and answer checks every Embedder shares, so all providers refuse the same inputs with
 * the same codes and detect the same broken answers.
 */

/**
 * INVALID_ARGUMENT unless `texts` is an array of non-empty, well-formed strings. Empty strings are
 * refused because providers disagree on them: USE-Lite silently drops a trailing empty text from its
 * batch (the rows shift) and OpenAI answers 400; a lone surrogate would reach the model as U+FFFD.
 */
export function checkTexts(texts: unknown): asserts texts is readonly string[] {
  if (!Array.isArray(texts)) {
    throw new QuiverError('INVALID_ARGUMENT', `texts must be an array of strings, got ${describe(texts)}`, { name: 'texts', expected: 'array of strings', received: describe(texts) });
  }
  for (let i = 0; i < texts.length; i++) {
    const t: unknown = texts[i];
    if (typeof t !== 'string') {
      throw new QuiverError('INVALID_ARGUMENT', `texts[${i}] must be a string, got ${describe(t)}`, { name: 'texts', index: i, expected: 'string', received: describe(t) });
    }
    if (t.length === 0) {
      throw new QuiverError('INVALID_ARGUMENT', `texts[${i}] is empty; an empty text has no embedding`, { name: 'texts', index: i, expected: 'non-empty string', received: 'empty string' });
    }
    checkWellFormed(t, `texts[${i}]`, { name: 'texts', index: i });
  }
}

/** INVALID_ARGUMENT unless `options` is absent or holds an AbortSignal and a function where given. */
export function checkEmbedOptions(options: unknown): EmbedOptions {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw new QuiverError('INVALID_ARGUMENT', `embed options must be an object, got ${describe(options)}`, { name: 'options', received: describe(options) });
  }
  const { signal, onProgress } = options as Record<string, unknown>;
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new QuiverError('INVALID_ARGUMENT', `options.signal must be an AbortSignal, got ${describe(signal)}`, { name: 'signal', expected: 'AbortSignal', received: describe(signal) });
  }
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new QuiverError('INVALID_ARGUMENT', `options.onProgress must be a function, got ${describe(onProgress)}`, { name: 'onProgress', expected: 'function', received: describe(onProgress) });
  }
  return { signal: signal as AbortSignal | undefined, onProgress: onProgress as EmbedOptions['onProgress'] };
}

// Duck-typed: a signal from another realm (a worker, a polyfill) fails instanceof but works the same.
function isAbortSignal(v: unknown): v is AbortSignal {
  return typeof v === 'object' && v !== null && typeof (v as AbortSignal).aborted === 'boolean' && typeof (v as AbortSignal).addEventListener === 'function';
}

/** What an aborted call rejects with: the signal's reason, as fetch does. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}

/** CLOSED for a call on (or still pending at) a closed embedder. */
export function closedError(model: string): QuiverError {
  return new QuiverError('CLOSED', `the embedder ${model} is closed`, { model });
}

/** `batchSize` for an Embedder: a positive integer, at most `max`. */
export function checkBatchSize(value: unknown, max: number): number {
  return checkPositiveInt(value, 'batchSize', max);
}

/**
 * INVALID_VECTOR unless `values` holds exactly rows x dimension finite numbers: a model that answers
 * another dimension or NaN would otherwise poison an index silently.
 */
export function checkEmbeddingRows(values: ArrayLike<number>, rows: number, dimension: number, model: string, where: Record<string, unknown> = {}): void {
  if (values.length !== rows * dimension) {
    const received = rows > 0 && values.length % rows === 0 ? values.length / rows : undefined;
    throw new QuiverError('INVALID_VECTOR', received === undefined
      ? `${model} returned ${values.length} values for ${rows} texts of dimension ${dimension}`
      : `${model} returned vectors of dimension ${received}, expected ${dimension}`, {
      ...where, model, expected: dimension, received: received ?? values.length, rows,
    });
  }
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      const row = Math.floor(i / dimension);
      throw new QuiverError('INVALID_VECTOR', `${model} returned a non-finite value (${String(values[i])}) in row ${row}`, { ...where, model, row, offset: i % dimension, received: String(values[i]) });
    }
  }
}
