// The SQLite store when it cannot write: StoreUnavailable for faults of the file (locked, full,
// I/O), a whole turn rolled back when one of its writes fails, and readiness that sees recovery.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, test } from 'node:test';
import { newUaid } from '../../src/common/ids.ts';
import { StoreUnavailable } from '../../src/store/errors.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { NewMessage } from '../../src/store/types.ts';

let dir: string;
let path: string;
let store: SqliteStore;
let events: (string | null)[];
let other: DatabaseSync;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-faults-'));
  path = join(dir, 'store.db');
  events = [];
  store = new SqliteStore({
    path,
    maxStoredPerUserAgent: 100,
    synchronous: 'normal',
    busyTimeoutMs: 20,
    onWritable: (failure) => events.push(failure ? failure.message : null),
  });
  other = new DatabaseSync(path);
});

afterEach(async () => {
  other.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const message = (uaid: Buffer, chid: Buffer, topic: string | null = null): NewMessage => ({
  uaid,
  chid,
  topic,
  urgency: 'normal',
  ttl: 60,
  createdAt: Date.now(),
  headers: null,
  body: Buffer.alloc(0),
});

test('a database locked by another process: writes reject with StoreUnavailable, readiness says so, and sees the recovery', async () => {
  const uaid = newUaid();
  const chid = newUaid();
  assert.equal(await store.unavailable(), null);
  other.exec('BEGIN IMMEDIATE');
  await assert.rejects(store.putSubscription({ uaid, chid, keyHash: null }), (err) => err instanceof StoreUnavailable && /locked/.test(err.message));
  await assert.rejects(store.saveMessage(message(uaid, chid)), StoreUnavailable);
  assert.deepEqual(events, ['database is locked'], 'the change to failing is reported once');
  assert.match((await store.unavailable()) ?? '', /^store cannot write: database is locked/);
  other.exec('ROLLBACK');
  // no other write needed: the readiness check's probe write finds it works again
  assert.equal(await store.unavailable(), null);
  assert.deepEqual(events, ['database is locked', null]);
  await store.putSubscription({ uaid, chid, keyHash: null });
  assert.ok(await store.getSubscription(uaid, chid));
});

test('a write that fails rolls back every write of its turn; the next turn commits', async () => {
  const [uaid, chid] = [newUaid(), newUaid()];
  await store.putSubscription({ uaid, chid, keyHash: null });
  other.exec("CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.topic = 'bad' BEGIN SELECT RAISE(ABORT, 'refused'); END");
  // one turn: a good message, then one whose insert fails
  const good = store.saveMessage(message(uaid, chid));
  const bad = store.saveMessage(message(uaid, chid, 'bad'));
  await assert.rejects(bad, /refused/);
  await assert.rejects(good, /refused/, 'not answered as stored: its transaction was rolled back');
  assert.deepEqual(await store.pendingMessages(uaid, 0, 10), []);
  const next = await store.saveMessage(message(uaid, chid));
  assert.ok(next.ok);
  assert.equal((await store.pendingMessages(uaid, 0, 10)).length, 1);
});
