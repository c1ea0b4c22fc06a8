// Bundles the playground (page.ts, worker.ts -> playground/dist/) with esbuild for the browser,
// from the TypeScript sources, and copies index.html beside them. The engine's WASM kernels are
// the generated src/kernels/*.generated.ts: built first (`npm run build:wasm`) when missing or
// older than assembly/. Fails when the bundle pulls in a Node builtin, as the browser entry must not.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const out = join(here, 'dist');

// the kernels: src/kernels/*.generated.ts from assembly/ (npm ci builds them through `prepare`)
const generated = ['wasm-bytes.generated.ts', 'wasm-shared-bytes.generated.ts'].map((f) => join(root, 'src', 'kernels', f));
const newestSource = Math.max(...readdirSync(join(root, 'assembly'), { recursive: true })
  .filter((f) => String(f).endsWith('.ts'))
  .map((f) => statSync(join(root, 'assembly', String(f))).mtimeMs));
if (generated.some((f) => !existsSync(f) || statSync(f).mtimeMs < newestSource)) {
  console.log('playground: building the WASM kernels (npm run build:wasm) ...');
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs')], { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

mkdirSync(out, { recursive: true });
const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
const result = await build({
  entryPoints: { page: join(here, 'page.ts'), worker: join(here, 'worker.ts') },
  outdir: out, bundle: true, platform: 'browser', format: 'esm', target: 'es2022', sourcemap: true,
  minify: true, metafile: true, logLevel: 'warning',
});
for (const o of Object.values(result.metafile.outputs)) {
  const bad = o.imports.filter((i) => builtins.has(i.path) || builtins.has(i.path.split('/')[0]));
  if (bad.length) { console.error(`playground/build.mjs: the bundle imports ${bad.map((i) => i.path).join(', ')}`); process.exit(1); }
}
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
const kb = (f) => `${Math.round(statSync(join(out, f)).size / 1024)} KiB`;
console.log(`playground: bundled page.js (${kb('page.js')}) and worker.js (${kb('worker.js')}) into ${out}`);
