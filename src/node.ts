// Public API of `quiverdb/node`: everything that needs node: modules (files, storage).
export * from './index.js';
export { readVectorFile, readBytes, vectorFileFormat, loadWinkGlove, resolveWinkGlovePath, type VectorFile, type VectorFileFormat, type LoadWinkGloveOptions } from './node/readers.js';
export { FsDirectory } from './node/fs-directory.js';

import { registerPathDirectory } from './collection/collection.js';
import { FsDirectory } from './node/fs-directory.js';
// Collection.open(path) works once this module is imported.
registerPathDirectory((path, create) => FsDirectory.open(path, { create }));

import { registerGraphBuildThreads } from './index/build-threads.js';
import { WorkerGraphBuildThreads } from './node/graph-build-threads.js';
// Large HNSW graphs are built on worker threads once this module is imported (buildThreads option).
registerGraphBuildThreads((threads) => WorkerGraphBuildThreads.create(threads));
