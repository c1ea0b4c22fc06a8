import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// Importing the report type makes `npm run typecheck` check bench/server.ts as well.
import type { ServerReport } from '../bench/server.js';

// Smoke run of the server benchmark (bench/server.ts --smoke): load at two concurrency levels
// through autocannon (or the built-in driver when bench/node_modules lacks it), the library
// baseline, and a soak with two SIGKILLs that must lose no acknowledged write. Timings are not
// asserted; that every request succeeded and nothing acknowledged was lost is.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/server.ts --smoke', () => {
  it('drives searches, upserts and a mix over HTTP, and survives SIGKILLs without losing a write', async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'server', 'index.js')), 'the benchmark runs the built package: run `npm run build` first');
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-server-smoke-'));
    try {
      const out = join(dir, 'report.json');
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', 'bench/server.ts', '--smoke', '--out', out], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
        });
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^### msmarco-use512: 2,000 x 512, HNSW16,SQ8,Rerank, k = 10, recall target 0\.95$/m);
      assert.match(stdout, /^### Soak \(msmarco-use512\): 2 SIGKILLs under 8 concurrent writers$/m);
      const report = JSON.parse(await readFile(out, 'utf8')) as ServerReport;
      assert.equal(report.smoke, true);
      const ds = report.datasets[0];
      assert.deepEqual([ds.name, ds.n, ds.d], ['msmarco-use512', 2000, 512]);
      assert.ok(ds.library.queries > 0 && ds.http.requests > 0);
      assert.deepEqual(ds.load.map((r) => `${r.scenario} ${r.connections}`), ['search 1', 'search 4', 'mix 90/10 1', 'mix 90/10 4', 'upsert 1', 'upsert 4']);
      for (const r of ds.load) {
        assert.ok(r.result.requests > 0, `${r.scenario} x${r.connections}: no request completed`);
        assert.equal(r.result.non2xx, 0, `${r.scenario} x${r.connections}`);
        assert.equal(r.result.errors, 0, `${r.scenario} x${r.connections}`);
        assert.ok(r.health.samples > 0 && r.health.failed === 0);
      }
      assert.equal(report.soak?.kills, 2);
      assert.equal(report.soak?.lost, 0);
      assert.ok((report.soak?.acknowledgedRecords ?? 0) > 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
