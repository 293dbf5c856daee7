// The store's RFC 8030 parts: filtered pending reads, receipts (queued on ack, Topic
// replacement, expiry and unsubscribe; durable; expiring), deleting a whole set,
// idle user agents (last seen, conditional delete), and the migration of a data dir written
// before the schema was versioned.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, test } from 'node:test';
import { SCHEMA_VERSION, SqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite-store.ts';
import type { NewMessage } from '../../src/store/types.ts';

function open(opts: Partial<SqliteStoreOptions> = {}) {
  let now = 1_000_000;
  const notified: string[][] = [];
  const store = new SqliteStore({
    path: ':memory:',
    maxStoredPerUserAgent: 50,
    now: () => now,
    receiptTtlMs: 10_000,
    onReceipts: (ids) => notified.push(ids.map((id) => id.toString('hex'))),
    ...opts,
  });
  return { store, notified, advance: (ms: number) => (now += ms), now: () => now };
}

const sub = (uaid = randomBytes(16)) => ({ uaid, chid: randomBytes(16), keyHash: null });

function message(s: { uaid: Buffer; chid: Buffer }, over: Partial<NewMessage> = {}): NewMessage {
  return {
    uaid: s.uaid,
    chid: s.chid,
    ttl: 60,
    topic: null,
    urgency: 'normal',
    headers: null,
    body: Buffer.from('x'),
    createdAt: 1_000_000,
    ...over,
  };
}

async function save(store: SqliteStore, m: NewMessage, receipt?: { id: Buffer; create: boolean }): Promise<number> {
  const r = await store.saveMessage(m, receipt);
  assert.ok(r.ok, JSON.stringify(r));
  return r.message.id;
}

describe('SqliteStore for RFC 8030', () => {
  test('pending messages filtered by subscription and by urgency', async () => {
    const { store } = open();
    const a = sub();
    const b = sub(a.uaid);
    await store.putSubscription(a);
    await store.putSubscription(b);
    await save(store, message(a, { urgency: 'very-low' }));
    const ah = await save(store, message(a, { urgency: 'high' }));
    const bl = await save(store, message(b, { urgency: 'low' }));
    const bn = await save(store, message(b));
    const ids = async (filter: Parameters<SqliteStore['pendingMessages']>[3], after = 0) =>
      (await store.pendingMessages(a.uaid, after, 10, filter)).map((m) => m.id);
    assert.equal((await ids(undefined)).length, 4);
    assert.deepEqual(await ids({ chid: b.chid }), [bl, bn]);
    assert.deepEqual(await ids({ minUrgency: 'normal' }), [ah, bn]);
    assert.deepEqual(await ids({ minUrgency: 'low', chid: b.chid }), [bl, bn]);
    assert.deepEqual(await ids({ minUrgency: 'high', chid: b.chid }), []);
    assert.deepEqual(await ids({ chid: b.chid }, bl), [bn]);
    assert.deepEqual(await ids({ minUrgency: 'very-low' }), await ids({}));
    assert.deepEqual(
      (await store.listSubscriptions(a.uaid)).map((s) => s.chid.toString('hex')).sort(),
      [a.chid, b.chid].map((c) => c.toString('hex')).sort(),
    );
  });

  test('a receipt is queued on acknowledgement (204) and announced after the commit', async () => {
    const { store, notified } = open();
    const s = sub();
    await store.putSubscription(s);
    const rid = randomBytes(16);
    const id = await save(store, message(s), { id: rid, create: true });
    const plain = await save(store, message(s));
    assert.deepEqual((await store.pendingMessages(s.uaid, 0, 10))[0]!.receipt, rid);
    assert.equal((await store.pendingMessages(s.uaid, 0, 10))[1]!.receipt, undefined);
    assert.equal(await store.hasReceiptSubscription(rid), true);
    assert.deepEqual(await store.pendingReceipts(rid, 0, 10), []);
    const deleted = store.deleteMessage(s.uaid, s.chid, id);
    assert.deepEqual(notified, [], 'nothing before the commit');
    assert.equal(await deleted, true);
    assert.deepEqual(notified, [[rid.toString('hex')]]);
    assert.equal(await store.deleteMessage(s.uaid, s.chid, plain), true);
    assert.equal(notified.length, 1, 'no receipt asked, none queued');
    const [r] = await store.pendingReceipts(rid, 0, 10);
    assert.deepEqual(r, { seq: r!.seq, subscription: rid, uaid: s.uaid, chid: s.chid, messageId: id, status: 204 });
    assert.deepEqual(await store.pendingReceipts(rid, r!.seq, 10), []);
    await store.deleteReceipt(r!.seq);
    assert.deepEqual(await store.pendingReceipts(rid, 0, 10), []);
  });

  test('a named receipt subscription must exist; using it extends it; nothing is stored otherwise', async () => {
    const { store, advance } = open();
    const s = sub();
    await store.putSubscription(s);
    const unknown = await store.saveMessage(message(s), { id: randomBytes(16), create: false });
    assert.deepEqual(unknown, { ok: false, reason: 'no-receipt-subscription' });
    assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 0);
    const rid = randomBytes(16);
    await save(store, message(s, { ttl: 1 }), { id: rid, create: true }); // lives to 1_001_000 + 10 s
    advance(9_000);
    await save(store, message(s, { ttl: 60, createdAt: 1_009_000 }), { id: rid, create: false });
    advance(5_000);
    assert.equal(await store.hasReceiptSubscription(rid), true, 'extended to the new message expiry + 10 s');
    advance(70_000);
    assert.equal(await store.hasReceiptSubscription(rid), false);
    const late = await store.saveMessage(message(s, { createdAt: 1_084_000 }), { id: rid, create: false });
    assert.deepEqual(late, { ok: false, reason: 'no-receipt-subscription' });
  });

  test('410 receipts: Topic replacement, expiry (sweep), unsubscribe and set deletion', async () => {
    const { store, advance, notified } = open();
    const s = sub();
    const other = sub(s.uaid);
    await store.putSubscription(s);
    await store.putSubscription(other);
    const rid = randomBytes(16);
    const named = { id: rid, create: false };
    const replaced = await save(store, message(s, { topic: 't' }), { id: rid, create: true });
    const replacing = await save(store, message(s, { topic: 't' }), named);
    const expiring = await save(store, message(s, { ttl: 1 }), named);
    await save(store, message(s, { ttl: 1 })); // expires without a receipt
    advance(1000);
    const swept = await store.sweep();
    assert.deepEqual(
      swept.expired.map((m) => m.id),
      [expiring, expiring + 1],
    );
    assert.deepEqual(swept.expired[0], { uaid: s.uaid, chid: s.chid, id: expiring });
    const unsubscribed = await save(store, message(other, { createdAt: 1_001_000 }), named);
    assert.equal(await store.deleteSubscription(other.uaid, other.chid), true);
    assert.equal(await store.deleteSubscription(other.uaid, other.chid), false);
    assert.equal(await store.deleteUserAgent(s.uaid), true);
    assert.deepEqual(
      (await store.pendingReceipts(rid, 0, 10)).map((r) => [r.messageId, r.status]),
      [
        [replaced, 410],
        [expiring, 410],
        [unsubscribed, 410],
        [replacing, 410],
      ],
    );
    assert.equal(notified.length, 4);
    assert.equal(await store.deleteUserAgent(s.uaid), false);
    assert.equal(await store.hasUserAgent(s.uaid), false);
    assert.deepEqual(await store.listSubscriptions(s.uaid), []);
    assert.deepEqual(await store.saveMessage(message(s)), { ok: false, reason: 'no-subscription' });
  });

  test('receipts and receipt subscriptions expire', async () => {
    const { store, advance } = open();
    const s = sub();
    await store.putSubscription(s);
    const rid = randomBytes(16);
    const id = await save(store, message(s, { ttl: 5 }), { id: rid, create: true }); // sub lives to 1_015_000
    advance(2_000);
    await store.deleteMessage(s.uaid, s.chid, id); // receipt expires at 1_012_000
    assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 1);
    advance(10_000);
    assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 0, 'an expired receipt is never handed out');
    const swept = await store.sweep();
    assert.equal(swept.receipts, 1);
    assert.deepEqual(swept.receiptSubscriptions, []);
    advance(3_000);
    assert.deepEqual((await store.sweep()).receiptSubscriptions, [rid]);
    assert.equal(await store.hasReceiptSubscription(rid), false);
  });

  test('queued receipts and receipt requests survive reopening the file', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'webpushd-store-')), 'db');
    const s = sub();
    const rid = randomBytes(16);
    const a = open({ path, now: Date.now });
    await a.store.putSubscription(s);
    const acked = await save(a.store, message(s, { createdAt: Date.now() }), { id: rid, create: true });
    const waiting = await save(a.store, message(s, { createdAt: Date.now() }), { id: rid, create: false });
    await a.store.deleteMessage(s.uaid, s.chid, acked);
    await a.store.close();
    const b = open({ path, now: Date.now });
    assert.deepEqual((await b.store.pendingReceipts(rid, 0, 10)).map((r) => [r.messageId, r.status]), [[acked, 204]]);
    assert.deepEqual((await b.store.pendingMessages(s.uaid, 0, 10)).map((m) => [m.id, m.receipt]), [[waiting, rid]]);
    await b.store.deleteMessage(s.uaid, s.chid, waiting);
    assert.equal((await b.store.pendingReceipts(rid, 0, 10)).length, 2);
    await b.store.close();
  });
});

