// Child process of test/lock.test.ts: takes and releases FsDirectory locks when the parent asks,
// over the IPC channel. Runs the sources: node --import tsx test/helpers/lock-child.ts
//   {id, cmd: 'lock', dir, at?}  -> {id, ok: true, pid} or {id, ok: false, code, message, details}
//     (`at`: a Date.now() value to wait for, busy-waiting the last milliseconds, so that several
//     children call lock() at the same moment)
//   {id, cmd: 'release', dir}    -> {id, ok: true}
// Sends {ready: true, pid} once loaded; exits when the parent disconnects.
import { FsDirectory } from '../../src/node/fs-directory.js';
import type { DirectoryLock } from '../../src/storage/directory.js';
import { QuiverError } from '../../src/errors.js';

interface Request { id: number; cmd: 'lock' | 'release'; dir: string; at?: number }

const held = new Map<string, DirectoryLock>();
const send = (m: object) => process.send!(m);

process.on('message', (m: Request) => {
  void handle(m).then(send, (e: unknown) => {
    const q = e instanceof QuiverError ? e : undefined;
    send({ id: m.id, ok: false, code: q?.code ?? 'ERROR', message: String((e as Error)?.message ?? e), details: q?.details ?? {} });
  });
});

async function handle(m: Request): Promise<object> {
  if (m.cmd === 'lock') {
    const dir = await FsDirectory.open(m.dir);
    if (m.at !== undefined) {
      const early = m.at - Date.now() - 3;
      if (early > 0) await new Promise((r) => setTimeout(r, early));
      while (Date.now() < m.at) { /* spin: start together */ }
    }
    held.set(m.dir, await dir.lock());
    return { id: m.id, ok: true, pid: process.pid };
  }
  await held.get(m.dir)?.release();
  held.delete(m.dir);
  return { id: m.id, ok: true };
}

send({ ready: true, pid: process.pid });
