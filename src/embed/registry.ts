import { QuiverError } from '../errors.js';
import type { Embedder } from './types.js';

/**
 * Embedders a collection can make from the model id its schema records, when the caller passes
 * none: platform entry points register theirs (quiverdb/node registers 'use-lite-512', which runs
 * on worker threads). One instance per model id is shared by the collections of a process and
 * lives until closeRegisteredEmbedders().
 */
const factories = new Map<string, () => Promise<Embedder>>();
const instances = new Map<string, Promise<Embedder>>();

export function registerEmbedder(model: string, factory: () => Promise<Embedder>): void {
  factories.set(model, factory);
}

/** The shared embedder for `model`; MISSING_DEPENDENCY when none is registered. */
export function registeredEmbedder(model: string): Promise<Embedder> {
  let p = instances.get(model);
  if (!p) {
    const f = factories.get(model);
    if (!f) {
      const known = [...factories.keys()];
      return Promise.reject(new QuiverError('MISSING_DEPENDENCY', `the collection embeds text with "${model}", and no embedder for it is available here: pass one as the embedder option (known here: ${known.length ? known.join(', ') : 'none'}${model === 'use-lite-512' ? '; import from "quiverdb/node" to get USE-Lite' : ''})`, { model, known }));
    }
    p = f();
    instances.set(model, p);
    p.catch(() => instances.delete(model));
  }
  return p;
}

/** Closes the shared embedders (their worker threads keep a process alive otherwise). */
export async function closeRegisteredEmbedders(): Promise<void> {
  const all = [...instances.values()];
  instances.clear();
  for (const p of all) {
    try { await (await p).close(); } catch { /* never made, or already closed */ }
  }
}
