// Group commit, in two halves. On the event loop, `GroupCommit` collects writes: those of one
// turn, and all that come while a batch is being committed, go to the writer thread
// (./sqlite-worker.ts) as the next batch, so under load one commit (and its fsync) serves many
// requests, and one message crosses the threads each way per commit. On the writer thread,
// `transaction` runs a batch as one transaction. A write that throws, or a COMMIT that fails,
// rolls the whole batch back and fails every write of it: a write's statements are never kept
// in part (e.g. a Topic replacement's delete without its insert), and no writer was answered yet.
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

/**
 * Runs `write` in one transaction and commits it; returns how long the COMMIT took (ms). Throws
 * (as `storeError`) after rolling back when a statement or the COMMIT fails.
 */
export function transaction(db: DatabaseSync, write: () => void): number {
  try {
    db.exec('BEGIN IMMEDIATE');
    write();
    const started = performance.now();
    db.exec('COMMIT');
    return performance.now() - started;
  } catch (err) {
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL)
    if (db.isTransaction) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // nothing left to undo
      }
    }
    throw storeError(err);
  }
}

/**
 * The most writes in one transaction. Writes queue while a commit waits for its fsync; after a
 * stall (a slow disk, another process's lock) they would otherwise make one transaction, and
 * one copy to the writer thread, as large as everything that came meanwhile.
 */
export const MAX_BATCH = 10_000;

/**
 * A burst of writes queued at once (in one run of code, before any continuation: a fan-out's
 * chunk) that goes when it ends, if no batch is out, instead of when the event-loop turn ends:
 * the chunk then need not wait, the writer idle, while the turn runs every I/O callback that is
 * ready (hundreds of acknowledgements). Requests, a write or a few each, still wait for the turn.
 */
export const EARLY_BATCH = 32;

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<Op> {
  readonly #send: (ops: Op[]) => void;
  #ops: Op[] = [];
  #waiters: Waiter[] = [];
  /** The batch sent and not answered yet. */
  #inFlight: Waiter[] | null = null;
  #scheduled = false;
  /** Writes queued since the last microtask checkpoint. */
  #burst = 0;
  #onIdle: (() => void) | null = null;

  /** `send` hands a batch to the writer, which answers it through `committed` or `failed`. */
  constructor(send: (ops: Op[]) => void) {
    this.#send = send;
  }

  /** Queues a write; resolves with the writer's result for it once its batch is committed. */
  run<T>(op: Op): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#ops.push(op);
      this.#waiters.push({ resolve: resolve as (value: unknown) => void, reject });
      if (this.#burst++ === 0) queueMicrotask(this.#burstEnded);
      // the rest of this turn joins it; while a batch is out, its answer sends the next one
      if (!this.#scheduled && this.#inFlight === null) {
        this.#scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  readonly #burstEnded = (): void => {
    if (this.#burst >= EARLY_BATCH) this.flush();
    this.#burst = 0;
  };

  /** True while a batch waits for its answer. */
  get busy(): boolean {
    return this.#inFlight !== null;
  }

  /**
   * Sends the writes queued so far (at most MAX_BATCH of them, the rest after its answer),
   * unless a batch is out (its answer sends them).
   */
  readonly flush = (): void => {
    this.#scheduled = false;
    if (this.#inFlight !== null || this.#ops.length === 0) return;
    const ops = this.#ops.splice(0, MAX_BATCH);
    this.#inFlight = this.#waiters.splice(0, ops.length);
    this.#send(ops);
  };

  /** The batch out was committed: its writes' results, in order. */
  committed(results: unknown[]): void {
    const waiters = this.#take();
    for (const [i, w] of waiters.entries()) w.resolve(results[i]);
    this.#next();
  }

  /** The batch out was rolled back. */
  failed(err: unknown): void {
    for (const w of this.#take()) w.reject(err);
    this.#next();
  }

  /** Fails every write, sent or not (the writer is gone). */
  stop(err: unknown): void {
    const waiters = [...(this.#inFlight ?? []), ...this.#waiters];
    this.#inFlight = null;
    this.#ops = [];
    this.#waiters = [];
    for (const w of waiters) w.reject(err);
    this.#next();
  }

  /** Resolves once nothing is queued or out. */
  idle(): Promise<void> {
    this.flush();
    if (this.#inFlight === null) return Promise.resolve();
    return new Promise((resolve) => (this.#onIdle = resolve));
  }

  #take(): Waiter[] {
    const waiters = this.#inFlight ?? [];
    this.#inFlight = null;
    return waiters;
  }

  #next(): void {
    this.flush();
    if (this.#inFlight === null && this.#onIdle) {
      const onIdle = this.#onIdle;
      this.#onIdle = null;
      onIdle();
    }
  }
}
