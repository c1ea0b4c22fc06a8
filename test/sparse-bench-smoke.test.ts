import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DATA_DIR } from './helpers/data.js';

// bench/sparse.ts runs end to end on a small scale (it also asserts MaxScore == brute force).
const HAVE_DATA = existsSync(join(DATA_DIR, 'splade', 'topics.dl19-passage.splade-v3.tsv.gz'));

describe('bench/sparse.ts smoke', { skip: HAVE_DATA ? false : '../shared/data/splade is absent' }, () => {
  it('prints the table for 2 copies, 20 queries, 1 pass', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'bench/sparse.ts', '--copies', '2', '--queries', '20', '--repeat', '1'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\| 2 permuted copies = 13960 \| exact MaxScore \| 1\.000 \|/);
    const approx = /\| 2 permuted copies = 13960 \| approx \(defaults[^|]*\| ([0-9.]+) \|/.exec(r.stdout);
    assert.ok(approx && Number(approx[1]) >= 0.9, r.stdout);
  });
});
