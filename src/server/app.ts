import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { cpus } from 'node:os';
import { resolve } from 'node:path';
import { QuiverError } from '../errors.js';
import type { Collection, Hit, SearchOptions, SearchRequest } from '../node.js';
import { Authenticator, authorize, type Access, type AuthMode, type Principal } from './auth.js';
import { scrubPaths, statusOf, toQuiverError } from './errors.js';
import { resolveLimits, SearchGate, TokenBuckets, type ServerLimits } from './limits.js';
import { ServerMetrics } from './metrics.js';
import { QueryEmbedders } from './query-embedder.js';
import { CollectionRegistry, type ServerOpenOptions } from './registry.js';
import { runSearchJob, type SearchJob } from './search-job.js';
import { SearchPool } from './search-pool.js';
import {
  CollectionDescription, CollectionList, CollectionParams, Deleted, Dropped, ErrorResponse, Health, RecordParams,
  requestSchemas, SearchResponse, StoredRecord, Upserted, type CollectionView, type HitBody, type SearchHitsResult, type SearchResult,
} from './schemas.js';

export interface ServerOptions {
  /** The directory holding one subdirectory per collection (created if missing) and the key file. */
  dataDir: string;
  /** Limits on what one request may ask (see ServerLimits for the defaults). */
  limits?: Partial<ServerLimits>;
  /** Whether requests need an API key (default 'auto': when the data directory has a key file). */
  auth?: AuthMode;
  /** Fastify's logger (pino): true, false, or pino options (default { level: 'info' }: JSON lines on stdout). */
  logger?: FastifyServerOptions['logger'];
  /** Serve HTTPS with this certificate and private key (PEM). */
  https?: { cert: string | Buffer; key: string | Buffer } | null;
  /** Options for every Collection.open (kernels, sealRows, groupCommitMs, ...). */
  collections?: ServerOpenOptions;
  /** Open the collections already on disk when the server starts (default true; /readyz is 503 until done). */
  preload?: boolean;
  /**
   * Behind a reverse proxy: trust its X-Forwarded-For for the client address that rate limits
   * and failed key checks are counted by (Fastify's trustProxy; default false).
   */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /**
   * Threads that run searches (default: the machine's cores less one, at least 1, at most 64).
   * Each opens the collections read-only and follows the writer (Collection.refresh), so searches
   * never block the event loop that answers health checks and takes writes. The core left over is
   * the event loop's (parsing, serializing, writes): with as many search threads as cores, batched
   * searches that kept them all busy pushed /healthz p99 to 13-15 ms on 2 cores, against 8-10 ms
   * with one thread fewer (bench/README-server.md). 0 searches on the main thread.
   */
  searchThreads?: number;
  /**
   * Threads of the USE-Lite instance that embeds query texts (default 1; each holds the model,
   * ~100 MB). It is loaded at the first query to embed, or when a collection naming it is
   * created, and is separate from the writer's, so queries never queue behind an upsert's texts.
   */
  queryEmbedderThreads?: number;
}

/** What createServer adds to the Fastify instance. */
export interface QuiverServerState {
  readonly registry: CollectionRegistry;
  readonly metrics: ServerMetrics;
  readonly limits: ServerLimits;
  readonly authenticator: Authenticator;
  /** The search threads (null when searches run on the main thread: searchThreads 0). */
  readonly searchPool: SearchPool | null;
  /** 'starting' (opening collections), 'ready', or 'stopping'. */
  readonly status: 'starting' | 'ready' | 'stopping';
}

export type QuiverServer = FastifyInstance & { quiver: QuiverServerState };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (see Access). */
    access?: Access;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * The HTTP server over a data directory of collections: a Fastify app, not yet listening (call
 * `listen`, or `inject` in tests). Closing it (`close()`) waits for requests in flight, then
 * closes every collection.
 */
