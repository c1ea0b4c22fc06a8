import { QuiverError } from '../errors.js';

/**
 * Linear memory shared by JS and the kernels, addressed by byte offsets ("pointers").
 * The WASM implementation wraps the module's memory; the JS twin wraps a plain ArrayBuffer,
 * so both kernel implementations run the same pointer-based code paths above them.
 *
 * Growth replaces `buffer` (WASM detaches the old one): never keep a typed-array view across
 * an `alloc`; re-derive views with f32()/u8()/... after allocating.
 */
export abstract class KernelMemory {
  private readonly live = new Map<number, number>(); // ptr -> bytes
  private free: Array<[number, number]> = []; // sorted by ptr: [ptr, bytes]
  private top: number;
  /**
   * Highest `top` ever reached: bytes below it may hold data of released blocks (memory never
   * shrinks), bytes above it are as the runtime gave them (zero).
   */
  private highWater: number;

  protected constructor(base: number) {
    this.top = align16(base);
    this.highWater = this.top;
  }

  abstract get buffer(): ArrayBuffer;
  /** Ensures the memory holds at least `bytes` bytes. */
  protected abstract growTo(bytes: number): void;

  /** Allocates `bytes` (rounded up to 16), zero-filled, 16-byte aligned. Returns the pointer. */
  alloc(bytes: number): number {
    const size = Math.max(16, align16(bytes));
    for (let i = 0; i < this.free.length; i++) {
      const [p, s] = this.free[i];
      if (s >= size) {
        if (s === size) this.free.splice(i, 1);
        else this.free[i] = [p + size, s - size];
        this.live.set(p, size);
        new Uint8Array(this.buffer, p, size).fill(0);
        return p;
      }
    }
    const p = this.top;
    const end = p + size;
    if (end > 0xffff_0000) {
      throw new QuiverError('OUT_OF_MEMORY', `kernel memory cannot grow past 4 GiB (asked for ${bytes} more bytes)`, { requested: bytes, inUse: this.bytesInUse });
    }
    if (end > this.buffer.byteLength) this.growTo(end);
    // the part below the high-water mark was used before (a released top block): clear it;
    // above it the memory was never handed out and is still zero
    if (p < this.highWater) new Uint8Array(this.buffer, p, Math.min(end, this.highWater) - p).fill(0);
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    this.live.set(p, size);
    return p;
  }

  /** Returns a block from alloc() to the free list (coalescing neighbours). */
  release(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new QuiverError('INVALID_ARGUMENT', `release of unknown pointer ${ptr}`, { ptr });
    this.live.delete(ptr);
    if (ptr + size === this.top) {
      this.top = ptr;
      // absorb a trailing free block, if any
      const last = this.free[this.free.length - 1];
      if (last && last[0] + last[1] === this.top) { this.top = last[0]; this.free.pop(); }
      return;
    }
    let i = 0;
    while (i < this.free.length && this.free[i][0] < ptr) i++;
    this.free.splice(i, 0, [ptr, size]);
    const next = this.free[i + 1];
    if (next && ptr + size === next[0]) { this.free[i] = [ptr, size + next[1]]; this.free.splice(i + 1, 1); }
    const prev = this.free[i - 1];
    if (prev && prev[0] + prev[1] === ptr) { this.free[i - 1] = [prev[0], prev[1] + this.free[i][1]]; this.free.splice(i, 1); }
  }

  /** Bytes held by live allocations. */
  get bytesInUse(): number {
    let s = 0;
    for (const v of this.live.values()) s += v;
    return s;
  }

  /**
   * Typed-array views over the whole memory, re-derived only when growth replaced the buffer.
   * Use for kernel twins and hot loops; never keep the result across an alloc().
   */
  views(): MemoryViews {
    const b = this.buffer;
    if (this.cachedViews?.buffer !== b) {
      this.cachedViews = {
        buffer: b,
        f32: new Float32Array(b, 0, b.byteLength >> 2),
        u32: new Uint32Array(b, 0, b.byteLength >> 2),
        i32: new Int32Array(b, 0, b.byteLength >> 2),
        u16: new Uint16Array(b, 0, b.byteLength >> 1),
        i16: new Int16Array(b, 0, b.byteLength >> 1),
        u8: new Uint8Array(b),
        i8: new Int8Array(b),
      };
    }
    return this.cachedViews;
  }
  private cachedViews: MemoryViews | undefined;

  f32(ptr: number, length: number): Float32Array { return new Float32Array(this.buffer, ptr, length); }
  u32(ptr: number, length: number): Uint32Array { return new Uint32Array(this.buffer, ptr, length); }
  i32(ptr: number, length: number): Int32Array { return new Int32Array(this.buffer, ptr, length); }
  u16(ptr: number, length: number): Uint16Array { return new Uint16Array(this.buffer, ptr, length); }
  u8(ptr: number, length: number): Uint8Array { return new Uint8Array(this.buffer, ptr, length); }
  i8(ptr: number, length: number): Int8Array { return new Int8Array(this.buffer, ptr, length); }
}

/** Whole-memory views; index with ptr >> 2 (32-bit), ptr >> 1 (16-bit) or ptr (bytes). */
export interface MemoryViews {
  readonly buffer: ArrayBuffer;
  readonly f32: Float32Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly u16: Uint16Array;
  readonly i16: Int16Array;
  readonly u8: Uint8Array;
  readonly i8: Int8Array;
}

export function align16(n: number): number {
  return (n + 15) & ~15;
}

const PAGE = 65536;

/** Memory of an instantiated WASM module. */
export class WasmMemory extends KernelMemory {
  constructor(private readonly memory: WebAssembly.Memory, heapBase: number) {
    super(heapBase);
  }
  get buffer(): ArrayBuffer { return this.memory.buffer; }
  protected growTo(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    // grow geometrically so that repeated appends stay amortised O(1)
    const want = Math.max(bytes, Math.min(have * 1.5, 0xffff_0000));
    const pages = Math.ceil((want - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new QuiverError('OUT_OF_MEMORY', `could not grow kernel memory to ${want} bytes`, { requested: want }, { cause: e });
    }
  }
}

/** A plain ArrayBuffer, for the JS twin. */
export class ArrayMemory extends KernelMemory {
  private buf: ArrayBuffer;
  constructor(initialBytes = PAGE) {
    super(16); // keep 0 as a "null" pointer, like WASM
    this.buf = new ArrayBuffer(initialBytes);
  }
  get buffer(): ArrayBuffer { return this.buf; }
  protected growTo(bytes: number): void {
    const want = Math.ceil(Math.max(bytes, this.buf.byteLength * 1.5) / PAGE) * PAGE;
    const next = new ArrayBuffer(want);
    new Uint8Array(next).set(new Uint8Array(this.buf));
    this.buf = next;
  }
}
