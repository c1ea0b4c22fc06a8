// The browser build: `quiverdb` (dist/index.js) bundles for platform browser with no Node builtin,
// and the bundle runs in a context that has only what browsers have (no process, Buffer, require):
// vector search on the WASM kernels decoded from their embedded base64, and BM25 text search.
// Reads dist/ as built by `npm run build` (scripts/run-tests.mjs builds it first); skipped when
// dist/index.js is absent.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { webcrypto } from 'node:crypto';
import vm from 'node:vm';
import { build, type BuildOptions, type Message, type Metafile, type OutputFile } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const entry = join(root, 'dist', 'index.js');
const skip = existsSync(entry) ? false : 'dist/index.js is absent: run `npm run build` first';
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

async function bundle(options: BuildOptions): Promise<{ errors: Message[]; metafile: Metafile; outputFiles: OutputFile[] }> {
  const r = await build({ bundle: true, platform: 'browser', minify: true, target: 'es2022', logLevel: 'silent', absWorkingDir: root, ...options, write: false, metafile: true });
  assert.ok(r.metafile && r.outputFiles);
  return { errors: r.errors, metafile: r.metafile, outputFiles: r.outputFiles };
}

function nodeImports(meta: Metafile): string[] {
  const out: string[] = [];
  for (const o of Object.values(meta.outputs)) for (const i of o.imports) if (i.path.startsWith('node:') || BUILTINS.has(i.path.split('/')[0])) out.push(i.path);
  return out;
}

/** A fresh context with browser globals only. */
function browserContext(): vm.Context {
  const g: Record<string, unknown> = {
    TextEncoder, TextDecoder, atob, btoa, URL, URLSearchParams, AbortController, AbortSignal, Event, EventTarget,
    crypto: { getRandomValues: <T extends ArrayBufferView>(a: T) => webcrypto.getRandomValues(a as never) as T, randomUUID: () => webcrypto.randomUUID() },
    performance: { now: () => performance.now(), timeOrigin: performance.timeOrigin },
    setTimeout, clearTimeout, setInterval, clearInterval, queueMicrotask, structuredClone,
    console,
  };
  const context = vm.createContext(g);
  vm.runInContext('globalThis.self = globalThis; globalThis.window = globalThis;', context);
  return context;
}

// Runs inside the context against the IIFE's global `QuiverDB`; returns plain JSON.
const SMOKE = `(async () => {
  const { Collection, wasmSimdSupported } = QuiverDB;
  const out = { simd: wasmSimdSupported() };
  for (const kernels of ['wasm', 'js', 'auto']) {
    const c = Collection.create({ dimension: 3, metric: 'cosine', fields: { body: 'text' } }, { kernels });
    await c.upsert([
      { id: 'a', vector: [1, 0, 0], metadata: { body: 'the fox and another fox in the brown grass' } },
      { id: 'b', vector: [0, 1, 0], metadata: { body: 'lazy dogs sleeping all day' } },
      { id: 'c', vector: [0, 0, 1], metadata: { body: 'foxes jumping over the lazy dogs, over and over again, all afternoon long' } },
    ]);
    const vec = await c.search(new Float32Array([0.9, 0.2, 0.1]), { k: 2 });
    const text = await c.search({ text: 'Fox', k: 3 });
    const none = await c.search({ text: 'zebra', k: 3 });
    out[kernels] = {
      kernels: c.stats().kernels, count: c.stats().count,
      vec: vec.map((h) => [h.id, h.score]), text: text.map((h) => [h.id, h.score]), none: none.length,
    };
    await c.close();
  }
  return JSON.stringify(out);
})()`;

