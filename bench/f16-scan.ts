// F16 vs F32 flat scan per query (bench/README-quant.md, "Addendum: F16 scans").
// Run from the repo root: node --import tsx bench/f16-scan.ts [datasets] [rounds] label=kernels.wasm ...
// argv: datasets (glove, msmarco, or msmarco:N for its first N rows), rounds, then label=kernels.wasm pairs for the F16 rows.
import { readFileSync } from 'node:fs';
import { WasmMemory } from '../src/kernels/memory.js';
import type { Kernels } from '../src/kernels/types.js';
import { createQuantizer } from '../src/quant/registry.js';
import { FlatQuantizedIndex } from '../src/index/flat-quantized.js';
import { flatSearch } from '../src/index/flat.js';
import { VectorStore } from '../src/index/vector-store.js';
import { loadWinkGlove, readVectorFile } from '../src/node/readers.js';

function kernelsFrom(file: string): Kernels { // the module of a given build, bound as src/kernels/wasm.ts does
  const ex = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(file)), { env: { abort() { throw new Error('abort'); } } }).exports as Record<string, unknown>;
  const k: Record<string, unknown> = { name: 'wasm-simd', memory: new WasmMemory(ex.memory as WebAssembly.Memory, (ex.heapBase as () => number)()) };
  for (const [name, f] of Object.entries(ex)) if (typeof f === 'function' && name !== 'heapBase') k[name] = f;
  return k as unknown as Kernels;
}

async function dataset(name: string): Promise<{ base: Float32Array; n: number; d: number; queries: Float32Array; nq: number }> {
  if (name === 'glove') { // all 341,479 rows, L2-normalised; queries: 100 base rows (every 3371st)
    const g = await loadWinkGlove(), d = g.dimension, n = g.count, base = g.data;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += base[i * d + j] ** 2;
      for (let j = 0; j < d; j++) base[i * d + j] /= Math.sqrt(s) || 1;
    }
    const nq = 100, queries = new Float32Array(nq * d);
    for (let i = 0; i < nq; i++) queries.set(base.subarray(((i * 3371) % n) * d, ((i * 3371) % n + 1) * d), i * d);
    return { base, n, d, queries, nq };
  }
  const b = await readVectorFile('../shared/data/msmarco-use512/base.f16.npy');
  const q = await readVectorFile('../shared/data/msmarco-use512/query.fvecs');
  const n = Math.min(b.count, Number(name.split(':')[1] ?? b.count)), nq = n < 20000 ? 400 : 100;
  return { base: b.data.subarray(0, n * b.dimension), n, d: b.dimension, queries: q.data.subarray(0, nq * b.dimension), nq };
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const [sets = 'glove,msmarco,msmarco:7700', rounds = '9', ...builds] = process.argv.slice(2);
for (const set of sets.split(',')) {
  const { base, n, d, queries, nq } = await dataset(set);
  const rows: { label: string; search: (q: Float32Array) => number; wall: number[]; cpu: number[] }[] = [];
  const kernels = builds.map((b) => ({ label: b.split('=')[0], k: kernelsFrom(b.split('=')[1]) }));
  const store = new VectorStore(kernels[0].k, d, false); // F32: the exact scan (dotMany + topkPush)
  let off = 0;
  store.appendFilled(n, (dest) => { dest.set(new Uint8Array(base.buffer, base.byteOffset + off, dest.length)); off += dest.length; });
  rows.push({ label: 'F32 flatSearch', search: (q) => flatSearch(store, 'dot', q, 1, 10).ords[0], wall: [], cpu: [] });
  for (const { label, k } of kernels) { // F16: FlatQuantizedIndex over F16 codes (dotManyF16 + topkPush)
    const quant = createQuantizer('F16', { dimension: d, metric: 'dot', kernels: k });
    quant.train(base.subarray(0, 1000 * d), 1000);
    const index = new FlatQuantizedIndex(quant, n);
    index.add(base, n);
    rows.push({ label: `F16 ${label}`, search: (q) => index.searchBatch(q, 1, 10).ords[0], wall: [], cpu: [] });
  }
  const query = (i: number) => queries.subarray(i * d, (i + 1) * d);
  let agree = 0;
  for (let i = 0; i < nq; i++) if (rows.every((r) => r.search(query(i)) === rows[0].search(query(i)))) agree++; // also warms up
  for (let round = 0; round < Number(rounds); round++) {
    for (let t = 0; t < rows.length; t++) { // rotate the order every round
      const r = rows[(t + round) % rows.length];
      const c0 = process.cpuUsage(), t0 = performance.now();
      for (let i = 0; i < nq; i++) r.search(query(i));
      const wall = performance.now() - t0, cpu = process.cpuUsage(c0);
      r.wall.push(wall / nq);
      r.cpu.push((cpu.user + cpu.system) / 1000 / nq);
    }
  }
  console.log(`\n${set}: ${n} x ${d}, ${nq} queries x ${rounds} rounds, k = 10, same top-1 on ${agree}/${nq}`);
  console.log('| scan | p50 ms/query | best round | CPU ms/query | QPS (p50) |\n|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.label} | ${median(r.wall).toFixed(3)} | ${Math.min(...r.wall).toFixed(3)} | ${median(r.cpu).toFixed(3)} | ${(1000 / median(r.wall)).toFixed(0)} |`);
}
