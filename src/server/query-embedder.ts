import { QuiverError } from '../errors.js';
import { createUseLiteEmbedder, registeredEmbedder, USE_LITE_DIMENSION, USE_LITE_MODEL_ID, type Embedder } from '../node.js';

/**
 * The embedders that turn query texts into vectors, on the main thread's side of the server: a
 * search whose text is to be embedded is embedded here, and its search thread gets the vector.
 *
 * Why here and not in each search thread: USE-Lite holds its model (~100 MB) in each of its own
 * threads, so an embedder per search thread would cost searchThreads x that (64 threads: over
 * 6 GB) for work that takes milliseconds per query. Why not the writer's embedder (the registered
 * one, which embeds upserted records): its queue is first in, first out, so a query would wait
 * behind a bulk upsert's thousands of texts. So USE-Lite queries get their own instance with
 * `threads` threads (default 1: ~100 MB and about a second to load, at the first query or at
 * the creation of a collection that names it). Other model ids (embedders an application
 * registered with registerEmbedder before starting the server) use the registered instance.
 */
export class QueryEmbedders {
  private readonly made = new Map<string, Promise<Embedder>>();
  /** Instances made here (closed with the server), as opposed to the process's registered ones. */
  private readonly owned = new Set<Promise<Embedder>>();
  private closed = false;

  constructor(private readonly useLiteThreads: number) {}

  /** The query embedder for `model`; MISSING_DEPENDENCY when the server has none. */
  get(model: string): Promise<Embedder> {
    if (this.closed) return Promise.reject(new QuiverError('CLOSED', 'the server is shutting down', {}));
    let p = this.made.get(model);
    if (!p) {
      const making = model === USE_LITE_MODEL_ID ? createUseLiteEmbedder({ threads: this.useLiteThreads }) : registeredEmbedder(model);
      if (model === USE_LITE_MODEL_ID) this.owned.add(making);
      // a failure (packages missing) is not remembered: installing them fixes the next request
      making.catch(() => { if (this.made.get(model) === making) this.made.delete(model); this.owned.delete(making); });
      this.made.set(model, making);
      p = making;
    }
    return p;
  }

  /**
   * Checks, when a collection is created, that the server can embed with `model` at `dimension`:
   * INVALID_ARGUMENT for a model id it has no embedder for, DIMENSION_MISMATCH for another
   * dimension than the model's. (Otherwise the first upsert without a vector would fail instead.)
   */
  async check(model: string, dimension: number): Promise<void> {
    // USE-Lite's dimension is known without loading it
    const modelDimension = model === USE_LITE_MODEL_ID ? USE_LITE_DIMENSION : await this.get(model).then((e) => e.dimension, (e: unknown) => {
      const known = e instanceof QuiverError && e.code === 'MISSING_DEPENDENCY' ? e.details.known : undefined;
      if (Array.isArray(known) && !known.includes(model)) {
        const available = [...new Set([USE_LITE_MODEL_ID, ...(known as string[])])];
        throw new QuiverError('INVALID_ARGUMENT', `the server has no embedder "${model}" (available: ${available.join(', ')})`, { field: 'embedder', expected: available, received: model });
      }
      throw e;
    });
    if (modelDimension !== dimension) {
      throw new QuiverError('DIMENSION_MISMATCH', `embedder "${model}" makes ${modelDimension}-d vectors; create the collection with dimension ${modelDimension}, not ${dimension}`, { field: 'dimension', expected: modelDimension, received: dimension });
    }
  }

  /** Closes the instances made here (registered ones belong to the process); later calls are CLOSED. */
  async close(): Promise<void> {
    this.closed = true;
    const owned = [...this.owned];
    this.owned.clear();
    this.made.clear();
    await Promise.allSettled(owned.map(async (p) => (await p).close()));
  }
}
