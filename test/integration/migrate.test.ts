// migrateToRedis (src/cli/migrate.ts) field by field: what the SQLite store holds (subscriptions
// with key hashes, messages with every field, ids and receipt subscription, last seen, receipt
// subscriptions, queued receipts, broadcast versions, the token secrets, aggregates with their
// owner, members and last use) reads back the same through the Redis stores, on one Redis and on
// a Redis Cluster; a new message gets an id after every copied one, a copied aggregate counts
// against its owner's cap and expires on time, and --merge copies no aggregate twice.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RedisAggregateStore } from '../../src/aggregates/redis-aggregate-store.ts';
import { AGGREGATES_FILE, SqliteAggregateStore } from '../../src/aggregates/sqlite-aggregate-store.ts';
import type { AggregateStore } from '../../src/aggregates/types.ts';
import { MigrateRefused, migrateToRedis } from '../../src/cli/migrate.ts';
import { DB_FILE } from '../../src/server.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import type { Store } from '../../src/store/types.ts';
import { Sealer } from '../../src/tokens/sealer.ts';
import { loadOrCreateSecrets } from '../../src/tokens/secret-file.ts';
import { message, save } from '../contract/store-contract.ts';
import { skipWithoutRedis, startRedisCluster, startRedisServer } from '../helpers/redis-server.ts';
import { startTestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const skip = skipWithoutRedis();
const NOW = Date.now();
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const options = { maxStoredPerUserAgent: 100, now: () => NOW };
const uaid = randomBytes(16);
const restricted = { uaid, chid: randomBytes(16), keyHash: randomBytes(16) };
const open = { uaid, chid: randomBytes(16), keyHash: null };
const other = { uaid: randomBytes(16), chid: randomBytes(16), keyHash: null };
const receiptSub = randomBytes(16);

const owner = randomBytes(16);
const aggregateOptions = { maxMembers: 2000, maxPerOwner: 2, idleMs: 60_000 };
// past the members one import script carries
const many = Array.from({ length: 1500 }, () => ({ uaid: randomBytes(16), chid: randomBytes(16), keyHash: null }));

/** An aggregate as a store tells it: itself and all its members, page by page. */
async function aggregate(store: AggregateStore, id: Buffer) {
  const members = [];
  let cursor: string | null = null;
  do {
    const page = await store.members(id, cursor, 400);
    members.push(...page.members);
    cursor = page.next;
  } while (cursor !== null);
  return { aggregate: await store.get(id), members };
}

/** Everything a store tells about the data written below. */
async function contents(store: Store) {
  return {
    subscriptions: await store.listSubscriptions(uaid),
    messages: await store.pendingMessages(uaid, 0, 100),
    other: await store.pendingMessages(other.uaid, 0, 100),
    receiptSubscription: await store.hasReceiptSubscription(receiptSub),
    receipts: (await store.pendingReceipts(receiptSub, 0, 100)).map(({ seq: _, ...r }) => r),
    idle: (await store.idleUserAgents(NOW + 1, 10)).map((u) => u.toString('hex')).sort(),
    broadcasts: await store.broadcasts(),
  };
}

for (const [where, start] of [['one Redis', startRedisServer], ['a Redis Cluster', startRedisCluster]] as const) {
  test(`every field copied reads back the same from ${where}; new ids come after the copied ones`, { skip }, async () => {
    const redis = await start();
    try {
      await copied(redis.url);
    } finally {
      await redis.stop();
    }
  });
}

async function copied(url: string): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-migrate-'));
  dirs.push(dataDir);
  const secrets = loadOrCreateSecrets(dataDir);
  const sqlite = new SqliteStore({ path: join(dataDir, DB_FILE), ...options });
  for (const s of [restricted, open, other]) assert.ok(await sqlite.putSubscription(s));
  await save(sqlite, message(restricted, { createdAt: NOW, ttl: 300, topic: 'a', urgency: 'high', headers: { encoding: 'aesgcm', encryption: 'salt=x', cryptoKey: 'dh=y' } }), {
    id: receiptSub,
    create: true,
  });
  const acked = await save(sqlite, message(open, { createdAt: NOW }), { id: receiptSub, create: false });
  await save(sqlite, message(open, { createdAt: NOW, ttl: 5, urgency: 'very-low', headers: null, body: Buffer.alloc(0) }));
  await save(sqlite, message(other, { createdAt: NOW, topic: 'b' }));
  assert.ok(await sqlite.deleteMessage(open.uaid, open.chid, acked), 'its receipt is queued');
  await sqlite.putBroadcasts({ 'remote-settings/monitor_changes': 'v7' });
  const before = await contents(sqlite);
  await sqlite.close();
  assert.equal(before.messages.length, 2);
  assert.equal(before.receipts.length, 1);

  const sqliteAggregates = new SqliteAggregateStore({ path: join(dataDir, AGGREGATES_FILE), synchronous: 'normal', ...aggregateOptions, now: () => NOW - 1000 });
  const small = await sqliteAggregates.create(owner, [{ ...restricted, keyHash: owner }, open, other]);
  const large = await sqliteAggregates.create(owner, many);
  assert.ok(small.ok && large.ok);
  const aggregatesBefore = [await aggregate(sqliteAggregates, small.id), await aggregate(sqliteAggregates, large.id)];
  await sqliteAggregates.close();
  assert.deepEqual(
    aggregatesBefore.map((a) => [a.aggregate?.owner, a.aggregate?.usedAt, a.members.length]),
    [
      [owner, NOW - 1000, 3],
      [owner, NOW - 1000, 1500],
    ],
  );

  const copied = await migrateToRedis({ dataDir, store: url, merge: false });
  assert.deepEqual(copied, {
    secrets: 1,
    broadcasts: 1,
    receiptSubscriptions: 1,
    userAgents: 2,
    userAgentsKept: 0,
    subscriptions: 3,
    messages: 3,
    receipts: 1,
    aggregates: 2,
    aggregateMembers: 1503,
    aggregatesKept: 0,
  });
  const merged = await migrateToRedis({ dataDir, store: url, merge: true });
  assert.deepEqual([merged.aggregates, merged.aggregateMembers, merged.aggregatesKept], [0, 0, 2], 'Redis holds both already');

  const store = await RedisStore.open({ url, ...options });
  try {
    assert.deepEqual(await contents(store), before);
    assert.deepEqual(await store.tokenSecrets(), secrets);
    const next = await save(store, message(other, { createdAt: NOW, topic: 'b' }));
    assert.ok(next > Math.max(acked, ...before.messages.map((m) => m.id), ...before.other.map((m) => m.id)), `id ${next} after the copied ones`);
    assert.deepEqual(
      (await store.pendingMessages(other.uaid, 0, 10)).map((m) => m.id),
      [next],
      'the copied Topic is replaced',
    );

    const aggregates = new RedisAggregateStore(store, { ...aggregateOptions, now: () => NOW });
    assert.deepEqual([await aggregate(aggregates, small.id), await aggregate(aggregates, large.id)], aggregatesBefore);
    assert.equal(await aggregates.count(), 2);
    assert.deepEqual(await aggregates.create(owner, [open]), { ok: false, reason: 'too-many-aggregates' }, 'the copied ones count against their owner\'s cap');
    const later = new RedisAggregateStore(store, { ...aggregateOptions, now: () => NOW - 1000 + aggregateOptions.idleMs + 1 });
    assert.equal(await later.expire(10), 2, 'both expire idleMs after their last use on SQLite');
    assert.equal(await later.get(small.id), null);
    assert.equal(await aggregates.count(), 0);
  } finally {
    await store.close();
  }
}

