import { Type, type Static, type TSchema } from 'typebox';
import type { ServerLimits } from './limits.js';
import { COLLECTION_NAME_PATTERN } from './names.js';

/**
 * The HTTP API's shapes, in TypeBox: each schema validates requests (Fastify, with unknown fields
 * refused), serializes responses, becomes the OpenAPI document (/openapi.json) and gives the
 * TypeScript types below. Limits (vector length, batch sizes, k) are part of the schemas, so they
 * are documented where they apply. Text, sparse and hybrid search join the search body as the
 * engine learns them.
 */

/** Any JSON object (metadata, filters, engine details that grow over time). */
const JsonObject = (description: string) => Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, description });

export const Metric = Type.Union([Type.Literal('cosine'), Type.Literal('dot'), Type.Literal('l2')], { description: 'similarity; larger scores are closer (cosine similarity, inner product, minus squared L2 distance)' });
export const FieldType = Type.Union([Type.Literal('keyword'), Type.Literal('number'), Type.Literal('boolean'), Type.Literal('keyword[]'), Type.Literal('text'), Type.Literal('sparse')]);

export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'stable QuiverError code, e.g. DIMENSION_MISMATCH, NOT_FOUND, UNAUTHENTICATED' }),
    message: Type.String(),
    details: JsonObject('structured fields such as expected, received, path'),
  }),
}, { description: 'every 4xx and 5xx response' });

export const CollectionParams = Type.Object({
  name: Type.String({ pattern: COLLECTION_NAME_PATTERN, description: 'collection name: lowercase letters, digits, _ and -, 1..64 characters' }),
});

export const RecordParams = Type.Object({
  name: CollectionParams.properties.name,
  id: Type.String({ minLength: 1, maxLength: 1024, description: 'record id (URL-encoded)' }),
});

const NormalizedSchema = Type.Object({
  dimension: Type.Integer(),
  metric: Metric,
  index: Type.String({ description: 'canonical index spec' }),
  fields: Type.Unsafe<Record<string, Static<typeof FieldType>>>({ type: 'object', additionalProperties: FieldType, description: 'declared metadata fields by name' }),
  analyzers: Type.Optional(Type.Unsafe<Record<string, string>>({ type: 'object', additionalProperties: { type: 'string' }, description: 'text fields\' analyzers by field name' })),
  embedder: Type.Optional(Type.String({ description: 'model id of the embedder that makes the vectors from text' })),
});

const SegmentInfo = Type.Object({
  number: Type.Integer(),
  state: Type.String(),
  rows: Type.Integer(),
  deleted: Type.Integer(),
  fileBytes: Type.Integer(),
  memoryBytes: Type.Integer(),
  index: Type.String(),
}, { additionalProperties: true });

const CollectionInfo = Type.Object({
  count: Type.Integer({ description: 'live records' }),
  segments: Type.Integer({ description: 'segments holding live records' }),
  vectorBytes: Type.Integer(),
  indexBytes: Type.Integer({ description: 'bytes the indexes hold in memory' }),
  kernelMemoryBytes: Type.Integer(),
  kernels: Type.String(),
  walBytes: Type.Integer({ description: 'bytes in the current write-ahead log file' }),
  walGeneration: Type.Union([Type.Integer(), Type.Null()]),
  manifestGeneration: Type.Integer(),
  appliedSeq: Type.Integer({ description: 'sequence number of the last write committed (a search after a write answered 2xx sees it)' }),
  segmentList: Type.Array(SegmentInfo),
  recovery: Type.Object({
    walFiles: Type.Integer(),
    walRecords: Type.Integer({ description: 'write-ahead log records replayed at open' }),
    tornTail: Type.Optional(Type.Object({ file: Type.String(), offset: Type.Integer(), droppedBytes: Type.Integer(), reason: Type.String() }, { description: 'an unacknowledged, partly written tail dropped at open' })),
    orphansRemoved: Type.Array(Type.String()),
  }, { additionalProperties: true, description: 'what opening the collection recovered' }),
  pendingCleanup: Type.Array(Type.String()),
}, { additionalProperties: true });

export const CollectionDescription = Type.Object({
  name: Type.String(),
  schema: NormalizedSchema,
  info: CollectionInfo,
});

export const CollectionList = Type.Object({
  collections: Type.Array(Type.Object({ name: Type.String() })),
});

export const Dropped = Type.Object({ name: Type.String(), dropped: Type.Boolean() });
export const Upserted = Type.Object({ upserted: Type.Integer({ description: 'records written (durable when this response is sent)' }) });
export const Deleted = Type.Object({ deleted: Type.Integer({ description: 'records that existed and were deleted (durable when this response is sent)' }) });

export const StoredRecord = Type.Object({
  id: Type.String(),
  vector: Type.Array(Type.Number()),
  metadata: Type.Optional(JsonObject('the record\'s metadata')),
});

