import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// Importing the report type makes `npm run typecheck` check bench/storage.ts as well.
import type { StorageReport } from '../bench/storage.js';

// Smoke run of the storage benchmark (bench/storage.ts --smoke): durable import, reopen and group
// commit must run and give real results, with or without the peers (lancedb, vectra) installed in
// bench/node_modules. Timings are not asserted (performance lives in the benchmark, not in tests);
// counts, recall and the number of WAL syncs are.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/storage.ts --smoke', () => {
  it('imports a slice of MS MARCO durably, reopens it, shares WAL syncs between concurrent writers', async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'node.js')), 'the benchmark imports the built package: run `npm run build` first');
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-storage-smoke-'));
    try {
      const out = join(dir, 'report.json');
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['--import', 'tsx', 'bench/storage.ts', '--smoke', '--out', out], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
        });
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^### Import with durable commits: msmarco-use512, 3,000 x 512, batches of 500, each awaited$/m);
      assert.match(stdout, /^### Open: close, then open \+ first search on a fresh handle$/m);
      assert.match(stdout, /^### Group commit: 300 single-record upserts \(msmarco-use512, d = 512\)/m);

      const report = JSON.parse(await readFile(out, 'utf8')) as StorageReport;
      assert.equal(report.smoke, true);
      assert.ok(report.diskSyncMs.p50 > 0);
      assert.equal(report.datasets.length, 1);
      const ds = report.datasets[0];
      assert.deepEqual([ds.name, ds.n, ds.d, ds.queries], ['msmarco-use512', 3000, 512, 5]);

      const ours = ds.results.find((r) => r.engine.startsWith('quiverdb'));
      assert.ok(ours, ds.results.map((r) => r.engine).join(', '));
      assert.equal(ours.rows, 3000);
      assert.equal(ours.batches, 6);
      assert.equal(ours.stopped, undefined);
      assert.equal(ours.recall, 1, 'exact Flat search must match brute force');
      assert.deepEqual([ours.open?.rows, ours.open?.recall], [3000, 1], 'the reopened collection holds every acknowledged row');
      // sealed: the vectors are in files, not only in memory
      assert.ok(ours.diskBytes >= 3000 * 512 * 4, `${ours.diskBytes} bytes on disk`);
      assert.ok(ours.importSeconds > 0 && ours.vectorsPerSecond > 0 && ours.open!.totalMs > 0);

      // a peer is either measured (and then its import is real) or named as skipped
      for (const peer of ['@lancedb/lancedb', 'vectra']) {
        const label = peer === 'vectra' ? 'vectra' : 'lancedb';
        const measured = ds.results.filter((r) => r.engine.startsWith(label));
        assert.ok(measured.length > 0 || report.skipped.some((s) => s.startsWith(peer)), peer);
        for (const r of measured) {
          assert.equal(r.rows, 3000, `${r.engine} rows`);
          assert.ok(r.recall >= 0.99 && r.open!.recall >= 0.99, `${r.engine} recall ${r.recall} / ${r.open!.recall}`);
          assert.ok(r.quiverSpeedup! > 0);
        }
      }

      // group commit: one writer at a time gets one sync per write; 8 writers share syncs
      const gc = report.groupCommit!;
      assert.deepEqual(gc.results.map((r) => [r.concurrency, r.writes]), [[1, 300], [8, 300]]);
      const [alone, eight] = gc.results;
      assert.equal(alone.walSyncs, 300, 'a lone writer waits for its own sync every time');
      assert.ok(eight.walSyncs > 0 && eight.walSyncs <= 150, `8 writers used ${eight.walSyncs} syncs for 300 writes`);
      assert.ok(eight.recordsPerSync >= 2);

      // the benchmark removes its temporary directory (it names it on stderr)
      const tmp = /^temp directory (\S+);/m.exec(stderr)?.[1];
      assert.ok(tmp, stderr);
      assert.equal(existsSync(tmp), false, `${tmp} was left behind`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
