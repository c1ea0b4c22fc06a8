import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// Smoke run of the memory benchmark (bench/memory.ts --smoke: 20,000 GloVe rows, one round):
// it must run, import and reopen the same collection, and report consistent numbers. RSS figures
// are not asserted (they belong to the benchmark); what each run holds is.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('bench/memory.ts --smoke', () => {
  it('measures RSS growth of an import + seal and of a fresh open of the same collection', async () => {
    assert.ok(existsSync(join(ROOT, 'dist', 'node.js')), 'the benchmark imports the built package: run `npm run build` first');
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', 'bench/memory.ts', '--smoke'], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, so, se) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout: so, stderr: se });
      });
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^\| Flat,SQ8,Rerank \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/m);
    const report = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', 'memory.json'), 'utf8'));
    const [spec] = report.report;
    assert.equal(spec.spec, 'Flat,SQ8,Rerank');
    const [imp] = spec.imports, [open] = spec.opens;
    assert.equal(imp.rows, 20000);
    assert.equal(open.rows, 20000);
    // the same collection: the same index in memory, and only its codes in kernel memory after the import
    assert.equal(imp.indexBytes, open.indexBytes);
    assert.ok(imp.kernelMemoryBytes < 20000 * 100 * 4, `kernel memory ${imp.kernelMemoryBytes} B after import: the float32 vectors were not given back`);
  });
});