describe('idle user agents', () => {
  test('seen on subscribe and touch; listed least recently seen first; a conditional delete spares one seen since', async () => {
    const { store, advance, now } = open();
    const a = sub();
    const b = sub();
    await store.putSubscription(a);
    advance(1000);
    await store.putSubscription(b);
    advance(1000);
    assert.deepEqual(await store.idleUserAgents(now(), 10), [a.uaid, b.uaid]);
    assert.deepEqual(await store.idleUserAgents(now(), 1), [a.uaid], 'bounded');
    const cutoff = now();
    await store.touchUserAgent(a.uaid);
    assert.deepEqual(await store.idleUserAgents(cutoff + 1, 10), [b.uaid, a.uaid], 'a was seen last');
    assert.equal(await store.deleteUserAgent(a.uaid, cutoff), false, 'a was seen after the cutoff');
    assert.ok(await store.getSubscription(a.uaid, a.chid));
    await save(store, message(b, { createdAt: now() }));
    assert.equal(await store.deleteUserAgent(b.uaid, cutoff), true);
    assert.equal(await store.getSubscription(b.uaid, b.chid), null);
    assert.deepEqual(await store.pendingMessages(b.uaid, 0, 10), []);
    assert.equal(await store.hasUserAgent(b.uaid), false);
    await store.close();
  });
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
    const path = join(mkdtempSync(join(tmpdir(), 'webpushd-store-')), 'db');
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
    const path = join(mkdtempSync(join(tmpdir(), 'webpushd-store-')), 'db');
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    assert.throws(() => open({ path }), new RegExp(`schema version ${SCHEMA_VERSION + 1}; this webpushd knows up to ${SCHEMA_VERSION}`));
  });
});