test('a data dir with only a secret.key copies just its secrets; a node then starts on it and seals with them', { skip }, async () => {
  const redis = await startRedisServer();
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-migrate-'));
  dirs.push(dataDir);
  try {
    await assert.rejects(migrateToRedis({ dataDir, store: redis.url, merge: false }), (err: Error) => err instanceof MigrateRefused && /nothing to copy/.test(err.message));
    const [secret] = loadOrCreateSecrets(dataDir);
    assert.deepEqual(await migrateToRedis({ dataDir, store: redis.url, merge: false }), {
      secrets: 1,
      broadcasts: 0,
      receiptSubscriptions: 0,
      userAgents: 0,
      userAgentsKept: 0,
      subscriptions: 0,
      messages: 0,
      receipts: 0,
      aggregates: 0,
      aggregateMembers: 0,
      aggregatesKept: 0,
    });
    const node = await startTestServer({ store: redis.url, dataDir });
    try {
      assert.equal(node.secretsCreated, false);
      const ua = await TestUserAgent.connect(node.wsUrl);
      await ua.hello();
      const url = (await ua.register(randomUUID())).pushEndpoint as string;
      await ua.close();
      assert.ok(new Sealer([secret!]).open(new URL(url).pathname.split('/').pop()!), 'sealed by the file\'s secret');
    } finally {
      await node.close();
    }
  } finally {
    await redis.stop();
  }
});
