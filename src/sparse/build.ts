import { QuiverError } from '../errors.js';
import { createKernels } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { Rng } from '../math/rng.js';
import { bitsetWords } from '../util/bitset.js';
import { SeismicSparseIndex, type SparseApproxData, type SparseBuildParams, type SparseIndexData } from './sparse-index.js';
import { checkSparseVector, type SparseInput } from './types.js';

export interface SparseBuildOptions {
  /** Kernels (and memory) the index lives in; default createKernels(). */
  kernels?: Kernels;
  /** Postings kept per term in the approximate lists (default DEFAULT_BUILD.lambda). */
  lambda?: number;
  /** Blocks per term list = ceil(length * centroidFraction) (default DEFAULT_BUILD.centroidFraction). */
  centroidFraction?: number;
  /** Share of each block summary's mass kept (default DEFAULT_BUILD.summaryMass). */
  summaryMass?: number;
  /** Clusters larger than this are split, by the term's weight, into blocks of at most this many rows (default DEFAULT_BUILD.maxBlockSize). */
  maxBlockSize?: number;
  /** Segments with fewer rows get no approximate structures (searched exactly); default 1,000. */
  approxMinRows?: number;
  /** Seed of the centroid sampling (default 1): the same rows give the same index. */
  seed?: number;
}

/**
 * Build defaults. lambda, centroidFraction and summaryMass follow the Seismic paper's settings for
 * MS MARCO scaled to segment sizes (blocks of ~10 rows as its 0.1 centroid fraction, 0.4-0.5 of
 * the summary mass), checked on the tuning split of bench/sparse.ts.
 */
/** Largest lambda: a term's blocks are sorted as packed keys holding the block number in 21 bits. */
export const MAX_LAMBDA = 2097151;

export const DEFAULT_BUILD: Readonly<SparseBuildParams & { approxMinRows: number }> = {
  lambda: 1000, centroidFraction: 0.1, summaryMass: 0.5, maxBlockSize: 16, approxMinRows: 1000,
};

function checkOption(value: unknown, name: string, lo: number, hi: number, integer: boolean): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < lo || value > hi || (integer && !Number.isInteger(value))) {
    throw new QuiverError('INVALID_ARGUMENT', `${name} must be ${integer ? 'an integer' : 'a number'} in [${lo}, ${hi}], got ${String(value)}`, {
      name, expected: `${integer ? 'integer' : 'number'} in [${lo}, ${hi}]`, received: value,
    });
  }
}

/**
 * Builds the sparse index of a segment's rows 0..count-1: rows(ord) gives the row's vector or
 * undefined (no value). Every vector is validated (checkSparseVector). The dictionary is sorted,
 * each row's entries are sorted by term id, and with at least `approxMinRows` rows the Seismic
 * structures are built (buildApprox).
 */
