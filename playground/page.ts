// The playground page: plain DOM, no framework. Starts worker.ts (where the engine runs), wires the
// search form and the recall-vs-latency measurement, and draws the results. The page itself holds
// no collection: it only renders what the worker answers.
import {
  TEXT_KEY,
  type CollectionFacts, type InitResult, type MeasureResult, type PlaygroundManifest, type Reply, type ResultHit,
  type SearchParams, type SearchResult, type SweepMode,
} from './protocol.js';

// ---- the worker ------------------------------------------------------------------------------

const worker = new Worker('./worker.js', { type: 'module' });
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
let onProgress: ((line: string) => void) | null = null;

worker.addEventListener('message', (ev: MessageEvent<Reply>) => {
  const r = ev.data;
  if ('progress' in r) { onProgress?.(r.progress); return; }
  const p = pending.get(r.id);
  if (!p) return;
  pending.delete(r.id);
  if (r.ok) p.resolve(r.value);
  else p.reject(Object.assign(new Error(r.error.message), { code: r.error.code }));
});
worker.addEventListener('error', (e) => setStatus(`the worker failed: ${e.message}`, true));

function call<T>(cmd: 'init', args: null): Promise<T>;
function call<T>(cmd: 'open', args: { key: string }): Promise<T>;
function call<T>(cmd: 'search', args: { key: string; query: string; k: number; params: SearchParams }): Promise<T>;
function call<T>(cmd: 'measure', args: { queries: number; k: number; mode: SweepMode; specs: string[] }): Promise<T>;
function call<T>(cmd: string, args: unknown): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker.postMessage({ id, cmd, args });
  });
}

// ---- small helpers ---------------------------------------------------------------------------

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  e.append(...children);
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const fmtInt = (n: number) => n.toLocaleString('en-US');
const fmtMB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
function fmtMs(ms: number): string {
  return ms < 1 ? `${ms.toFixed(3)} ms` : ms < 100 ? `${ms.toFixed(2)} ms` : `${Math.round(ms)} ms`;
}

