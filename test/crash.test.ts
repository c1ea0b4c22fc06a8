import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Collection } from '../src/node.js';
import { applyOps, makeOps, rng, textFor, UNIVERSE, vectorFor, type CrashOp, type ModelEntry } from './helpers/crash-ops.mjs';

// Crashes for real (DESIGN.md habit 5): a child process writes in random batches, logging each
// acknowledged operation, and dies by SIGKILL at a random moment or at a named point inside
// flush and merge. The parent reopens the directory and checks that the state is exactly the
// effect of a prefix of the submitted operations that includes every acknowledged one: nothing
// acknowledged lost, nothing unacknowledged half-present (a batch is all or nothing).
// QUIVER_CRASH_CYCLES sets the number of kill cycles (CI: 100; `npm run stress:crash`: thousands).

const here = dirname(fileURLToPath(import.meta.url));
const child = join(here, 'helpers', 'crash-child.mjs');
const CYCLES = Number(process.env.QUIVER_CRASH_CYCLES ?? 100);
const FAULT_POINTS = [
  'seal:before-write', 'segment:mid-vectors', 'segment:before-metadata', 'seal:after-write',
  'manifest:before-rename', 'manifest:after-rename', 'merge:before-write', 'merge:after-write',
];
const root = mkdtempSync(join(tmpdir(), 'quiver-crash-'));
after(() => rmSync(root, { recursive: true, force: true }));

interface ChildRun { log: string[]; signal: NodeJS.Signals | null; code: number | null; stderr: string }

function runChild(dir: string, seed: number, ops: number, logFile: string, fault: string, hit: number, sealRows: number, killAfterMs: number | null, index: string): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(seed), String(ops), logFile, fault, String(hit), String(sealRows), index], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    // whatever happens, a child never outlives 20 s
    const guard = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.stderr.on('data', (b) => { stderr += b; });
    p.stdout.on('data', (b) => {
      if (killAfterMs !== null && String(b).includes('ready') && !timer) timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    });
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
      resolve({ log, signal, code, stderr });
    });
  });
}

/** Does the reopened collection hold exactly `model` (id -> version, update tag)? Returns a reason if not. */
function mismatch(col: Collection, model: Map<string, ModelEntry>): string | null {
  if (col.size !== model.size) return `size ${col.size} != model ${model.size}`;
  for (let i = 0; i < UNIVERSE; i++) {
    const id = `k${i}`;
    const want = model.get(id);
    if (col.has(id) !== (want !== undefined)) return `${id}: present ${col.has(id)}, model ${want !== undefined}`;
    if (want === undefined) continue;
    const rec = col.get(id);
    const meta = rec.metadata as { v: number; u?: number; t?: string };
    if (meta.v !== want.version) return `${id}: version ${meta.v}, model ${want.version}`;
    if (meta.t !== textFor(id, want.version)) return `${id}: text ${meta.t}, model ${textFor(id, want.version)}`;
    if (meta.u !== want.tag) return `${id}: update tag ${meta.u}, model ${want.tag}`;
    const v = vectorFor(id, want.version);
    for (let j = 0; j < v.length; j++) if (rec.vector[j] !== v[j]) return `${id}: vector differs at ${j}`;
  }
  return null;
}

function bruteForce(model: Map<string, ModelEntry>, q: Float32Array, k: number): string[] {
  const qn = Math.hypot(...q);
  return [...model].map(([id, { version }]) => {
    const v = vectorFor(id, version);
    let dot = 0, n = 0;
    for (let j = 0; j < v.length; j++) { dot += q[j] * v[j]; n += v[j] * v[j]; }
    return { id, s: dot / (qn * Math.sqrt(n)) };
  }).sort((a, b) => b.s - a.s).slice(0, k).map((h) => h.id);
}

// The exact index takes the full count; a compressed spec (codes written and loaded with every
// seal and merge) a fifth of it. Oversampling x10 on this small data makes its results exact.
const RUNS = [
  { index: 'Flat', cycles: CYCLES },
  { index: 'Flat,SQ8,Rerank10', cycles: Math.max(1, Math.round(CYCLES / 5)) },
  // a graph index: GRAPH and CODES sections written at every seal and merge, restored at open
  { index: 'HNSW8,SQ8,Rerank10', cycles: Math.max(1, Math.round(CYCLES / 5)) },
];

