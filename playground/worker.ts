// The playground's dedicated Worker: the engine runs here, off the page's main thread. It fetches
// the snapshots built in Node (make-data.ts), opens them read-only with Collection.openSnapshot,
// answers searches, and measures recall against latency. Messages: { id, cmd, args } in,
// { id, ok, value | error } out, plus { progress } lines while a measurement runs.
import { Collection, isQuiverError, wasmSimdSupported, type Hit } from '../src/index.js';
import {
  TEXT_KEY,
  type CollectionFacts, type InitResult, type MeasureArgs, type MeasurePoint, type MeasureResult, type PlaygroundManifest,
  type Reply, type Request, type ResultHit, type SearchArgs, type SearchParams, type SearchResult,
} from './protocol.js';

let manifest: PlaygroundManifest | undefined;
/** Opened collections by key (an index spec of the GloVe words, or TEXT_KEY), opened once. */
const opened = new Map<string, Promise<{ collection: Collection; facts: CollectionFacts }>>();

function post(reply: Reply): void {
  self.postMessage(reply);
}

function fileOf(key: string): { file: string; bytes: number } {
  if (!manifest) throw new Error('the data manifest is not loaded');
  if (key === TEXT_KEY) return manifest.text;
  const s = manifest.glove.snapshots.find((x) => x.spec === key);
  if (!s) throw new Error(`no snapshot for "${key}"`);
  return s;
}

function flatKey(): string {
  return manifest!.glove.snapshots[0].spec;
}

async function openCollection(key: string): Promise<{ collection: Collection; facts: CollectionFacts }> {
  let p = opened.get(key);
  if (!p) {
    p = (async () => {
      const { file } = fileOf(key);
      const t0 = performance.now();
      const r = await fetch(`./data/${file}`);
      if (!r.ok) throw new Error(`GET data/${file}: ${r.status} ${r.statusText}`);
      const bytes = new Uint8Array(await r.arrayBuffer());
      const t1 = performance.now();
      const collection = await Collection.openSnapshot(bytes);
      const t2 = performance.now();
      const s = collection.stats();
      const facts: CollectionFacts = {
        key, index: s.index, count: s.count, dimension: s.dimension, metric: s.metric, kernels: s.kernels, segments: s.segments,
        indexBytes: s.indexBytes, vectorBytes: s.vectorBytes, snapshotBytes: bytes.length, fetchMs: t1 - t0, openMs: t2 - t1,
      };
      return { collection, facts };
    })();
    opened.set(key, p);
    p.catch(() => opened.delete(key)); // a failed open can be tried again
  }
  return p;
}

/** The stored (unit) vector of a word, from the exact collection; null when it is not a word of the collection. */
async function wordVector(word: string): Promise<Float32Array | null> {
  const { collection } = await openCollection(flatKey());
  const [rec] = collection.getMany([word], { includeMetadata: false });
  return rec ? rec.vector : null;
}

/** The k nearest words to `word` (itself left out): k + 1 searched, the query word dropped. */
async function neighbours(c: Collection, word: string, vector: Float32Array, k: number, params: SearchParams): Promise<Hit[]> {
  const hits = await c.search(vector, { k: k + 1, includeMetadata: false, ...params });
  return hits.filter((h) => h.id !== word).slice(0, k);
}

/** The JS heap the worker uses, where the browser tells (Chromium's non-standard performance.memory). */
function workerHeap(): number | null {
  const m = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  return m ? m.usedJSHeapSize : null;
}

async function search({ key, query, k, params }: SearchArgs): Promise<SearchResult> {
  const { collection, facts } = await openCollection(key);
  if (key === TEXT_KEY) {
    const t0 = performance.now();
    const hits = await collection.search({ text: query, k });
    const ms = performance.now() - t0;
    const out: ResultHit[] = hits.map((h) => ({
      id: h.id, score: h.score,
      text: String(h.metadata?.text ?? ''), chapter: String(h.metadata?.chapter ?? ''), title: String(h.metadata?.title ?? ''),
    }));
    return { ok: true, hits: out, ms, facts, workerHeapBytes: workerHeap() };
  }
  const word = query.trim().toLowerCase();
  if (!word) return { ok: false, message: 'type a word', facts };
  const vector = await wordVector(word);
  if (!vector) return { ok: false, message: `"${word}" is not one of the ${manifest!.glove.words.toLocaleString('en-US')} words of this collection`, facts };
  const t0 = performance.now();
  const hits = await neighbours(collection, word, vector, k, params);
  const ms = performance.now() - t0;
  return { ok: true, hits: hits.map((h) => ({ id: h.id, score: h.score })), ms, facts, workerHeapBytes: workerHeap() };
}

