// Public API of `quiverdb/node`: everything that needs node: modules (files, storage).
export * from './index.js';
export { readVectorFile, readBytes, vectorFileFormat, loadWinkGlove, resolveWinkGlovePath, type VectorFile, type VectorFileFormat, type LoadWinkGloveOptions } from './node/readers.js';
