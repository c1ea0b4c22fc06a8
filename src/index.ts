// Public API of `quiverdb` (browser-safe: no node: imports). Re-exports only.
export { QuiverError, isQuiverError, type QuiverErrorCode } from './errors.js';
export {
  Collection,
  type CollectionSchema, type NormalizedSchema, type CollectionOptions, type OpenOptions, type UpsertRecord, type StoredRecord,
  type MetadataUpdate, type ReadOptions, type ScrollOptions, type ScrollPage,
  type SearchOptions, type SearchStats, type FilterStats, type QueryBatch, type Hit, type CollectionStats, type CollectionInfo, type RefreshResult,
  type SearchRequest, type RequestStats,
} from './collection/collection.js';
export type { FusionSpec, RetrieverName } from './query/fusion.js';
export { getAnalyzer, registerAnalyzer, ANALYZERS, type Analyzer } from './text/analyzer.js';
export { DEFAULT_BM25, type Bm25Params } from './text/bm25.js';
export { evaluate } from './eval/metrics.js';
export type { EngineEvent, RecoveryReport, SegmentInfo } from './collection/engine.js';
export type { FieldType, FieldSpec, SparseValue } from './fields/types.js';
export type { Filter, FieldCondition, FilterScalar } from './filter/types.js';
export type { FilterPath } from './filter/plan.js';
export { MemoryDirectory, type Directory, type AppendFile, type RandomAccessFile, type DirectoryLock } from './storage/directory.js';
export { OpfsDirectory } from './browser/opfs-directory.js';
export { IndexedDbDirectory, type IndexedDbDirectoryOptions } from './browser/indexeddb-directory.js';
export { openBrowserDirectory, type BrowserDirectoryOptions } from './browser/browser-directory.js';
export { SnapshotDirectory, importSnapshot, encodeSnapshot, concatChunks, SNAPSHOT_VERSION, type BlobLike, type SnapshotEntry } from './storage/snapshot-file.js';
export type { Metric, VectorLike } from './collection/validate.js';
export { createKernels, wasmSimdSupported, JsKernels, createWasmKernels, type Kernels, type KernelChoice } from './kernels/index.js';
export * from './embed/index.js';
