import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { normalizeSchema, publicSchema } from '../collection/schema.js';
import { QuiverError } from '../errors.js';
import { Collection, type CollectionSchema, type EngineEvent, type OpenOptions } from '../node.js';
import { MANIFEST_FILE } from '../storage/manifest.js';
import { checkCollectionName, isCollectionName } from './names.js';

/** Options the server passes to every Collection.open (never the schema, never readOnly: the server is the writer). */
export type ServerOpenOptions = Pick<OpenOptions, 'kernels' | 'buildThreads' | 'groupCommitMs' | 'commitMode' | 'sealRows' | 'autoMerge' | 'minQuantizedRows' | 'mergePolicy'>;

/** Directories being deleted are renamed to this prefix first (a dot: never a valid collection name). */
const TRASH_PREFIX = '.trash-';

/**
 * The collections of a data directory, one subdirectory each, opened on first use and kept open
 * (this process is their writer). Opening, creating and dropping a name are serialized per name,
 * so two requests never open the same directory twice or drop it while it opens.
 */
export class CollectionRegistry {
  private readonly opened = new Map<string, Collection>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private closing = false;

  constructor(
    readonly dataDir: string,
    private readonly openOptions: ServerOpenOptions,
    private readonly onEvent: (name: string, event: EngineEvent) => void = () => {},
  ) {}

  /** Creates the data directory if needed and removes what an interrupted drop left behind. */
  async init(): Promise<void> {
    await mkdir(this.dataDir, { recursive: true });
    for (const entry of await readdir(this.dataDir)) {
      if (entry.startsWith(TRASH_PREFIX)) await rm(join(this.dataDir, entry), { recursive: true, force: true });
    }
  }

  /** Names of the collections on disk (directories with a manifest), sorted. */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for (const entry of await readdir(this.dataDir, { withFileTypes: true })) {
      if (entry.isDirectory() && isCollectionName(entry.name) && (await this.hasManifest(entry.name))) names.push(entry.name);
    }
    return names.sort();
  }

  /** The open collections (for metrics). */
  openCollections(): [string, Collection][] {
    return [...this.opened];
  }

  /** The collection `name`, opened if it is not yet; NOT_FOUND when there is none. */
  async get(name: string): Promise<Collection> {
    checkCollectionName(name);
    this.checkOpen();
    const col = this.opened.get(name);
    if (col) return col;
    return this.serialized(name, async () => {
      const again = this.opened.get(name);
      if (again) return again;
      if (!(await this.hasManifest(name))) throw new QuiverError('NOT_FOUND', `no collection named "${name}"`, { collection: name });
      return this.openNow(name, undefined);
    });
  }

  /**
   * Creates `name` with `schema`, or checks an existing one against it (SCHEMA_MISMATCH when
   * dimension, metric, index or a field's type differ; fields it lacks are added).
   */
  async create(name: string, schema: CollectionSchema): Promise<{ collection: Collection; created: boolean }> {
    checkCollectionName(name);
    this.checkOpen();
    const wanted = normalizeSchema(schema); // INVALID_ARGUMENT / UNKNOWN_SPEC before anything is touched
    return this.serialized(name, async () => {
      const col = this.opened.get(name);
      if (col) {
        const have = col.schema;
        // as Collection.open checks a stored schema: an embedder left out is no conflict, another one is
        const differs = have.dimension !== wanted.dimension ? 'dimension' : have.metric !== wanted.metric ? 'metric' : have.index !== wanted.index ? 'index'
          : wanted.embedder !== undefined && wanted.embedder !== have.embedder ? 'embedder' : null;
        if (differs) {
          throw new QuiverError('SCHEMA_MISMATCH', `collection "${name}" exists with another ${differs}: ${JSON.stringify(have)}`, { collection: name, expected: have, received: publicSchema(wanted) });
        }
        // with their options (analyzer, embed), so that a text field's analyzer is compared, not defaulted:
        // same declaration: nothing; new: added; another type or analyzer: SCHEMA_MISMATCH
        await col.addFields(Object.fromEntries(wanted.fields.map((f) => [f.name, { type: f.type, ...(f.analyzer ? { analyzer: f.analyzer } : {}), ...(f.embed ? { embed: true } : {}) }])));
        return { collection: col, created: false };
      }
      const existed = await this.hasManifest(name);
      return { collection: await this.openNow(name, schema), created: !existed };
    });
  }

  /** Closes `name` (waiting for its pending writes) and deletes its directory. */
  async drop(name: string): Promise<void> {
    checkCollectionName(name);
    this.checkOpen();
    await this.serialized(name, async () => {
      if (!(await this.hasManifest(name))) throw new QuiverError('NOT_FOUND', `no collection named "${name}"`, { collection: name });
      // holding the writer lock proves no other process writes it (LOCKED otherwise)
      const col = this.opened.get(name) ?? (await Collection.open(join(this.dataDir, name), { ...this.openOptions }));
      this.opened.delete(name);
      await col.close();
      // a rename frees the name at once; a crash during the removal leaves a hidden directory init() sweeps
      const trash = join(this.dataDir, `${TRASH_PREFIX}${name}-${randomBytes(4).toString('hex')}`);
      await rename(join(this.dataDir, name), trash);
      await rm(trash, { recursive: true, force: true });
    });
  }

  /** Closes every collection (pending writes complete first); later calls are CLOSED. */
  async closeAll(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([...this.queues.values()]);
    const all = [...this.opened.values()];
    this.opened.clear();
    const results = await Promise.allSettled(all.map((c) => c.close()));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  private async openNow(name: string, schema: CollectionSchema | undefined): Promise<Collection> {
    const col = await Collection.open(join(this.dataDir, name), {
      ...this.openOptions,
      ...(schema ? { schema } : {}),
      onEvent: (e) => this.onEvent(name, e),
    });
    if (this.closing) {
      await col.close();
      throw new QuiverError('CLOSED', 'the server is shutting down', {});
    }
    this.opened.set(name, col);
    return col;
  }

  private async hasManifest(name: string): Promise<boolean> {
    try {
      return (await stat(join(this.dataDir, name, MANIFEST_FILE))).isFile();
    } catch {
      return false;
    }
  }

  private checkOpen(): void {
    if (this.closing) throw new QuiverError('CLOSED', 'the server is shutting down', {});
  }

  /** Runs `work` after every earlier serialized task of `name` has settled. */
  private serialized<T>(name: string, work: () => Promise<T>): Promise<T> {
    const before = this.queues.get(name) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.catch(() => {});
    this.queues.set(name, settled);
    void settled.then(() => { if (this.queues.get(name) === settled) this.queues.delete(name); });
    return run;
  }
}
