import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createWasmKernels, JsKernels } from '../src/kernels/index.js';

// KernelMemory promises zero-filled blocks; graph visited sets and heaps rely on it.

describe('kernel memory allocator', () => {
  for (const make of [() => createWasmKernels(), () => new JsKernels()]) {
    const name = make().name;
    it(`${name}: a released top block handed out again is zero-filled`, () => {
      const m = make().memory;
      const keep = m.alloc(64);
      const top = m.alloc(4096);
      m.u8(top, 4096).fill(0xab);
      m.release(top); // the top of the heap moves back down; the bytes stay in memory
      const again = m.alloc(8192); // starts where the released block was, and runs past it
      assert.equal(again, top);
      const bytes = m.u8(again, 8192);
      assert.equal(bytes.findIndex((b) => b !== 0), -1, 'every byte is zero');
      // and through the free list (a hole below the top)
      const hole = m.alloc(256);
      m.alloc(16);
      m.u8(hole, 256).fill(7);
      m.release(hole);
      const reuse = m.alloc(128);
      assert.equal(reuse, hole);
      assert.equal(m.u8(reuse, 128).findIndex((b) => b !== 0), -1);
      m.release(keep);
    });

    it(`${name}: random alloc/release sequences always return zeroed blocks`, () => {
      const m = make().memory;
      let seed = 12345;
      const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 4294967296; };
      const live: number[] = [];
      for (let step = 0; step < 2000; step++) {
        if (live.length && rand() < 0.45) {
          const i = Math.floor(rand() * live.length);
          m.release(live[i]);
          live.splice(i, 1);
        } else {
          const size = 16 + Math.floor(rand() * 3000);
          const p = m.alloc(size);
          const bytes = m.u8(p, size);
          assert.equal(bytes.findIndex((b) => b !== 0), -1, `step ${step}: block of ${size} at ${p} is not zero`);
          bytes.fill(0xff);
          live.push(p);
        }
      }
      for (const p of live) m.release(p);
      assert.equal(m.bytesInUse, 0);
    });
  }
});
