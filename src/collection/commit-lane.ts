import { QuiverError } from '../errors.js';
import type { WalWriter } from '../storage/wal.js';

/**
 * The writer lane: every change of the collection's state runs here, one step at a time, in
 * submission order: group commits of writes, and the install steps of seals, merges and schema
 * changes. In memory and on disk alike, so a seal or merge that copies tombstones and then
 * installs can never miss a delete issued in between (it waits in the lane).
 *
 * Writes (upsert, delete, update) are queued with their encoded WAL record and an `apply`
 * function. A group commit takes every queued write, appends their records to the WAL and
 * syncs once (when the collection has a WAL), then applies them in order and resolves each
 * caller with its apply result. A group that fails to commit rejects all its callers and
 * leaves nothing behind: the WAL writer holds no pending records between commits.
 */
export interface LaneWrite {
  /** The WAL record (null: nothing to log, e.g. in-memory collections). */
  payload: Uint8Array | null;
  apply: () => unknown;
  /**
   * A write whose record depends on the state it applies to (a metadata update logs the vector
   * it keeps): encoded in the lane once every earlier write is applied, committed in a group of
   * its own. Returns the record and what to apply.
   */
  late?: () => { payload: Uint8Array | null; apply: () => unknown };
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class CommitLane {
  private tail: Promise<unknown> = Promise.resolve();
  private queue: LaneWrite[] = [];
  private committing = false;
  /** Set when a durable write could not be applied: memory no longer matches the log. */
  poisoned: QuiverError | null = null;

  /**
   * wal: the current WAL writer (null without a WAL); afterApply runs after each applied group
   * (in the lane), e.g. to schedule a seal.
   */
  constructor(private readonly o: {
    wal: () => WalWriter | null;
    groupCommitMs: number;
    perCallCommit: boolean;
    afterApply: () => void;
  }) {}

  /** Runs fn after everything already in the lane; the lane waits for it. */
  run<T>(fn: () => Promise<T> | T): Promise<T> {
    const step = this.tail.then(fn, fn);
    this.tail = step.catch(() => {});
    return step;
  }

  /** Queues a write; resolves with its apply result once it is durable and applied. */
  submit<T>(payload: Uint8Array | null, apply: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ payload, apply, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  /**
   * Queues a write whose record is built against the state it applies to (see LaneWrite.late);
   * `late` may throw to reject the write (nothing is logged).
   */
  submitLate<T>(late: () => { payload: Uint8Array | null; apply: () => T }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ payload: null, apply: () => undefined, late, resolve: resolve as (v: unknown) => void, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.committing || this.queue.length === 0) return;
    this.committing = true;
    void this.run(() => this.commitGroup()).finally(() => {
      this.committing = false;
      this.kick();
    });
  }

  /** One group: every queued write, one WAL append and sync, then applied in order. */
  private async commitGroup(): Promise<void> {
    const wal = this.o.wal();
    if (wal && this.o.groupCommitMs > 0) await new Promise((r) => setTimeout(r, this.o.groupCommitMs));
    // a late write commits alone, after everything before it is applied
    let take = this.o.perCallCommit || this.queue[0]?.late ? 1 : this.queue.findIndex((w) => w.late !== undefined);
    if (take < 0) take = this.queue.length;
    const batch = this.queue.splice(0, take);
    if (batch.length === 0) return;
    const first = batch[0];
    if (first.late) {
      try {
        const built = first.late();
        first.payload = built.payload;
        first.apply = built.apply;
      } catch (e) {
        first.reject(e);
        return;
      }
    }
    try {
      if (this.poisoned) throw this.poisoned;
      const payloads = batch.map((w) => w.payload).filter((p): p is Uint8Array => p !== null);
      if (wal && payloads.length) await wal.commit(payloads);
    } catch (e) {
      for (const w of batch) w.reject(e);
      return;
    }
    for (const w of batch) {
      try {
        w.resolve(w.apply());
      } catch (e) {
        // logged but not applied: memory no longer matches the log until reopened (replay)
        this.poisoned = new QuiverError('IO_ERROR', `a logged write could not be applied in memory (${(e as Error).message}); reopen the collection to replay it`, {}, { cause: e });
        w.reject(e);
      }
    }
    this.o.afterApply();
  }

  /** Waits until every write submitted so far is committed and applied (or rejected). */
  async drain(): Promise<void> {
    while (this.queue.length || this.committing) {
      await this.run(() => {});
      if (this.queue.length && !this.committing) this.kick();
    }
  }

  /** Rejects every queued write (closing). */
  rejectQueued(e: unknown): void {
    for (const w of this.queue.splice(0)) w.reject(e);
  }
}
