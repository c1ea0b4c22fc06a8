// The learned-sparse index of a segment (see docs/ARCHITECTURE.md, src/sparse/).
export { checkSparseVector, SPARSE_MAX_TERMS, SPARSE_MAX_TERM_LENGTH } from './types.js';
export type { SparseIndex, SparseInput, SparseSearchParams, SparseSearchResult } from './types.js';
export { buildSparseIndex, DEFAULT_BUILD, MAX_LAMBDA, type SparseBuildOptions } from './build.js';
export { decodeSparseIndex, encodeSparseIndex, SPARSE_SECTION_VERSION } from './section.js';
export { DEFAULT_SEARCH, SeismicSparseIndex, type SparseBuildParams, type SparseIndexData } from './sparse-index.js';
