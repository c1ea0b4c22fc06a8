import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// Importing the report type makes `npm run typecheck` check bench/exact.ts as well.
import type { ExactReport } from '../bench/exact.js';

// Smoke run of the exact-search benchmark (bench/exact.ts --smoke): the benchmark code must run
// and agree with itself, with or without the native peers installed in bench/node_modules.
// Timings are not asserted (performance lives in the benchmark, not in tests).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/exact.ts --smoke', () => {
  it('runs on a slice of MS MARCO, prints the table, writes the JSON report, all engines exact', async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'node.js')), 'the benchmark imports the built package: run `npm run build` first');
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-smoke-'));
    try {
      const out = join(dir, 'report.json');
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', 'bench/exact.ts', '--smoke', '--out', out], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
        });
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^### msmarco-use512: 4,000 x 512, cosine, 40 queries, k = 10$/m);
      assert.match(stdout, /^\| engine \| build s \| per query mean ms \|/m);

      const report = JSON.parse(await readFile(out, 'utf8')) as ExactReport;
      assert.equal(report.smoke, true);
      assert.equal(report.datasets.length, 1);
      const ds = report.datasets[0];
      assert.deepEqual([ds.name, ds.n, ds.d, ds.queries], ['msmarco-use512', 4000, 512, 40]);
      const names = ds.results.map((r) => r.engine);
      assert.ok(names.includes('quiverdb Flat (WASM SIMD)') && names.includes('quiverdb Flat (JS twin)'), names.join(', '));
      for (const r of ds.results) {
        assert.equal(r.recall, 1, `${r.engine} recall`);
        if (r.batch) assert.equal(r.batchRecall, 1, `${r.engine} batch recall`);
        assert.equal(r.perQuery.queries, 40);
        assert.ok(r.perQuery.meanMs > 0 && r.perQuery.p50Ms <= r.perQuery.p95Ms, `${r.engine} timings`);
      }
      // a peer is either measured or named as skipped
      for (const peer of ['usearch', 'hnswlib-node']) {
        assert.ok(names.some((n) => n.startsWith(peer)) || report.skipped.some((s) => s.startsWith(peer)), peer);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
