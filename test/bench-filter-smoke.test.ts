import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// Importing the report type makes `npm run typecheck` check bench/filter.ts as well.
import type { FilterReport } from '../bench/filter.js';

// Smoke run of the filtered-search benchmark (bench/filter.ts --smoke: 5,000 GloVe rows, 20
// queries, HNSW16,SQ8,Rerank, the three attribute kinds at the four selectivities). The benchmark
// code must run, write its JSON report, and the product must be right: the planner and the forced
// exact scan return only matching rows, the exact scan finds the true top 10, the planner's
// matched count agrees with the attributes (the script itself exits 1 otherwise). Timings and the
// planner/naive ratio are not asserted (performance lives in the benchmark, not in tests).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/filter.ts --smoke', () => {
  it('runs on a slice of GloVe, prints the table, writes the JSON report, exact strategy exact', { timeout: 60_000 }, async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'node.js')), 'the benchmark imports the built package: run `npm run build` first');
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-filter-smoke-'));
    try {
      const out = join(dir, 'filter.json');
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--expose-gc', '--import', 'tsx', 'bench/filter.ts', '--smoke', '--out', out], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
        });
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^### HNSW16,SQ8,Rerank: glove-100 5,000 x 100, cosine, 20 queries, k = 10, 1 pass/m);
      assert.match(stdout, /^\| attribute \| selectivity \| matched \| strategy \| path \/ k' \| QPS \| p50 ms \| p99 ms \| CPU ms \|/m);

      const report = JSON.parse(await readFile(out, 'utf8')) as FilterReport;
      assert.equal(report.mode, 'smoke');
      assert.equal(report.exposeGc, true);
      assert.deepEqual([report.dataset.name, report.dataset.n, report.dataset.d, report.dataset.queries], ['glove-100', 5000, 100, 20]);
      assert.deepEqual(report.builds.map((b) => [b.spec, b.segments]), [['HNSW16,SQ8,Rerank', 1]]);
      assert.equal(report.cells.length, 3 * 4);
      for (const c of report.cells) {
        const where = `${c.kind} ${c.selectivity}`;
        assert.ok(c.matched > 0 && c.matched < 5000, `${where}: matched ${c.matched}`);
        assert.deepEqual(c.strategies.map((s) => s.strategy), ['planner', 'exact', 'post-filter'], where);
        const [planner, exact, post] = c.strategies;
        assert.equal(exact.recall, 1, `${where}: exact recall`);
        assert.equal(planner.violations, 0, `${where}: planner returned non-matching rows`);
        assert.equal(exact.violations, 0, `${where}: exact returned non-matching rows`);
        // one segment, searched by one of the two paths (which one is the planner's business)
        assert.ok(planner.paths && planner.paths.exact + planner.paths.index === 1 && planner.paths.none === 0, `${where}: paths ${JSON.stringify(planner.paths)}`);
        assert.ok(post.k !== undefined && post.k >= 10 && post.k <= 10_000, `${where}: post-filter k ${post.k}`);
        for (const s of c.strategies) {
          assert.ok(s.recall >= 0 && s.recall <= 1, `${where} ${s.strategy}: recall ${s.recall}`);
          assert.ok(s.meanMs > 0 && s.p50Ms <= s.p99Ms && s.qps > 0, `${where} ${s.strategy}: timings`);
          assert.equal(s.passes.length, 1);
        }
        assert.ok(c.ratio > 0 && Number.isFinite(c.ratio), `${where}: ratio ${c.ratio}`);
      }
      // the cluster-aligned filters select whole (sub-)clusters
      assert.ok(report.cells.filter((c) => c.kind === 'cluster').every((c) => /sub-clusters in \d+ of \d+ clusters/.test(c.filter)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
