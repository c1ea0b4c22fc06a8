import { QuiverError, checkPositiveInt } from '../errors.js';
import { describe } from '../util/strings.js';
import { abortReason, checkBatchSize, checkEmbedOptions, checkTexts, closedError } from './checks.js';
import type { EmbedOptions, Embedder } from './types.js';

/**
 * An Embedder over any server that speaks OpenAI's embeddings protocol (OpenAI itself, Azure
 * OpenAI behind a gateway, Ollama, vLLM, LM Studio, text-embeddings-inference...). Browser-safe:
 * only fetch, AbortController and timers. Transient failures (429, 5xx, network errors, timeouts)
 * are retried with exponential backoff and jitter, honouring Retry-After; other 4xx answers are the
 * caller's mistake and fail at once.
 */

export interface OpenAIEmbedderOptions {
  /** The server's model name, e.g. 'text-embedding-3-small'; the embedder's id is `openai:<model>`. */
  model: string;
  /**
   * Length of the vectors the model returns. Required rather than discovered from a first call:
   * a collection records it in its schema before any text is embedded, and a declared dimension
   * catches a server that serves another model than the one configured.
   */
  dimension: number;
  /** Default 'https://api.openai.com/v1'; the request goes to `${baseURL}/embeddings`. */
  baseURL?: string;
  /**
   * Sent as `Authorization: Bearer <apiKey>`. Default: the OPENAI_API_KEY environment variable.
   * Required unless baseURL is a loopback address (local servers usually take no key).
   */
  apiKey?: string;
  /** Extra request headers (e.g. a gateway's own key header). */
  headers?: Record<string, string>;
  /** Texts per request; default 96 (OpenAI accepts up to 2048 inputs per request). */
  batchSize?: number;
  /** Limit on one attempt, from sending the request to reading the whole answer; default 30000 ms. */
  timeoutMs?: number;
  /** Retries of one request after a 429, a 5xx, a network error or a timeout; default 5. */
  maxRetries?: number;
  /** First backoff delay (doubled each retry, randomised to 50-100%); default 500 ms. */
  retryBaseDelayMs?: number;
  /** Cap on a backoff delay and on a server's Retry-After; default 30000 ms. */
  maxRetryDelayMs?: number;
  /** Requests in flight at once for one embed() call; default 2. */
  maxConcurrentRequests?: number;
  /**
   * Send `dimensions: dimension` in each request, for models that shorten their output on request
   * (OpenAI text-embedding-3-*); off by default because other servers reject the unknown field.
   */
  requestDimensions?: boolean;
  /** The fetch to use (default globalThis.fetch): a proxy-aware fetch, or a test double. */
  fetch?: typeof fetch;
}

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
const MAX_SERVER_MESSAGE = 500;

type AttemptResult =
  | { ok: true; vectors: Float32Array }
  | { ok: false; error: QuiverError; retryable: boolean; retryAfterMs?: number };

