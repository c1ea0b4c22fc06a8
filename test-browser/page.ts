// The harness page: starts the worker and exposes `window.quiver.call(cmd, args)` (a promise of
// the worker's answer; a worker error rejects with an Error carrying its QuiverError code) for the
// test to drive through page.evaluate. `window.quiver.show(text)` prints a result line on the page.
type Reply = { id: number; ok: boolean; value?: unknown; error?: { code: string | null; message: string } };

const worker = new Worker('./worker.js', { type: 'module' });
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let next = 1;
const ready = new Promise<{ opfs: boolean }>((resolve, reject) => {
  worker.addEventListener('error', (e) => reject(new Error(`worker failed to start: ${e.message}`)));
  worker.addEventListener('message', function first(ev: MessageEvent) {
    if (ev.data?.ready) { worker.removeEventListener('message', first); resolve({ opfs: ev.data.opfs }); }
  });
});
worker.addEventListener('message', (ev: MessageEvent<Reply>) => {
  const p = pending.get(ev.data.id);
  if (!p) return;
  pending.delete(ev.data.id);
  if (ev.data.ok) p.resolve(ev.data.value);
  else p.reject(Object.assign(new Error(ev.data.error!.message), { code: ev.data.error!.code }));
});

const log = document.getElementById('log')!;
(window as unknown as { quiver: unknown }).quiver = {
  ready,
  call(cmd: string, args: unknown): Promise<unknown> {
    const id = next++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, cmd, args });
    });
  },
  show(text: string): void {
    const li = document.createElement('li');
    li.textContent = text;
    log.appendChild(li);
  },
};
