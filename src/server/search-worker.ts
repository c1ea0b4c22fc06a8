import { setPriority } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { Collection, QuiverError } from '../node.js';
import type { KernelChoice } from '../kernels/index.js';
import { runSearchJob, type SearchJob } from './search-job.js';

/**
 * A search thread of the server (search-pool.ts starts them). It opens each collection it is
 * asked about read-only, keeps it open, and before a search refreshes it up to the writer's last
 * committed write that the main thread sent along (so a search after an acknowledged write sees
 * it). Writes never happen here, and neither does embedding: query texts arrive embedded
 * (query-embedder.ts says why), though importing quiverdb/node registers USE-Lite here too.
 *
 * Messages in: { type: 'search', id, name, job, upTo, generation } (search-job.ts),
 * { type: 'close', id, name }, { type: 'shutdown' }. Out: { id, ok: true, value } or
 * { id, ok: false, error: { code, message, details } }.
 */
export interface SearchWorkerData {
  dataDir: string;
  kernels?: KernelChoice;
  /** Nice value for the search thread (Linux; 0 = unchanged). */
  niceness?: number;
}

export type SearchWorkerRequest =
  | { type: 'search'; id: number; name: string; job: SearchJob; upTo: number; generation: number }
  | { type: 'close'; id: number; name: string }
  | { type: 'shutdown' };

export type SearchWorkerReply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { code: string; message: string; details: Record<string, unknown> } };

const port = parentPort!;
const data = workerData as SearchWorkerData;

// Below the event loop's thread: on Linux the nice value is per thread and setpriority(0) applies
// to the calling thread only, so when searches saturate the cores, the thread answering health
// checks and taking writes still gets scheduled first. (Elsewhere this may lower the whole
// process, hence Linux only; failures, e.g. no permission, are ignored.)
if (process.platform === 'linux' && data.niceness) {
  try { setPriority(0, data.niceness); } catch { /* keep the default priority */ }
}
const opened = new Map<string, Promise<Collection>>();

function get(name: string): Promise<Collection> {
  let p = opened.get(name);
  if (!p) {
    const opening = Collection.open(join(data.dataDir, name), { readOnly: true, ...(data.kernels ? { kernels: data.kernels } : {}) });
    p = opening;
    opened.set(name, opening);
    opening.catch(() => { if (opened.get(name) === opening) opened.delete(name); });
  }
  return p;
}

async function search(m: Extract<SearchWorkerRequest, { type: 'search' }>): Promise<unknown> {
  const col = await get(m.name);
  // the writer's last committed write (and its manifest, for fields declared since) must be visible
  if (col.appliedSeq < m.upTo || col.info().manifestGeneration < m.generation) await col.refresh({ upTo: m.upTo });
  return runSearchJob(col, m.job);
}

async function close(name: string): Promise<void> {
  const p = opened.get(name);
  opened.delete(name);
  if (p) await (await p.catch(() => null))?.close();
}

function reply(id: number, work: Promise<unknown>): void {
  work.then((value) => port.postMessage({ id, ok: true, value } satisfies SearchWorkerReply), (e: unknown) => {
    const err = e instanceof QuiverError ? e : new QuiverError('INTERNAL', `search thread: ${(e as Error)?.message ?? String(e)}`);
    try {
      port.postMessage({ id, ok: false, error: { code: err.code, message: err.message, details: err.details } } satisfies SearchWorkerReply);
    } catch {
      // details that cannot be cloned: the code and message still go back
      port.postMessage({ id, ok: false, error: { code: err.code, message: err.message, details: {} } } satisfies SearchWorkerReply);
    }
  });
}

port.on('message', (m: SearchWorkerRequest) => {
  if (m.type === 'search') reply(m.id, search(m));
  else if (m.type === 'close') reply(m.id, close(m.name));
  else if (m.type === 'shutdown') {
    // close every reader (their files), then let the thread end
    void Promise.allSettled([...opened.keys()].map(close)).then(() => port.close());
  }
});
