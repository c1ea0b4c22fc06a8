// Public API of `quiverdb/node`: everything that needs node: modules (files, storage).
export * from './index.js';
export { readVectorFile, readBytes, vectorFileFormat, loadWinkGlove, resolveWinkGlovePath, type VectorFile, type VectorFileFormat, type LoadWinkGloveOptions } from './node/readers.js';
export { FsDirectory } from './node/fs-directory.js';
export { createUseLiteEmbedder, USE_LITE_MODEL_ID, USE_LITE_DIMENSION, type UseLiteEmbedderOptions } from './node/use-lite-embedder.js';

import { registerPathDirectory } from './collection/collection.js';
import { FsDirectory } from './node/fs-directory.js';
// Collection.open(path) works once this module is imported.
registerPathDirectory((path, create) => FsDirectory.open(path, { create }));

import { registerGraphBuildThreads } from './index/build-threads.js';
import { WorkerGraphBuildThreads } from './node/graph-build-threads.js';
// Large HNSW graphs are built on worker threads once this module is imported (buildThreads option).
registerGraphBuildThreads((threads) => WorkerGraphBuildThreads.create(threads));

import { registerEmbedder } from './embed/registry.js';
import { createUseLiteEmbedder, USE_LITE_MODEL_ID } from './node/use-lite-embedder.js';
// Collections whose schema names 'use-lite-512' embed text without being handed an embedder.
registerEmbedder(USE_LITE_MODEL_ID, () => createUseLiteEmbedder());

export { readBeirDataset, type BeirDataset, type BeirDocument } from './node/beir.js';
