// Runs every test/**/*.test.ts with Node's test runner (TypeScript through tsx).
// Extra arguments are passed on, e.g. `npm test -- --test-name-pattern=kernels` or a file list.
// The crash test's child process runs the built package (dist/), so dist/ is rebuilt first when
// any source file is newer than it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function find(dir, suffix) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) { if (name !== 'fixtures') out.push(...find(p, suffix)); }
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}

function newest(files) {
  return Math.max(0, ...files.map((f) => statSync(f).mtimeMs));
}

const built = 'dist/node.js';
const srcNewest = newest([...find('src', '.ts'), 'tsconfig.json', 'tsconfig.build.json']);
if (!existsSync(built) || !existsSync('src/kernels/wasm-bytes.generated.ts') || newest(find('assembly', '.ts')) > statSync('src/kernels/wasm-bytes.generated.ts').mtimeMs) {
  console.log('# building (dist/ or the WASM kernels are missing or stale)');
  const b = spawnSync('npm', ['run', 'build'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
} else if (srcNewest > statSync(built).mtimeMs) {
  console.log('# rebuilding dist/ (sources changed)');
  const b = spawnSync('npm', ['run', 'build:ts'], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

const args = process.argv.slice(2);
const files = args.filter((a) => a.endsWith('.ts'));
const flags = args.filter((a) => !a.endsWith('.ts'));
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', ...flags, ...(files.length ? files : find('test', '.test.ts'))], { stdio: 'inherit' });
process.exit(r.status ?? 1);
