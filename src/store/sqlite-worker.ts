// The SQLite store's writer: a worker thread that owns every write of the database, so that
// statements and the commit's fsync run beside the event loop instead of blocking it. The
// event loop sends its writes in batches (the group commit of ./group-commit.ts); the writer
// runs each batch as one transaction and answers it once the commit is durable. Reads stay on the event loop's own connection: in WAL mode they see every
// committed transaction and never wait for this one.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { StoreUnavailable } from './errors.ts';
import { transaction } from './group-commit.ts';
import { runBatch, type Encoded } from './sqlite-batch.ts';
import { URGENCIES, type EncodingHeaders, type ReceiptStatus, type Urgency } from './types.ts';

/** This module, started as the writer thread by the store. */
export const WRITER_URL = new URL(import.meta.url);

export interface WriterOptions {
  path: string;
  synchronous: 'full' | 'normal';
  busyTimeoutMs: number;
  maxStoredPerUserAgent: number;
  maxStoredPerSubscription: number;
  maxChannelsPerUserAgent: number;
  receiptTtlMs: number;
  /** User agents whose stored-message counts are kept in memory (0: counted by a query on every save). */
  countCacheSize: number;
}

/** Buffers cross threads as Uint8Arrays; SQLite binds either. */
type Bytes = Uint8Array;

/**
 * An id (uaid, chid, key hash, receipt subscription) as the writer gets it: one char per byte.
 * A string is copied to this thread at a fraction of the cost of a typed array (each its own
 * ArrayBuffer), and keys the counts as it is.
 */
export type Id = string;

/** An id as a Map key (one char per byte). */
const keyOf = (b: Bytes): Id => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** An id as SQLite binds it. */
const blob = (id: Id): Buffer => Buffer.from(id, 'latin1');

/** The messages stored for one user agent: in all, and per subscription (by chid). */
interface Counts {
  total: number;
  subs: Map<string, number>;
}

/** A message to save, as the writer gets it (`NewMessage` without what the answer does not need). */
export interface MessageToSave {
  uaid: Id;
  chid: Id;
  ttl: number;
  topic: string | null;
  urgency: Urgency;
  headers: EncodingHeaders | null;
  body: Bytes;
  createdAt: number;
}

export type SavedOrNot =
  | { ok: true; id: number; expiresAt: number; replacedId: number | null }
  | { ok: false; reason: 'no-subscription' | 'too-many-stored' | 'no-receipt-subscription' };

/** The expired messages one sweep handles (a bounded transaction). */
const SWEEP_EXPIRED = 'SELECT id FROM messages WHERE expires_at <= ?1 ORDER BY expires_at, id LIMIT 5000';

/** Every write of the store; each takes the time of the call first (the store's clock). */
export class Writer {
  readonly #o: WriterOptions;
  readonly #q;
  /** Receipt subscriptions that got receipts in this turn (told to the store after its commit). */
  #receipts: Bytes[] = [];
  /**
   * Stored-message counts of the user agents last written to, oldest first: the caps are checked
   * without counting rows. This thread is the only writer, so they stay true; a rolled-back
   * batch forgets them all.
   */
  readonly #counts = new Map<string, Counts>();

