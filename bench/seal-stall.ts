/**
 * Event-loop gaps while a segment seals (issue 8: "building never stalls writes or searches for
 * seconds"): GloVe-100 (all 341,479 words, L2-normalised) upserted into a collection that does not
 * seal on its own, then `flush()` seals them into one segment and builds its index, while a 10 ms
 * timer ticks; prints the flush time and the five longest gaps between ticks (what a health check,
 * a search or a write arriving then would wait at most, beyond its own work).
 *
 *   node --import tsx bench/seal-stall.ts [--specs "IVF,SQ8,Rerank;HNSW16,RaBitQ4,Rerank"] [--rows N]
 *
 * Reads the engine from src/ (through tsx): the checkout as it is.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collection } from '../src/index.js';
import { loadWinkGlove } from '../src/node/readers.js';
import '../src/node.js';
import { fail, normaliseRows, optionValue, positiveInt, runMain } from './common.js';

async function main(): Promise<void> {
  let specs = ['IVF,SQ8,Rerank', 'HNSW16,RaBitQ4,Rerank'];
  let limit = Infinity;
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => optionValue(argv, i++, a);
    if (a === '--specs') specs = v().split(';');
    else if (a === '--rows') limit = positiveInt(v(), a);
    else fail(`unknown option ${a}`);
  }
  const g = await loadWinkGlove();
  const d = g.dimension, n = Math.min(g.count, limit);
  const data = g.data.slice(0, n * d);
  normaliseRows(data, n, d);
  for (const spec of specs) {
    const dir = mkdtempSync(join(tmpdir(), 'quiver-seal-stall-'));
    try {
      const c = await Collection.open(dir, { schema: { dimension: d, metric: 'cosine', index: spec }, sealRows: n + 1, autoMerge: false });
      for (let s = 0; s < n; s += 10000) {
        await c.upsert(Array.from({ length: Math.min(10000, n - s) }, (_, i) => ({ id: String(s + i), vector: data.subarray((s + i) * d, (s + i + 1) * d) })));
      }
      const gaps: number[] = [];
      let last = performance.now();
      const timer = setInterval(() => { const t = performance.now(); gaps.push(t - last); last = t; }, 10);
      const t0 = performance.now();
      await c.flush();
      clearInterval(timer);
      gaps.sort((a, b) => b - a);
      console.log(`${spec}: ${n} rows sealed in ${((performance.now() - t0) / 1000).toFixed(1)} s; longest gaps between 10 ms ticks: ${gaps.slice(0, 5).map((x) => x.toFixed(0)).join(', ')} ms`);
      await c.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

await runMain('bench/seal-stall', main);
