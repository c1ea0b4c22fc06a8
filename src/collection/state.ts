import { adoptFromJson, type FieldDef, type FieldValue, type FieldValues, type SplitMetadata } from '../fields/types.js';
import { parseIndexSpec, type IndexSpec } from '../index/spec.js';
import type { Kernels } from '../kernels/types.js';
import type { ManifestSchema, ManifestState } from '../storage/manifest.js';
import type { RecordField, UpsertEntry, WalOperation } from '../storage/records.js';
import { IdMap } from './id-map.js';
import { MutableSegment } from './mutable-segment.js';
import type { SealedSegment } from './sealed-segment.js';
import type { Segment } from './segment.js';
import { norm } from './validate.js';

/**
 * The collection's state in memory: the manifest in force, the sealed segments, the segment
 * being sealed, the mutable segment, and the id map; and how each logged operation changes it.
 * Live writes and WAL replay apply operations through the same methods, so replay rebuilds
 * exactly the state that acknowledged writes produced.
 *
 * Only the writer lane calls the apply methods (commit-lane.ts), one at a time; searches and
 * reads see the state between two of them.
 */
export class CollectionState {
  manifest: ManifestState;
  readonly spec: IndexSpec;
  sealed: SealedSegment[] = [];
  sealing: MutableSegment | null = null;
  mutable!: MutableSegment;
  readonly ids: IdMap;
  nextSegment: number;
  /** Sequence number of the next write (WAL records carry strictly increasing ones). */
  nextSeq = 1;

  constructor(manifest: ManifestState, readonly newKernels: () => Kernels, readonly sealRows: number) {
    this.manifest = manifest;
    this.spec = parseIndexSpec(manifest.schema.index);
    this.nextSegment = manifest.nextSegment;
    this.ids = new IdMap(() => this.segments());
  }

  get schema(): ManifestSchema { return this.manifest.schema; }
  get fields(): readonly FieldDef[] { return this.manifest.schema.fields; }

  /** Segments in search order (oldest first), each once. */
  segments(): Segment[] {
    const out: Segment[] = [...this.sealed];
    if (this.sealing) out.push(this.sealing);
    if (this.mutable) out.push(this.mutable);
    return out;
  }

  /** A new, empty mutable segment in its own kernel memory, registered in the id map. */
  newMutable(): MutableSegment {
    const s = this.schema;
    const m = new MutableSegment(this.nextSegment++, this.newKernels(), s.dimension, s.metric, s.fields, this.sealRows);
    this.ids.addSegment(m);
    return m;
  }

  // ---- applying operations ----

  apply(op: WalOperation): number {
    if (op.type === 'upsert') {
      const missing = this.fieldsNotIn(op.fields);
      for (const e of op.entries) this.applyUpsert(e, inverseNorm(e.vector, this.schema.metric), op.seq, missing);
      return op.entries.length;
    }
    let n = 0;
    for (const id of op.ids) if (this.applyDelete(id)) n++;
    return n;
  }

  /** Declared fields a record did not know (declared after it was written): adopted from its JSON. */
  fieldsNotIn(known: readonly RecordField[]): FieldDef[] {
    const fields = this.fields;
    if (fields.length === 0) return [];
    if (known.length === fields.length) return [];
    const names = new Set(known.map((f) => f.name));
    return fields.filter((f) => !names.has(f.name));
  }

  applyUpsert(e: UpsertEntry, invNorm: number, seq: number, missing: readonly FieldDef[]): void {
    const m = this.mutable;
    m.noteSeq(seq);
    const split = missing.length ? adoptFromJson({ json: e.metadataJson, values: e.values }, missing) : { json: e.metadataJson, values: e.values };
    const at = this.ids.get(e.id);
    if (at) at.segment.markDeleted(at.ord);
    const ord = m.append(e.id, e.vector, invNorm, split.json, split.values);
    this.ids.set(e.id, m, ord);
  }

  applyDelete(id: string): boolean {
    const at = this.ids.get(id);
    if (!at) return false;
    this.ids.delete(id);
    at.segment.markDeleted(at.ord);
    return true;
  }

