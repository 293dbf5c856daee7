// The embedded default store: one SQLite file in WAL mode. Writes run on a writer thread
// (./sqlite-worker.ts) in group commits; reads run here, on a connection of their own, so they
// stay synchronous and never wait for a commit.
import { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { StoreUnavailable } from './errors.ts';
import { GroupCommit, storeError } from './group-commit.ts';
import { CLONED, DELETE_MESSAGE, DELETE_RECEIPT, SAVE, TOUCH, decodeResults, encodeBatch, type BatchOp } from './sqlite-batch.ts';
import { migrate } from './sqlite-schema.ts';
import {
  WRITER_URL,
  type BatchMessage,
  type Id,
  type SavedOrNot,
  type SerializedError,
  type WriteArgs,
  type WriteName,
  type WriteResult,
  type WriterOptions,
  type WriterReply,
} from './sqlite-worker.ts';
import {
  URGENCIES,
  type EncodingHeaders,
  type MessageFilter,
  type NewMessage,
  type QueuedReceipt,
  type ReceiptStatus,
  type ReceiptTarget,
  type SaveResult,
  type Store,
  type StoredMessage,
  type Subscription,
  type SweepResult,
  type Urgency,
} from './types.ts';

export interface SqliteStoreOptions {
  /** The database file (a file: its writer thread and its readers open it apart). */
  path: string;
  /** Most messages stored for one user agent; further sends are refused until some are acked. */
  maxStoredPerUserAgent: number;
  /** Most messages stored for one subscription (default: maxStoredPerUserAgent). */
  maxStoredPerSubscription?: number;
  /** Most subscriptions of one user agent; a new one beyond is refused (default: no limit). */
  maxChannelsPerUserAgent?: number;
  /** 'full' fsyncs every commit (survives power loss); 'normal' survives process crashes only. */
  synchronous?: 'full' | 'normal';
  /** How long a queued receipt waits for its application server (default 24 h). */
  receiptTtlMs?: number;
  now?: () => number;
  /** After each commit: how long the COMMIT took (on the writer thread) and how many writes it held. */
  onCommit?: (ms: number, writes: number) => void;
  /** Writes started failing (the error), or succeed again after failing (null). */
  onWritable?: (failure: Error | null) => void;
  /** How long a write waits for a lock held by another process (default 5000 ms). */
  busyTimeoutMs?: number;
  /** After a commit that queued receipts: the receipt subscriptions that got them. */
  onReceipts?: (subscriptions: Buffer[]) => void;
  /** User agents whose stored-message counts the writer keeps in memory (default 50,000; 0: none). */
  countCacheSize?: number;
}

export const DEFAULT_RECEIPT_TTL_MS = 24 * 3600 * 1000;

/** The columns `toMessage` reads (also `webpushd migrate`'s). */
export const MESSAGE_COLUMNS = 'id, uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body, receipt';

export interface MessageRow {
  id: number;
  uaid: Uint8Array;
  chid: Uint8Array;
  topic: string | null;
  urgency: number;
  ttl: number;
  created_at: number;
  expires_at: number;
  encoding: string | null;
  encryption: string | null;
  crypto_key: string | null;
  body: Uint8Array;
  receipt: Uint8Array | null;
}

interface ReceiptRow {
  seq: number;
  sub: Uint8Array;
  uaid: Uint8Array;
  chid: Uint8Array;
  message_id: number;
  status: number;
}

/** A uaid no user agent has: the readiness read looks it up. */
const NO_UAID = Buffer.alloc(16);

/** A SQLite blob as a Buffer, without a copy. */
export const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function toMessage(r: MessageRow): StoredMessage {
  let headers: EncodingHeaders | null = null;
  if (r.encoding !== null) {
    headers = { encoding: r.encoding };
    if (r.encryption !== null) headers.encryption = r.encryption;
    if (r.crypto_key !== null) headers.cryptoKey = r.crypto_key;
  }
  const m: StoredMessage = {
    id: r.id,
    uaid: buf(r.uaid),
    chid: buf(r.chid),
    topic: r.topic,
    urgency: URGENCIES[r.urgency] as Urgency,
    ttl: r.ttl,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    headers,
    body: buf(r.body),
  };
  if (r.receipt !== null) m.receipt = buf(r.receipt);
  return m;
}

function toReceipt(r: ReceiptRow): QueuedReceipt {
  return {
    seq: r.seq,
    subscription: buf(r.sub),
    uaid: buf(r.uaid),
    chid: buf(r.chid),
    messageId: r.message_id,
    status: r.status as ReceiptStatus,
  };
}

/** An id as the writer takes it (see `Id`). */
const id = (b: Buffer): Id => b.toString('latin1');

function deserialize(e: SerializedError): Error {
  return e.unavailable ? new StoreUnavailable(e.message) : new Error(e.message);
}

export class SqliteStore implements Store {
  /** The readers' connection (the writer thread has its own). */
  readonly #db: DatabaseSync;
  readonly #writer: Worker;
  readonly #now: () => number;
  readonly #onCommit: (ms: number, writes: number) => void;
  readonly #onWritable: (failure: Error | null) => void;
  readonly #onReceipts: (subscriptions: Buffer[]) => void;
  readonly #q;
  readonly #tx: GroupCommit<BatchOp>;
  /** Why the last write failed, until one succeeds again. */
  #writeFailure: Error | null = null;
  /** Set when the writer thread is gone: every write fails with it. */
  #stopped: Error | null = null;

  constructor(opts: SqliteStoreOptions) {
    const busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    this.#db = new DatabaseSync(opts.path);
    this.#db.exec(`PRAGMA journal_mode = WAL; PRAGMA busy_timeout = ${busyTimeoutMs};`);
    // here, before the writer opens the file, so that a file it must refuse is refused at once
    migrate(this.#db);
    this.#now = opts.now ?? Date.now;
    this.#onCommit = opts.onCommit ?? (() => {});
    this.#onWritable = opts.onWritable ?? (() => {});
    this.#onReceipts = opts.onReceipts ?? (() => {});
    const maxStoredPerUserAgent = opts.maxStoredPerUserAgent;
    const writerOptions: WriterOptions = {
      path: opts.path,
      synchronous: opts.synchronous ?? 'full',
      busyTimeoutMs,
      maxStoredPerUserAgent,
      maxStoredPerSubscription: opts.maxStoredPerSubscription ?? maxStoredPerUserAgent,
      maxChannelsPerUserAgent: opts.maxChannelsPerUserAgent ?? Number.MAX_SAFE_INTEGER,
      receiptTtlMs: opts.receiptTtlMs ?? DEFAULT_RECEIPT_TTL_MS,
      countCacheSize: opts.countCacheSize ?? 50_000,
    };
    this.#writer = new Worker(WRITER_URL, { workerData: { sqliteWriter: writerOptions } });
    this.#writer.unref();
    this.#writer.on('message', this.#onReply);
    this.#tx = new GroupCommit((ops) => {
      this.#writer.ref();
      const batch: BatchMessage = { now: this.#now(), ...encodeBatch(ops) };
      // a buffer made for this batch alone (ids may share a pool's): moved, not copied
      this.#writer.postMessage(batch, [batch.bytes]);
    });
    this.#writer.on('error', (err) => this.#stop(new StoreUnavailable(`store writer failed: ${err.message}`, { cause: err })));
    this.#writer.on('exit', () => this.#stop(new StoreUnavailable('store writer stopped')));
    const p = (sql: string) => this.#db.prepare(sql);
    this.#q = {
      hasUa: p('SELECT 1 AS x FROM user_agents WHERE uaid = ?'),
      idleUas: p('SELECT uaid FROM user_agents WHERE seen_at < ? ORDER BY seen_at LIMIT ?'),
      getSub: p('SELECT key_hash FROM subscriptions WHERE uaid = ? AND chid = ?'),
      listSubs: p('SELECT chid, key_hash FROM subscriptions WHERE uaid = ? ORDER BY created_at, chid'),
      pending: p(`SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ? AND id > ? AND expires_at > ? ORDER BY id LIMIT ?`),
      pendingFiltered: p(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ?1 AND id > ?2 AND expires_at > ?3 ` +
          'AND urgency >= ?4 AND (?5 IS NULL OR chid = ?5) ORDER BY id LIMIT ?6',
      ),
      hasReceiptSub: p('SELECT 1 AS x FROM receipt_subscriptions WHERE id = ? AND expires_at > ?'),
      pendingReceipts: p(
        'SELECT seq, sub, uaid, chid, message_id, status FROM receipts WHERE sub = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?',
      ),
      broadcasts: p('SELECT id, version FROM broadcasts'),
    };
  }

  /** Queues a write into the next batch; resolves with its result once the batch is committed. */
  #run<T>(op: BatchOp): Promise<T> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    return this.#tx.run(op);
  }

  /** A rare write: its arguments are cloned to the writer beside the batch's buffer. */
  #write<K extends WriteName>(name: K, ...args: WriteArgs<K>): Promise<WriteResult<K>> {
    return this.#run([CLONED, name, args]);
  }

  readonly #onReply = (reply: WriterReply): void => {
    if (reply.kind === 'failure') {
      const err = deserialize(reply.error);
      const first = this.#writeFailure === null;
      this.#writeFailure = err;
      this.#tx.failed(err);
      if (first) this.#onWritable(err);
    } else {
      if (this.#writeFailure) {
        this.#writeFailure = null;
        this.#onWritable(null);
      }
      const results = decodeResults(reply.results);
      this.#onCommit(reply.ms, results.length);
      this.#tx.committed(results);
      // synchronous, so that receipt monitors hear of their receipts before any writer's continuation runs
      if (reply.receipts.length > 0) this.#onReceipts(reply.receipts.map(buf));
    }
    // it keeps the process alive only while a batch waits for its answer
    if (!this.#tx.busy) this.#writer.unref();
  };

  #stop(err: Error): void {
    if (this.#stopped) return;
    this.#stopped = err;
    this.#tx.stop(err);
  }

  /** A read, with its failure reported the way the Store seam does (StoreUnavailable). */
  #read<T>(read: () => T): Promise<T> {
    try {
      return Promise.resolve(read());
    } catch (err) {
      return Promise.reject(storeError(err));
    }
  }

  hasUserAgent(uaid: Buffer): Promise<boolean> {
    return this.#read(() => this.#q.hasUa.get(uaid) !== undefined);
  }

  /**
   * null while the store reads and writes; else why not. A cheap read while writes succeed;
   * while they fail, a write of the probe row, so recovery is seen without other traffic.
   */
  async unavailable(): Promise<string | null> {
    if (this.#stopped) return `store unreachable: ${this.#stopped.message}`;
    if (this.#writeFailure) {
      try {
        await this.#write('probe');
      } catch (err) {
        return `store cannot write: ${(err as Error).message}`;
      }
    }
    try {
      await this.hasUserAgent(NO_UAID);
      return null;
    } catch (err) {
      return `store unreachable: ${(err as Error).message}`;
    }
  }

  putSubscription(sub: Subscription): Promise<boolean> {
    return this.#write('putSubscription', id(sub.uaid), id(sub.chid), sub.keyHash && id(sub.keyHash));
  }

  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean> {
    return this.#write('deleteSubscription', id(uaid), id(chid));
  }

  deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean> {
    return this.#write('deleteUserAgent', id(uaid), seenBefore ?? null);
  }

  touchUserAgent(uaid: Buffer): Promise<void> {
    return this.#run([TOUCH, uaid]);
  }

  idleUserAgents(seenBefore: number, limit: number): Promise<Buffer[]> {
    return this.#read(() => (this.#q.idleUas.all(seenBefore, limit) as unknown as { uaid: Uint8Array }[]).map((r) => buf(r.uaid)));
  }

  getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null> {
    return this.#read(() => {
      const row = this.#q.getSub.get(uaid, chid) as { key_hash: Uint8Array | null } | undefined;
      return row ? { uaid, chid, keyHash: row.key_hash ? buf(row.key_hash) : null } : null;
    });
  }

  listSubscriptions(uaid: Buffer): Promise<Subscription[]> {
    return this.#read(() => {
      const rows = this.#q.listSubs.all(uaid) as unknown as { chid: Uint8Array; key_hash: Uint8Array | null }[];
      return rows.map((r) => ({ uaid, chid: buf(r.chid), keyHash: r.key_hash ? buf(r.key_hash) : null }));
    });
  }

  async saveMessage(m: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult> {
    const saved: SavedOrNot = await this.#run([SAVE, m, receipt]);
    if (!saved.ok) return saved;
    // the writer answers with the id only: the message itself never crosses back
    const message: StoredMessage = { ...m, id: saved.id, expiresAt: saved.expiresAt };
    if (receipt) message.receipt = receipt.id;
    return { ok: true, message, replacedId: saved.replacedId };
  }

  pendingMessages(uaid: Buffer, afterId: number, limit: number, filter?: MessageFilter): Promise<StoredMessage[]> {
    const now = this.#now();
    return this.#read(() => {
      const rows =
        filter && (filter.chid || filter.minUrgency)
          ? this.#q.pendingFiltered.all(
              uaid,
              afterId,
              now,
              filter.minUrgency ? URGENCIES.indexOf(filter.minUrgency) : 0,
              filter.chid ?? null,
              limit,
            )
          : this.#q.pending.all(uaid, afterId, now, limit);
      return (rows as unknown as MessageRow[]).map(toMessage);
    });
  }

  deleteMessage(uaid: Buffer, chid: Buffer, messageId: number): Promise<boolean> {
    return this.#run([DELETE_MESSAGE, uaid, chid, messageId]);
  }

  hasReceiptSubscription(id: Buffer): Promise<boolean> {
    return this.#read(() => this.#q.hasReceiptSub.get(id, this.#now()) !== undefined);
  }

  pendingReceipts(subscription: Buffer, afterSeq: number, limit: number): Promise<QueuedReceipt[]> {
    return this.#read(() => {
      const rows = this.#q.pendingReceipts.all(subscription, afterSeq, this.#now(), limit) as unknown as ReceiptRow[];
      return rows.map(toReceipt);
    });
  }

  deleteReceipt(seq: number): Promise<void> {
    return this.#run([DELETE_RECEIPT, seq]);
  }

  async sweep(): Promise<SweepResult> {
    const r = await this.#write('sweep');
    return {
      expired: r.expired.map((e) => ({ uaid: buf(e.uaid), chid: buf(e.chid), id: e.id })),
      receipts: r.receipts,
      receiptSubscriptions: r.receiptSubscriptions.map(buf),
    };
  }

  broadcasts(): Promise<Map<string, string>> {
    return this.#read(() => new Map((this.#q.broadcasts.all() as { id: string; version: string }[]).map((r) => [r.id, r.version])));
  }

  putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void> {
    return this.#write('putBroadcasts', versions);
  }

  async sweepExpired(): Promise<number> {
    return (await this.sweep()).expired.length;
  }

  /** Sends the writes queued, waits for every answer, then stops the writer and closes the file. */
  async close(): Promise<void> {
    await this.#tx.idle();
    if (!this.#stopped) {
      const exited = new Promise((resolve) => this.#writer.once('exit', resolve));
      this.#stopped = new StoreUnavailable('the store is closed');
      // the process waits for the writer to close the file
      this.#writer.ref();
      this.#writer.postMessage('close');
      await exited;
    }
    this.#db.close();
  }
}
