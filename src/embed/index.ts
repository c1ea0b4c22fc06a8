// The text-embedding API of `quiverdb` (browser-safe providers only; USE-Lite on worker threads
// is in `quiverdb/node`). Re-exports only.
export type { Embedder, EmbedOptions } from './types.js';
export { OpenAIEmbedder, type OpenAIEmbedderOptions } from './openai.js';
export { TransformersEmbedder, type TransformersEmbedderOptions } from './transformers.js';
export { registerEmbedder, registeredEmbedder, closeRegisteredEmbedders } from './registry.js';