export function createServer(options: ServerOptions): QuiverServer {
  if (typeof options?.dataDir !== 'string' || options.dataDir === '') throw new QuiverError('INVALID_ARGUMENT', 'createServer needs { dataDir }', { field: 'dataDir' });
  const dataDir = resolve(options.dataDir);
  const limits = resolveLimits(options.limits);
  const schemas = requestSchemas(limits);
  const gate = new SearchGate(limits.concurrentSearches, limits.queuedSearches);
  const authenticator = new Authenticator(dataDir, options.auth ?? 'auto', limits);
  const rate = limits.ratePerSecond > 0 ? new TokenBuckets(limits.ratePerSecond, limits.rateBurst) : null;
  const threads = options.searchThreads ?? Math.min(64, Math.max(1, cpus().length - 1));
  if (!Number.isInteger(threads) || threads < 0 || threads > 256) {
    throw new QuiverError('INVALID_ARGUMENT', `searchThreads must be an integer in [0, 256], got ${String(options.searchThreads)}`, { field: 'searchThreads', expected: [0, 256], received: options.searchThreads });
  }
  const pool = threads > 0 ? new SearchPool(threads, { dataDir, niceness: 10, ...(options.collections?.kernels ? { kernels: options.collections.kernels } : {}) }) : null;
  const embedThreads = options.queryEmbedderThreads ?? 1;
  if (!Number.isInteger(embedThreads) || embedThreads < 1 || embedThreads > 64) {
    throw new QuiverError('INVALID_ARGUMENT', `queryEmbedderThreads must be an integer in [1, 64], got ${String(options.queryEmbedderThreads)}`, { field: 'queryEmbedderThreads', expected: [1, 64], received: options.queryEmbedderThreads });
  }
  const queryEmbedders = new QueryEmbedders(embedThreads);

  const app = Fastify({
    logger: options.logger ?? { level: 'info' },
    ...(options.https ? { https: { cert: options.https.cert, key: options.https.key } } : {}),
    bodyLimit: limits.bodyBytes,
    trustProxy: options.trustProxy ?? false,
    // a client has a minute to send its whole request (a slow trickle would hold a connection;
    // how long the answer takes, e.g. a compaction, is not limited)
    requestTimeout: 60_000,
    // record ids are up to 1,024 characters, each up to 9 bytes once percent-encoded
    routerOptions: { maxParamLength: 10_000 },
    ajv: {
      // unknown fields are refused, not dropped; "5" is not a number; one error is enough to refuse
      // (all errors of a huge body would cost more than the body)
      // discriminator: a fusion object is checked against the branch its `method` names
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false, discriminator: true },
    },
    // the errors below are the client's; say so in our error shape
    frameworkErrors: (error, req, reply) => sendError(req, reply, error),
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as FastifyInstance;

  const registry = new CollectionRegistry(dataDir, options.collections ?? {}, (name, e) => {
    if (e.type === 'background-error' || e.type === 'cleanup-failed') app.log.error({ collection: name, event: e.type, err: e.error }, `collection ${name}: ${e.type}`);
    else if (e.type === 'index-progress') app.log.debug({ collection: name, event: e }, 'index progress');
    else app.log.info({ collection: name, event: e }, `collection ${name}: ${e.type}`);
  });
  const metrics = new ServerMetrics(() => registry.openCollections(), gate);
  const state = { registry, metrics, limits, authenticator, searchPool: pool, status: 'starting' as QuiverServerState['status'] };
  app.decorate('quiver', state);
  app.decorateRequest('principal', null);

  function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
    const e = toQuiverError(err);
    const status = statusOf(e);
    if (status >= 500) req.log.error({ err }, `request failed: ${e.code}`);
    else req.log.debug({ code: e.code }, e.message);
    if (e.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer');
    const retry = e.details.retryAfterSeconds;
    if (typeof retry === 'number') void reply.header('retry-after', String(Math.max(1, Math.ceil(retry))));
    return reply.code(status).type('application/json; charset=utf-8').send(scrubPaths(e, dataDir));
  }

  app.setErrorHandler((err, req, reply) => sendError(req, reply, err));
  app.setNotFoundHandler((req, reply) => sendError(req, reply, new QuiverError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0].slice(0, 200)}`, { method: req.method, url: req.url.slice(0, 200) })));
  // JSON only: a text/plain body is refused (415) rather than parsed as a string. An empty JSON
  // body is no body (clients often send the header on every request, e.g. POST .../flush); routes
  // that need one say so through their schema. Prototype poisoning ("__proto__", "constructor")
  // is refused as malformed, as Fastify's parser does by default.
  app.removeContentTypeParser(['text/plain', 'application/json']);
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') done(null, undefined);
    else parseJson(req, body as string, done);
  });

  // authentication, scope and rate, before the body is read: a refused request costs no parsing
  app.addHook('onRequest', async (req) => {
    const access: Access = req.routeOptions.config?.access ?? (req.is404 ? 'public' : 'server');
    if (access === 'public') return;
    const who = await authenticator.authenticate(req.headers.authorization, req.ip);
    const name = (req.params as { name?: unknown } | undefined)?.name;
    authorize(who, access, typeof name === 'string' ? name : undefined);
    req.principal = who;
    if (rate) {
      const wait = rate.take(who.id === 'anonymous' ? `ip:${req.ip}` : `key:${who.id}`);
      if (wait > 0) throw new QuiverError('RATE_LIMITED', `more than ${limits.ratePerSecond} requests per second for this key; retry in ${wait.toFixed(2)} s`, { retryAfterSeconds: wait, limit: limits.ratePerSecond });
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.observe(req.method, req.is404 ? 'unmatched' : (req.routeOptions.url ?? 'unmatched'), reply.statusCode, reply.elapsedTime / 1000);
  });

  let preloading: Promise<unknown> = Promise.resolve();
  app.addHook('onReady', async () => {
    await registry.init();
    if (options.preload === false) { state.status = 'ready'; return; }
    // opening replays write-ahead logs, which may take a while: /healthz answers meanwhile, /readyz says so
    preloading = registry.list().then((names) => Promise.all(names.map((n) => registry.get(n).catch((err) => {
      app.log.error({ collection: n, err }, `collection ${n} could not be opened: ${(err as Error).message}`);
    })))).catch((err) => app.log.error({ err }, 'listing collections failed')).finally(() => {
      if (state.status === 'starting') state.status = 'ready';
    });
  });
  app.addHook('preClose', async () => { state.status = 'stopping'; });
  // a response sent while stopping closes its connection: a keep-alive connection whose request was
  // in flight when close() began would otherwise hold the server open until its idle timeout
  app.addHook('onSend', async (_req, reply) => {
    if (state.status === 'stopping') void reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    await preloading;
    await pool?.close();
    await queryEmbedders.close();
    await registry.closeAll();
  });

  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'QuiverDB', version: '0.1.0', description: 'Vector search over HTTP. Errors: `{ error: { code, message, details } }` with a stable code.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'an API key from `quiver keys create`' } } },
      security: [{ apiKey: [] }],
    },
  });

  void app.register(async (api) => {
    const r = api.withTypeProvider<TypeBoxTypeProvider>();
    const errors = { '4xx': ErrorResponse, '5xx': ErrorResponse };
    const publicRoute = { security: [] as never[] };

    r.get('/healthz', { config: { access: 'public' }, schema: { ...publicRoute, summary: 'liveness: the process answers', response: { 200: Health } } }, async () => ({ status: 'ok' }));
    r.get('/readyz', { config: { access: 'public' }, schema: { ...publicRoute, summary: 'readiness: collections opened and not shutting down', response: { 200: Health, 503: Health } } }, async (_req, reply) => {
      return reply.code(state.status === 'ready' ? 200 : 503).send({ status: state.status });
    });
    r.get('/metrics', { config: { access: 'server' }, schema: { summary: 'Prometheus metrics', produces: ['text/plain'], response: { 200: { type: 'string' }, ...errors } } }, async (_req, reply) => {
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
    r.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, async () => api.swagger());

    r.get('/collections', { config: { access: 'read' }, schema: { summary: 'list collections', response: { 200: CollectionList, ...errors } } }, async (req) => {
      const names = await registry.list();
      const only = req.principal?.collection ?? null;
      return { collections: names.filter((n) => only === null || n === only).map((name) => ({ name })) };
    });
    r.put('/collections/:name', { config: { access: 'write' }, schema: { summary: 'create a collection (or check an existing one against this schema; new fields are added)', params: CollectionParams, body: schemas.CreateCollection, response: { 200: CollectionDescription, 201: CollectionDescription, ...errors } } }, async (req, reply) => {
      if (req.body.embedder !== undefined) await queryEmbedders.check(req.body.embedder, req.body.dimension);
      const { collection, created } = await registry.create(req.params.name, req.body);
      return reply.code(created ? 201 : 200).send(describe(req.params.name, collection));
    });
    r.get('/collections/:name', { config: { access: 'read' }, schema: { summary: 'schema, counts, segments, WAL and memory of a collection', params: CollectionParams, response: { 200: CollectionDescription, ...errors } } }, async (req) => {
      return describe(req.params.name, await registry.get(req.params.name));
    });
    r.delete('/collections/:name', { config: { access: 'write' }, schema: { summary: 'delete a collection and its files', params: CollectionParams, response: { 200: Dropped, ...errors } } }, async (req) => {
      await registry.drop(req.params.name);
      await pool?.drop(req.params.name);
      return { name: req.params.name, dropped: true };
    });
    r.post('/collections/:name/records', { config: { access: 'write' }, schema: { summary: 'upsert a batch of records (all or nothing; durable when answered); records without a vector are embedded from their text when the collection has an embedder', params: CollectionParams, body: schemas.Upsert, response: { 200: Upserted, ...errors } } }, async (req) => {
      const col = await registry.get(req.params.name);
      await col.upsert(req.body.records);
      return { upserted: req.body.records.length };
    });
    r.post('/collections/:name/records/delete', { config: { access: 'write' }, schema: { summary: 'delete records by id (durable when answered)', params: CollectionParams, body: schemas.Delete, response: { 200: Deleted, ...errors } } }, async (req) => {
      const col = await registry.get(req.params.name);
      return { deleted: await col.delete(req.body.ids) };
    });
    r.get('/collections/:name/records/:id', { config: { access: 'read' }, schema: { summary: 'one record: vector and metadata', params: RecordParams, response: { 200: StoredRecord, ...errors } } }, async (req) => {
      const rec = (await registry.get(req.params.name)).get(req.params.id);
      return { id: rec.id, vector: Array.from(rec.vector), ...(rec.metadata !== undefined ? { metadata: rec.metadata } : {}) };
    });
    r.post('/collections/:name/search', { config: { access: 'read' }, schema: { summary: 'search: one request {text?, vector?, sparse?, ...} (retrievers fused when several), or a batch (an array of requests, or {vectors})', params: CollectionParams, body: schemas.Search, response: { 200: SearchResponse, ...errors } } }, async (req) => {
      const body = req.body;
      const col = await registry.get(req.params.name);
      return gate.run(async (): Promise<SearchResult> => {
        let job: SearchJob;
        let wantStats: (i: number) => boolean;
        let embedded = new Set<number>();
        if (Array.isArray(body) || !('vectors' in body)) {
          // copies: embedding gives them a vector
          const requests = (Array.isArray(body) ? body : [body]).map((r) => ({ ...r }) as SearchRequest);
          embedded = await embedQueryTexts(col, requests);
          job = { kind: 'requests', requests };
          wantStats = (i) => requests[i].withStats === true;
        } else {
          const { vectors, ...options } = body;
          job = { kind: 'vectors', vectors, options: options as SearchOptions };
          wantStats = () => options.withStats === true;
        }
        // on a search thread: after the writer's last committed write (read-your-writes)
        const answers = pool ? await pool.search(req.params.name, job, col.appliedSeq, col.info().manifestGeneration) : await runSearchJob(col, job);
        const results = answers.map((a, i): SearchHitsResult => {
          if (embedded.has(i) && a.stats.vector) a.stats.vector.embedded = true;
          return { hits: a.hits.map(plainHit), ...(wantStats(i) ? { stats: a.stats } : {}) };
        });
        return Array.isArray(body) || 'vectors' in body ? { results } : results[0];
      });
    });
    r.post('/collections/:name/flush', { config: { access: 'write' }, schema: { summary: 'seal the write-ahead log into a segment', params: CollectionParams, response: { 200: CollectionDescription, ...errors } } }, async (req) => {
      const col = await registry.get(req.params.name);
      await col.flush();
      return describe(req.params.name, col);
    });
    r.post('/collections/:name/compact', { config: { access: 'write' }, schema: { summary: 'merge all segments into one, dropping deleted records', params: CollectionParams, response: { 200: CollectionDescription, ...errors } } }, async (req) => {
      const col = await registry.get(req.params.name);
      await col.compact();
      return describe(req.params.name, col);
    });
  });

  /**
   * Embeds the text of each request that needs it (text, no vector, embed not false, and a
   * collection with an embedder) in one call, here rather than on the search thread (see
   * query-embedder.ts). Returns the positions of the requests embedded.
   */
  async function embedQueryTexts(col: Collection, requests: SearchRequest[]): Promise<Set<number>> {
    const model = col.schema.embedder;
    const todo = model === undefined ? [] : requests.flatMap((r, i) => (typeof r.text === 'string' && r.vector === undefined && r.embed !== false ? [i] : []));
    if (todo.length === 0) return new Set();
    const embedder = await queryEmbedders.get(model!);
    const d = embedder.dimension;
    if (d !== col.dimension) {
      throw new QuiverError('DIMENSION_MISMATCH', `embedder "${model}" makes ${d}-d vectors, the collection holds ${col.dimension}-d ones`, { field: 'embedder', expected: col.dimension, received: d });
    }
    const vectors = await embedder.embed(todo.map((i) => requests[i].text!));
    todo.forEach((i, row) => { requests[i].vector = vectors.slice(row * d, (row + 1) * d); });
    return new Set(todo);
  }

  return app as QuiverServer;
}

/** A collection as the API shows it (its directory, a server path, left out). */
function describe(name: string, col: Collection): CollectionView {
  const { directory: _directory, durable: _durable, readOnly: _readOnly, dimension: _d, metric: _m, index: _i, ...info } = col.info();
  return { name, schema: col.schema, info };
}

/**
 * A score JSON can carry: one that overflowed float32 (components near 3e38) is +-Infinity, sent
 * as the largest finite double, which keeps the order ("larger is closer"). Fusing such scores
 * can make NaN (Infinity / Infinity when normalising), which says nothing: sent as the lowest.
 */
function finiteScore(s: number): number {
  return Number.isFinite(s) ? s : s > 0 ? Number.MAX_VALUE : -Number.MAX_VALUE;
}

/** A hit as the API sends it: finite scores, its vector (if any) as a plain array, which JSON serializes as a list. */
function plainHit(h: Hit): HitBody {
  const out: HitBody = { id: h.id, score: finiteScore(h.score) };
  if (h.ranks !== undefined) out.ranks = h.ranks;
  if (h.scores !== undefined) {
    const scores: NonNullable<HitBody['scores']> = {};
    for (const [name, s] of Object.entries(h.scores) as [keyof typeof scores, number][]) scores[name] = finiteScore(s);
    out.scores = scores;
  }
  if (h.metadata !== undefined) out.metadata = h.metadata;
  if (h.vector !== undefined) out.vector = Array.from(h.vector);
  return out;
}
