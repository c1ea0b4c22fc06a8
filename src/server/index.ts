// Public API of `quiverdb/server`: the HTTP server (Node only; Fastify). Re-exports only.
export { createServer, type ServerOptions, type QuiverServer, type QuiverServerState } from './app.js';
export { listen, isLoopback, type ListenOptions } from './listen.js';
export { DEFAULT_LIMITS, type ServerLimits } from './limits.js';
export { createKey, listKeys, revokeKey, KEYS_FILE, KEY_SCOPES, type ApiKeyInfo, type KeyScope } from './keys.js';
export type { AuthMode, Access } from './auth.js';
export { HTTP_STATUS, type ErrorBody } from './errors.js';
export { COLLECTION_NAME_PATTERN } from './names.js';
export type { ServerOpenOptions } from './registry.js';
export type {
  CreateCollectionBody, UpsertBody, UpsertRecordBody, DeleteBody, SearchBody, SearchRequestBody, VectorBatchBody, FusionBody, SearchResult,
  SearchHitsResult, SearchBatchResult, SearchStatsBody, HitBody, CollectionView, CollectionListBody, DroppedBody, UpsertedBody, DeletedBody,
  StoredRecordBody, HealthBody, ErrorResponseBody,
} from './schemas.js';
