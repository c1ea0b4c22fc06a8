import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuiverError } from '../src/errors.js';
import { formatIndexSpec, indexSpecGrammar, parseIndexSpec, quantizerSpecOf, rerankRule } from '../src/index/spec.js';

describe('index spec parser', () => {
  it('parses the documented forms', () => {
    assert.deepEqual(parseIndexSpec('Flat'), { index: 'Flat', transforms: [], quantizer: null, rerank: null });
    assert.deepEqual(parseIndexSpec('Flat,SQ8'), { index: 'Flat', transforms: [], quantizer: 'SQ8', rerank: null });
    assert.deepEqual(parseIndexSpec('Flat,SQ4,Rerank'), { index: 'Flat', transforms: [], quantizer: 'SQ4', rerank: { factor: null } });
    assert.deepEqual(parseIndexSpec('Flat,SQ4,Rerank4'), { index: 'Flat', transforms: [], quantizer: 'SQ4', rerank: { factor: 4 } });
    assert.deepEqual(parseIndexSpec('Flat,PCA128,ROT,SQ8,Rerank10'), { index: 'Flat', transforms: ['PCA128', 'ROT'], quantizer: 'SQ8', rerank: { factor: 10 } });
    assert.deepEqual(parseIndexSpec(' Flat , F16 '), { index: 'Flat', transforms: [], quantizer: 'F16', rerank: null });
  });

  it('prints canonical text that parses back to the same spec', () => {
    for (const text of ['Flat', 'Flat,SQ8', 'Flat,SQ4,Rerank', 'Flat,SQ4,Rerank1000', 'Flat,ROT,SQ4,Rerank2', 'Flat,LeanVec64,SQ8']) {
      const spec = parseIndexSpec(text);
      assert.equal(formatIndexSpec(spec), text);
      assert.deepEqual(parseIndexSpec(formatIndexSpec(spec)), spec);
    }
    assert.equal(formatIndexSpec(parseIndexSpec('Flat , SQ8 ,Rerank')), 'Flat,SQ8,Rerank');
  });

  it('gives the quantizer spec with its transforms, and the rerank rule', () => {
    assert.equal(quantizerSpecOf(parseIndexSpec('Flat')), null);
    assert.equal(quantizerSpecOf(parseIndexSpec('Flat,PCA64,SQ8,Rerank')), 'PCA64,SQ8');
    const bare = parseIndexSpec('Flat,SQ4,Rerank');
    assert.deepEqual(rerankRule(bare, false), { factor: 4 });
    assert.deepEqual(rerankRule(bare, true), { bounds: true });
    assert.deepEqual(rerankRule(parseIndexSpec('Flat,SQ4,Rerank7'), true), { factor: 7 });
    assert.equal(rerankRule(parseIndexSpec('Flat,SQ4'), true), null);
  });

  it('rejects bad text with UNKNOWN_SPEC, the offending part and the grammar', () => {
    const bad: Array<[unknown, string | undefined]> = [
      ['', undefined], ['   ', undefined], [42, undefined], ['HNSW32,PQ16x4fs', 'PQ16x4fs'], ['HNSW2,SQ8', 'HNSW2'], ['IVF0', 'IVF0'], ['flat', 'flat'], ['Flat,SQ3', 'SQ3'],
      ['Flat,Rerank', 'Rerank'], ['Flat,SQ8,Rerank0', 'Rerank0'], ['Flat,SQ8,Rerank1001', 'Rerank1001'], ['Flat,SQ8,Reranked', 'Reranked'],
      ['Flat,Rerank,SQ8', 'Rerank'], ['Flat,SQ8,SQ4', 'SQ8'], ['Flat,PCA64', 'PCA64'], ['Flat,SQ8,ROT', 'SQ8'], ['Flat,,SQ8', undefined],
      ['Flat,PCA0,SQ8', 'PCA0'], ['Flat,SQ8,', undefined],
    ];
    for (const [text, part] of bad) {
      assert.throws(() => parseIndexSpec(text as string), (e: unknown) => {
        assert.ok(e instanceof QuiverError, `${String(text)}: ${String(e)}`);
        assert.equal(e.code, 'UNKNOWN_SPEC', String(text));
        assert.equal(e.details.received, text);
        assert.equal(e.details.expected, indexSpecGrammar());
        if (part !== undefined) assert.equal(e.details.part, part, `part of "${String(text)}"`);
        assert.match(e.message, /grammar/);
        return true;
      }, String(text));
    }
  });

  it('HNSW takes the graph quantizers (F16, SQ8, SQ4, LVQ, RaBitQ); others are UNKNOWN_SPEC naming them', () => {
    for (const text of ['HNSW16,LVQ8,Rerank', 'HNSW16,LVQ4x4,Rerank', 'HNSW16,LVQ8x8', 'HNSW16,RaBitQ4,Rerank', 'HNSW32,RaBitQ1,Rerank', 'HNSW16,RaBitQ2fast,Rerank', 'HNSW16,ROT,RaBitQ8,Rerank3', 'HNSW8,PCA64,LVQ4']) {
      const spec = parseIndexSpec(text);
      assert.equal(spec.index, 'HNSW');
      assert.equal(formatIndexSpec(spec), text);
    }
    // a bounded quantizer with a bare Rerank reranks by its error bounds (graphs ask for it with 1-bit
    // RaBitQ codes only: hnsw-segment.ts graphRerankRule); Rerank<f> oversamples
    assert.deepEqual(rerankRule(parseIndexSpec('HNSW16,RaBitQ4,Rerank'), true), { bounds: true });
    assert.deepEqual(rerankRule(parseIndexSpec('HNSW16,RaBitQ4,Rerank10'), true), { factor: 10 });
    for (const [text, part] of [['HNSW16,PQ16x4fs,Rerank', 'PQ16x4fs'], ['HNSW16,PQ32x8', 'PQ32x8'], ['HNSW16,BIN,Rerank', 'BIN'], ['HNSW16,ROT,PQ16x4fs', 'PQ16x4fs']]) {
      assert.throws(() => parseIndexSpec(text), (e: unknown) => {
        assert.ok(e instanceof QuiverError, `${text}: ${String(e)}`);
        assert.equal(e.code, 'UNKNOWN_SPEC', text);
        assert.equal(e.details.part, part, text);
        assert.match(e.message, /HNSW traverses F16, SQ8, SQ4, LVQ.*RaBitQ.* codes or full-precision vectors/, text);
        assert.match(e.message, /scanned by Flat and IVF only/, text);
        return true;
      }, text);
      // the same quantizer is fine where codes are scanned
      assert.equal(parseIndexSpec(text.replace(/^HNSW16/, 'IVF')).quantizer, part);
    }
  });

  it('parses HNSW efConstruction (HNSW<M>:<efConstruction>): default when omitted, bounds checked, canonical text kept', () => {
    assert.equal(parseIndexSpec('HNSW16,SQ8,Rerank').efConstruction, null);
    const s = parseIndexSpec('HNSW32:400,SQ8,Rerank');
    assert.equal(s.m, 32);
    assert.equal(s.efConstruction, 400);
    for (const text of ['HNSW32:400,SQ8,Rerank', 'HNSW8:10', 'HNSW128:4096,F16', 'HNSW16']) assert.equal(formatIndexSpec(parseIndexSpec(text)), text);
    for (const [text, part] of [['HNSW16:9', 'HNSW16:9'], ['HNSW16:4097', 'HNSW16:4097'], ['HNSW16:', 'HNSW16:'], ['HNSW16:x', 'HNSW16:x'], ['HNSW:200', 'HNSW:200']]) {
      assert.throws(() => parseIndexSpec(text), (e: unknown) => e instanceof QuiverError && e.code === 'UNKNOWN_SPEC' && e.details.part === part, text);
    }
  });

  it('parses IVF specs: nlist given or chosen per segment, with or without a quantizer', () => {
    assert.deepEqual(parseIndexSpec('IVF'), { index: 'IVF', nlist: null, transforms: [], quantizer: null, rerank: null });
    assert.deepEqual(parseIndexSpec('IVF256'), { index: 'IVF', nlist: 256, transforms: [], quantizer: null, rerank: null });
    assert.deepEqual(parseIndexSpec('IVF1024,RaBitQ1,Rerank'), { index: 'IVF', nlist: 1024, transforms: [], quantizer: 'RaBitQ1', rerank: { factor: null } });
    assert.deepEqual(parseIndexSpec('IVF,PCA64,PQ16x4fs,Rerank10'), { index: 'IVF', nlist: null, transforms: ['PCA64'], quantizer: 'PQ16x4fs', rerank: { factor: 10 } });
    for (const text of ['IVF', 'IVF1', 'IVF65536', 'IVF256,SQ8', 'IVF,RaBitQ4,Rerank', 'IVF64,ROT,SQ4,Rerank3']) {
      assert.equal(formatIndexSpec(parseIndexSpec(text)), text);
    }
    assert.equal(quantizerSpecOf(parseIndexSpec('IVF64,PCA64,SQ8,Rerank')), 'PCA64,SQ8');
    for (const [text, part] of [['IVF0', 'IVF0'], ['IVF65537', 'IVF65537'], ['IVFx', 'IVFx'], ['IVF-1', 'IVF-1'], ['IVF64,Rerank', 'Rerank'], ['ivf64', 'ivf64']]) {
      assert.throws(() => parseIndexSpec(text), (e: unknown) => e instanceof QuiverError && e.code === 'UNKNOWN_SPEC' && e.details.part === part, text);
    }
  });
});