function setStatus(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

// ---- state -----------------------------------------------------------------------------------

let manifest: PlaygroundManifest;
const GLOVE = 'glove';
const collectionSelect = $<HTMLSelectElement>('collection');
const specSelect = $<HTMLSelectElement>('spec');
const knobInput = $<HTMLInputElement>('knob');
const recallInput = $<HTMLInputElement>('recall');
const kInput = $<HTMLInputElement>('k');
const queryInput = $<HTMLInputElement>('query');
const results = $<HTMLTableElement>('results');
const message = $('message');

/** The key of the collection the form points at: an index spec of the GloVe words, or TEXT_KEY. */
function currentKey(): string {
  return collectionSelect.value === TEXT_KEY ? TEXT_KEY : specSelect.value;
}

function knobName(spec: string): 'ef' | 'nprobe' | null {
  return spec.startsWith('HNSW') ? 'ef' : spec.startsWith('IVF') ? 'nprobe' : null;
}

/** Shows the fields that apply to the chosen collection and spec. */
function syncForm(): void {
  const text = collectionSelect.value === TEXT_KEY;
  const knob = text ? null : knobName(specSelect.value);
  $('spec-field').classList.toggle('hidden', text);
  $('knob-field').classList.toggle('hidden', knob === null);
  $('recall-field').classList.toggle('hidden', knob === null);
  $('knob-label').textContent = knob ?? '';
  $('query-label').textContent = text ? 'text (BM25)' : 'word';
  queryInput.placeholder = text ? 'white whale' : 'king';
}

function searchParams(): SearchParams {
  const knob = knobName(currentKey());
  if (knob === null) return {};
  const p: SearchParams = {};
  const v = Number(knobInput.value);
  if (knobInput.value !== '' && Number.isInteger(v) && v > 0) p[knob] = v;
  const r = Number(recallInput.value);
  if (recallInput.value !== '' && r > 0 && r <= 1) p.recall = r;
  return p;
}

function showFacts(f: CollectionFacts): void {
  $('f-spec').textContent = f.key === TEXT_KEY ? `BM25 on "text" (${f.index} vectors unused)` : f.index;
  $('f-count').textContent = `${fmtInt(f.count)}${f.key === TEXT_KEY ? ' passages' : ` x ${f.dimension}-d, ${f.metric}`}`;
  $('f-kernels').textContent = f.kernels;
  $('f-index-bytes').textContent = fmtMB(f.indexBytes);
  $('f-vector-bytes').textContent = f.key === TEXT_KEY ? '-' : `${fmtMB(f.vectorBytes)} (read from the snapshot${f.index === 'Flat' ? ', held in memory' : ' to rerank'})`;
  $('f-snapshot').textContent = `${fmtMB(f.snapshotBytes)}, fetched in ${fmtMs(f.fetchMs)}, opened in ${fmtMs(f.openMs)}`;
  const heap = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory;
  $('f-heap').textContent = heap ? fmtMB(heap.usedJSHeapSize) : 'not available in this browser';
}

// ---- search ----------------------------------------------------------------------------------

/** Search requests are numbered so that only the latest one is drawn. */
let searchSeq = 0;

async function runSearch(): Promise<void> {
  const key = currentKey();
  const query = queryInput.value.trim();
  const k = Math.min(100, Math.max(1, Math.floor(Number(kInput.value)) || 10));
  if (!query) return;
  const seq = ++searchSeq;
  results.dataset.state = 'busy';
  message.textContent = 'searching ...';
  let r: SearchResult;
  try {
    r = await call<SearchResult>('search', { key, query, k, params: searchParams() });
  } catch (e) {
    if (seq !== searchSeq) return;
    message.textContent = `search failed: ${(e as Error).message}`;
    message.classList.add('error');
    results.dataset.state = 'error';
    return;
  }
  if (seq !== searchSeq) return;
  showFacts(r.facts);
  message.classList.remove('error');
  results.dataset.query = query;
  results.dataset.key = key;
  if (!r.ok) {
    message.textContent = r.message;
    results.classList.add('hidden');
    $('f-latency').textContent = '-';
    results.dataset.state = 'missing';
    return;
  }
  $('f-latency').textContent = `${fmtMs(r.ms)} (one search() call in the worker)`;
  $('f-worker-heap').textContent = r.workerHeapBytes === null ? 'not reported in workers' : fmtMB(r.workerHeapBytes);
  message.textContent = r.hits.length ? `${r.hits.length} nearest ${key === TEXT_KEY ? 'passages' : `words to "${query.toLowerCase()}"`}, ${fmtMs(r.ms)}` : 'no results';
  drawResults(key, query, r.hits);
  results.dataset.state = 'done';
}

function drawResults(key: string, query: string, hits: ResultHit[]): void {
  const text = key === TEXT_KEY;
  const head = el('tr', {}, el('th', { text: '#' }), el('th', { text: text ? 'passage' : 'word' }), el('th', { className: 'num', text: text ? 'BM25' : 'cosine' }));
  results.tHead!.replaceChildren(head);
  const top = Math.max(...hits.map((h) => h.score), 1e-9);
  const rows = hits.map((h, i) => {
    const tr = el('tr');
    tr.dataset.id = h.id;
    tr.dataset.score = String(h.score);
    const main = text ? passageCell(h, query) : el('td', { className: 'word', text: h.id });
    const bar = el('div', { className: 'bar' }, el('span'));
    (bar.firstChild as HTMLElement).style.width = `${Math.max(0, (h.score / top) * 100).toFixed(1)}%`;
    tr.append(el('td', { className: 'rank', text: String(i + 1) }), main, el('td', { className: 'num' }, h.score.toFixed(4), bar));
    return tr;
  });
  results.tBodies[0].replaceChildren(...rows);
  results.classList.toggle('hidden', hits.length === 0);
}

/** A passage: where it is in the book, and an excerpt around the first query word, highlighted. */
function passageCell(h: ResultHit, query: string): HTMLTableCellElement {
  const words = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}']{2,}/gu) ?? [])];
  // a prefix match, since BM25 matches stems ("whale" finds "whales")
  const re = words.length ? new RegExp(`\\b(?:${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})[\\p{L}']*`, 'giu') : null;
  let t = h.text ?? '';
  const first = re ? t.search(re) : -1;
  const MAX = 420;
  if (t.length > MAX) {
    let start = Math.max(0, first - 120);
    if (start > 0) start = t.indexOf(' ', start) + 1;
    let end = Math.min(t.length, start + MAX);
    if (end < t.length) end = t.lastIndexOf(' ', end);
    t = `${start > 0 ? '... ' : ''}${t.slice(start, end)}${end < t.length ? ' ...' : ''}`;
  }
  const body = el('div', { className: 'text' });
  let at = 0;
  if (re) {
    for (const m of t.matchAll(re)) {
      body.append(t.slice(at, m.index), el('mark', { text: m[0] }));
      at = m.index! + m[0].length;
    }
  }
  body.append(t.slice(at));
  const chapter = /^\d+$/.test(h.chapter ?? '') ? `Chapter ${h.chapter}` : h.chapter ?? '';
  const where = el('div', { className: 'where', text: `${chapter}${h.title && h.title !== h.chapter ? `: ${h.title}` : ''} (${h.id})` });
  return el('td', { className: 'passage' }, where, body);
}