/** The settings swept for one approximate spec. */
function sweep(spec: string, mode: MeasureArgs['mode']): { setting: SearchParams; label: string }[] {
  if (mode === 'recall') return [0.8, 0.9, 0.95, 0.98, 0.99].map((recall) => ({ setting: { recall }, label: `recall ${recall}` }));
  if (spec.startsWith('HNSW')) return [16, 32, 64, 128, 256].map((ef) => ({ setting: { ef }, label: `ef ${ef}` }));
  if (spec.startsWith('IVF')) return [1, 2, 4, 8, 16, 32, 64].map((nprobe) => ({ setting: { nprobe }, label: `nprobe ${nprobe}` }));
  return [{ setting: {}, label: 'default' }];
}

/** Timed passes over every setting of a spec; a setting's latency is the median of its passes' means. */
const ROUNDS = 3;

/**
 * Recall@k against Flat and mean latency, for each approximate spec at each setting of the sweep:
 * the first `queries` sample words, each searched alone and timed alone (performance.now() around
 * one search call). Per spec: one untimed pass over every setting to warm it up, then ROUNDS
 * passes, each over every setting in turn, so that a pause of the machine lands on one pass of a
 * setting, not on all of them.
 */
async function measure({ queries, k, mode, specs }: MeasureArgs): Promise<MeasureResult> {
  const t0 = performance.now();
  const words = manifest!.glove.sample.slice(0, queries);
  if (words.length === 0) throw new Error('no sample words');
  post({ progress: `opening ${flatKey()} ...` });
  const { collection: flat, facts: flatFacts } = await openCollection(flatKey());
  const vectors: Float32Array[] = [];
  for (const w of words) {
    const v = await wordVector(w);
    if (!v) throw new Error(`sample word "${w}" is missing from the collection`);
    vectors.push(v);
  }

  /** One pass: every word searched and timed alone; the ids found and the mean ms per search. */
  const pass = async (c: Collection, params: SearchParams): Promise<{ ids: string[][]; ms: number }> => {
    const ids: string[][] = [];
    let total = 0;
    for (let i = 0; i < words.length; i++) {
      const s = performance.now();
      const hits = await neighbours(c, words[i], vectors[i], k, params);
      total += performance.now() - s;
      ids.push(hits.map((h) => h.id));
    }
    return { ids, ms: total / words.length };
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  post({ progress: `${flatKey()}: exact top ${k} of ${words.length} words ...` });
  await pass(flat, {}); // warm-up
  const truth = await pass(flat, {});
  const flatMs = [truth.ms];
  for (let r = 1; r < ROUNDS; r++) flatMs.push((await pass(flat, {})).ms);

  const series: MeasureResult['series'] = [];
  for (const spec of specs) {
    post({ progress: `opening ${spec} ...` });
    const { collection, facts } = await openCollection(spec);
    const settings = sweep(spec, mode);
    const recall: number[] = [];
    const ms: number[][] = settings.map(() => []);
    for (let round = -1; round < ROUNDS; round++) {
      for (const [i, s] of settings.entries()) {
        post({ progress: `${spec}: ${round < 0 ? 'warm-up' : `pass ${round + 1}/${ROUNDS}`}, ${s.label} ...` });
        const run = await pass(collection, s.setting);
        if (round < 0) continue;
        ms[i].push(run.ms);
        if (round > 0) continue;
        let found = 0, wanted = 0;
        run.ids.forEach((ids, q) => {
          const want = new Set(truth.ids[q]);
          wanted += want.size;
          for (const id of ids) if (want.has(id)) found++;
        });
        recall[i] = found / wanted;
      }
    }
    const points: MeasurePoint[] = settings.map((s, i) => ({ setting: s.setting, label: s.label, recall: recall[i], ms: median(ms[i]) }));
    series.push({ spec, indexBytes: facts.indexBytes, points });
  }
  return { k, queries: words.length, mode, flat: { spec: flatKey(), ms: median(flatMs), indexBytes: flatFacts.indexBytes }, series, seconds: (performance.now() - t0) / 1000 };
}

async function init(): Promise<InitResult> {
  const r = await fetch('./data/manifest.json', { cache: 'no-store' });
  if (!r.ok) throw new Error(`GET data/manifest.json: ${r.status} (run \`npm run playground\`, which builds the data)`);
  manifest = (await r.json()) as PlaygroundManifest;
  return { manifest, simd: wasmSimdSupported(), crossOriginIsolated: (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated === true };
}

async function run(req: Request): Promise<unknown> {
  switch (req.cmd) {
    case 'init': return init();
    case 'open': return (await openCollection(req.args.key)).facts;
    case 'search': return search(req.args);
    case 'measure': return measure(req.args);
  }
}

// one request at a time, in order: a search never overlaps a measurement's timings
let queue: Promise<unknown> = Promise.resolve();
self.onmessage = (ev: MessageEvent<Request>) => {
  const req = ev.data;
  queue = queue.then(async () => {
    try {
      post({ id: req.id, ok: true, value: await run(req) });
    } catch (e) {
      post({ id: req.id, ok: false, error: { code: isQuiverError(e) ? e.code : null, message: e instanceof Error ? e.message : String(e) } });
    }
  });
};
