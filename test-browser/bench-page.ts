// The page of the browser benchmark (bench/browser.ts): starts bench-worker.js and exposes
// `window.quiverBench.call(cmd, args)` (a promise of the worker's answer) for page.evaluate.
type Reply = { id: number; ok: boolean; value?: unknown; error?: { code: string | null; message: string } };

const worker = new Worker('./bench-worker.js', { type: 'module' });
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let next = 1;
const ready = new Promise<{ simd: boolean; crossOriginIsolated: boolean }>((resolve, reject) => {
  worker.addEventListener('error', (e) => reject(new Error(`worker failed to start: ${e.message}`)));
  worker.addEventListener('message', function first(ev: MessageEvent) {
    if (ev.data?.ready) { worker.removeEventListener('message', first); resolve({ simd: ev.data.simd, crossOriginIsolated: ev.data.crossOriginIsolated }); }
  });
});
worker.addEventListener('message', (ev: MessageEvent<Reply>) => {
  const p = pending.get(ev.data.id);
  if (!p) return;
  pending.delete(ev.data.id);
  if (ev.data.ok) p.resolve(ev.data.value);
  else p.reject(Object.assign(new Error(ev.data.error!.message), { code: ev.data.error!.code }));
});

(window as unknown as { quiverBench: unknown }).quiverBench = {
  ready,
  call(cmd: string, args: unknown): Promise<unknown> {
    const id = next++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, cmd, args });
    });
  },
};