// ---- memory of the whole tab -------------------------------------------------------------------

async function measureTabMemory(): Promise<void> {
  const out = $('f-uasm');
  const api = (performance as unknown as { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> }).measureUserAgentSpecificMemory;
  if (typeof api !== 'function' || !crossOriginIsolated) {
    out.textContent = crossOriginIsolated ? 'not available in this browser' : 'needs a cross-origin isolated page';
    return;
  }
  out.textContent = 'measuring (Chromium waits for a garbage collection, up to ~20 s) ...';
  try {
    const m = await api.call(performance);
    out.textContent = fmtMB(m.bytes);
  } catch (e) {
    out.textContent = `failed: ${(e as Error).message}`;
  }
}

// ---- recall vs latency ----------------------------------------------------------------------------

const COLORS = ['#2f6fde', '#e0702b', '#2a9d5b', '#9c4dcc'];

async function runMeasure(): Promise<void> {
  const button = $<HTMLButtonElement>('measure-button');
  const status = $('m-status');
  const chart = $('chart');
  const queries = Math.min(manifest.glove.sample.length, Math.max(1, Math.floor(Number($<HTMLInputElement>('m-queries').value)) || 200));
  const mode = $<HTMLSelectElement>('m-mode').value as SweepMode;
  const specs = manifest.glove.snapshots.slice(1).map((s) => s.spec);
  button.disabled = true;
  chart.dataset.state = 'busy';
  onProgress = (line) => { status.textContent = line; };
  try {
    const r = await call<MeasureResult>('measure', { queries, k: 10, mode, specs });
    status.textContent = `${r.queries} queries x ${r.series.reduce((n, s) => n + s.points.length, 0)} settings, k = ${r.k}, measured in ${r.seconds.toFixed(1)} s`;
    drawChart(r);
    drawMeasureTable(r);
    $('m-note').classList.toggle('hidden', r.mode !== 'knob');
    chart.dataset.state = 'done';
  } catch (e) {
    status.textContent = `measurement failed: ${(e as Error).message}`;
    chart.dataset.state = 'error';
  } finally {
    onProgress = null;
    button.disabled = false;
  }
}

/** Round tick values covering [lo, hi], about `count` of them. */
function ticks(lo: number, hi: number, count: number): number[] {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(10));
  return out;
}

