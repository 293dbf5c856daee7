// The Store contract (test/contract/store-contract.ts) on the embedded SQLite store, each test on
// a file of its own so that it can be reopened.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import { reopenable, storeContract } from '../contract/store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'webpushd-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

storeContract('SqliteStore', async (opts) => {
  const path = join(dir, `${++files}.db`);
  return reopenable(() => new SqliteStore({ path, synchronous: 'normal', ...opts }));
});