  /**
   * The upsert a metadata update amounts to, read from the current state: the record's vector
   * with the new metadata (the patch, or the patch merged into the current metadata). Null when
   * the id is absent. Logged as that upsert, so replay never depends on the row it replaced.
   */
  planUpdate(id: string, patch: SplitMetadata, merge: boolean, planned?: UpsertEntry): UpsertEntry | null {
    if (planned) {
      // the same id earlier in the batch: build on what that entry will write
      const next = merge ? mergeMetadata({ json: planned.metadataJson, values: planned.values }, patch) : patch;
      return { id, vector: planned.vector, metadataJson: next.json, values: next.values };
    }
    const at = this.ids.get(id);
    if (!at) return null;
    const next = merge ? mergeMetadata(this.currentMetadata(at.segment, at.ord), patch) : patch;
    return { id, vector: at.segment.vectorAt(at.ord), metadataJson: next.json, values: next.values };
  }

  /**
   * A row's metadata split under the current schema: fields its segment lacks (`lacking`, from
   * lackingFields(seg)) adopted from its JSON.
   */
  currentMetadata(seg: Segment, ord: number, lacking: readonly FieldDef[] = this.lackingFields(seg)): SplitMetadata {
    const split = { json: seg.metadataJsonAt(ord), values: seg.fieldValuesAt(ord) };
    return lacking.length ? adoptFromJson(split, lacking) : split;
  }

  /** Declared fields that `seg` has no column for (declared after it was written). */
  lackingFields(seg: Segment): FieldDef[] {
    return this.fields.filter((f) => !seg.hasField(f.name));
  }

  /**
   * Declares a field in memory: the mutable segment gets a column for it, its rows' values are
   * adopted from their JSON. (Frozen and sealed segments keep theirs in the JSON until merged.)
   */
  addField(def: FieldDef): void {
    const m = this.mutable;
    for (let ord = 0; ord < m.count; ord++) {
      if (m.isDeleted(ord)) continue;
      const split = adoptFromJson({ json: m.metadataJson[ord], values: m.fieldValuesAt(ord) }, [def]);
      if (split.json !== m.metadataJson[ord]) m.setMetadata(ord, split.json, split.values);
    }
    // after adoption: a text or sparse field indexes the values just adopted
    m.addField(def);
  }

  /**
   * Replaces a mutable segment that is mostly tombstones by a new one holding only its live rows
   * (in-memory collections that never seal would otherwise keep every deleted vector). The new
   * segment has a new number and new ordinals; the old one is released.
   */
  vacuumMutable(): void {
    const old = this.mutable;
    const fresh = this.newMutable();
    for (const f of this.fields) fresh.addField(f);
    fresh.minSeq = old.minSeq;
    fresh.maxSeq = old.maxSeq;
    const v = new Float32Array(this.schema.dimension);
    for (let ord = 0; ord < old.count; ord++) {
      if (old.isDeleted(ord)) continue;
      old.vectorAt(ord, v);
      const id = old.idAt(ord);
      const to = fresh.append(id, v, inverseNorm(v, this.schema.metric), old.metadataJsonAt(ord), old.fieldValuesAt(ord));
      this.ids.set(id, fresh, to);
    }
    this.mutable = fresh;
    this.ids.removeSegment(old);
    old.release();
  }
}

/** Joins a patch into current metadata: top-level keys of the patch win. */
function mergeMetadata(current: SplitMetadata, patch: SplitMetadata): SplitMetadata {
  const values: Record<string, FieldValue> = Object.assign(Object.create(null) as Record<string, FieldValue>, current.values, patch.values);
  const obj: Record<string, unknown> = { ...(current.json ? JSON.parse(current.json) : {}), ...(patch.json ? JSON.parse(patch.json) : {}) };
  for (const name in values) delete obj[name];
  let json = '';
  for (const _ in obj) { json = JSON.stringify(obj); break; }
  return { json, values: values as FieldValues };
}

/** What Collection computes for a record (1/||v|| for cosine, else 1), recomputed for replayed records. */
export function inverseNorm(v: Float32Array, metric: string): number {
  if (metric !== 'cosine') return 1;
  const n = norm(v);
  return n > 0 ? 1 / n : 0;
}
