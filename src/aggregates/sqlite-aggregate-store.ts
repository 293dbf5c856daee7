// Aggregates on SQLite: a file of their own in the data dir (aggregates.db), apart from the
// message database and its writer thread. A membership change is one transaction of many rows;
// kept apart, it never holds up or shares the group commits of messages, and a message commit
// never waits for it. Statements are synchronous on the event loop: each change is bounded by
// --aggregate-max-members (a few milliseconds for 10,000 rows).
import { randomBytes } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { storeError } from '../store/group-commit.ts';
import { decodeMember, distinct, memberId, encodeMember, type Aggregate, type AggregateStore, type AggregateStoreOptions, type ChangeResult, type CreateResult, type Member, type MemberPage } from './types.ts';

export const AGGREGATES_FILE = 'aggregates.db';

/** The schema as migrations, counted by `PRAGMA user_version`. */
const MIGRATIONS = [
  `
CREATE TABLE aggregates (
  id BLOB PRIMARY KEY,
  owner BLOB NOT NULL,
  members INTEGER NOT NULL,
  used_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX aggregates_by_owner ON aggregates (owner, used_at);
CREATE INDEX aggregates_by_use ON aggregates (used_at);
CREATE TABLE members (
  aggregate BLOB NOT NULL,
  member_id BLOB NOT NULL,
  member BLOB NOT NULL,
  PRIMARY KEY (aggregate, member_id)
) WITHOUT ROWID;
`,
];

/** The schema version this webpushd writes (what `webpushd migrate` reads). */
export const AGGREGATES_SCHEMA_VERSION = MIGRATIONS.length;

export interface SqliteAggregateStoreOptions extends AggregateStoreOptions {
  path: string;
  synchronous: 'full' | 'normal';
}

export class SqliteAggregateStore implements AggregateStore {
  readonly #db: DatabaseSync;
  readonly #o: Required<AggregateStoreOptions>;
  readonly #q: Record<string, StatementSync>;

  constructor(o: SqliteAggregateStoreOptions) {
    this.#o = { now: Date.now, ...o };
    try {
      this.#db = new DatabaseSync(o.path);
      this.#db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${o.synchronous.toUpperCase()}; PRAGMA busy_timeout = 5000;`);
      migrate(this.#db);
    } catch (err) {
      throw storeError(err);
    }
    const db = this.#db;
    this.#q = {
      insert: db.prepare('INSERT INTO aggregates (id, owner, members, used_at) VALUES (?, ?, 0, ?)'),
      owned: db.prepare('SELECT count(*) AS n FROM aggregates WHERE owner = ? AND used_at >= ?'),
      get: db.prepare('SELECT owner, members, used_at FROM aggregates WHERE id = ? AND used_at >= ?'),
      add: db.prepare('INSERT OR IGNORE INTO members (aggregate, member_id, member) VALUES (?, ?, ?)'),
      remove: db.prepare('DELETE FROM members WHERE aggregate = ? AND member_id = ?'),
      setCount: db.prepare('UPDATE aggregates SET members = ?, used_at = ? WHERE id = ?'),
      touch: db.prepare('UPDATE aggregates SET used_at = ? WHERE id = ? AND used_at >= ?'),
      page: db.prepare('SELECT member_id, member FROM members WHERE aggregate = ? AND member_id > ? ORDER BY member_id LIMIT ?'),
      has: db.prepare('SELECT 1 FROM members WHERE aggregate = ? AND member_id = ?'),
      delete: db.prepare('DELETE FROM aggregates WHERE id = ?'),
      deleteMembers: db.prepare('DELETE FROM members WHERE aggregate = ?'),
      idle: db.prepare('SELECT id FROM aggregates WHERE used_at < ? LIMIT ?'),
      count: db.prepare('SELECT count(*) AS n FROM aggregates WHERE used_at >= ?'),
    };
  }

