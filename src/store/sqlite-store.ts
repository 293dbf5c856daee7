// The embedded default store: one SQLite file in WAL mode, written with group commits.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { GroupCommit } from './group-commit.ts';
import {
  URGENCIES,
  type EncodingHeaders,
  type NewMessage,
  type SaveResult,
  type Store,
  type StoredMessage,
  type Subscription,
  type Urgency,
} from './types.ts';

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** Most messages stored for one user agent; further sends are refused until some are acked. */
  maxStoredPerUserAgent: number;
  /** 'full' fsyncs every commit (survives power loss); 'normal' survives process crashes only. */
  synchronous?: 'full' | 'normal';
  now?: () => number;
  onCommit?: (ms: number, writes: number) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS user_agents (
  uaid BLOB PRIMARY KEY,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS subscriptions (
  uaid BLOB NOT NULL,
  chid BLOB NOT NULL,
  key_hash BLOB,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (uaid, chid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  uaid BLOB NOT NULL,
  chid BLOB NOT NULL,
  topic TEXT,
  urgency INTEGER NOT NULL,
  ttl INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  encoding TEXT,
  encryption TEXT,
  crypto_key TEXT,
  body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_user_agent ON messages (uaid, id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_topic ON messages (uaid, chid, topic) WHERE topic IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_expiry ON messages (expires_at);
`;

const MESSAGE_COLUMNS = 'id, uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body';

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
}

const buf = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function toMessage(r: MessageRow): StoredMessage {
  let headers: EncodingHeaders | null = null;
  if (r.encoding !== null) {
    headers = { encoding: r.encoding };
    if (r.encryption !== null) headers.encryption = r.encryption;
    if (r.crypto_key !== null) headers.cryptoKey = r.crypto_key;
  }
  return {
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
}

export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #tx: GroupCommit;
  readonly #now: () => number;
  readonly #maxStored: number;
  readonly #q: Record<
    | 'hasUa'
    | 'putUa'
    | 'putSub'
    | 'getSub'
    | 'delSub'
    | 'delSubMessages'
    | 'countUa'
    | 'topicId'
    | 'delById'
    | 'insert'
    | 'pending'
    | 'delMessage'
    | 'sweep',
    StatementSync
  >;

  constructor(opts: SqliteStoreOptions) {
    this.#db = new DatabaseSync(opts.path);
    this.#db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'};`);
    this.#db.exec('PRAGMA busy_timeout = 5000;');
    this.#db.exec(SCHEMA);
    this.#now = opts.now ?? Date.now;
    this.#maxStored = opts.maxStoredPerUserAgent;
    this.#tx = new GroupCommit(this.#db, opts.onCommit);
    const p = (sql: string) => this.#db.prepare(sql);
    this.#q = {
      hasUa: p('SELECT 1 AS x FROM user_agents WHERE uaid = ?'),
      putUa: p('INSERT OR IGNORE INTO user_agents (uaid, created_at) VALUES (?, ?)'),
      putSub: p(
        'INSERT INTO subscriptions (uaid, chid, key_hash, created_at) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (uaid, chid) DO UPDATE SET key_hash = excluded.key_hash',
      ),
      getSub: p('SELECT key_hash FROM subscriptions WHERE uaid = ? AND chid = ?'),
      delSub: p('DELETE FROM subscriptions WHERE uaid = ? AND chid = ?'),
      delSubMessages: p('DELETE FROM messages WHERE uaid = ? AND chid = ?'),
      countUa: p('SELECT count(*) AS n FROM (SELECT 1 FROM messages WHERE uaid = ? LIMIT ?)'),
      topicId: p('SELECT id FROM messages WHERE uaid = ? AND chid = ? AND topic = ?'),
      delById: p('DELETE FROM messages WHERE id = ?'),
      insert: p(
        'INSERT INTO messages (uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, encryption, crypto_key, body) ' +
          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      pending: p(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ? AND id > ? AND expires_at > ? ORDER BY id LIMIT ?`,
      ),
      delMessage: p('DELETE FROM messages WHERE id = ? AND uaid = ? AND chid = ?'),
      sweep: p('DELETE FROM messages WHERE id IN (SELECT id FROM messages WHERE expires_at <= ? LIMIT 5000)'),
    };
  }

  async hasUserAgent(uaid: Buffer): Promise<boolean> {
    return this.#q.hasUa.get(uaid) !== undefined;
  }

  putSubscription(sub: Subscription): Promise<void> {
    const now = this.#now();
    return this.#tx.run(() => {
      this.#q.putUa.run(sub.uaid, now);
      this.#q.putSub.run(sub.uaid, sub.chid, sub.keyHash, now);
    });
  }

  deleteSubscription(uaid: Buffer, chid: Buffer): Promise<void> {
    return this.#tx.run(() => {
      this.#q.delSub.run(uaid, chid);
      this.#q.delSubMessages.run(uaid, chid);
    });
  }

  async getSubscription(uaid: Buffer, chid: Buffer): Promise<Subscription | null> {
    const row = this.#q.getSub.get(uaid, chid) as { key_hash: Uint8Array | null } | undefined;
    return row ? { uaid, chid, keyHash: row.key_hash ? buf(row.key_hash) : null } : null;
  }

  saveMessage(m: NewMessage): Promise<SaveResult> {
    return this.#tx.run((): SaveResult => {
      if (this.#q.getSub.get(m.uaid, m.chid) === undefined) return { ok: false, reason: 'no-subscription' };
      const replaced = m.topic === null ? undefined : (this.#q.topicId.get(m.uaid, m.chid, m.topic) as { id: number } | undefined);
      if (!replaced) {
        const { n } = this.#q.countUa.get(m.uaid, this.#maxStored) as { n: number };
        if (n >= this.#maxStored) return { ok: false, reason: 'too-many-stored' };
      } else {
        this.#q.delById.run(replaced.id);
      }
      const expiresAt = m.createdAt + m.ttl * 1000;
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
      );
      return { ok: true, message: { ...m, id: Number(lastInsertRowid), expiresAt }, replacedId: replaced?.id ?? null };
    });
  }

  async pendingMessages(uaid: Buffer, afterId: number, limit: number): Promise<StoredMessage[]> {
    return (this.#q.pending.all(uaid, afterId, this.#now(), limit) as unknown as MessageRow[]).map(toMessage);
  }

  deleteMessage(uaid: Buffer, chid: Buffer, id: number): Promise<boolean> {
    return this.#tx.run(() => this.#q.delMessage.run(id, uaid, chid).changes > 0);
  }

  sweepExpired(): Promise<number> {
    return this.#tx.run(() => Number(this.#q.sweep.run(this.#now()).changes));
  }

  async close(): Promise<void> {
    this.#tx.flush();
    this.#db.close();
  }
}
