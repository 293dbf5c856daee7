// One transaction per event-loop turn of the store's writer thread (src/store/sqlite-worker.ts):
// the first batch of writes of a turn opens it, a setImmediate commits it, and every batch of
// the turn is answered after that single commit (and its fsync). While the writer fsyncs, the
// batches that come in wait in its message queue and make up the next turn, so under load one
// fsync serves many requests. A batch that throws, or a COMMIT that fails, rolls the whole turn
// back and fails every batch of it: a write's statements are never kept in part (e.g. a Topic
// replacement's delete without its insert), and no writer was answered yet.
import type { DatabaseSync } from 'node:sqlite';
import { StoreUnavailable } from './errors.ts';

/** SQLite primary result codes that mean "cannot serve now", not a bug in a statement. */
const UNAVAILABLE = new Set([
  5, // BUSY: another process holds the write lock
  6, // LOCKED
  7, // NOMEM
  8, // READONLY
  10, // IOERR
  11, // CORRUPT
  13, // FULL: database or disk is full
  14, // CANTOPEN
  15, // PROTOCOL
  26, // NOTADB
]);

/** A SQLite error as the Store seam reports it: StoreUnavailable when it is a fault of the disk or file. */
export function storeError(err: unknown): unknown {
  const code = (err as { errcode?: unknown }).errcode;
  if (typeof code === 'number' && UNAVAILABLE.has(code & 0xff)) {
    return new StoreUnavailable((err as Error).message, { cause: err });
  }
  return err;
}

export interface GroupCommitEvents<B> {
  /** After each successful commit: how long the COMMIT took, how many writes and which batches it held. */
  onCommit: (ms: number, writes: number, batches: B[]) => void;
  /** After a turn failed (its writes were rolled back): why, and the batches it held. */
  onFailure: (err: unknown, batches: B[]) => void;
}

export class GroupCommit<B> {
  readonly #db: DatabaseSync;
  readonly #events: GroupCommitEvents<B>;
  #batches: B[] = [];
  #writes = 0;
  #open = false;

  constructor(db: DatabaseSync, events: GroupCommitEvents<B>) {
    this.#db = db;
    this.#events = events;
  }

  /** Runs `write` (`writes` statements' worth) inside this turn's transaction; `batch` is reported with the turn's outcome. */
  run(batch: B, writes: number, write: () => void): void {
    try {
      if (!this.#open) {
        this.#db.exec('BEGIN IMMEDIATE');
        this.#open = true;
        setImmediate(this.#commit);
      }
      this.#batches.push(batch);
      this.#writes += writes;
      write();
    } catch (raw) {
      const err = storeError(raw);
      if (this.#open) this.#fail(err);
      else this.#events.onFailure(err, [batch]);
    }
  }

  /** Commits now (used on shutdown). */
  flush(): void {
    if (this.#open) this.#commit();
  }

  #take(): B[] {
    const batches = this.#batches;
    this.#batches = [];
    this.#writes = 0;
    this.#open = false;
    return batches;
  }

  /** Rolls this turn back and fails its batches; the next batch opens a new transaction. */
  #fail(err: unknown): void {
    const batches = this.#take();
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL)
    if (this.#db.isTransaction) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // nothing left to undo
      }
    }
    this.#events.onFailure(err, batches);
  }

  readonly #commit = (): void => {
    if (!this.#open) return;
    const started = performance.now();
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      return this.#fail(storeError(err));
    }
    const writes = this.#writes;
    this.#events.onCommit(performance.now() - started, writes, this.#take());
  };
}