/** An inline SVG: recall@k (y) against mean latency (x), one polyline per approximate spec, Flat as one point. */
function drawChart(r: MeasureResult): void {
  const W = 760, H = 380, M = { left: 56, right: 20, top: 20, bottom: 46 };
  const pw = W - M.left - M.right, ph = H - M.top - M.bottom;
  const all = r.series.flatMap((s) => s.points);
  const maxMs = Math.max(r.flat.ms, ...all.map((p) => p.ms)) * 1.08;
  const minRecall = Math.min(...all.map((p) => p.recall));
  const yLo = Math.max(0, Math.floor((minRecall - 0.02) * 20) / 20);
  const x = (ms: number) => M.left + (ms / maxMs) * pw;
  const y = (rec: number) => M.top + (1 - (rec - yLo) / (1 - yLo || 1)) * ph;

  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `recall@${r.k} against latency` });
  const grid = svg('g', { class: 'grid' });
  const axes = svg('g', { class: 'axis' });
  for (const t of ticks(0, maxMs, 6)) {
    grid.append(svg('line', { x1: x(t), x2: x(t), y1: M.top, y2: M.top + ph }));
    axes.append(svg('text', { x: x(t), y: M.top + ph + 16, 'text-anchor': 'middle' }, t.toString()));
  }
  for (const t of ticks(yLo, 1, 5)) {
    grid.append(svg('line', { x1: M.left, x2: M.left + pw, y1: y(t), y2: y(t) }));
    axes.append(svg('text', { x: M.left - 8, y: y(t) + 4, 'text-anchor': 'end' }, t.toFixed(2)));
  }
  axes.append(svg('line', { x1: M.left, x2: M.left + pw, y1: M.top + ph, y2: M.top + ph }));
  axes.append(svg('line', { x1: M.left, x2: M.left, y1: M.top, y2: M.top + ph }));
  axes.append(svg('text', { x: M.left + pw / 2, y: H - 8, 'text-anchor': 'middle' }, 'mean latency per query (ms)'));
  axes.append(svg('text', { x: 14, y: M.top + ph / 2, 'text-anchor': 'middle', transform: `rotate(-90 14 ${M.top + ph / 2})` }, `recall@${r.k} vs Flat`));
  root.append(grid, axes);

  r.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const g = svg('g', { class: 'series', 'data-spec': s.spec });
    g.append(svg('polyline', { points: s.points.map((p) => `${x(p.ms).toFixed(1)},${y(p.recall).toFixed(1)}`).join(' '), fill: 'none', stroke: color, 'stroke-width': 2, 'data-spec': s.spec }));
    for (const p of s.points) {
      const c = svg('circle', { cx: x(p.ms), cy: y(p.recall), r: 3.5, fill: color, 'data-recall': p.recall, 'data-ms': p.ms });
      c.append(svg('title', {}, `${s.spec}, ${p.label}: recall ${p.recall.toFixed(3)}, ${fmtMs(p.ms)}`));
      g.append(c);
    }
    root.append(g);
  });
  // Flat: exact, so recall 1 at its own latency
  const flat = svg('g', { class: 'flat', 'data-spec': r.flat.spec });
  flat.append(svg('circle', { cx: x(r.flat.ms), cy: y(1), r: 5, fill: '#1d2330' }));
  flat.append(svg('text', { x: x(r.flat.ms) - 8, y: y(1) + 16, 'text-anchor': 'end' }, `${r.flat.spec} (exact)`));
  root.append(flat);

  // legend
  const legend = svg('g', { transform: `translate(${M.left + pw - 190}, ${M.top + ph - 18 * (r.series.length + 1) - 4})` });
  legend.append(svg('rect', { x: -8, y: -12, width: 194, height: 18 * (r.series.length + 1) + 6, fill: '#fff', stroke: '#dde2ea', rx: 4 }));
  [...r.series.map((s, i) => ({ label: s.spec, color: COLORS[i % COLORS.length] })), { label: `${r.flat.spec} (exact)`, color: '#1d2330' }].forEach((e, i) => {
    legend.append(svg('rect', { x: 0, y: i * 18 - 8, width: 10, height: 10, fill: e.color, rx: 2 }));
    legend.append(svg('text', { x: 16, y: i * 18 + 1 }, e.label));
  });
  root.append(legend);
  $('chart').replaceChildren(root);
}