export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimension: number;
  readonly batchSize: number;
  /** The model name sent to the server. */
  readonly serverModel: string;
  private readonly endpoint: string;
  /** The endpoint as errors show it: without credentials or query string, which may carry a key. */
  private readonly endpointForErrors: string;
  private readonly requestHeaders: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private readonly retryBaseDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly maxConcurrentRequests: number;
  private readonly requestDimensions: boolean;
  private readonly fetchImpl: typeof fetch;
  /** Aborted by close(): stops every request and backoff in flight. */
  private readonly closing = new AbortController();

  constructor(options: OpenAIEmbedderOptions) {
    if (options === null || typeof options !== 'object') {
      throw new QuiverError('INVALID_ARGUMENT', `OpenAIEmbedder options must be an object, got ${describe(options)}`, { name: 'options', received: describe(options) });
    }
    if (typeof options.model !== 'string' || options.model.length === 0) {
      throw new QuiverError('INVALID_ARGUMENT', `model must be a non-empty string, got ${describe(options.model)}`, { name: 'model', received: describe(options.model) });
    }
    this.serverModel = options.model;
    this.model = `openai:${options.model}`;
    this.dimension = checkPositiveInt(options.dimension, 'dimension', 65536);
    this.batchSize = checkBatchSize(options.batchSize ?? 96, 2048);
    this.timeoutMs = checkPositiveInt(options.timeoutMs ?? 30_000, 'timeoutMs', 3_600_000);
    this.maxRetries = checkNonNegativeInt(options.maxRetries ?? 5, 'maxRetries', 100);
    this.retryBaseDelayMs = checkNonNegativeInt(options.retryBaseDelayMs ?? 500, 'retryBaseDelayMs', 600_000);
    this.maxRetryDelayMs = checkNonNegativeInt(options.maxRetryDelayMs ?? 30_000, 'maxRetryDelayMs', 3_600_000);
    this.maxConcurrentRequests = checkPositiveInt(options.maxConcurrentRequests ?? 2, 'maxConcurrentRequests', 64);
    this.requestDimensions = options.requestDimensions ?? false;

    const base = parseBaseURL(options.baseURL ?? DEFAULT_BASE_URL);
    // through URL so a query string (some gateways take their key there) stays after the path
    const endpoint = new URL(base.href);
    endpoint.pathname = `${endpoint.pathname.replace(/\/+$/, '')}/embeddings`;
    this.endpoint = endpoint.href;
    const shown = new URL(this.endpoint);
    shown.username = ''; shown.password = ''; shown.search = '';
    this.endpointForErrors = shown.href;

    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new QuiverError('INVALID_ARGUMENT', 'no fetch available: pass options.fetch (Node >= 18 and browsers have one built in)', { name: 'fetch', received: describe(fetchImpl) });
    }
    this.fetchImpl = fetchImpl;

    const apiKey = options.apiKey ?? environmentApiKey();
    if (apiKey !== undefined && (typeof apiKey !== 'string' || apiKey.length === 0)) {
      // the key itself never goes into an error
      throw new QuiverError('INVALID_ARGUMENT', `apiKey must be a non-empty string, got ${typeof apiKey === 'string' ? 'an empty string' : describe(apiKey)}`, { name: 'apiKey' });
    }
    if (apiKey === undefined && !isLoopback(base)) {
      throw new QuiverError('INVALID_ARGUMENT', `no API key for ${this.endpointForErrors}: pass apiKey or set OPENAI_API_KEY (only loopback servers may go without)`, { name: 'apiKey', url: this.endpointForErrors });
    }
    this.requestHeaders = { 'content-type': 'application/json', accept: 'application/json', ...(options.headers ?? {}) };
    if (apiKey !== undefined) this.requestHeaders.authorization = `Bearer ${apiKey}`;
  }

  async embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array> {
    checkTexts(texts);
    const { signal, onProgress } = checkEmbedOptions(options);
    if (this.closing.signal.aborted) throw closedError(this.model);
    if (signal?.aborted) throw abortReason(signal);
    const total = texts.length, d = this.dimension;
    const out = new Float32Array(total * d);
    if (total === 0) return out;

    // One signal for everything this call started: the caller's abort, close(), or the first failed batch.
    const stop = new AbortController();
    const stopAll = (): void => stop.abort();
    signal?.addEventListener('abort', stopAll);
    this.closing.signal.addEventListener('abort', stopAll);
    let nextStart = 0, done = 0;
    const lane = async (): Promise<void> => {
      while (!stop.signal.aborted && nextStart < total) {
        const start = nextStart;
        nextStart = Math.min(total, start + this.batchSize);
        const vectors = await this.requestWithRetries(texts.slice(start, nextStart), stop.signal);
        if (stop.signal.aborted) return;
        out.set(vectors, start * d);
        done += vectors.length / d;
        onProgress?.(done, total);
      }
    };
    const lanes = Math.min(this.maxConcurrentRequests, Math.ceil(total / this.batchSize));
    try {
      await Promise.all(Array.from({ length: lanes }, () => lane().catch((e: unknown) => { stop.abort(); throw e; })));
    } catch (e) {
      if (signal?.aborted) throw abortReason(signal);
      if (this.closing.signal.aborted) throw closedError(this.model);
      throw e;
    } finally {
      signal?.removeEventListener('abort', stopAll);
      this.closing.signal.removeEventListener('abort', stopAll);
    }
    // a lane that saw the abort between two batches returns quietly; the call must still reject
    if (signal?.aborted) throw abortReason(signal);
    if (this.closing.signal.aborted) throw closedError(this.model);
    return out;
  }

  /** Aborts requests in flight (their embed() calls reject with CLOSED); later calls reject too. */
  async close(): Promise<void> {
    this.closing.abort();
  }

  /** One batch, retried on transient failures; rejects with whatever `stop` aborted with when stopped. */
  private async requestWithRetries(input: string[], stop: AbortSignal): Promise<Float32Array> {
    const body = JSON.stringify({
      model: this.serverModel, input, encoding_format: 'float',
      ...(this.requestDimensions ? { dimensions: this.dimension } : {}),
    });
    for (let attempt = 1; ; attempt++) {
      const result = await this.attempt(body, input.length, stop);
      if (result.ok) return result.vectors;
      if (!result.retryable || attempt > this.maxRetries) {
        result.error.details.attempts = attempt;
        throw result.error;
      }
      const backoff = Math.min(this.maxRetryDelayMs, this.retryBaseDelayMs * 2 ** (attempt - 1));
      const delay = result.retryAfterMs !== undefined
        ? Math.min(this.maxRetryDelayMs, result.retryAfterMs)
        // jitter spreads the retries of many clients that failed together
        : backoff * (0.5 + Math.random() * 0.5);
      await sleep(delay, stop);
    }
  }

  private async attempt(body: string, rows: number, stop: AbortSignal): Promise<AttemptResult> {
    const attemptController = new AbortController();
    const onStop = (): void => attemptController.abort();
    stop.addEventListener('abort', onStop);
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; attemptController.abort(); }, this.timeoutMs);
    try {
      const response = await this.fetchImpl(this.endpoint, { method: 'POST', headers: this.requestHeaders, body, signal: attemptController.signal });
      // the timeout covers the body too: a server may send headers and then stall
      const text = await response.text();
      if (response.ok) return { ok: true, vectors: this.parseAnswer(text, rows, response.status) };
      const status = response.status;
      const serverMessage = serverErrorMessage(text);
      return {
        ok: false,
        retryable: status === 429 || status >= 500,
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
        error: new QuiverError('IO_ERROR', `embedding request to ${this.endpointForErrors} failed with HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}`, {
          status, url: this.endpointForErrors, model: this.serverModel, serverMessage,
        }),
      };
    } catch (e) {
      if (stop.aborted) throw e;
      if (e instanceof QuiverError) throw e; // a malformed answer: retrying would get the same
      const reason = timedOut ? `timed out after ${this.timeoutMs} ms` : `network error: ${e instanceof Error ? e.message : String(e)}`;
      return {
        ok: false,
        retryable: true,
        error: new QuiverError('IO_ERROR', `embedding request to ${this.endpointForErrors} ${reason}`, {
          url: this.endpointForErrors, model: this.serverModel, reason: timedOut ? 'timeout' : 'network',
        }, { cause: e }),
      };
    } finally {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
    }
  }

  /** `{ data: [{ index, embedding }] }` to rows ordered by index (servers may answer in any order). */
  private parseAnswer(text: string, rows: number, status: number): Float32Array {
    const where = { status, url: this.endpointForErrors, model: this.serverModel };
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new QuiverError('IO_ERROR', `${this.endpointForErrors} answered HTTP ${status} with a body that is not JSON`, { ...where, body: text.slice(0, MAX_SERVER_MESSAGE) });
    }
    const data = (answer as { data?: unknown } | null)?.data;
    if (!Array.isArray(data) || data.length !== rows) {
      throw new QuiverError('IO_ERROR', `${this.endpointForErrors} answered ${Array.isArray(data) ? `${data.length} embeddings` : 'without a data array'} for ${rows} texts`, {
        ...where, expected: rows, received: Array.isArray(data) ? data.length : describe(data),
      });
    }
    const d = this.dimension;
    const out = new Float32Array(rows * d);
    const seen = new Uint8Array(rows);
    for (const item of data as unknown[]) {
      const index = (item as { index?: unknown } | null)?.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= rows || seen[index]) {
        throw new QuiverError('IO_ERROR', `${this.endpointForErrors} answered an embedding with index ${describe(index)}; expected each of 0..${rows - 1} once`, { ...where, received: describe(index) });
      }
      seen[index] = 1;
      const embedding = (item as { embedding?: unknown }).embedding;
      if (!Array.isArray(embedding)) {
        throw new QuiverError('IO_ERROR', `${this.endpointForErrors} answered embedding ${index} as ${describe(embedding)}, expected an array of numbers`, { ...where, row: index, received: describe(embedding) });
      }
      if (embedding.length !== d) {
        throw new QuiverError('INVALID_VECTOR', `${this.model} returned a vector of dimension ${embedding.length}, expected ${d}`, { ...where, row: index, expected: d, received: embedding.length });
      }
      for (let j = 0; j < d; j++) {
        const v: unknown = embedding[j];
        if (typeof v !== 'number' || !Number.isFinite(v)) {
          throw new QuiverError('INVALID_VECTOR', `${this.model} returned a non-finite value (${describe(v)}) in row ${index}`, { ...where, row: index, offset: j, received: describe(v) });
        }
        out[index * d + j] = v;
      }
    }
    return out;
  }
}