describe('browser build', { skip }, () => {
  it('dist/index.js bundles for the browser with no Node builtin, and dist/node.js does not', async () => {
    const r = await bundle({ entryPoints: [entry], format: 'esm' });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(nodeImports(r.metafile), []);
    const inputs = Object.keys(r.metafile.inputs);
    assert.ok(inputs.includes('dist/kernels/wasm-bytes.generated.js'), 'the WASM kernels are bundled');
    assert.deepEqual(inputs.filter((i) => i.startsWith('dist/node') || i.startsWith('dist/server') || i.startsWith('dist/cli')), []);
    assert.doesNotMatch(r.outputFiles[0].text, /["'`]node:[a-z_]/);
    // the check can fail: the Node entry does not bundle for the browser
    await assert.rejects(bundle({ entryPoints: [join(root, 'dist', 'node.js')], format: 'esm' }), (e: { errors?: { text: string }[] }) =>
      (e.errors ?? []).some((m) => /Could not resolve "node:/.test(m.text)));
  });

  it('package.json: a browser condition for "." and sideEffects that keep only the registering entries', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const dot = pkg.exports['.'];
    assert.equal(dot.browser, './dist/index.js');
    assert.ok(Object.keys(dot).indexOf('browser') < Object.keys(dot).indexOf('default'), 'browser comes before default');
    assert.ok(Array.isArray(pkg.sideEffects) && pkg.sideEffects.includes('./dist/node.js'));
    // resolved through the package (self-reference): the browser condition picks dist/index.js
    const viaPkg = await bundle({ stdin: { contents: "export { Collection } from 'quiverdb';", resolveDir: root }, format: 'esm' });
    assert.ok(Object.keys(viaPkg.metafile.inputs).includes('dist/index.js'));
    // a bare import of the core is dropped whole (no side effects) ...
    const bare = await bundle({ stdin: { contents: "import 'quiverdb';", resolveDir: root }, format: 'esm' });
    assert.ok(bare.outputFiles[0].contents.length < 100, `bare import kept ${bare.outputFiles[0].contents.length} bytes`);
    // ... while quiverdb/node keeps its registrations (Collection.open(path), threads, use-lite)
    const node = await bundle({ stdin: { contents: "import 'quiverdb/node';", resolveDir: root }, format: 'esm', platform: 'node' });
    assert.ok(Object.keys(node.metafile.inputs).includes('dist/node.js'));
    assert.match(node.outputFiles[0].text, /use-lite-512/);
  });

  it('the IIFE bundle runs without process, Buffer or require: vector and BM25 search', async () => {
    const r = await bundle({ entryPoints: [entry], format: 'iife', globalName: 'QuiverDB' });
    assert.deepEqual(nodeImports(r.metafile), []);
    const context = browserContext();
    assert.equal(vm.runInContext('typeof process + typeof Buffer + typeof require + typeof module + typeof setImmediate', context), 'undefined'.repeat(5));
    vm.runInContext(r.outputFiles[0].text, context, { filename: 'quiverdb.iife.js' });
    assert.equal(vm.runInContext('typeof QuiverDB.Collection', context), 'function');
    const out = JSON.parse(await (vm.runInContext(SMOKE, context) as Promise<string>));
    assert.equal(out.simd, true, 'WASM SIMD validates in the context (kernels decoded from base64 without Buffer)');
    assert.equal(out.wasm.kernels, 'wasm-simd');
    assert.equal(out.js.kernels, 'js');
    assert.equal(out.auto.kernels, 'wasm-simd');
    for (const kernels of ['wasm', 'js', 'auto']) {
      const o = out[kernels];
      assert.equal(o.count, 3);
      assert.deepEqual(o.vec.map((h: [string, number]) => h[0]), ['a', 'b'], kernels);
      const cos = 0.9 / Math.hypot(0.9, 0.2, 0.1);
      assert.ok(Math.abs(o.vec[0][1] - cos) < 1e-5, `${kernels}: cosine ${o.vec[0][1]} vs ${cos}`);
      // 'Fox' matches 'fox' twice in a and 'foxes' (stemmed) once in the longer c; not b
      assert.deepEqual(o.text.map((h: [string, number]) => h[0]), ['a', 'c'], kernels);
      assert.ok(o.text[0][1] > o.text[1][1] && o.text[1][1] > 0, `${kernels}: BM25 scores ${o.text}`);
      assert.equal(o.none, 0);
    }
    assert.deepEqual(out.js.text, out.wasm.text);
  });
});
