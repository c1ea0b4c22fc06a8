import { Worker } from 'node:worker_threads';
import { QuiverError, type QuiverErrorCode } from '../errors.js';
import type { SearchAnswer, SearchJob } from './search-job.js';
import type { SearchWorkerData, SearchWorkerReply, SearchWorkerRequest } from './search-worker.js';

interface Slot {
  worker: Worker;
  inFlight: number;
  exited: Promise<void>;
}

interface Pending {
  slot: Slot;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * The server's search threads: `size` workers (search-worker.ts), started on the first search.
 * Each search goes to the worker with the fewest in flight, with the writer's last committed
 * sequence number and manifest generation, so the worker's read-only collection refreshes up to
 * them first (read-your-writes). Writes, flush and compact stay with the main thread's writer;
 * the event loop only parses, dispatches and serializes, so health checks and writes are not
 * blocked by searches.
 */
export class SearchPool {
  private slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;

  constructor(readonly size: number, private readonly data: SearchWorkerData) {}

  /** Workers running now (0 before the first search). */
  get threads(): number { return this.slots.length; }

  /** Runs `job` on `name` on a worker once it has applied write `upTo` (and manifest `generation`). */
  search(name: string, job: SearchJob, upTo: number, generation: number): Promise<SearchAnswer[]> {
    const slot = this.pick();
    return this.send(slot, (id) => ({ type: 'search', id, name, job, upTo, generation })) as Promise<SearchAnswer[]>;
  }

  /** Closes `name` in every worker (a dropped collection); they open it again on their next search. */
  async drop(name: string): Promise<void> {
    await Promise.allSettled(this.slots.map((slot) => this.send(slot, (id) => ({ type: 'close', id, name }))));
  }

  /** Lets every worker close its collections and end; waits until they have. */
  async close(): Promise<void> {
    this.closing = true;
    const slots = this.slots;
    this.slots = [];
    for (const s of slots) s.worker.postMessage({ type: 'shutdown' } satisfies SearchWorkerRequest);
    const timeout = (s: Slot) => new Promise<void>((resolve) => {
      const t = setTimeout(() => { void s.worker.terminate().then(() => resolve()); }, 10_000);
      void s.exited.then(() => { clearTimeout(t); resolve(); });
    });
    await Promise.all(slots.map(timeout));
  }

  private pick(): Slot {
    if (this.closing) throw new QuiverError('CLOSED', 'the server is shutting down', {});
    while (this.slots.length < this.size) this.slots.push(this.spawn());
    let best = this.slots[0];
    for (const s of this.slots) if (s.inFlight < best.inFlight) best = s;
    return best;
  }

  private send(slot: Slot, make: (id: number) => SearchWorkerRequest): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { slot, resolve, reject });
      slot.inFlight++;
      slot.worker.postMessage(make(id));
    });
  }

  private spawn(): Slot {
    const worker = startWorker(this.data);
    const slot: Slot = { worker, inFlight: 0, exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    worker.on('message', (m: SearchWorkerReply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      p.slot.inFlight--;
      if (m.ok) p.resolve(m.value);
      else p.reject(new QuiverError(m.error.code as QuiverErrorCode, m.error.message, m.error.details));
    });
    const fail = (why: string) => {
      // a thread that died takes its searches with it; the next search starts a new one
      this.slots = this.slots.filter((s) => s !== slot);
      for (const [id, p] of this.pending) {
        if (p.slot !== slot) continue;
        this.pending.delete(id);
        p.reject(new QuiverError('INTERNAL', `a search thread stopped: ${why}`, {}));
      }
    };
    worker.on('error', (e) => fail(e.message));
    worker.on('exit', (code) => fail(`exit code ${code}`));
    return slot;
  }
}

/**
 * Starts a search worker from the compiled search-worker.js next to this file, or, running from
 * the TypeScript sources (tests, under tsx), from search-worker.ts: Node 20 resolves a worker's
 * entry before `--import` hooks run in it (ERR_UNKNOWN_FILE_EXTENSION for .ts), so the worker first
 * registers tsx and then imports the entry.
 */
function startWorker(data: SearchWorkerData): Worker {
  const fromTs = import.meta.url.endsWith('.ts');
  const entry = new URL(fromTs ? './search-worker.ts' : './search-worker.js', import.meta.url);
  // the server's own options are not the worker's: `node --input-type=module -e ...` (a server
  // started from a script string) would make a file entry fail with ERR_INPUT_TYPE_NOT_ALLOWED
  const execArgv = process.execArgv.filter((a, i, all) => !/^--(input-type|eval|print)\b|^-[ep]$/.test(a) && !/^(-e|-p|--eval|--print)$/.test(all[i - 1] ?? ''));
  if (!fromTs) return new Worker(entry, { workerData: data, execArgv });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}
