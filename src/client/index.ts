// Public API of `quiverdb/client`: a typed client of the HTTP server (quiverdb/server), for
// browsers, Node >= 18, Deno and Bun. fetch only: no node: imports, and no runtime code from the
// server (its schemas are imported as types, which compile away).
import { QuiverError, type QuiverErrorCode } from '../errors.js';
import type {
  CollectionListBody, CollectionView, CreateCollectionBody, DeletedBody, DroppedBody, ErrorResponseBody, HealthBody,
  SearchBatchResult, SearchHitsResult, SearchRequestBody, StoredRecordBody, UpsertedBody, UpsertRecordBody, VectorBatchBody,
} from '../server/schemas.js';

export { QuiverError, isQuiverError, type QuiverErrorCode } from '../errors.js';
// The request and response shapes, as the server's TypeBox schemas define them (Static<> types).
export type {
  CollectionListBody, CollectionView, CreateCollectionBody, DeletedBody, DroppedBody, ErrorResponseBody, FusionBody, HealthBody, HitBody,
  SearchBatchResult, SearchHitsResult, SearchRequestBody, SearchStatsBody, StoredRecordBody, UpsertedBody, UpsertRecordBody, VectorBatchBody,
} from '../server/schemas.js';

export interface QuiverClientOptions {
  /** The server's base URL, e.g. 'http://127.0.0.1:8080' (a path prefix, behind a proxy, is kept). */
  url: string;
  /** An API key (`quiver keys create`), sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** The fetch to use (default globalThis.fetch), e.g. one with a custom agent or a test double. */
  fetch?: typeof fetch;
  /** Headers added to every request (apiKey, when given, sets authorization; JSON bodies set content-type). */
  headers?: Record<string, string>;
  /** Abort each request after this many milliseconds (default: no limit). */
  timeoutMs?: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Aborting rejects the call with the signal's reason, as fetch does. */
  signal?: AbortSignal;
}

/**
 * A client of one QuiverDB server: one method per route, whose arguments and results are the
 * server's TypeBox schemas as TypeScript types. A failure the server reports rejects with a
 * QuiverError carrying the server's code, message and details (e.g. UNAUTHENTICATED,
 * PERMISSION_DENIED, DIMENSION_MISMATCH, NOT_FOUND, RATE_LIMITED with details.retryAfterSeconds);
 * a server that cannot be reached, or answers something that is not our error shape (a proxy's
 * page), rejects with IO_ERROR, details.status saying the HTTP status when there was one.
 */
