import { QuiverError } from '../errors.js';
import type { Directory } from '../storage/directory.js';
import { IndexedDbDirectory } from './indexeddb-directory.js';
import { OpfsDirectory } from './opfs-directory.js';

export interface BrowserDirectoryOptions {
  /** Force one store instead of choosing: 'opfs' or 'indexeddb' (IO_ERROR ENOTSUP if it is missing here). */
  kind?: 'opfs' | 'indexeddb';
}

/**
 * The durable browser Directory for the collection `name`: an OpfsDirectory where OPFS sync access
 * handles exist (a dedicated Worker), else an IndexedDbDirectory (the main thread, older browsers).
 * The two stores are separate, so a collection lives in the one it was created in: in a worker, a
 * collection that exists only in IndexedDB (built earlier on the main thread) is opened there
 * rather than started afresh on OPFS. IO_ERROR ENOTSUP when neither store exists (a non-browser
 * runtime, an opaque origin): use MemoryDirectory or Collection.openSnapshot there.
 */
export async function openBrowserDirectory(name: string, options: BrowserDirectoryOptions = {}): Promise<Directory> {
  if (typeof options !== 'object' || options === null) throw new QuiverError('INVALID_ARGUMENT', 'openBrowserDirectory options must be an object', { received: String(options) });
  const kind = options.kind;
  if (kind !== undefined && kind !== 'opfs' && kind !== 'indexeddb') {
    throw new QuiverError('INVALID_ARGUMENT', `kind must be 'opfs' or 'indexeddb', got ${JSON.stringify(kind)}`, { field: 'kind', expected: ['opfs', 'indexeddb'], received: kind });
  }
  // both constructors validate the name (INVALID_ARGUMENT) before anything is touched
  const opfs = new OpfsDirectory(name);
  const idb = new IndexedDbDirectory(name);
  const hasOpfs = OpfsDirectory.supported();
  const hasIdb = IndexedDbDirectory.supported();
  const unsupported = (what: string) => new QuiverError('IO_ERROR', `${what} is not available here (OPFS needs a dedicated Worker with FileSystemSyncAccessHandle; IndexedDB a browser page or worker); use MemoryDirectory or Collection.openSnapshot instead`, { file: name, errno: 'ENOTSUP' });
  if (kind === 'opfs') { if (!hasOpfs) throw unsupported('OPFS with sync access handles'); return opfs; }
  if (kind === 'indexeddb') { if (!hasIdb) throw unsupported('IndexedDB'); return idb; }
  if (hasOpfs) {
    if (hasIdb && !(await opfsFolderExists(name)) && await IndexedDbDirectory.exists(name)) return idb;
    return opfs;
  }
  if (hasIdb) return idb;
  throw unsupported('Neither OPFS nor IndexedDB');
}

/** Whether the OPFS root holds the collection folder `name` (without creating it). */
async function opfsFolderExists(name: string): Promise<boolean> {
  type Dir = { getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<unknown> };
  const storage = (globalThis as { navigator?: { storage?: { getDirectory(): Promise<Dir> } } }).navigator?.storage;
  try {
    await (await storage!.getDirectory()).getDirectoryHandle(name);
    return true;
  } catch (e) {
    // any failure but NotFoundError picks OPFS, whose own open then reports it properly
    return (e as { name?: unknown } | null)?.name !== 'NotFoundError';
  }
}
