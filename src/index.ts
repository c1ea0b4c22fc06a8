// Public API of `quiverdb` (browser-safe: no node: imports). Re-exports only.
export { QuiverError, isQuiverError, type QuiverErrorCode } from './errors.js';
export {
  Collection,
  type CollectionSchema, type CollectionOptions, type OpenOptions, type UpsertRecord, type StoredRecord,
  type SearchOptions, type Hit, type CollectionStats, type CollectionInfo, type PackedResults,
} from './collection/collection.js';
export type { EngineEvent, RecoveryReport, SegmentInfo } from './collection/engine.js';
export { MemoryDirectory, type Directory, type AppendFile, type RandomAccessFile, type DirectoryLock } from './storage/directory.js';
export type { Metric, VectorLike } from './collection/validate.js';
export { createKernels, wasmSimdSupported, JsKernels, createWasmKernels, type Kernels, type KernelChoice } from './kernels/index.js';

