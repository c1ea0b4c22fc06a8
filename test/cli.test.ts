import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseFvecs } from '../src/io/vecs.js';
import { dataFile, readData } from './helpers/data.js';

// The `quiver` CLI, run from source (src/cli/main.ts through tsx) so a stale dist/ cannot hide a bug.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Run { code: number; stdout: string; stderr: string }

function quiver(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    delete env.QUIVER_KERNELS;
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** A usage or data error: exit code 2, one `error [CODE]: ...` line, structured details, no stack trace. */
function assertCliError(r: Run, code: string): void {
  assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
  assert.match(r.stderr, new RegExp(`^error \\[${code}\\]: `, 'm'), r.stderr);
  assert.match(r.stderr, /^details: \{.*\}$/m, r.stderr);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.equal(r.stdout, '');
}

const sift = (name: string) => dataFile('sift10k', name);

describe('quiver CLI', () => {
  it('--help lists the commands; --version prints it', async () => {
    const help = await quiver('--help');
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: quiver/m);
    assert.match(help.stdout, /^Commands:$/m);
    assert.match(help.stdout, /^\s+demo \[options\]/m);
    assert.match(help.stdout, /^\s+search \[options\] <\w+>/m);
    const searchHelp = await quiver('search', '--help');
    assert.equal(searchHelp.code, 0);
    for (const opt of ['--metric', '--queries', '--ground-truth', '--vector', '--json']) assert.ok(searchHelp.stdout.includes(opt), opt);
    const version = await quiver('--version');
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it('search SIFT10K with its ground truth reports recall@10 = 1 as JSON', async () => {
    const r = await quiver('search', sift('base.fvecs'), '--metric', 'l2', '--queries', sift('query.fvecs'),
      '--ground-truth', sift('groundtruth.ivecs'), '--k', '10', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { count: number; dimension: number; queries: number; recall: number; results: { id: string; score: number }[][] };
    assert.deepEqual([report.count, report.dimension, report.queries], [10000, 128, 100]);
    assert.equal(report.recall, 1);
    assert.equal(report.results[0].length, 10);
    // larger is closer: minus squared L2, non-increasing
    const scores = report.results[0].map((h) => h.score);
    assert.ok(scores.every((s, i) => s <= 0 && (i === 0 || s <= scores[i - 1])), String(scores));
  });

  it('search --vector with a base row finds that row at distance 0', async () => {
    const base = parseFvecs(readData('sift10k', 'base.fvecs'));
    const row = 4321;
    const csv = Array.from(base.data.subarray(row * 128, (row + 1) * 128)).join(',');
    const r = await quiver('search', sift('base.fvecs'), '--metric', 'l2', '--vector', csv, '--k', '3', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { results: { id: string; score: number }[][] };
    assert.equal(report.results[0][0].id, String(row));
    assert.equal(report.results[0][0].score, 0);
  });

  it('bad input exits with code 2 and `error [CODE]`', async () => {
    const cases: [string[], string][] = [
      [['search', join(dirname(sift('base.fvecs')), 'no-such-file.fvecs')], 'IO_ERROR'],
      [['search', sift('base.fvecs'), '--metric', 'manhattan'], 'INVALID_ARGUMENT'],
      [['search', sift('base.fvecs'), '--metric', 'l2', '--vector', '1,2,banana'], 'INVALID_VECTOR'],
      [['search', sift('base.fvecs'), '--metric', 'l2', '--vector', '1,2,3'], 'DIMENSION_MISMATCH'],
      [['search', sift('base.fvecs'), '--k', '0'], 'INVALID_ARGUMENT'],
      [['search', join(ROOT, 'README.md')], 'UNSUPPORTED_FORMAT'],
      [['search'], 'INVALID_ARGUMENT'],
      [['frobnicate'], 'INVALID_ARGUMENT'],
    ];
    const runs = await Promise.all(cases.map(([args]) => quiver(...args)));
    runs.forEach((r, i) => assertCliError(r, cases[i][1]));
    assert.match(runs[0].stderr, /"errno":"ENOENT"/);
    assert.match(runs[1].stderr, /cosine, dot, l2/);
  });

  it('demo over the 20,000 most frequent GloVe words with the default HNSW index: queen is near king, recall at its target', async () => {
    const r = await quiver('demo', 'king', 'paris', '--limit', '20000', '--recall-queries', '100', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      vectors: number; index: string; recallTarget: number;
      queries: { word: string; neighbours: { word: string; score: number }[] }[];
      recall: { k: number; queries: number; recall: number; meanScanned: number; exactQps: number };
    };
    assert.deepEqual([report.vectors, report.index, report.recallTarget], [20000, 'HNSW16,SQ4,Rerank', 0.95]);
    const king = report.queries.find((q) => q.word === 'king');
    assert.ok(king?.neighbours.some((n) => n.word === 'queen'), JSON.stringify(king?.neighbours));
    assert.ok(report.recall.recall >= 0.94, `recall ${report.recall.recall}`);
    assert.ok(report.recall.meanScanned < 20000 && report.recall.exactQps > 0);
  });

  it('demo with the exact Flat index: recall 1', async () => {
    const r = await quiver('demo', 'king', 'paris', '--index', 'Flat', '--limit', '20000', '--recall-queries', '100', '--json');
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as {
      vectors: number; dimension: number; index: string;
      queries: { word: string; neighbours: { word: string; score: number }[] }[];
      recall: { k: number; queries: number; recall: number };
    };
    assert.deepEqual([report.vectors, report.dimension, report.index], [20000, 100, 'Flat']);
    const king = report.queries.find((q) => q.word === 'king');
    assert.ok(king, 'king is reported');
    assert.equal(king.neighbours.length, 10);
    assert.ok(king.neighbours.some((n) => n.word === 'queen'), JSON.stringify(king.neighbours));
    assert.ok(!king.neighbours.some((n) => n.word === 'king'), 'the query word itself is left out');
    const paris = report.queries.find((q) => q.word === 'paris');
    assert.ok(paris?.neighbours.some((n) => n.word === 'france' || n.word === 'london'), JSON.stringify(paris?.neighbours));
    assert.deepEqual([report.recall.k, report.recall.queries, report.recall.recall], [10, 100, 1]);
  });
});
