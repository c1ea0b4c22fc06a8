// Public API of `quiverdb` (browser-safe: no node: imports). Re-exports only.
export { QuiverError, isQuiverError, type QuiverErrorCode } from './errors.js';
export {
  Collection,
  type CollectionSchema, type CollectionOptions, type UpsertRecord, type StoredRecord,
  type SearchOptions, type Hit, type CollectionStats,
} from './collection/collection.js';
export type { Metric, VectorLike } from './collection/validate.js';
export { createKernels, wasmSimdSupported, JsKernels, createWasmKernels, type Kernels, type KernelChoice } from './kernels/index.js';
export type { SearchResultBatch } from './index/types.js';
