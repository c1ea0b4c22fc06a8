// Measures what `quiverdb` (dist/index.js, the browser-safe entry) costs in a browser bundle:
// esbuild, platform browser, ESM, minified. Run after `npm run build` (`npm run size` does both).
//   core JS   the bundle with the embedded WASM kernel modules left out (min and gzip);
//   kernels   each *-bytes.generated.js module: the raw .wasm (decoded from its base64) and the
//             module as shipped (minified JS holding the base64), each with its gzip size, and
//             whether the browser entry pulls it in;
//   deps      third-party packages inside the core bundle, with their share of it (esbuild metafile).
// Exits 1 when the bundle cannot be built for the browser (e.g. an import of a Node builtin that
// does not resolve there) or when the bundle still imports a `node:` module or a Node builtin.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Another entry can be given to check it instead (e.g. `node scripts/bundle-size.mjs dist/node.js` fails).
const entry = process.argv[2] ? resolve(process.argv[2]) : join(root, 'dist', 'index.js');
const KERNEL_MODULES = [
  { file: 'dist/kernels/wasm-bytes.generated.js', name: 'WASM_KERNELS_BASE64', label: 'kernels.wasm' },
  { file: 'dist/kernels/wasm-shared-bytes.generated.js', name: 'WASM_SHARED_KERNELS_BASE64', label: 'kernels-shared.wasm' },
];
const KERNEL_FILTER = /[\\/]wasm(-shared)?-bytes\.generated\.js$/;
const BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));

function fail(message) {
  console.error(`bundle-size: ${message}`);
  process.exit(1);
}

const gzip = (bytes) => gzipSync(bytes, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
const isNodeBuiltin = (path) => path.startsWith('node:') || BUILTINS.has(path) || BUILTINS.has(path.split('/')[0]);

/** The package a bundled input belongs to ('@scope/name' or 'name'), or null for our own files. */
function packageOf(input) {
  const i = input.lastIndexOf('node_modules/');
  if (i < 0) return null;
  const parts = input.slice(i + 'node_modules/'.length).split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

async function bundle(options) {
  try {
    return await build({
      bundle: true, platform: 'browser', format: 'esm', minify: true, target: 'es2022',
      write: false, metafile: true, logLevel: 'silent', absWorkingDir: root, ...options,
    });
  } catch (e) {
    const errors = (e.errors ?? []).map((m) => `  ${m.location ? `${m.location.file}:${m.location.line}: ` : ''}${m.text}`);
    fail(`esbuild could not bundle ${options.entryPoints?.join(', ') ?? 'the entry'} for the browser:\n${errors.join('\n') || String(e)}`);
  }
}

/** Imports the bundle still makes (externals); fails on Node builtins. */
function checkImports(result, what) {
  const bad = [];
  for (const out of Object.values(result.metafile.outputs)) {
    for (const imp of out.imports) if (isNodeBuiltin(imp.path)) bad.push(`${imp.path} (${imp.kind})`);
  }
  const text = result.outputFiles.map((f) => f.text).join('\n');
  for (const m of text.matchAll(/["'`](node:[a-z_/]+)["'`]/g)) bad.push(`${m[1]} (string in the output)`);
  if (bad.length) fail(`${what} references Node builtins: ${[...new Set(bad)].join(', ')}`);
}

if (!existsSync(entry)) fail(`${relative(root, entry)} is missing: run \`npm run build\` first`);

// Core: the kernel modules stay external so their bytes are measured on their own below.
const kernelsExternal = {
  name: 'kernels-external',
  setup(b) {
    b.onResolve({ filter: KERNEL_FILTER }, (args) => ({ path: args.path, external: true }));
  },
};
const core = await bundle({ entryPoints: [entry], plugins: [kernelsExternal] });
checkImports(core, 'the core bundle');
const coreOut = Object.values(core.metafile.outputs)[0];
const coreBytes = core.outputFiles[0].contents;
const coreImports = coreOut.imports.map((i) => i.path);

// The whole bundle as an application would ship it (kernels inlined).
const full = await bundle({ entryPoints: [entry] });
checkImports(full, 'the full bundle');
const fullBytes = full.outputFiles[0].contents;

const kernelRows = [];
for (const k of KERNEL_MODULES) {
  const path = join(root, k.file);
  if (!existsSync(path)) fail(`${k.file} is missing: run \`npm run build\` first`);
  const mod = await import(pathToFileURL(path).href);
  const base64 = mod[k.name];
  if (typeof base64 !== 'string' || base64.length === 0) fail(`${k.file} does not export ${k.name}`);
  const wasm = Buffer.from(base64, 'base64');
  if (!WebAssembly.validate(wasm)) fail(`${k.file}: the embedded ${k.label} does not validate`);
  const shipped = (await bundle({ entryPoints: [path] })).outputFiles[0].contents;
  const inBrowser = coreImports.some((p) => p.endsWith(`/${k.file.split('/').pop()}`));
  kernelRows.push({ label: k.label, raw: wasm.length, rawGz: gzip(wasm), shipped: shipped.length, shippedGz: gzip(shipped), inBrowser });
}

// Third-party packages in the core bundle.
const deps = new Map();
for (const [input, { bytesInOutput }] of Object.entries(coreOut.inputs)) {
  const pkg = packageOf(input);
  if (pkg !== null) deps.set(pkg, (deps.get(pkg) ?? 0) + bytesInOutput);
}
const ownBytes = Object.entries(coreOut.inputs).filter(([i]) => packageOf(i) === null).reduce((s, [, v]) => s + v.bytesInOutput, 0);

const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
console.log(`quiverdb browser bundle (esbuild, platform browser, esm, minified; ${relative(root, entry)})\n`);
console.log(`${pad('', 34)}${lpad('min', 12)}${lpad('gzip', 12)}`);
console.log(`${pad('core JS (kernels excluded)', 34)}${lpad(kb(coreBytes.length), 12)}${lpad(kb(gzip(coreBytes)), 12)}`);
console.log(`${pad('  of which quiverdb code', 34)}${lpad(kb(ownBytes), 12)}`);
console.log(`${pad('full bundle (kernels inlined)', 34)}${lpad(kb(fullBytes.length), 12)}${lpad(kb(gzip(fullBytes)), 12)}`);
console.log(`\nkernels${pad('', 27)}${lpad('wasm', 12)}${lpad('wasm gzip', 12)}${lpad('as shipped', 12)}${lpad('gzip', 12)}  in browser bundle`);
for (const k of kernelRows) {
  console.log(`${pad(`  ${k.label}`, 34)}${lpad(kb(k.raw), 12)}${lpad(kb(k.rawGz), 12)}${lpad(kb(k.shipped), 12)}${lpad(kb(k.shippedGz), 12)}  ${k.inBrowser ? 'yes' : 'no (quiverdb/node only)'}`);
}
console.log(`\nthird-party packages in the core bundle${pad('', 1)}${lpad('min', 11)}${lpad('share', 12)}`);
const sorted = [...deps].sort((a, b) => b[1] - a[1]);
if (sorted.length === 0) console.log('  (none)');
for (const [pkg, bytes] of sorted) {
  console.log(`${pad(`  ${pkg}`, 34)}${lpad(kb(bytes), 12)}${lpad(`${(100 * bytes / coreBytes.length).toFixed(1)}%`, 12)}`);
}
console.log(`\nno node: imports, no Node builtins (checked on both bundles)`);
