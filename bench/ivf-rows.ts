/**
 * IVF's exact path under a filter, against its masked probe (how src/index/ivf.ts chose
 * IVF_EXACT_SHARE): on GloVe-100, one IVF segment, masks of random rows leaving a fraction f of
 * them; per f, the index path (`search` with the other rows masked, `recall` target, as the
 * planner's 'index' path runs it) and `searchRows` (the matching rows' codes scored, the planner's
 * 'exact' path), one query at a time: mean ms per query (median of 3 interleaved passes) and
 * recall@10 against the exact top 10 among the matching rows. Also the rows an unfiltered probe
 * scans at the target, which exactRowLimit scales.
 *
 *   node --import tsx bench/ivf-rows.ts [--spec IVF,SQ8,Rerank] [--recall 0.95] [--queries 200] [--query-offset 500]
 *
 * Reads the engine's internals from src/ (through tsx), so it measures the checkout as it is.
 * The default query split (held-out words 500-699) is not the one bench/filter.ts reports (0-199).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Segment } from '../src/collection/segment.js';
import { Collection } from '../src/index.js';
import { newCounters, type SearchResultBatch } from '../src/index/types.js';
import { loadWinkGlove } from '../src/node/readers.js';
import '../src/node.js';
import { fail, normaliseRows, optionValue, runMain, seeded, seededSample } from './common.js';

const FRACTIONS = [0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2];

async function main(): Promise<void> {
  const args = { spec: 'IVF,SQ8,Rerank', recall: 0.95, queries: 200, offset: 500 };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i], v = () => optionValue(argv, i++, a);
    if (a === '--spec') args.spec = v();
    else if (a === '--recall') args.recall = Number(v());
    else if (a === '--queries') args.queries = Number(v());
    else if (a === '--query-offset') args.offset = Number(v());
    else fail(`unknown option ${a}`);
  }
  if (!args.spec.startsWith('IVF')) fail('--spec must be an IVF spec');
  const g = await loadWinkGlove();
  const { count, dimension: d } = g;
  const all = g.data.slice(0, count * d);
  normaliseRows(all, count, d);
  // the split of bench/ann.ts and bench/filter.ts: 1,000 held-out words (seed 20240611), the rest the base
  const held = seededSample(count, 1000, 20240611);
  const isQuery = new Uint8Array(count);
  for (const r of held) isQuery[r] = 1;
  const baseRows: number[] = [];
  for (let i = 0; i < count; i++) if (!isQuery[i]) baseRows.push(i);
  const n = baseRows.length;
  const qRows = Array.from(held.slice(args.offset, args.offset + args.queries));
  const nq = qRows.length;
  const queries = new Float32Array(nq * d);
  qRows.forEach((r, i) => queries.set(all.subarray(r * d, (r + 1) * d), i * d));

  const dir = mkdtempSync(join(tmpdir(), 'quiver-ivf-rows-'));
  try {
    const col = await Collection.open(dir, { schema: { dimension: d, metric: 'cosine', index: args.spec }, sealRows: n + 1, autoMerge: false });
    const t0 = performance.now();
    for (let s = 0; s < n; s += 10000) {
      const m = Math.min(10000, n - s);
      await col.upsert(Array.from({ length: m }, (_, i) => ({ id: String(s + i), vector: all.subarray(baseRows[s + i] * d, (baseRows[s + i] + 1) * d) })));
    }
    await col.flush();
    const snap = (col as unknown as { engine: { snapshot(): { segments: readonly Segment[]; release(): void } } }).engine.snapshot();
    const seg = snap.segments.find((s) => s.count === n);
    if (!seg || !seg.index.searchRows) fail(`${args.spec}: no single IVF segment with searchRows`);
    const index = seg.index;
    console.log(`GloVe-100 ${n} rows, ${index.description} built in ${((performance.now() - t0) / 1000).toFixed(1)} s; held-out words ${args.offset}..${args.offset + nq - 1}; recall target ${args.recall}\n`);
    const one = (q: number) => queries.subarray(q * d, (q + 1) * d);
    let scanned = 0;
    for (let q = 0; q < nq; q++) {
      const c = newCounters(1);
      index.search({ queries: one(q), nq: 1, k: 10, params: { recall: args.recall }, counters: c });
      scanned += c.scanned[0];
    }
    console.log(`unfiltered probe at recall ${args.recall}: ${Math.round(scanned / nq)} rows scanned per query; exactRowLimit ${index.exactRowLimit?.(10, { recall: args.recall })}\n`);
    console.log('| matching rows | share of the probe\'s rows | masked probe ms | recall | searchRows ms | recall | searchRows / probe |');
    console.log('|---:|---:|---:|---:|---:|---:|---:|');
    const rand = seeded(7);
    for (const f of FRACTIONS) {
      const list: number[] = [];
      const excluded = new Uint32Array(Math.ceil(n / 32)).fill(0xffffffff);
      for (let i = 0; i < n; i++) if (rand() < f) { list.push(i); excluded[i >>> 5] &= ~(1 << (i & 31)); }
      const rows = Uint32Array.from(list);
      // the truth: the exact top 10 among the matching rows, full vectors from the segment file
      const exact = seg.searchRows(queries, nq, 10, rows, rows.length);
      const truth = Array.from({ length: nq }, (_, q) => new Set(exact.ords.subarray(q * 10, q * 10 + exact.counts[q])));
      const recallOf = (res: SearchResultBatch[]) => {
        let h = 0;
        res.forEach((r, q) => { for (let i = 0; i < r.counts[0]; i++) if (truth[q].has(r.ords[i])) h++; });
        return h / (nq * 10);
      };
      const tIndex: number[] = [], tRows: number[] = [];
      let rIndex = 0, rRows = 0;
      for (let pass = 0; pass < 3; pass++) {
        const a: SearchResultBatch[] = [], b: SearchResultBatch[] = [];
        let ti = 0, tr = 0;
        for (let q = 0; q < nq; q++) {
          let t = performance.now();
          a.push(index.search({ queries: one(q), nq: 1, k: 10, excluded, params: { recall: args.recall, eligible: rows.length / n }, counters: newCounters(1) }));
          ti += performance.now() - t;
          t = performance.now();
          b.push(index.searchRows!({ queries: one(q), nq: 1, k: 10, params: { recall: args.recall }, counters: newCounters(1) }, rows, rows.length));
          tr += performance.now() - t;
        }
        tIndex.push(ti / nq); tRows.push(tr / nq);
        rIndex = recallOf(a); rRows = recallOf(b);
      }
      const med = (x: number[]) => x.sort((p, q) => p - q)[1];
      console.log(`| ${rows.length} (${(rows.length / n * 100).toFixed(1)}%) | ${(rows.length / (scanned / nq)).toFixed(2)} | ${med(tIndex).toFixed(3)} | ${rIndex.toFixed(3)} | ${med(tRows).toFixed(3)} | ${rRows.toFixed(3)} | ${(med(tRows) / med(tIndex)).toFixed(2)} |`);
    }
    snap.release();
    await col.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await runMain('bench/ivf-rows', main);