export function buildSparseIndex(rows: (ord: number) => SparseInput | undefined, count: number, opts: SparseBuildOptions = {}): SeismicSparseIndex {
  checkOption(count, 'count', 0, 0xfffffffe, true);
  const build: SparseBuildParams = {
    lambda: opts.lambda ?? DEFAULT_BUILD.lambda,
    centroidFraction: opts.centroidFraction ?? DEFAULT_BUILD.centroidFraction,
    summaryMass: opts.summaryMass ?? DEFAULT_BUILD.summaryMass,
    maxBlockSize: opts.maxBlockSize ?? DEFAULT_BUILD.maxBlockSize,
  };
  checkOption(build.maxBlockSize, 'maxBlockSize', 1, 0xffffff, true);
  checkOption(build.lambda, 'lambda', 1, MAX_LAMBDA, true);
  checkOption(build.centroidFraction, 'centroidFraction', 1e-6, 1, false);
  checkOption(build.summaryMass, 'summaryMass', 1e-6, 1, false);
  const approxMinRows = opts.approxMinRows ?? DEFAULT_BUILD.approxMinRows;
  checkOption(approxMinRows, 'approxMinRows', 0, Number.MAX_SAFE_INTEGER, true);
  const seed = opts.seed ?? 1;

  // pass 1: provisional term ids in order of appearance
  const provisional = new Map<string, number>();
  const names: string[] = [];
  const present = new Uint32Array(bitsetWords(count));
  const rowStart = new Uint32Array(count + 1);
  let ids = new Uint32Array(1024), weights = new Float32Array(1024), nnz = 0;
  for (let r = 0; r < count; r++) {
    const raw = rows(r);
    if (raw !== undefined) {
      present[r >>> 5] |= 1 << (r & 31);
      const v = checkSparseVector(raw, `sparse row ${r}`);
      for (const term of Object.keys(v)) {
        const w = Math.fround(v[term]);
        if (!(w > 0)) continue; // a weight below the f32 range
        let id = provisional.get(term);
        if (id === undefined) { id = names.length; provisional.set(term, id); names.push(term); }
        if (nnz === ids.length) {
          const ni = new Uint32Array(ids.length * 2); ni.set(ids); ids = ni;
          const nw = new Float32Array(weights.length * 2); nw.set(weights); weights = nw;
        }
        ids[nnz] = id; weights[nnz] = w; nnz++;
      }
    }
    rowStart[r + 1] = nnz;
  }
  // sorted dictionary; remap and sort each row by term id
  const sortedIdx = Array.from({ length: names.length }, (_, i) => i);
  sortedIdx.sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
  const remap = new Uint32Array(names.length);
  for (let i = 0; i < sortedIdx.length; i++) remap[sortedIdx[i]] = i;
  const terms = sortedIdx.map((i) => names[i]);
  const fwdTerms = new Uint32Array(nnz), fwdWeights = new Float32Array(nnz);
  const pairIdx: number[] = [];
  for (let r = 0; r < count; r++) {
    const s = rowStart[r], e = rowStart[r + 1];
    pairIdx.length = 0;
    for (let j = s; j < e; j++) pairIdx.push(j);
    pairIdx.sort((a, b) => remap[ids[a]] - remap[ids[b]]);
    for (let i = 0; i < pairIdx.length; i++) { fwdTerms[s + i] = remap[ids[pairIdx[i]]]; fwdWeights[s + i] = weights[pairIdx[i]]; }
  }
  const data: SparseIndexData = { count, terms, present, rowStart, fwdTerms, fwdWeights, build, approx: null };
  if (count >= approxMinRows && count > 0) data.approx = buildApprox(data, seed);
  return new SeismicSparseIndex(data, opts.kernels ?? createKernels());
}

/**
 * The Seismic structures over a forward index. Per term:
 * 1. static pruning: its `lambda` heaviest postings (ties: lower row);
 * 2. blocking by clustering the rows' vectors, as the paper does: ceil(len * centroidFraction)
 *    rows drawn at random are the centroids, every row joins the centroid of largest inner product
 *    with it (ties: the earlier centroid; one assignment pass, no refinement, as Seismic). The
 *    inner products run through a small inverted index over the centroids, so a row costs the
 *    centroids it shares terms with rather than all of them;
 * 3. per block a summary: the per-term max weight over its rows, its heaviest entries kept up to
 *    `summaryMass` of the total, quantized to u8 as ceil(w / scale) with scale = max / 255 (rounded up,
 *    so a kept entry does not shrink beyond the f32 rounding of its scale).
 */
