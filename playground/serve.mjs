// Serves playground/dist on 127.0.0.1: a small static server, nothing else.
//   node playground/serve.mjs [--port N]      (default 5173; 0 picks a free port)
// Prints the URL once it listens. Responses are cross-origin isolated (COOP/COEP), so the worker's
// performance.now() is precise to microseconds rather than 0.1 ms and the page may call
// performance.measureUserAgentSpecificMemory().
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), 'dist');
const args = process.argv.slice(2);
let port = 5173;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--port' && i + 1 < args.length) port = Number(args[++i]);
  else if (args[i].startsWith('--port=')) port = Number(args[i].slice('--port='.length));
  else { console.error(`playground/serve.mjs: unknown argument ${args[i]} (usage: node playground/serve.mjs [--port N])`); process.exit(2); }
}
if (!Number.isInteger(port) || port < 0 || port > 65535) { console.error('playground/serve.mjs: --port takes 0..65535'); process.exit(2); }
if (!existsSync(join(root, 'index.html')) || !existsSync(join(root, 'data', 'manifest.json'))) {
  console.error(`playground/serve.mjs: ${root} is not built: run \`npm run playground\` (bundle and data first)`);
  process.exit(1);
}

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json',
  '.json': 'application/json', '.qsnap': 'application/octet-stream',
};
const server = createServer((req, res) => {
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp', 'cache-control': 'no-cache' };
  if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, headers).end(); return; }
  let path;
  try { path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname); } catch { res.writeHead(400, headers).end(); return; }
  const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
  if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { ...headers, 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size });
  if (req.method === 'HEAD') { res.end(); return; }
  createReadStream(file).pipe(res);
});
server.on('error', (e) => {
  console.error(`playground/serve.mjs: ${e.code === 'EADDRINUSE' ? `port ${port} is in use (pass --port N)` : e.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`QuiverDB playground: http://127.0.0.1:${server.address().port}/  (Ctrl-C stops)`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
