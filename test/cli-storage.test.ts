import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Collection } from '../src/node.js';
import { dataFile } from './helpers/data.js';

// The storage commands of the `quiver` CLI on a real directory: create, import, info, search,
// verify (including a damaged file), compact, and LOCKED beside a live writer.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const tmp = mkdtempSync(join(tmpdir(), 'quiver-cli-storage-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

interface Run { code: number; stdout: string; stderr: string }
function quiver(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('quiver create / import / info / search / verify / compact', () => {
  const dir = join(tmp, 'sift');

  it('imports SIFT10K durably and finds the ground truth from the directory', async () => {
    const c = await quiver('create', dir, '--dimension', '128', '--metric', 'l2', '--field', 'label:keyword', '--field', 'tags:keyword[]', '--json');
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(JSON.parse(c.stdout).dimension, 128);
    assert.deepEqual(JSON.parse(c.stdout).fields, { label: 'keyword', tags: 'keyword[]' });
    const bad = await quiver('create', join(tmp, 'bad'), '--dimension', '4', '--field', 'x:vector');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /INVALID_ARGUMENT/);
    const imp = await quiver('import', dir, dataFile('sift10k', 'base.fvecs'), '--batch', '2500', '--json');
    assert.equal(imp.code, 0, imp.stderr);
    const report = JSON.parse(imp.stdout);
    assert.equal(report.vectors, 10000);
    assert.equal(report.count, 10000);
    assert.ok(report.vectorsPerSecond > 0);
    const info = await quiver('info', dir, '--json');
    assert.equal(info.code, 0, info.stderr);
    const i = JSON.parse(info.stdout);
    assert.equal(i.count, 10000);
    assert.deepEqual(i.fields, { label: 'keyword', tags: 'keyword[]' });
    assert.ok(i.segmentList.some((s: { state: string; rows: number }) => s.state === 'sealed' && s.rows > 0));
    const s = await quiver('search', dir, '--queries', dataFile('sift10k', 'query.fvecs'), '--ground-truth', dataFile('sift10k', 'groundtruth.ivecs'), '--k', '10', '--json');
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).recall, 1);
    const byId = await quiver('search', dir, '--id', '42', '--k', '1', '--json');
    assert.equal(JSON.parse(byId.stdout).results[0][0].id, '42');
    const text = await quiver('info', dir);
    assert.match(text.stdout, /records\s+10,000 live/);
  });

  it('verify passes, then names a damaged segment file with exit code 1', async () => {
    const ok = await quiver('verify', dir);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /every checksum matches/);
    const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
    const path = join(dir, seg);
    const original = readFileSync(path);
    const bad = Buffer.from(original);
    bad[Math.floor(bad.length / 2)] ^= 0x20;
    writeFileSync(path, bad);
    const v = await quiver('verify', dir);
    assert.equal(v.code, 1);
    assert.match(v.stdout, new RegExp(`DAMAGED .*${seg}`));
    writeFileSync(path, original);
  });

  it('compact merges into one segment; a second writer gets LOCKED', async () => {
    await quiver('import', dir, dataFile('sift10k', 'query.fvecs'), '--id-prefix', 'q', '--json');
    const c = await quiver('compact', dir, '--json');
    assert.equal(c.code, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).segmentsAfter, 1);
    const holder = await Collection.open(dir);
    try {
      const r = await quiver('compact', dir);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /^error \[LOCKED\]: .*process \d+/m);
      // readers still work beside the writer
      const info = await quiver('info', dir, '--json');
      assert.equal(JSON.parse(info.stdout).count, 10100);
    } finally {
      await holder.close();
    }
    const missing = await quiver('info', join(tmp, 'nope'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error \[NOT_FOUND\]/m);
  });
});