  /** The oldest use an aggregate may have and still be live. */
  #liveSince(): number {
    return this.#o.now() - this.#o.idleMs;
  }

  #transaction<T>(work: () => T): T {
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const value = work();
        this.#db.exec('COMMIT');
        return value;
      } catch (err) {
        if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
        throw err;
      }
    } catch (err) {
      throw storeError(err);
    }
  }

  create(owner: Buffer, members: readonly Member[]): Promise<CreateResult> {
    const unique = distinct(members);
    if (unique.size > this.#o.maxMembers) return Promise.resolve({ ok: false, reason: 'too-many-members' });
    return Promise.resolve(
      this.#transaction((): CreateResult => {
        const owned = (this.#q.owned!.get(owner, this.#liveSince()) as { n: number }).n;
        if (owned >= this.#o.maxPerOwner) return { ok: false, reason: 'too-many-aggregates' };
        const id = randomBytes(16);
        const now = this.#o.now();
        this.#q.insert!.run(id, owner, now);
        for (const [key, m] of unique) this.#q.add!.run(id, Buffer.from(key, 'hex'), encodeMember(m));
        this.#q.setCount!.run(unique.size, now, id);
        return { ok: true, id };
      }),
    );
  }

  get(id: Buffer): Promise<Aggregate | null> {
    const row = this.#read(() => this.#q.get!.get(id, this.#liveSince())) as { owner: Uint8Array; members: number; used_at: number } | undefined;
    return Promise.resolve(row ? { id, owner: Buffer.from(row.owner), members: row.members, usedAt: row.used_at } : null);
  }

  change(id: Buffer, add: readonly Member[], remove: readonly Member[]): Promise<ChangeResult> {
    try {
      return Promise.resolve(
        this.#transaction((): ChangeResult => {
          const row = this.#q.get!.get(id, this.#liveSince()) as { members: number } | undefined;
          if (!row) return { ok: false, reason: 'no-aggregate' };
          const adding = distinct(add);
          let n = row.members;
          for (const key of distinct(remove).keys()) if (!adding.has(key)) n -= Number(this.#q.remove!.run(id, Buffer.from(key, 'hex')).changes);
          for (const [key, m] of adding) n += Number(this.#q.add!.run(id, Buffer.from(key, 'hex'), encodeMember(m)).changes);
          // rolls the change back whole
          if (n > this.#o.maxMembers) throw new TooManyMembers();
          this.#q.setCount!.run(n, this.#o.now(), id);
          return { ok: true, members: n };
        }),
      );
    } catch (err) {
      if (err instanceof TooManyMembers) return Promise.resolve({ ok: false, reason: 'too-many-members' });
      return Promise.reject(err as Error);
    }
  }

  members(id: Buffer, cursor: string | null, limit: number): Promise<MemberPage> {
    const after = cursor === null ? Buffer.alloc(0) : Buffer.from(cursor, 'hex');
    const rows = this.#read(() => this.#q.page!.all(id, after, limit)) as { member_id: Uint8Array; member: Uint8Array }[];
    const last = rows.at(-1);
    return Promise.resolve({
      members: rows.map((r) => decodeMember(Buffer.from(r.member))),
      next: rows.length === limit && last ? Buffer.from(last.member_id).toString('hex') : null,
    });
  }

  has(id: Buffer, members: readonly Member[]): Promise<boolean[]> {
    return Promise.resolve(this.#read(() => members.map((m) => this.#q.has!.get(id, memberId(m)) !== undefined)));
  }

  touch(id: Buffer): Promise<void> {
    this.#transaction(() => this.#q.touch!.run(this.#o.now(), id, this.#liveSince()));
    return Promise.resolve();
  }

  delete(id: Buffer): Promise<boolean> {
    return Promise.resolve(
      this.#transaction(() => {
        // an expired one is left to expire()
        if (this.#q.get!.get(id, this.#liveSince()) === undefined) return false;
        this.#q.deleteMembers!.run(id);
        this.#q.delete!.run(id);
        return true;
      }),
    );
  }

  expire(limit: number): Promise<number> {
    return Promise.resolve(
      this.#transaction(() => {
        const idle = this.#q.idle!.all(this.#liveSince(), limit) as { id: Uint8Array }[];
        for (const { id } of idle) {
          this.#q.deleteMembers!.run(id);
          this.#q.delete!.run(id);
        }
        return idle.length;
      }),
    );
  }

  count(): Promise<number> {
    return Promise.resolve((this.#read(() => this.#q.count!.get(this.#liveSince())) as { n: number }).n);
  }

  #read<T>(read: () => T): T {
    try {
      return read();
    } catch (err) {
      throw storeError(err);
    }
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }
}

class TooManyMembers extends Error {}

function migrate(db: DatabaseSync): void {
  const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
  if (version > AGGREGATES_SCHEMA_VERSION) throw new Error(`${AGGREGATES_FILE} has schema version ${version}, newer than this webpushd knows (${AGGREGATES_SCHEMA_VERSION})`);
  for (let v = version; v < AGGREGATES_SCHEMA_VERSION; v++) {
    db.exec('BEGIN');
    db.exec(MIGRATIONS[v]!);
    db.exec(`PRAGMA user_version = ${v + 1}`);
    db.exec('COMMIT');
  }
}
