// The embedded default store: one SQLite file in WAL mode, written with group commits.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { GroupCommit, storeError } from './group-commit.ts';
import { migrate } from './sqlite-schema.ts';
import {
  URGENCIES,
  type EncodingHeaders,
  type MessageFilter,
  type MessageRef,
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
  /** File path, or ':memory:'. */
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
  onCommit?: (ms: number, writes: number) => void;
  /** Writes started failing (the error), or succeed again after failing (null). */
  onWritable?: (failure: Error | null) => void;
  /** How long a write waits for a lock held by another process (default 5000 ms). */
  busyTimeoutMs?: number;
  /** After a commit that queued receipts: the receipt subscriptions that got them. */
  onReceipts?: (subscriptions: Buffer[]) => void;
}

export const DEFAULT_RECEIPT_TTL_MS = 24 * 3600 * 1000;

const MESSAGE_COLUMNS = 'id, uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body, receipt';
/** The expired messages one sweep handles (a bounded transaction). */
const SWEEP_EXPIRED = 'SELECT id FROM messages WHERE expires_at <= ?1 ORDER BY expires_at, id LIMIT 5000';

interface MessageRow {
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

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function toMessage(r: MessageRow): StoredMessage {
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

type Query =
  | 'hasUa'
  | 'putUa'
  | 'putSub'
  | 'getSub'
  | 'listSubs'
  | 'delSub'
  | 'subReceipts'
  | 'delSubMessages'
  | 'delUa'
  | 'uaReceipts'
  | 'delUaSubs'
  | 'delUaMessages'
  | 'countUa'
  | 'countSub'
  | 'countChannels'
  | 'topicId'
  | 'delById'
  | 'insert'
  | 'pending'
  | 'pendingFiltered'
  | 'delMessage'
  | 'newReceiptSub'
  | 'useReceiptSub'
  | 'hasReceiptSub'
  | 'queueReceipt'
  | 'pendingReceipts'
  | 'delReceipt'
  | 'sweepReceiptsOfExpired'
  | 'sweepMessages'
  | 'sweepReceipts'
  | 'sweepReceiptSubs'
  | 'delReceiptsOf'
  | 'touchUa'
  | 'idleUas'
  | 'delIdleUa'
  | 'probe'
  | 'broadcasts'
  | 'putBroadcast';

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #tx: GroupCommit;
  readonly #now: () => number;
  readonly #maxStored: number;
  readonly #maxStoredPerSub: number;
  readonly #maxChannels: number;
  readonly #receiptTtl: number;
  readonly #onReceipts: (subscriptions: Buffer[]) => void;
  readonly #q: Record<Query, StatementSync>;
  /** Why the last write failed, until one succeeds again. */
  #writeFailure: Error | null = null;

  constructor(opts: SqliteStoreOptions) {
    this.#db = new DatabaseSync(opts.path);
    this.#db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'};`);
    this.#db.exec(`PRAGMA busy_timeout = ${opts.busyTimeoutMs ?? 5000};`);
    migrate(this.#db);
    this.#now = opts.now ?? Date.now;
    this.#maxStored = opts.maxStoredPerUserAgent;
    this.#maxStoredPerSub = opts.maxStoredPerSubscription ?? opts.maxStoredPerUserAgent;
    this.#maxChannels = opts.maxChannelsPerUserAgent ?? Number.MAX_SAFE_INTEGER;
    this.#receiptTtl = opts.receiptTtlMs ?? DEFAULT_RECEIPT_TTL_MS;
    this.#onReceipts = opts.onReceipts ?? (() => {});
    const onWritable = opts.onWritable ?? (() => {});
    const onCommit = opts.onCommit;
    this.#tx = new GroupCommit(this.#db, {
      onCommit: (ms, writes) => {
        if (this.#writeFailure) {
          this.#writeFailure = null;
          onWritable(null);
        }
        onCommit?.(ms, writes);
      },
      onFailure: (err) => {
        const first = this.#writeFailure === null;
        this.#writeFailure = err instanceof Error ? err : new Error(String(err));
        if (first) onWritable(this.#writeFailure);
      },
    });
    const p = (sql: string) => this.#db.prepare(sql);
    // 410 receipts for the messages about to be deleted that asked for one (RFC 8030 6.3)
    const receiptsOf = (where: string) =>
      p(
        'INSERT INTO receipts (sub, uaid, chid, message_id, status, expires_at) ' +
          `SELECT receipt, uaid, chid, id, 410, ?1 FROM messages WHERE ${where} AND receipt IS NOT NULL RETURNING sub`,
      );
    this.#q = {
      hasUa: p('SELECT 1 AS x FROM user_agents WHERE uaid = ?'),
      putUa: p('INSERT INTO user_agents (uaid, created_at, seen_at) VALUES (?1, ?2, ?2) ON CONFLICT (uaid) DO UPDATE SET seen_at = ?2'),
      touchUa: p('UPDATE user_agents SET seen_at = ? WHERE uaid = ?'),
      idleUas: p('SELECT uaid FROM user_agents WHERE seen_at < ? ORDER BY seen_at LIMIT ?'),
      delIdleUa: p('DELETE FROM user_agents WHERE uaid = ? AND seen_at < ?'),
      putSub: p(
        'INSERT INTO subscriptions (uaid, chid, key_hash, created_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (uaid, chid) DO UPDATE SET key_hash = excluded.key_hash',
      ),
      getSub: p('SELECT key_hash FROM subscriptions WHERE uaid = ? AND chid = ?'),
      listSubs: p('SELECT chid, key_hash FROM subscriptions WHERE uaid = ? ORDER BY created_at, chid'),
      delSub: p('DELETE FROM subscriptions WHERE uaid = ? AND chid = ?'),
      subReceipts: receiptsOf('uaid = ?2 AND chid = ?3'),
      delSubMessages: p('DELETE FROM messages WHERE uaid = ? AND chid = ?'),
      delUa: p('DELETE FROM user_agents WHERE uaid = ?'),
      uaReceipts: receiptsOf('uaid = ?2'),
      delUaSubs: p('DELETE FROM subscriptions WHERE uaid = ?'),
      delUaMessages: p('DELETE FROM messages WHERE uaid = ?'),
      countUa: p('SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE uaid = ? LIMIT ?)'),
      countSub: p('SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE uaid = ? AND chid = ? LIMIT ?)'),
      countChannels: p('SELECT count(*) AS n FROM (SELECT 1 FROM subscriptions WHERE uaid = ? LIMIT ?)'),
      topicId: p('SELECT id, receipt FROM messages WHERE uaid = ? AND chid = ? AND topic = ?'),
      delById: p('DELETE FROM messages WHERE id = ?'),
      insert: p(
        'INSERT INTO messages (uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body, receipt) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      pending: p(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ? AND id > ? AND expires_at > ? ORDER BY id LIMIT ?`,
      ),
      pendingFiltered: p(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ?1 AND id > ?2 AND expires_at > ?3 ` +
          'AND urgency >= ?4 AND (?5 IS NULL OR chid = ?5) ORDER BY id LIMIT ?6',
      ),
      delMessage: p('DELETE FROM messages WHERE id = ? AND uaid = ? AND chid = ? RETURNING receipt'),
      newReceiptSub: p('INSERT INTO receipt_subscriptions (id, expires_at) VALUES (?, ?)'),
      useReceiptSub: p('UPDATE receipt_subscriptions SET expires_at = max(expires_at, ?1) WHERE id = ?2 AND expires_at > ?3'),
      hasReceiptSub: p('SELECT 1 AS x FROM receipt_subscriptions WHERE id = ? AND expires_at > ?'),
      queueReceipt: p('INSERT INTO receipts (sub, uaid, chid, message_id, status, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      pendingReceipts: p(
        'SELECT seq, sub, uaid, chid, message_id, status FROM receipts WHERE sub = ? AND seq > ? AND expires_at > ? ORDER BY seq LIMIT ?',
      ),
      delReceipt: p('DELETE FROM receipts WHERE seq = ?'),
      sweepReceiptsOfExpired: receiptsOf(`id IN (${SWEEP_EXPIRED.replace('?1', '?2')})`),
      sweepMessages: p(`DELETE FROM messages WHERE id IN (${SWEEP_EXPIRED}) RETURNING uaid, chid, id`),
      sweepReceipts: p('DELETE FROM receipts WHERE seq IN (SELECT seq FROM receipts WHERE expires_at <= ? LIMIT 5000)'),
      sweepReceiptSubs: p(
        'DELETE FROM receipt_subscriptions WHERE id IN (SELECT id FROM receipt_subscriptions WHERE expires_at <= ? LIMIT 5000) RETURNING id',
      ),
      delReceiptsOf: p('DELETE FROM receipts WHERE sub = ?'),
      probe: p('INSERT INTO write_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = ?1'),
      broadcasts: p('SELECT id, version FROM broadcasts'),
      putBroadcast: p('INSERT INTO broadcasts (id, version) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET version = ?2'),
    };
  }

  /** Tells the owner, after this turn's commit, which receipt subscriptions got receipts. */
  #queued(rows: { sub: Uint8Array }[]): void {
    if (rows.length === 0) return;
    const subs = rows.map((r) => buf(r.sub));
    this.#tx.afterCommit(() => this.#onReceipts(subs));
  }

  #queue410(stmt: StatementSync, ...args: (Buffer | number)[]): void {
    this.#queued(stmt.all(this.#now() + this.#receiptTtl, ...args) as unknown as { sub: Uint8Array }[]);
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
    if (this.#writeFailure) {
      const now = this.#now();
      try {
        await this.#tx.run(() => this.#q.probe.run(now));
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
    const now = this.#now();
    return this.#tx.run(() => {
      // registering an existing channel again always fits
      if (this.#q.getSub.get(sub.uaid, sub.chid) === undefined) {
        const { n } = this.#q.countChannels.get(sub.uaid, this.#maxChannels) as { n: number };
        if (n >= this.#maxChannels) return false;
      }
      this.#q.putUa.run(sub.uaid, now);
      this.#q.putSub.run(sub.uaid, sub.chid, sub.keyHash, now);
      return true;
    });
  }

  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<boolean> {
    return this.#tx.run(() => {
      const existed = this.#q.delSub.run(uaid, chid).changes > 0;
      if (existed) this.#queue410(this.#q.subReceipts, uaid, chid);
      this.#q.delSubMessages.run(uaid, chid);
      return existed;
    });
  }

  deleteUserAgent(uaid: Buffer, seenBefore?: number): Promise<boolean> {
    return this.#tx.run(() => {
      const idle = seenBefore !== undefined;
      const existed = (idle ? this.#q.delIdleUa.run(uaid, seenBefore) : this.#q.delUa.run(uaid)).changes > 0;
      // an idle user agent seen since it was picked stays
      if (idle && !existed) return false;
      this.#queue410(this.#q.uaReceipts, uaid);
      this.#q.delUaMessages.run(uaid);
      this.#q.delUaSubs.run(uaid);
      return existed;
    });
  }

  touchUserAgent(uaid: Buffer): Promise<void> {
    const now = this.#now();
    return this.#tx.run(() => {
      this.#q.touchUa.run(now, uaid);
    });
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

  saveMessage(m: NewMessage, receipt?: ReceiptTarget): Promise<SaveResult> {
    return this.#tx.run((): SaveResult => {
      if (this.#q.getSub.get(m.uaid, m.chid) === undefined) return { ok: false, reason: 'no-subscription' };
      const expiresAt = m.createdAt + m.ttl * 1000;
      // a receipt subscription lives until the receipts of its messages could have expired
      const receiptsUntil = expiresAt + this.#receiptTtl;
      if (receipt && !receipt.create && this.#q.useReceiptSub.run(receiptsUntil, receipt.id, this.#now()).changes === 0) {
        return { ok: false, reason: 'no-receipt-subscription' };
      }
      const replaced =
        m.topic === null
          ? undefined
          : (this.#q.topicId.get(m.uaid, m.chid, m.topic) as { id: number; receipt: Uint8Array | null } | undefined);
      if (!replaced) {
        // the subscription's own cap first: one sender cannot use up the user agent's total
        const own = this.#q.countSub.get(m.uaid, m.chid, this.#maxStoredPerSub) as { n: number };
        if (own.n >= this.#maxStoredPerSub) return { ok: false, reason: 'too-many-stored' };
        const { n } = this.#q.countUa.get(m.uaid, this.#maxStored) as { n: number };
        if (n >= this.#maxStored) return { ok: false, reason: 'too-many-stored' };
      } else {
        this.#q.delById.run(replaced.id);
        // RFC 8030 5.4: the replaced message will never be acknowledged
        if (replaced.receipt !== null) this.#queueReceipt(replaced.receipt, m.uaid, m.chid, replaced.id, 410);
      }
      if (receipt?.create) this.#q.newReceiptSub.run(receipt.id, receiptsUntil);
      const h = m.headers;
      const { lastInsertRowid } = this.#q.insert.run(
        m.uaid,
        m.chid,
        m.topic,
        URGENCIES.indexOf(m.urgency),
        m.ttl,
        m.createdAt,
        expiresAt,
        h?.encoding ?? null,
        h?.encryption ?? null,
        h?.cryptoKey ?? null,
        m.body,
        receipt?.id ?? null,
      );
      const message: StoredMessage = { ...m, id: Number(lastInsertRowid), expiresAt };
      if (receipt) message.receipt = receipt.id;
      return { ok: true, message, replacedId: replaced?.id ?? null };
    });
  }

  #queueReceipt(sub: Uint8Array, uaid: Buffer, chid: Buffer, messageId: number, status: ReceiptStatus): void {
    this.#q.queueReceipt.run(sub, uaid, chid, messageId, status, this.#now() + this.#receiptTtl);
    this.#queued([{ sub }]);
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

  deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    return this.#tx.run(() => {
      const row = this.#q.delMessage.get(id, uaid, chid) as { receipt: Uint8Array | null } | undefined;
      if (row?.receipt) this.#queueReceipt(row.receipt, uaid, chid, id, 204);
      return row !== undefined;
    });
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
    return this.#tx.run(() => {
      this.#q.delReceipt.run(seq);
    });
  }

  sweep(): Promise<SweepResult> {
    const now = this.#now();
    return this.#tx.run((): SweepResult => {
      this.#queue410(this.#q.sweepReceiptsOfExpired, now);
      const expired = (this.#q.sweepMessages.all(now) as unknown as { uaid: Uint8Array; chid: Uint8Array; id: number }[]).map(
        (r): MessageRef => ({ uaid: buf(r.uaid), chid: buf(r.chid), id: r.id }),
      );
      const receipts = Number(this.#q.sweepReceipts.run(now).changes);
      const receiptSubscriptions = (this.#q.sweepReceiptSubs.all(now) as unknown as { id: Uint8Array }[]).map((r) => buf(r.id));
      for (const id of receiptSubscriptions) this.#q.delReceiptsOf.run(id);
      return { expired, receipts, receiptSubscriptions };
    });
  }

  broadcasts(): Promise<Map<string, string>> {
    return this.#read(() => new Map((this.#q.broadcasts.all() as { id: string; version: string }[]).map((r) => [r.id, r.version])));
  }

  putBroadcasts(versions: Readonly<Record<string, string>>): Promise<void> {
    return this.#tx.run(() => {
      for (const [id, version] of Object.entries(versions)) this.#q.putBroadcast.run(id, version);
    });
  }

  async sweepExpired(): Promise<number> {
    return (await this.sweep()).expired.length;
  }

  async close(): Promise<void> {
    this.#tx.flush();
    this.#db.close();
  }
}
