import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
// Importing the report type makes `npm run typecheck` check bench/quant.ts as well.
import type { QuantReport } from '../bench/quant.js';

// Smoke run of the quantizer quality harness: it must run end to end on a real set and report
// self-consistent numbers. Speeds are not asserted (performance lives in the benchmark).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/quant.ts smoke run', () => {
  it('measures SQ8 and RaBitQ1 on dense-hd (bge-large-1024), prints the table, writes the JSON report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'quiver-bench-quant-'));
    try {
      const out = join(dir, 'report.json');
      const args = ['--import', 'tsx', 'bench/quant.ts', '--quick', '--sets', 'dense-hd', '--specs', 'SQ8,RaBitQ1,SQ3', '--queries', '20', '--out', out];
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
        });
      });
      assert.equal(code, 0, stderr);
      assert.match(stdout, /^### dense-hd\/bge-large-1024 \(1384 x 1024, 20 queries, k = 10\)$/m);
      assert.match(stdout, /^\| spec +\| B\/vec \| ratio \| ip err \|/m);
      const report = JSON.parse(await readFile(out, 'utf8')) as QuantReport;
      assert.equal(report.benchmark, 'quant');
      assert.deepEqual(report.datasets.map((d) => [d.name, d.n, d.d, d.queries]), [['dense-hd/bge-large-1024', 1384, 1024, 20]]);
      const bySpec = new Map(report.rows.map((r) => [r.spec, r]));
      const f32 = bySpec.get('f32')!, sq8 = bySpec.get('SQ8')!, rq = bySpec.get('RaBitQ1')!, bad = bySpec.get('SQ3')!;
      assert.equal(f32.recall.none, 1);
      assert.equal(sq8.bytesPerVector, 1024);
      assert.equal(sq8.compression, 4);
      assert.ok(sq8.recall.none! >= 0.95 && sq8.recall.x10! >= sq8.recall.none!, JSON.stringify(sq8.recall));
      assert.ok(sq8.ipRelError! > 0 && sq8.ipRelError! < 0.01);
      assert.equal(sq8.recall.bound, null);
      assert.ok(rq.recall.bound! >= 0.95 && rq.rerankedPerQuery.bound! >= 10, JSON.stringify(rq));
      assert.ok(rq.recall.x10! >= rq.recall.x2! && rq.recall.x2! >= rq.recall.none!);
      assert.match(bad.error ?? '', /^UNKNOWN_SPEC/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
