// Bundles the browser harness (page.ts, worker.ts, and the benchmark's bench-page.ts, bench-worker.ts -> dist/) with esbuild for the browser, from the
// TypeScript sources (src/kernels/*.generated.ts must exist: `npm run build:wasm` or `npm run build`).
// Fails when the bundle pulls in a Node builtin, as the browser entry must not.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');
mkdirSync(out, { recursive: true });
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const result = await build({
  entryPoints: {
    page: join(here, 'page.ts'), worker: join(here, 'worker.ts'),
    // the browser benchmark (bench/browser.ts)
    'bench-page': join(here, 'bench-page.ts'), 'bench-worker': join(here, 'bench-worker.ts'),
  },
  outdir: out, bundle: true, platform: 'browser', format: 'esm', target: 'es2022', sourcemap: true,
  metafile: true, logLevel: 'warning',
});
for (const o of Object.values(result.metafile.outputs)) {
  const bad = o.imports.filter((i) => builtins.has(i.path) || builtins.has(i.path.split('/')[0]));
  if (bad.length) { console.error(`test-browser/build.mjs: the bundle imports ${bad.map((i) => i.path).join(', ')}`); process.exit(1); }
}
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
console.log(`test-browser: bundled page.js, worker.js, bench-page.js and bench-worker.js into ${out}`);