const Hit = Type.Object({
  id: Type.String(),
  score: Type.Number({ description: 'larger is closer' }),
  metadata: Type.Optional(JsonObject('the record\'s metadata (unless includeMetadata is false)')),
  vector: Type.Optional(Type.Array(Type.Number(), { description: 'with includeVector: true' })),
});

const SearchStats = Type.Object({
  segments: Type.Integer(),
  scanned: Type.Integer(),
  reranked: Type.Integer(),
  filter: Type.Optional(Type.Object({
    matched: Type.Integer(),
    live: Type.Integer(),
    selectivity: Type.Number(),
    paths: Type.Object({ exact: Type.Integer(), index: Type.Integer(), none: Type.Integer() }),
    segments: Type.Array(Type.Object({ segment: Type.Integer(), live: Type.Integer(), matched: Type.Integer(), path: Type.String() })),
  }, { additionalProperties: true, description: 'what the filter matched and the path each segment took' })),
}, { additionalProperties: true });

export const SearchResponse = Type.Object({
  hits: Type.Optional(Type.Array(Hit, { description: 'for `vector`: best first' })),
  stats: Type.Optional(SearchStats),
  results: Type.Optional(Type.Array(Type.Object({ hits: Type.Array(Hit), stats: Type.Optional(SearchStats) }), { description: 'for `vectors`: one entry per query, in order' })),
});

export const Health = Type.Object({ status: Type.String() });

/** The request schemas, whose limits come from the server's configuration. */
export function requestSchemas(limits: ServerLimits) {
  const Vector = Type.Array(Type.Number(), { maxItems: limits.dimension, description: `the collection's dimension of finite numbers (at most ${limits.dimension})` });
  const Id = Type.String({ minLength: 1, maxLength: 1024 });
  return {
    CreateCollection: Type.Object({
      dimension: Type.Integer({ minimum: 1, maximum: limits.dimension }),
      metric: Type.Optional(Metric),
      index: Type.Optional(Type.String({ maxLength: 256, description: 'index spec, e.g. Flat, "HNSW16,SQ8,Rerank", "IVF,RaBitQ4,Rerank" (default Flat)' })),
      fields: Type.Optional(Type.Unsafe<Record<string, Static<typeof FieldType> | { type: Static<typeof FieldType> }>>({
        type: 'object',
        maxProperties: 1024,
        additionalProperties: Type.Union([FieldType, Type.Object({ type: FieldType }, { additionalProperties: false })]),
        description: 'declared metadata fields (filterable), e.g. {"lang": "keyword", "year": "number"}',
      })),
    }, { additionalProperties: false }),
    Upsert: Type.Object({
      records: Type.Array(Type.Object({
        id: Id,
        vector: Vector,
        metadata: Type.Optional(JsonObject('JSON metadata; values of declared fields must have their type')),
      }, { additionalProperties: false }), { maxItems: limits.batchSize, description: `at most ${limits.batchSize} records; all or nothing` }),
    }, { additionalProperties: false }),
    Delete: Type.Object({
      ids: Type.Array(Id, { maxItems: limits.batchSize, description: `at most ${limits.batchSize} ids; ids not present are ignored` }),
    }, { additionalProperties: false }),
    Search: Type.Object({
      vector: Type.Optional(Vector),
      vectors: Type.Optional(Type.Array(Vector, { maxItems: limits.queries, description: `a batch of at most ${limits.queries} queries (instead of vector)` })),
      k: Type.Optional(Type.Integer({ minimum: 1, maximum: limits.k, description: 'results per query (default 10)' })),
      filter: Type.Optional(JsonObject('Mongo-like filter on declared fields, e.g. {"year": {"$gte": 2020}}')),
      recall: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'target recall@k of approximate indexes' })),
      ef: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, description: 'HNSW beam width' })),
      nprobe: Type.Optional(Type.Integer({ minimum: 1, maximum: 1 << 20, description: 'IVF lists scanned' })),
      rerank: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'rerank rerank*k candidates with full vectors' })),
      exact: Type.Optional(Type.Boolean({ description: 'score every (matching) record exactly' })),
      includeMetadata: Type.Optional(Type.Boolean({ description: 'default true' })),
      includeVector: Type.Optional(Type.Boolean({ description: 'default false' })),
      withStats: Type.Optional(Type.Boolean({ description: 'add what each search did' })),
    }, { additionalProperties: false, description: 'exactly one of vector and vectors' }),
  };
}

type RequestSchemas = ReturnType<typeof requestSchemas>;
export type CreateCollectionBody = Static<RequestSchemas['CreateCollection']>;
export type UpsertBody = Static<RequestSchemas['Upsert']>;
export type DeleteBody = Static<RequestSchemas['Delete']>;
export type SearchBody = Static<RequestSchemas['Search']>;
export type SearchResult = Static<typeof SearchResponse>;
export type CollectionView = Static<typeof CollectionDescription>;
export type ErrorResponseBody = Static<typeof ErrorResponse>;
export type { TSchema };