export function buildApprox(data: SparseIndexData, seed: number): SparseApproxData {
  const { count, rowStart, fwdTerms, fwdWeights, build } = data;
  const nTerms = data.terms.length;
  const nnz = fwdTerms.length;
  // full lists by term (rows ascending)
  const postStart = new Uint32Array(nTerms + 1);
  for (let j = 0; j < nnz; j++) postStart[fwdTerms[j] + 1]++;
  for (let t = 0; t < nTerms; t++) postStart[t + 1] += postStart[t];
  const fill = postStart.slice(0, nTerms);
  const postDocs = new Uint32Array(nnz), postW = new Float32Array(nnz);
  for (let r = 0; r < count; r++) {
    for (let j = rowStart[r]; j < rowStart[r + 1]; j++) { const p = fill[fwdTerms[j]]++; postDocs[p] = r; postW[p] = fwdWeights[j]; }
  }

  const rng = new Rng(seed);
  const termBlockStart = new Uint32Array(nTerms + 1);
  const blockDocStart: number[] = [0];
  const sumStart: number[] = [0];
  let blockDocs = new Uint32Array(Math.min(nnz, nTerms * build.lambda) + 16), nPruned = 0;
  const sumScale: number[] = [];
  let sumTerms = new Uint32Array(1024), sumCodes = new Uint8Array(1024), nSummary = 0;

  // scratch
  const maxW = new Float32Array(nTerms);
  const touched = new Uint32Array(nTerms);
  const head = new Int32Array(nTerms).fill(-1);
  // the centroids' inverted index: linked lists per term through entNext (-1 ends a list)
  let entNext = new Int32Array(1024), entCent = new Uint32Array(1024), entW = new Float32Array(1024);
  let scoreAcc = new Float64Array(64);
  let sel = new Uint32Array(64);
  let assign = new Uint32Array(64);

  for (let t = 0; t < nTerms; t++) {
    termBlockStart[t] = blockDocStart.length - 1;
    const s0 = postStart[t], len0 = postStart[t + 1] - s0;
    if (len0 === 0) continue;
    // 1. the lambda heaviest postings, kept in row order
    let list: Uint32Array, listW: Float32Array;
    if (len0 <= build.lambda) { list = postDocs.subarray(s0, s0 + len0); listW = postW.subarray(s0, s0 + len0); }
    else {
      const idx = Array.from({ length: len0 }, (_, i) => s0 + i);
      idx.sort((a, b) => postW[b] - postW[a] || postDocs[a] - postDocs[b]);
      const kept = idx.slice(0, build.lambda).sort((a, b) => a - b); // positions ascending = rows ascending
      list = Uint32Array.from(kept, (p) => postDocs[p]);
      listW = Float32Array.from(kept, (p) => postW[p]);
    }
    const len = list.length;
    const nCent = Math.max(1, Math.min(len, Math.ceil(len * build.centroidFraction)));
    if (assign.length < len) { assign = new Uint32Array(len * 2); sel = new Uint32Array(len * 2); }
    if (nCent === 1) assign.fill(0, 0, len);
    else {
      // 2. centroids: nCent distinct rows at random (partial Fisher-Yates over positions)
      for (let i = 0; i < len; i++) sel[i] = i;
      for (let i = 0; i < nCent; i++) {
        const j = i + Math.floor(rng.next() * (len - i));
        const x = sel[i]; sel[i] = sel[j]; sel[j] = x;
      }
      let nTouched = 0, nEnt = 0;
      for (let c = 0; c < nCent; c++) {
        const r = list[sel[c]];
        if (nEnt + rowStart[r + 1] - rowStart[r] > entNext.length) {
          const cap = 2 * (nEnt + rowStart[r + 1] - rowStart[r]);
          const a = new Int32Array(cap); a.set(entNext); entNext = a;
          const b = new Uint32Array(cap); b.set(entCent); entCent = b;
          const w = new Float32Array(cap); w.set(entW); entW = w;
        }
        for (let j = rowStart[r]; j < rowStart[r + 1]; j++) {
          const term = fwdTerms[j];
          if (head[term] === -1) touched[nTouched++] = term;
          entNext[nEnt] = head[term]; entCent[nEnt] = c; entW[nEnt] = fwdWeights[j];
          head[term] = nEnt++;
        }
      }
      if (scoreAcc.length < nCent) scoreAcc = new Float64Array(nCent * 2);
      for (let i = 0; i < len; i++) {
        const r = list[i];
        for (let j = rowStart[r]; j < rowStart[r + 1]; j++) {
          const w = fwdWeights[j];
          for (let e = head[fwdTerms[j]]; e !== -1; e = entNext[e]) scoreAcc[entCent[e]] += w * entW[e];
        }
        let best = 0;
        for (let c = 1; c < nCent; c++) if (scoreAcc[c] > scoreAcc[best]) best = c;
        assign[i] = best;
        scoreAcc.fill(0, 0, nCent);
      }
      for (let i = 0; i < nTouched; i++) head[touched[i]] = -1;
    }
    // blocks: each cluster, split into pieces of at most maxBlockSize rows by the term's weight
    // (heaviest first, so a piece's summary is tight on this term); rows ascending within a block
    const members: number[][] = Array.from({ length: nCent }, () => []);
    for (let i = 0; i < len; i++) members[assign[i]].push(i);
    if (blockDocs.length < nPruned + len) { const nb = new Uint32Array((nPruned + len) * 2); nb.set(blockDocs.subarray(0, nPruned)); blockDocs = nb; }
    let at = nPruned;
    const pieces: Array<[number, number]> = [];
    for (const m of members) {
      if (m.length === 0) continue;
      if (m.length > build.maxBlockSize) m.sort((x, y) => listW[y] - listW[x] || x - y);
      const nPieces = Math.ceil(m.length / build.maxBlockSize);
      for (let k = 0; k < nPieces; k++) {
        const from = Math.floor((k * m.length) / nPieces), to = Math.floor(((k + 1) * m.length) / nPieces);
        const piece = m.slice(from, to).sort((x, y) => x - y);
        for (let i = 0; i < piece.length; i++) blockDocs[at + i] = list[piece[i]];
        pieces.push([at, at + piece.length]);
        at += piece.length;
      }
    }
    for (const [bs, be] of pieces) {
      // 3. summary
      let nT = 0, mass = 0;
      for (let p = bs; p < be; p++) {
        const r = blockDocs[p];
        for (let j = rowStart[r]; j < rowStart[r + 1]; j++) {
          const term = fwdTerms[j], w = fwdWeights[j];
          if (maxW[term] === 0) touched[nT++] = term;
          if (w > maxW[term]) maxW[term] = w;
        }
      }
      const byWeight = Array.from(touched.subarray(0, nT));
      for (const term of byWeight) mass += maxW[term];
      byWeight.sort((a, b) => maxW[b] - maxW[a] || a - b);
      let keep = 0, kept = 0;
      while (keep < byWeight.length && (keep === 0 || kept < build.summaryMass * mass)) kept += maxW[byWeight[keep++]];
      const chosen = byWeight.slice(0, keep).sort((a, b) => a - b);
      const top = maxW[byWeight[0]];
      const scale = Math.fround(top / 255);
      if (sumTerms.length < nSummary + keep) {
        const nt = new Uint32Array((nSummary + keep) * 2); nt.set(sumTerms.subarray(0, nSummary)); sumTerms = nt;
        const nc = new Uint8Array((nSummary + keep) * 2); nc.set(sumCodes.subarray(0, nSummary)); sumCodes = nc;
      }
      for (const term of chosen) {
        sumTerms[nSummary] = term;
        sumCodes[nSummary] = Math.min(255, Math.max(1, Math.ceil(maxW[term] / scale)));
        nSummary++;
      }
      for (let i = 0; i < nT; i++) maxW[touched[i]] = 0;
      sumScale.push(scale);
      sumStart.push(nSummary);
      blockDocStart.push(be);
    }
    nPruned += len;
  }
  termBlockStart[nTerms] = blockDocStart.length - 1;
  return {
    termBlockStart,
    blockDocStart: Uint32Array.from(blockDocStart),
    blockDocs: blockDocs.slice(0, nPruned),
    sumStart: Uint32Array.from(sumStart),
    sumScale: Float32Array.from(sumScale),
    sumTerms: sumTerms.slice(0, nSummary),
    sumCodes: sumCodes.slice(0, nSummary),
  };
}
