// The AggregateStore contract (test/contract/aggregate-contract.ts) on SQLite, each test on a file
// of its own; and what only the file has: its schema version.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SqliteAggregateStore } from '../../src/aggregates/sqlite-aggregate-store.ts';
import { aggregateContract } from '../contract/aggregate-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'webpushd-aggregates-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

aggregateContract('SqliteAggregateStore', (opts) => Promise.resolve(new SqliteAggregateStore({ path: join(dir, `${++files}.db`), synchronous: 'normal', ...opts })));

test('SqliteAggregateStore: a file of a newer schema is refused', async () => {
  const path = join(dir, 'newer.db');
  const db = new DatabaseSync(path);
  db.exec('PRAGMA user_version = 99');
  db.close();
  assert.throws(() => new SqliteAggregateStore({ path, synchronous: 'normal', maxMembers: 1, maxPerOwner: 1, idleMs: 1 }), /schema version 99/);
  const fresh = new SqliteAggregateStore({ path: join(dir, 'fresh.db'), synchronous: 'normal', maxMembers: 1, maxPerOwner: 1, idleMs: 1 });
  await fresh.close();
  const reopened = new DatabaseSync(join(dir, 'fresh.db'));
  assert.equal((reopened.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 1);
  reopened.close();
});
