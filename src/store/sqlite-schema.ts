// The SQLite store's schema: its migrations, counted by `PRAGMA user_version`.
import type { DatabaseSync } from 'node:sqlite';

/**
 * The schema as migrations; `PRAGMA user_version` counts those applied. The first one is the
 * schema webpushd had before it versioned its files (they read 0): `IF NOT EXISTS` lets such a
 * file pass through it unchanged.
 */
const MIGRATIONS = [
  `
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
`,
  // 2: RFC 8030 receipts: the receipt subscription a message reports to, receipt
  // subscriptions, and receipts waiting for their application server.
  `
ALTER TABLE messages ADD COLUMN receipt BLOB;
CREATE TABLE receipt_subscriptions (
  id BLOB PRIMARY KEY,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX receipt_subscriptions_by_expiry ON receipt_subscriptions (expires_at);
CREATE TABLE receipts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sub BLOB NOT NULL,
  uaid BLOB NOT NULL,
  chid BLOB NOT NULL,
  message_id INTEGER NOT NULL,
  status INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX receipts_by_subscription ON receipts (sub, seq);
CREATE INDEX receipts_by_expiry ON receipts (expires_at);
`,
  // 3: when each user agent was last seen (connected or disconnected), so the ones that never
  // come back can be expired; existing ones count as seen when the file is migrated.
  `
ALTER TABLE user_agents ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
UPDATE user_agents SET seen_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000;
CREATE INDEX user_agents_by_seen ON user_agents (seen_at);
`,
  // 4: one row the readiness check rewrites while writes fail, to see whether they work again
  `
CREATE TABLE write_probe (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL);
`,
  // 5: each subscription's stored messages are counted against its own cap
  `
CREATE INDEX messages_by_subscription ON messages (uaid, chid, id);
`,
  // 6: broadcast versions, so that a change made while running survives a restart
  `
CREATE TABLE broadcasts (id TEXT PRIMARY KEY, version TEXT NOT NULL) WITHOUT ROWID;
`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Brings a database file to the current schema; refuses one written by a newer webpushd. */
export function migrate(db: DatabaseSync): void {
  const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
  if (version > SCHEMA_VERSION) {
    throw new Error(`the database has schema version ${version}; this webpushd knows up to ${SCHEMA_VERSION}`);
  }
  if (version === SCHEMA_VERSION) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const sql of MIGRATIONS.slice(version)) db.exec(sql);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec('COMMIT');
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