  constructor(db: DatabaseSync, o: WriterOptions) {
    this.#o = o;
    const p = (sql: string) => db.prepare(sql);
    // 410 receipts for the messages about to be deleted that asked for one (RFC 8030 6.3)
    const receiptsOf = (where: string) =>
      p(
        'INSERT INTO receipts (sub, uaid, chid, message_id, status, expires_at) ' +
          `SELECT receipt, uaid, chid, id, 410, ?1 FROM messages WHERE ${where} AND receipt IS NOT NULL RETURNING sub`,
      );
    this.#q = {
      putUa: p('INSERT INTO user_agents (uaid, created_at, seen_at) VALUES (?1, ?2, ?2) ON CONFLICT (uaid) DO UPDATE SET seen_at = ?2'),
      touchUa: p('UPDATE user_agents SET seen_at = ? WHERE uaid = ?'),
      delIdleUa: p('DELETE FROM user_agents WHERE uaid = ? AND seen_at < ?'),
      putSub: p(
        'INSERT INTO subscriptions (uaid, chid, key_hash, created_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (uaid, chid) DO UPDATE SET key_hash = excluded.key_hash',
      ),
      hasSub: p('SELECT 1 AS x FROM subscriptions WHERE uaid = ? AND chid = ?'),
      delSub: p('DELETE FROM subscriptions WHERE uaid = ? AND chid = ?'),
      subReceipts: receiptsOf('uaid = ?2 AND chid = ?3'),
      delSubMessages: p('DELETE FROM messages WHERE uaid = ? AND chid = ?'),
      delUa: p('DELETE FROM user_agents WHERE uaid = ?'),
      uaReceipts: receiptsOf('uaid = ?2'),
      delUaSubs: p('DELETE FROM subscriptions WHERE uaid = ?'),
      delUaMessages: p('DELETE FROM messages WHERE uaid = ?'),
      countBySub: p('SELECT chid, count(*) AS n FROM messages WHERE uaid = ? GROUP BY chid'),
      countChannels: p('SELECT count(*) AS n FROM (SELECT 1 FROM subscriptions WHERE uaid = ? LIMIT ?)'),
      topicId: p('SELECT id, receipt FROM messages WHERE uaid = ? AND chid = ? AND topic = ?'),
      delById: p('DELETE FROM messages WHERE id = ?'),
      insert: p(
        'INSERT INTO messages (uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body, receipt) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      delMessage: p('DELETE FROM messages WHERE id = ? AND uaid = ? AND chid = ? RETURNING receipt'),
      newReceiptSub: p('INSERT INTO receipt_subscriptions (id, expires_at) VALUES (?, ?)'),
      useReceiptSub: p('UPDATE receipt_subscriptions SET expires_at = max(expires_at, ?1) WHERE id = ?2 AND expires_at > ?3'),
      queueReceipt: p('INSERT INTO receipts (sub, uaid, chid, message_id, status, expires_at) VALUES (?, ?, ?, ?, ?, ?)'),
      delReceipt: p('DELETE FROM receipts WHERE seq = ?'),
      sweepReceiptsOfExpired: receiptsOf(`id IN (${SWEEP_EXPIRED.replace('?1', '?2')})`),
      sweepMessages: p(`DELETE FROM messages WHERE id IN (${SWEEP_EXPIRED}) RETURNING uaid, chid, id`),
      sweepReceipts: p('DELETE FROM receipts WHERE seq IN (SELECT seq FROM receipts WHERE expires_at <= ? LIMIT 5000)'),
      sweepReceiptSubs: p(
        'DELETE FROM receipt_subscriptions WHERE id IN (SELECT id FROM receipt_subscriptions WHERE expires_at <= ? LIMIT 5000) RETURNING id',
      ),
      delReceiptsOf: p('DELETE FROM receipts WHERE sub = ?'),
      probe: p('INSERT INTO write_probe (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = ?1'),
      putBroadcast: p('INSERT INTO broadcasts (id, version) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET version = ?2'),
    } satisfies Record<string, StatementSync>;
  }

  /** A batch was rolled back: the counts may count what it undid. */
  forgetCounts(): void {
    this.#counts.clear();
  }

  #countsOf(uaid: Id): Counts {
    let c = this.#counts.get(uaid);
    if (c) {
      // to the end: the Map's order is then least recently written first, the one evicted
      this.#counts.delete(uaid);
      this.#counts.set(uaid, c);
      return c;
    }
    c = { total: 0, subs: new Map() };
    for (const r of this.#q.countBySub.all(blob(uaid)) as unknown as { chid: Bytes; n: number }[]) {
      c.subs.set(keyOf(r.chid), r.n);
      c.total += r.n;
    }
    if (this.#o.countCacheSize > 0) {
      if (this.#counts.size >= this.#o.countCacheSize) this.#counts.delete(this.#counts.keys().next().value!);
      this.#counts.set(uaid, c);
    }
    return c;
  }