function checkNonNegativeInt(value: unknown, name: string, max: number): number {
  return value === 0 ? 0 : checkPositiveInt(value, name, max);
}

function parseBaseURL(baseURL: unknown): URL {
  let url: URL | undefined;
  try {
    url = typeof baseURL === 'string' ? new URL(baseURL) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new QuiverError('INVALID_ARGUMENT', `baseURL must be an http(s) URL, got ${describe(baseURL)}`, { name: 'baseURL', received: describe(baseURL) });
  }
  return url;
}

// Through globalThis so this file imports nothing from node: and still runs in browsers.
function environmentApiKey(): string | undefined {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  const key = env?.OPENAI_API_KEY;
  return key ? key : undefined;
}

function isLoopback(url: URL): boolean {
  const host = url.hostname;
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Retry-After as delay-seconds or an HTTP date, in ms; undefined when absent or unreadable. */
function parseRetryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The message of an OpenAI-style error body ({ error: { message } }), else the start of the body. */
function serverErrorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown } | null;
    const error = body?.error;
    if (typeof error === 'string') return error.slice(0, MAX_SERVER_MESSAGE);
    const message = (error as { message?: unknown } | undefined)?.message ?? body?.message;
    if (typeof message === 'string') return message.slice(0, MAX_SERVER_MESSAGE);
  } catch {
    // not JSON: show the text itself
  }
  return text.trim().slice(0, MAX_SERVER_MESSAGE);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(abortReason(signal)); return; }
    const onAbort = (): void => { clearTimeout(timer); reject(abortReason(signal)); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
