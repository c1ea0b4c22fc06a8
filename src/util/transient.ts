/**
 * Large short-lived buffers (write-ahead log records of big batches, the chunks a seal or merge
 * streams through, training samples) taken as mapped pages rather than from the C allocator.
 *
 * Why: an ArrayBuffer is malloc'd memory, and glibc keeps freed heap memory resident (up to its
 * trim threshold, 64 MiB once large blocks have come and gone), so importing a big collection
 * left the process tens of megabytes larger than a fresh open of the same data, for good.
 * A WebAssembly.Memory is mapped directly and unmapped when it is garbage collected, so these
 * buffers cost resident memory only while they are in use. Small buffers stay ordinary.
 */
const PAGE = 65536;
/** Buffers at least this large are mapped. */
export const TRANSIENT_MIN_BYTES = 1 << 20;

const wasmMemory = typeof WebAssembly !== 'undefined' && typeof WebAssembly.Memory === 'function';

/** A zeroed buffer of `bytes` bytes (its length may be rounded up to 64 KiB: view the part you need). */
export function transientBuffer(bytes: number): ArrayBuffer {
  if (!wasmMemory || bytes < TRANSIENT_MIN_BYTES) return new ArrayBuffer(bytes);
  const pages = Math.ceil(bytes / PAGE);
  if (pages > 65536) return new ArrayBuffer(bytes);
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer as ArrayBuffer;
  } catch {
    return new ArrayBuffer(bytes); // address space refused: fall back to the heap
  }
}

export function transientBytes(bytes: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(transientBuffer(bytes), 0, bytes);
}

export function transientFloats(n: number): Float32Array<ArrayBuffer> {
  return new Float32Array(transientBuffer(n * 4), 0, n);
}
