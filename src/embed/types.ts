/**
 * The contract between a collection and whatever turns text into vectors. Providers live beside
 * this file (browser-safe: OpenAI-compatible HTTP, transformers.js) and in src/node (USE-Lite on
 * worker threads). Every provider rejects with QuiverError, codes as follows:
 * INVALID_ARGUMENT for bad input, MISSING_DEPENDENCY when its optional package is absent,
 * IO_ERROR for network/HTTP/model-loading failures, INVALID_VECTOR when the model answers rows of
 * the wrong dimension or with non-finite values, CLOSED after close(). An aborted call rejects
 * with `signal.reason` (an AbortError DOMException unless the caller gave another reason), as
 * fetch does, so callers can tell a cancellation from a failure.
 */

export interface EmbedOptions {
  /** Aborting rejects the call with `signal.reason`; work already sent to a model is discarded. */
  signal?: AbortSignal;
  /** Called after each batch with the number of texts embedded so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface Embedder {
  /** Stable model id recorded in a collection's schema, e.g. 'use-lite-512' or 'openai:text-embedding-3-small'. A query is only ever embedded by an embedder with the same id as its documents. */
  readonly model: string;
  readonly dimension: number;
  /** Texts per request the provider prefers; embed() batches any number of texts itself. */
  readonly batchSize: number;
  /** texts -> f32[texts.length * dimension], row i = texts[i]. Rejects with QuiverError on failure. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array>;
  /** Frees workers/sockets; idempotent. */
  close(): Promise<void>;
}