function drawMeasureTable(r: MeasureResult): void {
  const table = $<HTMLTableElement>('measure-table');
  table.tHead!.replaceChildren(el('tr', {},
    el('th', { text: 'index spec' }), el('th', { text: 'setting' }), el('th', { className: 'num', text: `recall@${r.k}` }),
    el('th', { className: 'num', text: 'mean latency' }), el('th', { className: 'num', text: 'queries/s' }), el('th', { className: 'num', text: 'index memory' })));
  const row = (spec: string, color: string, label: string, recall: number, ms: number, bytes: number | null) => {
    const tr = el('tr', {},
      el('td', {}, Object.assign(el('span', { className: 'swatch' }), { style: `background:${color}` }), spec),
      el('td', { text: label }), el('td', { className: 'num', text: recall.toFixed(3) }), el('td', { className: 'num', text: fmtMs(ms) }),
      el('td', { className: 'num', text: fmtInt(Math.round(1000 / ms)) }), el('td', { className: 'num', text: bytes === null ? '' : fmtMB(bytes) }));
    tr.dataset.spec = spec;
    tr.dataset.recall = String(recall);
    tr.dataset.ms = String(ms);
    return tr;
  };
  const rows = [row(r.flat.spec, '#1d2330', 'exact', 1, r.flat.ms, r.flat.indexBytes)];
  r.series.forEach((s, i) => s.points.forEach((p, j) => rows.push(row(s.spec, COLORS[i % COLORS.length], p.label, p.recall, p.ms, j === 0 ? s.indexBytes : null))));
  table.tBodies[0].replaceChildren(...rows);
  table.classList.remove('hidden');
}

// ---- start ----------------------------------------------------------------------------------------

async function start(): Promise<void> {
  const init = await call<InitResult>('init', null);
  manifest = init.manifest;
  const g = manifest.glove;
  collectionSelect.append(
    new Option(`GloVe words (${fmtInt(g.words)} x ${g.dimension}-d, cosine)`, GLOVE),
    new Option(`Moby-Dick passages (${fmtInt(manifest.text.passages)}, BM25)`, TEXT_KEY),
  );
  for (const s of g.snapshots) specSelect.append(new Option(s.spec === 'Flat' ? 'Flat (exact)' : s.spec, s.spec));
  syncForm();
  setStatus(`worker ready: WASM SIMD ${init.simd ? 'yes' : 'no (JS kernels)'}, cross-origin isolated ${init.crossOriginIsolated ? 'yes' : 'no'}; data: ${g.source}, ${manifest.text.source}, built ${manifest.builtAt.slice(0, 10)}`);

  let debounce: ReturnType<typeof setTimeout> | undefined;
  const later = () => { clearTimeout(debounce); debounce = setTimeout(() => void runSearch(), 150); };
  $('search-form').addEventListener('submit', (e) => { e.preventDefault(); clearTimeout(debounce); void runSearch(); });
  queryInput.addEventListener('input', later);
  for (const input of [knobInput, recallInput, kInput]) input.addEventListener('change', later);
  for (const select of [collectionSelect, specSelect]) {
    select.addEventListener('change', () => {
      syncForm();
      knobInput.value = '';
      if (queryInput.value.trim()) void runSearch();
      else void call<CollectionFacts>('open', { key: currentKey() }).then(showFacts, (e: Error) => setStatus(e.message, true));
    });
  }
  $('memory-button').addEventListener('click', () => void measureTabMemory());
  $('measure-button').addEventListener('click', () => void runMeasure());

  // open the exact collection now: the first search needs it for the word's vector anyway
  showFacts(await call<CollectionFacts>('open', { key: currentKey() }));
  document.body.dataset.ready = 'true';
}

start().catch((e: Error) => setStatus(`could not start: ${e.message}`, true));
