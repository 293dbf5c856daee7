// What only the SQLite store does: one commit for all writes of an event-loop turn, made on a
// thread of its own (a write waiting for SQLite never holds up the event loop), and the
// versioned schema (a data dir from before versioning migrates in place; a newer file is
// refused). Its behaviour as a Store is test/unit/store-sqlite.test.ts (the shared contract);
// its faults are test/unit/sqlite-store-faults.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, test } from 'node:test';
import { SCHEMA_VERSION } from '../../src/store/sqlite-schema.ts';
import { SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.ts';
import { message, save, sub } from '../contract/store-contract.ts';

const tempPath = () => join(mkdtempSync(join(tmpdir(), 'webpushd-store-')), 'db');

function open(opts: Partial<SqliteStoreOptions> = {}) {
  const commits: number[] = [];
  const store = new SqliteStore({
    path: tempPath(),
    maxStoredPerUserAgent: 5,
    now: () => 1_000_000,
    onCommit: (_ms, writes) => commits.push(writes),
    ...opts,
  });
  return { store, commits };
}

test('all writes of one event-loop turn share one commit', async () => {
  const { store, commits } = open();
  const s = sub();
  await store.putSubscription(s);
  commits.length = 0;
  const results = await Promise.all(Array.from({ length: 20 }, () => store.saveMessage(message(s, { ttl: 5 }))));
  assert.equal(results.filter((r) => !r.ok).length, 15, 'cap of 5 applies inside one transaction too');
  assert.deepEqual(commits, [20]);
});

test('a write waiting for the lock does not block the event loop: what frees the lock runs meanwhile', async () => {
  const path = tempPath();
  const { store } = open({ path, busyTimeoutMs: 2000 });
  const other = new DatabaseSync(path);
  other.exec('BEGIN IMMEDIATE');
  // on the event loop's thread, the busy wait would hold this timer back until the write failed
  const freed = new Promise<number>((resolve) => {
    const at = performance.now();
    setTimeout(() => {
      other.exec('ROLLBACK');
      resolve(performance.now() - at);
    }, 100);
  });
  const s = sub();
  assert.equal(await store.putSubscription(s), true);
  assert.ok((await freed) < 1000, 'the timer ran while the write waited');
  assert.ok(await store.getSubscription(s.uaid, s.chid), 'read from the event loop once the write is answered');
  other.close();
  await store.close();
});

test('close() commits the writes of the current turn before it closes the file', async () => {
  const path = tempPath();
  const { store } = open({ path });
  const s = sub();
  await store.putSubscription(s);
  const saved = store.saveMessage(message(s, { ttl: 60 }));
  await store.close();
  assert.ok((await saved).ok);
  const again = open({ path });
  assert.equal((await again.store.pendingMessages(s.uaid, 0, 10)).length, 1);
  await again.store.close();
});

describe('stored-message counts kept in memory', () => {
  // countCacheSize 1: every switch between the two user agents evicts the other's counts
  for (const countCacheSize of [1, 0]) {
    test(`the caps hold across acks, expiry, unsubscribe, a rolled-back batch and eviction (cache of ${countCacheSize})`, async () => {
      let now = 1_000_000;
      const path = tempPath();
      const { store } = open({ path, countCacheSize, maxStoredPerUserAgent: 3, maxStoredPerSubscription: 2, now: () => now });
      const refused = { ok: false, reason: 'too-many-stored' };
      const a = sub();
      const b = sub(a.uaid);
      const other = sub();
      for (const s of [a, b, other]) await store.putSubscription(s);
      const a1 = await save(store, message(a, { createdAt: now }));
      await save(store, message(a, { createdAt: now, ttl: 1 }));
      await save(store, message(other, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(a, { createdAt: now })), refused, 'a holds its 2');
      await save(store, message(b, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(b, { createdAt: now })), refused, 'the user agent holds its 3');

      assert.equal(await store.deleteMessage(a.uaid, a.chid, a1), true);
      assert.equal(await store.deleteMessage(a.uaid, a.chid, a1), false, 'a second ack counts nothing');
      await save(store, message(b, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(b, { createdAt: now })), refused, 'b holds its 2');

      now += 2000;
      assert.equal((await store.sweep()).expired.length, 1, "a's short-lived one expired");
      await save(store, message(a, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(a, { createdAt: now })), refused);

      assert.equal(await store.deleteSubscription(b.uaid, b.chid), true);
      await store.putSubscription(b);
      await save(store, message(b, { createdAt: now }));
      await save(store, message(a, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(b, { createdAt: now })), refused, 'a 2 and b 1: the user agent is full again');

      // a batch whose last write fails keeps none of its writes, and counts none of them
      const db = new DatabaseSync(path);
      db.exec("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.topic = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");
      const [x, y] = [sub(), sub()];
      await store.putSubscription(x);
      await store.putSubscription(y);
      const batch = [store.saveMessage(message(x, { createdAt: now })), store.saveMessage(message(x, { createdAt: now, topic: 'bad' }))];
      await assert.rejects(Promise.all(batch), /refused/);
      await Promise.allSettled(batch);
      db.exec('DROP TRIGGER refuse');
      db.close();
      await save(store, message(x, { createdAt: now }));
      await save(store, message(x, { createdAt: now }));
      assert.deepEqual(await store.saveMessage(message(x, { createdAt: now })), refused, 'x holds exactly its 2');
      assert.equal((await store.pendingMessages(x.uaid, 0, 10)).length, 2);
      assert.equal((await store.pendingMessages(other.uaid, 0, 10)).length, 1);
      await store.close();
    });
  }
});

describe('schema migration', () => {
  // The schema webpushd wrote before it versioned its database files (user_version 0).
  const UNVERSIONED = `
    CREATE TABLE user_agents (uaid BLOB PRIMARY KEY, created_at INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE subscriptions (uaid BLOB NOT NULL, chid BLOB NOT NULL, key_hash BLOB, created_at INTEGER NOT NULL,
      PRIMARY KEY (uaid, chid)) WITHOUT ROWID;
    CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, uaid BLOB NOT NULL, chid BLOB NOT NULL, topic TEXT,
      urgency INTEGER NOT NULL, ttl INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
      encoding TEXT, encryption TEXT, crypto_key TEXT, body BLOB NOT NULL);
    CREATE INDEX messages_by_user_agent ON messages (uaid, id);
    CREATE UNIQUE INDEX messages_by_topic ON messages (uaid, chid, topic) WHERE topic IS NOT NULL;
    CREATE INDEX messages_by_expiry ON messages (expires_at);`;

  test('a data dir from before keeps its subscriptions and messages and gains receipts', async () => {
    const path = tempPath();
    const s = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: randomBytes(16) };
    const old = new DatabaseSync(path);
    old.exec(UNVERSIONED);
    old.prepare('INSERT INTO user_agents VALUES (?, ?)').run(s.uaid, 1);
    old.prepare('INSERT INTO subscriptions VALUES (?, ?, ?, ?)').run(s.uaid, s.chid, s.keyHash, 1);
    old
      .prepare('INSERT INTO messages (uaid, chid, topic, urgency, ttl, created_at, expires_at, encoding, body) VALUES (?, ?, ?, 2, 60, ?, ?, ?, ?)')
      .run(s.uaid, s.chid, 't', 1_000_000, 1_060_000, 'aes128gcm', Buffer.from('old'));
    old.close();

    const { store } = open({ path });
    assert.deepEqual(await store.getSubscription(s.uaid, s.chid), s);
    // migrated user agents count as seen at the migration, not at their creation (1 ms)
    assert.deepEqual(await store.idleUserAgents(Date.now() - 60_000, 10), []);
    assert.deepEqual(await store.idleUserAgents(Date.now() + 60_000, 10), [s.uaid]);
    const [m] = await store.pendingMessages(s.uaid, 0, 10);
    assert.deepEqual([m!.body.toString(), m!.topic, m!.urgency, m!.receipt], ['old', 't', 'normal', undefined]);
    const rid = randomBytes(16);
    await save(store, message(s, { topic: 't' }), { id: rid, create: true });
    await store.close();

    const db = new DatabaseSync(path);
    assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, SCHEMA_VERSION);
    db.close();
    const again = open({ path });
    assert.equal((await again.store.pendingMessages(s.uaid, 0, 10)).length, 1, 'reopening a current file changes nothing');
    await again.store.close();
  });

  test('a file from a newer webpushd is refused', () => {
    const path = tempPath();
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => open({ path }), new RegExp(`schema version ${SCHEMA_VERSION + 1}; this webpushd knows up to ${SCHEMA_VERSION}`));
  });
});