  /** One message of the subscription more (1) or less (-1), for a user agent whose counts are kept. */
  #count(uaid: Id, chid: Id, delta: number): void {
    const c = this.#counts.get(uaid);
    if (!c) return;
    const n = (c.subs.get(chid) ?? 0) + delta;
    c.total += delta;
    if (n > 0) c.subs.set(chid, n);
    else c.subs.delete(chid);
  }

  /** The receipt subscriptions of the turn just ended (committed or not). */
  takeReceipts(): Bytes[] {
    const r = this.#receipts;
    this.#receipts = [];
    return r;
  }

  #queue410(stmt: StatementSync, now: number, ...args: (Bytes | number)[]): void {
    for (const r of stmt.all(now + this.#o.receiptTtlMs, ...args) as unknown as { sub: Bytes }[]) this.#receipts.push(r.sub);
  }

  #queueReceipt(now: number, sub: Bytes, uaid: Bytes, chid: Bytes, messageId: number, status: ReceiptStatus): void {
    this.#q.queueReceipt.run(sub, uaid, chid, messageId, status, now + this.#o.receiptTtlMs);
    this.#receipts.push(sub);
  }

  putSubscription(now: number, uaidKey: Id, chidKey: Id, keyHash: Id | null): boolean {
    const [uaid, chid] = [blob(uaidKey), blob(chidKey)];
    const max = this.#o.maxChannelsPerUserAgent;
    // registering an existing channel again always fits
    if (this.#q.hasSub.get(uaid, chid) === undefined) {
      const { n } = this.#q.countChannels.get(uaid, max) as { n: number };
      if (n >= max) return false;
    }
    this.#q.putUa.run(uaid, now);
    this.#q.putSub.run(uaid, chid, keyHash === null ? null : blob(keyHash), now);
    return true;
  }

  deleteSubscription(now: number, uaidKey: Id, chidKey: Id): boolean {
    const [uaid, chid] = [blob(uaidKey), blob(chidKey)];
    const existed = this.#q.delSub.run(uaid, chid).changes > 0;
    if (existed) this.#queue410(this.#q.subReceipts, now, uaid, chid);
    this.#q.delSubMessages.run(uaid, chid);
    this.#counts.delete(uaidKey);
    return existed;
  }

  deleteUserAgent(now: number, uaidKey: Id, seenBefore: number | null): boolean {
    const uaid = blob(uaidKey);
    const idle = seenBefore !== null;
    const existed = (idle ? this.#q.delIdleUa.run(uaid, seenBefore) : this.#q.delUa.run(uaid)).changes > 0;
    // an idle user agent seen since it was picked stays
    if (idle && !existed) return false;
    this.#queue410(this.#q.uaReceipts, now, uaid);
    this.#q.delUaMessages.run(uaid);
    this.#counts.delete(uaidKey);
    this.#q.delUaSubs.run(uaid);
    return existed;
  }

  touchUserAgent(now: number, uaid: Id): void {
    this.#q.touchUa.run(now, blob(uaid));
  }

  saveMessage(now: number, m: MessageToSave, receiptKey: Id | null, createReceipt: boolean): SavedOrNot {
    const [uaid, chid, receiptId] = [blob(m.uaid), blob(m.chid), receiptKey === null ? null : blob(receiptKey)];
    if (this.#q.hasSub.get(uaid, chid) === undefined) return { ok: false, reason: 'no-subscription' };
    const expiresAt = m.createdAt + m.ttl * 1000;
    // a receipt subscription lives until the receipts of its messages could have expired
    const receiptsUntil = expiresAt + this.#o.receiptTtlMs;
    if (receiptId && !createReceipt && this.#q.useReceiptSub.run(receiptsUntil, receiptId, now).changes === 0) {
      return { ok: false, reason: 'no-receipt-subscription' };
    }
    const replaced =
      m.topic === null ? undefined : (this.#q.topicId.get(uaid, chid, m.topic) as { id: number; receipt: Bytes | null } | undefined);
    if (!replaced) {
      // the subscription's own cap and the user agent's: one refusal for both
      const c = this.#countsOf(m.uaid);
      if ((c.subs.get(m.chid) ?? 0) >= this.#o.maxStoredPerSubscription || c.total >= this.#o.maxStoredPerUserAgent) {
        return { ok: false, reason: 'too-many-stored' };
      }
    } else {
      this.#q.delById.run(replaced.id);
      // RFC 8030 5.4: the replaced message will never be acknowledged
      if (replaced.receipt !== null) this.#queueReceipt(now, replaced.receipt, uaid, chid, replaced.id, 410);
    }
    if (receiptId && createReceipt) this.#q.newReceiptSub.run(receiptId, receiptsUntil);
    const h = m.headers;
    const { lastInsertRowid } = this.#q.insert.run(
      uaid,
      chid,
      m.topic,
      URGENCIES.indexOf(m.urgency),
      m.ttl,
      m.createdAt,
      expiresAt,
      h?.encoding ?? null,
      h?.encryption ?? null,
      h?.cryptoKey ?? null,
      m.body,
      receiptId,
    );
    if (!replaced) this.#count(m.uaid, m.chid, 1);
    return { ok: true, id: Number(lastInsertRowid), expiresAt, replacedId: replaced?.id ?? null };
  }

  deleteMessage(now: number, uaidKey: Id, chidKey: Id, id: number): boolean {
    const [uaid, chid] = [blob(uaidKey), blob(chidKey)];
    const row = this.#q.delMessage.get(id, uaid, chid) as { receipt: Bytes | null } | undefined;
    if (!row) return false;
    if (row.receipt) this.#queueReceipt(now, row.receipt, uaid, chid, id, 204);
    this.#count(uaidKey, chidKey, -1);
    return true;
  }

  deleteReceipt(_now: number, seq: number): void {
    this.#q.delReceipt.run(seq);
  }

  sweep(now: number): { expired: { uaid: Bytes; chid: Bytes; id: number }[]; receipts: number; receiptSubscriptions: Bytes[] } {
    this.#queue410(this.#q.sweepReceiptsOfExpired, now, now);
    const expired = this.#q.sweepMessages.all(now) as unknown as { uaid: Bytes; chid: Bytes; id: number }[];
    for (const e of expired) this.#count(keyOf(e.uaid), keyOf(e.chid), -1);
    const receipts = Number(this.#q.sweepReceipts.run(now).changes);
    const receiptSubscriptions = (this.#q.sweepReceiptSubs.all(now) as unknown as { id: Bytes }[]).map((r) => r.id);
    for (const id of receiptSubscriptions) this.#q.delReceiptsOf.run(id);
    return { expired, receipts, receiptSubscriptions };
  }

  putBroadcasts(_now: number, versions: Readonly<Record<string, string>>): void {
    for (const [id, version] of Object.entries(versions)) this.#q.putBroadcast.run(id, version);
  }

  probe(now: number): void {
    this.#q.probe.run(now);
  }
}

export type WriteName = Exclude<keyof Writer, 'takeReceipts' | 'forgetCounts'>;
export type WriteArgs<K extends WriteName> = Parameters<Writer[K]> extends [number, ...infer A] ? A : never;
export type WriteResult<K extends WriteName> = ReturnType<Writer[K]>;

/** A batch of writes (laid out by ./sqlite-batch.ts), and the time it was sent. */
export interface BatchMessage extends Encoded {
  now: number;
}

export interface SerializedError {
  message: string;
  unavailable: boolean;
}

/** What the writer answers to each batch, in order. */
export type WriterReply =
  | { kind: 'commit'; ms: number; results: Encoded; receipts: Bytes[] }
  | { kind: 'failure'; error: SerializedError };

function serialize(err: unknown): SerializedError {
  return { message: err instanceof Error ? err.message : String(err), unavailable: err instanceof StoreUnavailable };
}

function serve(port: MessagePort, o: WriterOptions): void {
  const db = new DatabaseSync(o.path);
  db.exec(`PRAGMA synchronous = ${o.synchronous === 'normal' ? 'NORMAL' : 'FULL'}; PRAGMA busy_timeout = ${o.busyTimeoutMs};`);
  const writer = new Writer(db, o);
  const calls = writer as unknown as Record<WriteName, (now: number, ...args: unknown[]) => unknown>;
  port.on('message', (msg: BatchMessage | 'close') => {
    if (msg === 'close') {
      db.close();
      port.close();
      return;
    }
    const cloned = (name: WriteName, args: unknown[]) => calls[name].call(writer, msg.now, ...args);
    let results: Encoded | undefined;
    let reply: WriterReply;
    try {
      const ms = transaction(db, () => {
        results = runBatch(msg, writer, cloned);
      });
      reply = { kind: 'commit', ms, results: results!, receipts: writer.takeReceipts() };
    } catch (err) {
      writer.takeReceipts();
      writer.forgetCounts();
      reply = { kind: 'failure', error: serialize(err) };
    }
    // the results' buffer is this thread's own, made for this answer: moved, not copied
    port.postMessage(reply, reply.kind === 'commit' ? [reply.results.bytes] : []);
  });
}

const data = workerData as { sqliteWriter?: WriterOptions } | null;
if (!isMainThread && parentPort && data?.sqliteWriter) serve(parentPort, data.sqliteWriter);