describe('crash safety with real process kills', () => {
  for (const { index, cycles: CYCLES_OF_RUN } of RUNS) it(`${index}: survives ${CYCLES_OF_RUN} SIGKILL cycles with no acknowledged write lost`, { timeout: Math.max(600_000, CYCLES_OF_RUN * 3000) }, async () => {
    const CYCLES = CYCLES_OF_RUN;
    const dir = join(root, `col-${index.replace(/[^A-Za-z0-9]/g, '_')}`);
    const r = rng(index === 'Flat' ? 20261125 : index.startsWith('HNSW') ? 20261127 : 20261126);
    const points = index === 'Flat' ? FAULT_POINTS : [...FAULT_POINTS, 'segment:after-codes'];
    let model = new Map<string, ModelEntry>();
    const stats = { cycles: 0, timerKills: 0, faultKills: 0, cleanExits: 0, ackedOps: 0, lostAcked: 0, droppedUnacked: 0, tornTails: 0, checks: 0 };
    const faultHits = new Map<string, number>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const seed = 1 + cycle;
      const nOps = 120;
      const ops: CrashOp[] = makeOps(seed, nOps);
      const mode = r();
      const fault = mode < 0.45 ? points[Math.floor(r() * points.length)] : '-';
      const hit = 1 + Math.floor(r() * 2);
      const killAfter = mode < 0.45 ? 3000 : mode < 0.92 ? Math.floor(r() * 150) : null;
      const sealRows = 10 + Math.floor(r() * 50);
      const logFile = join(root, `log-${index.length}-${cycle}.txt`);
      const run = await runChild(dir, seed, nOps, logFile, fault, hit, sealRows, killAfter, index);
      stats.cycles++;
      const killed = run.signal === 'SIGKILL';
      assert.ok(killed || run.code === 0, `cycle ${cycle}: child failed (code ${run.code}): ${run.stderr.slice(0, 2000)}`);
      const faulted = run.log.some((l) => l.startsWith('fault '));
      if (faulted) { stats.faultKills++; faultHits.set(fault, (faultHits.get(fault) ?? 0) + 1); } else if (killed) stats.timerKills++; else stats.cleanExits++;

      let lastAck = -1, lastBegun = -1;
      for (const line of run.log) {
        const [word, n] = line.split(' ');
        if (word === 'ack') lastAck = Math.max(lastAck, Number(n));
        if (word === 'begin') lastBegun = Math.max(lastBegun, Number(n));
      }
      // acknowledged ops: every write op at or before the last ack
      stats.ackedOps += ops.slice(0, lastAck + 1).filter((o) => o.kind === 'upsert' || o.kind === 'delete' || o.kind === 'update').length;

      const col = await Collection.open(dir);
      if (col.info().recovery.tornTail) stats.tornTails++;
      let accepted = -1;
      const reasons: string[] = [];
      for (let m = lastBegun + 1; m >= lastAck + 1; m--) {
        const candidate = applyOps(new Map(model), ops, m);
        const why = mismatch(col, candidate);
        if (why === null) { accepted = m; model = candidate; break; }
        reasons.push(`prefix ${m}: ${why}`);
      }
      if (accepted < 0) {
        stats.lostAcked++;
        assert.fail(`cycle ${cycle} (seed ${seed}, fault ${fault}, acked through op ${lastAck}, begun through ${lastBegun}): state matches no allowed prefix\n${reasons.slice(0, 5).join('\n')}`);
      }
      stats.droppedUnacked += lastBegun + 1 - accepted;
      // search sees the same records as the model
      if (model.size > 0) {
        const q = Float32Array.from({ length: 8 }, () => r() * 2 - 1);
        const k = Math.min(10, model.size);
        assert.deepEqual((await col.search(q, { k })).map((h) => h.id), bruteForce(model, q, k), `cycle ${cycle}: search`);
        // text search through the postings: an id's word finds that record alone, at its version
        const ids = [...model.keys()];
        for (let t = 0; t < 3; t++) {
          const id = ids[Math.floor(r() * ids.length)];
          const hits = await col.search({ text: id, k: 3 });
          assert.deepEqual(hits.map((h) => h.id), [id], `cycle ${cycle}: text search for ${id}`);
          assert.equal((hits[0].metadata as { t: string }).t, textFor(id, model.get(id)!.version));
        }
        const both = await col.search({ text: 'crash', k: model.size + 5 });
        assert.equal(both.length, model.size, `cycle ${cycle}: every live record holds "crash"`);
      }
      if (cycle % 10 === 0) assert.deepEqual((await col.verify()).problems, [], `cycle ${cycle}: verify`);
      stats.checks++;
      await col.close();
    }
    const summary = { ...stats, faultPointsHit: Object.fromEntries(faultHits) };
    console.log(`crash test (${index}): ${JSON.stringify(summary)}`);
    assert.equal(stats.lostAcked, 0);
    assert.ok(stats.timerKills + stats.faultKills >= Math.floor(CYCLES * 0.7), `kills ${stats.timerKills + stats.faultKills}`);
    if (CYCLES >= 50) assert.ok(faultHits.size >= 4, `fault points reached: ${[...faultHits.keys()]}`);
    if (index !== 'Flat') {
      const col = await Collection.open(dir, { readOnly: true });
      const sealed = col.info().segmentList.filter((s) => s.state === 'sealed');
      await col.close();
      assert.ok(sealed.length > 0, 'the compressed run left sealed segments');
      const want = index.startsWith('HNSW') ? 'HNSW8,SQ8' : 'SQ8';
      assert.ok(sealed.some((s) => s.index === want), `some segment holds ${want}: ${JSON.stringify(sealed)}`);
    }
  });
});