export class QuiverClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(private readonly options: QuiverClientOptions) {
    if (typeof options?.url !== 'string' || !/^https?:\/\//i.test(options.url)) {
      throw new QuiverError('INVALID_ARGUMENT', `QuiverClient needs { url } starting with http:// or https://, got ${JSON.stringify(options?.url)}`, { field: 'url' });
    }
    if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
      throw new QuiverError('INVALID_ARGUMENT', `timeoutMs must be a number > 0, got ${String(options.timeoutMs)}`, { field: 'timeoutMs' });
    }
    this.base = options.url.replace(/\/+$/, '');
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new QuiverError('MISSING_DEPENDENCY', 'no fetch in this runtime: pass one as the fetch option', { field: 'fetch' });
    // called bare, a browser's fetch throws "Illegal invocation": keep it bound to its global
    this.fetchImpl = options.fetch ?? f.bind(globalThis);
    // lower-cased, so that ours replace theirs rather than joining them ("Authorization" + "authorization")
    this.headers = Object.fromEntries(Object.entries(options.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
    if (options.apiKey !== undefined) this.headers.authorization = `Bearer ${options.apiKey}`;
  }

  /** Liveness: `{ status: 'ok' }` while the process answers. */
  health(options?: CallOptions): Promise<HealthBody> {
    return this.request('GET', '/healthz', undefined, options);
  }

  /**
   * Readiness: `{ status }`, 'ready' once the collections are open; 'starting' or 'stopping'
   * otherwise (the server's 503 is an answer here, not an error).
   */
  ready(options?: CallOptions): Promise<HealthBody> {
    return this.request('GET', '/readyz', undefined, options, [503]);
  }

  /** The collections this key may read. */
  listCollections(options?: CallOptions): Promise<CollectionListBody> {
    return this.request('GET', '/collections', undefined, options);
  }

  /**
   * Creates `name` with `schema`, or checks an existing collection against it (fields it lacks
   * are added; another dimension, metric, index, embedder or field type is SCHEMA_MISMATCH).
   */
  createCollection(name: string, schema: CreateCollectionBody, options?: CallOptions): Promise<CollectionView> {
    return this.request('PUT', collectionPath(name), schema, options);
  }

  /** Schema, counts, segments, WAL and memory of `name`. */
  getCollection(name: string, options?: CallOptions): Promise<CollectionView> {
    return this.request('GET', collectionPath(name), undefined, options);
  }

  /** Deletes `name` and its files. */
  deleteCollection(name: string, options?: CallOptions): Promise<DroppedBody> {
    return this.request('DELETE', collectionPath(name), undefined, options);
  }

  /** Inserts or replaces records, all or nothing; durable when it resolves. */
  upsert(name: string, records: UpsertRecordBody[], options?: CallOptions): Promise<UpsertedBody> {
    return this.request('POST', `${collectionPath(name)}/records`, { records }, options);
  }

  /** Deletes records by id (absent ids are ignored); resolves to how many existed. */
  deleteRecords(name: string, ids: string[], options?: CallOptions): Promise<DeletedBody> {
    return this.request('POST', `${collectionPath(name)}/records/delete`, { ids }, options);
  }

  /** One record with its vector and metadata; NOT_FOUND when absent. */
  getRecord(name: string, id: string, options?: CallOptions): Promise<StoredRecordBody> {
    return this.request('GET', `${collectionPath(name)}/records/${encodeURIComponent(id)}`, undefined, options);
  }

  /**
   * One search request (`{ text?, vector?, sparse?, k?, filter?, fusion?, ... }`: the retrievers
   * asked for run and are fused) resolves to `{ hits, stats? }`; a batch (an array of requests, or
   * `{ vectors, ...options }`) to `{ results }`, one entry per request or vector.
   */
  // the batch overload first: a VectorBatchBody variable is also assignable to SearchRequestBody
  // (whose parts are all optional), and must not resolve to the single answer
  search(name: string, batch: SearchRequestBody[] | VectorBatchBody, options?: CallOptions): Promise<SearchBatchResult>;
  search(name: string, request: SearchRequestBody, options?: CallOptions): Promise<SearchHitsResult>;
  search(name: string, body: SearchRequestBody | SearchRequestBody[] | VectorBatchBody, options?: CallOptions): Promise<SearchHitsResult | SearchBatchResult> {
    return this.request('POST', `${collectionPath(name)}/search`, body, options);
  }

  /** Seals the write-ahead log into a segment; resolves to the collection afterwards. */
  flush(name: string, options?: CallOptions): Promise<CollectionView> {
    return this.request('POST', `${collectionPath(name)}/flush`, undefined, options);
  }

  /** Merges all segments into one, dropping deleted records; resolves to the collection afterwards. */
  compact(name: string, options?: CallOptions): Promise<CollectionView> {
    return this.request('POST', `${collectionPath(name)}/compact`, undefined, options);
  }

  /** The Prometheus metrics text (needs a key with the server scope when keys are on). */
  metrics(options?: CallOptions): Promise<string> {
    return this.request('GET', '/metrics', undefined, options, [], 'text');
  }

  /** The server's OpenAPI 3.1 document. */
  openApi(options?: CallOptions): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json', undefined, options);
  }

  private async request<T>(method: string, path: string, body: unknown, options: CallOptions | undefined, answers: number[] = [], as: 'json' | 'text' = 'json'): Promise<T> {
    const url = `${this.base}${path}`;
    const headers: Record<string, string> = { ...this.headers, accept: as === 'json' ? 'application/json' : 'text/plain' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signals = [options?.signal, this.options.timeoutMs !== undefined ? AbortSignal.timeout(this.options.timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    const signal = signals.length > 1 ? anySignal(signals) : signals[0];
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(url, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(signal ? { signal } : {}) });
      text = await res.text();
    } catch (e) {
      // the caller's own abort keeps its reason, as fetch does; a timeout or a network failure is IO_ERROR
      if (options?.signal?.aborted) throw options.signal.reason;
      const timedOut = (e as Error)?.name === 'TimeoutError';
      throw new QuiverError('IO_ERROR', timedOut ? `${method} ${url}: no answer within ${this.options.timeoutMs} ms` : `${method} ${url} failed: ${(e as Error)?.message ?? String(e)}`, { method, url, ...(timedOut ? { timeoutMs: this.options.timeoutMs } : {}) }, { cause: e });
    }
    if (res.ok || answers.includes(res.status)) {
      if (as === 'text') return text as T;
      try {
        return JSON.parse(text) as T;
      } catch (e) {
        throw new QuiverError('IO_ERROR', `${method} ${url}: the server answered ${res.status} with a body that is not JSON`, { method, url, status: res.status, body: text.slice(0, 200) }, { cause: e });
      }
    }
    throw errorOf(res.status, text, method, url);
  }
}

/** The path of a collection; names are checked by the server (INVALID_ARGUMENT), encoded here so that none escapes its segment. */
function collectionPath(name: string): string {
  return `/collections/${encodeURIComponent(name)}`;
}

/** The server's error as a QuiverError, or IO_ERROR for an answer that is not in our error shape. */
function errorOf(status: number, text: string, method: string, url: string): QuiverError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const error = (parsed as Partial<ErrorResponseBody> | undefined)?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string') {
    const details = typeof error.details === 'object' && error.details !== null ? error.details : {};
    return new QuiverError(error.code as QuiverErrorCode, error.message, details);
  }
  return new QuiverError('IO_ERROR', `${method} ${url}: HTTP ${status} without an error body`, { method, url, status, body: text.slice(0, 200) });
}

/** A signal aborted when any of `signals` is (AbortSignal.any is Node 20.3+ and recent browsers only). */
function anySignal(signals: AbortSignal[]): AbortSignal {
  const any = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any(signals);
  const controller = new AbortController();
  for (const s of signals) {
    if (s.aborted) { controller.abort(s.reason); break; }
    s.addEventListener('abort', () => controller.abort(s.reason), { once: true });
  }
  return controller.signal;
}
