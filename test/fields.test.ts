import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeColumn, encodeColumn } from '../src/fields/columns.js';
import { adoptFromJson, joinMetadata, NO_VALUES, splitMetadata, type FieldDef, type FieldType, type FieldValue } from '../src/fields/types.js';
import { isQuiverError } from '../src/errors.js';

// Declared fields: splitting metadata into typed values and opaque JSON, adopting values written
// before a field was declared, and the COLUMN section encoding of each type.

const fields: FieldDef[] = [
  { name: 'k', type: 'keyword', id: 1 }, { name: 'n', type: 'number', id: 2 }, { name: 'b', type: 'boolean', id: 3 }, { name: 'ks', type: 'keyword[]', id: 4 },
];

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

describe('declared fields', () => {
  it('split takes declared values out (null = absent), keeps the rest as JSON; join puts them back', () => {
    const m = { k: 'red', n: 2.5, b: false, ks: ['x', 'y'], other: { deep: [1, 2] }, nothing: null };
    const s = splitMetadata(m, fields, {});
    assert.deepEqual({ ...s.values }, { k: 'red', n: 2.5, b: false, ks: ['x', 'y'] });
    assert.deepEqual(JSON.parse(s.json), { other: { deep: [1, 2] }, nothing: null });
    assert.deepEqual(joinMetadata(s.json, s.values), m);
    const only = splitMetadata({ k: 'a' }, fields, {});
    assert.equal(only.json, '');
    assert.deepEqual(joinMetadata(only.json, only.values), { k: 'a' });
    assert.deepEqual(splitMetadata({ n: null }, fields, {}), { values: NO_VALUES, json: '' });
    assert.equal(joinMetadata('', NO_VALUES), undefined);
    assert.throws(() => splitMetadata({ n: '1' }, fields, { id: 'r' }), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.field === 'n' && e.details.id === 'r');
    assert.throws(() => splitMetadata({ ks: ['a', 1] }, fields, {}), (e) => isQuiverError(e, 'INVALID_ARGUMENT') && e.details.expected === 'keyword[]');
    assert.throws(() => splitMetadata({ k: 'x'.repeat(5000) }, fields, {}), (e) => isQuiverError(e, 'INVALID_ARGUMENT'));
  });

  it('adoption moves values of newly declared fields out of the JSON when their type fits', () => {
    const before = splitMetadata({ n: 3, k: 7, free: 1 }, [], {});
    const adopted = adoptFromJson(before, fields);
    assert.deepEqual({ ...adopted.values }, { n: 3 });
    assert.deepEqual(JSON.parse(adopted.json), { k: 7, free: 1 }, 'a value of the wrong type stays in the JSON');
    assert.deepEqual(joinMetadata(adopted.json, adopted.values), { n: 3, k: 7, free: 1 }, 'reads are unchanged');
    assert.equal(adoptFromJson(adopted, fields), adopted, 'nothing left to move: the same object');
  });

  for (const type of ['keyword', 'number', 'boolean', 'keyword[]'] as FieldType[]) {
    it(`${type} column: round trip with absent values and repeats; damage is CORRUPT_FILE`, () => {
      const n = 70;
      const value = (i: number): FieldValue | undefined => {
        if (i % 5 === 0) return undefined;
        if (type === 'keyword') return ['b', 'a', 'ü', 'a', ''][i % 5];
        if (type === 'number') return i * -1.25;
        if (type === 'boolean') return i % 3 === 0;
        return i % 7 === 0 ? [] : ['t' + (i % 4), 'u', 't' + (i % 4)];
      };
      const bytes = concat(encodeColumn(type, n, value));
      const col = decodeColumn(bytes, n, 'test', 'f');
      assert.equal(col.type, type);
      for (let i = 0; i < n; i++) assert.deepEqual(col.value(i), value(i), `row ${i}`);
      assert.throws(() => decodeColumn(bytes, n + 1, 'test', 'f'), (e) => isQuiverError(e, 'CORRUPT_FILE'));
      assert.throws(() => decodeColumn(bytes.subarray(0, bytes.length - 1), n, 'test', 'f'), (e) => isQuiverError(e, 'CORRUPT_FILE'));
      const badType = bytes.slice();
      badType[4] = 9;
      assert.throws(() => decodeColumn(badType, n, 'test', 'f'), (e) => isQuiverError(e, 'CORRUPT_FILE'));
    });
  }
});
