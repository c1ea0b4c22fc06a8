// The dedicated Worker of the browser benchmark (bench/browser.ts): builds a collection from vectors
// fetched as raw f32 bytes, opens a Node-built snapshot, and times k-NN searches one query at a
// time (and as one batch call) on the WASM SIMD kernels. Answers { id, cmd, args } messages from
// bench-page.ts with { id, ok, value | error }. Bundled by build.mjs from the TypeScript sources.
import { Collection, MemoryDirectory, isQuiverError, wasmSimdSupported, type Hit, type Metric } from '../src/index.js';

const open = new Map<string, Collection>();
let queries: { data: Float32Array; nq: number; d: number } | undefined;

function get(key: string): Collection {
  const c = open.get(key);
  if (!c) throw new Error(`no open collection "${key}"`);
  return c;
}

async function fetchF32(url: string): Promise<Float32Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return new Float32Array(await r.arrayBuffer());
}

const commands: Record<string, (a: any) => Promise<unknown>> = {
  /** Upserts the n x d rows at `url` (ids v0..v{n-1}) into a durable MemoryDirectory, then flush(); the ms of both. */
  async build({ url, n, d, spec, metric, chunk }: { url: string; n: number; d: number; spec: string; metric: Metric; chunk: number }) {
    const base = await fetchF32(url);
    if (base.length !== n * d) throw new Error(`${url}: ${base.length} floats, expected ${n * d}`);
    const t0 = performance.now();
    const c = await Collection.open(new MemoryDirectory('bench'), { schema: { dimension: d, metric, index: spec }, kernels: 'wasm', buildThreads: 1 });
    for (let i = 0; i < n; i += chunk) {
      const recs = [];
      for (let j = i; j < Math.min(n, i + chunk); j++) recs.push({ id: `v${j}`, vector: base.subarray(j * d, (j + 1) * d) });
      await c.upsert(recs);
    }
    const t1 = performance.now();
    await c.flush();
    const t2 = performance.now();
    const segments = c.stats().segments;
    await c.close();
    return { upsertMs: t1 - t0, flushMs: t2 - t1, totalMs: t2 - t0, segments };
  },
  async queries({ url, nq, d }: { url: string; nq: number; d: number }) {
    const data = await fetchF32(url);
    if (data.length !== nq * d) throw new Error(`${url}: ${data.length} floats, expected ${nq * d}`);
    queries = { data, nq, d };
    return nq;
  },
  async openSnapshot({ key, url }: { key: string; url: string }) {
    const r = await fetch(url);
    if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
    const t0 = performance.now();
    const c = await Collection.openSnapshot(new Uint8Array(await r.arrayBuffer()), { kernels: 'wasm' });
    const ms = performance.now() - t0;
    open.set(key, c);
    const s = c.stats();
    return { count: s.count, segments: s.segments, kernels: s.kernels, index: s.index, openMs: ms };
  },
  /**
   * One untimed warm-up pass, then `repeat` passes of the loaded queries one at a time (each call
   * timed alone) and `repeat` batch calls of all of them; the ids of the first timed pass.
   */
  async bench({ key, k, repeat }: { key: string; k: number; repeat: number }) {
    const c = get(key);
    if (!queries) throw new Error('no queries loaded');
    const { data, nq, d } = queries;
    const qs = Array.from({ length: nq }, (_, i) => data.subarray(i * d, (i + 1) * d));
    for (const q of qs) await c.search(q, { k });
    const perQuery: number[] = [];
    let ids: string[][] = [];
    for (let r = 0; r < repeat; r++) {
      const pass: string[][] = [];
      for (const q of qs) {
        const t0 = performance.now();
        const hits = (await c.search(q, { k })) as Hit[];
        perQuery.push(performance.now() - t0);
        pass.push(hits.map((h) => h.id));
      }
      if (r === 0) ids = pass;
    }
    const batchMs: number[] = [];
    for (let r = 0; r < repeat; r++) {
      const t0 = performance.now();
      await c.search(qs, { k });
      batchMs.push(performance.now() - t0);
    }
    return { perQuery, batchMs, ids };
  },
  async close({ key }: { key: string }) {
    await get(key).close();
    open.delete(key);
    return null;
  },
};

self.onmessage = async (ev: MessageEvent<{ id: number; cmd: string; args: unknown }>) => {
  const { id, cmd, args } = ev.data;
  try {
    const fn = commands[cmd];
    if (!fn) throw new Error(`unknown command ${cmd}`);
    self.postMessage({ id, ok: true, value: await fn(args) });
  } catch (e) {
    const err = e as Error;
    self.postMessage({ id, ok: false, error: { code: isQuiverError(e) ? e.code : null, message: err?.message ?? String(e) } });
  }
};
self.postMessage({ ready: true, simd: wasmSimdSupported(), crossOriginIsolated: (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true });
