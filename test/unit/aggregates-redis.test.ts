// The AggregateStore contract (test/contract/aggregate-contract.ts) on Redis, over a RedisStore's
// connection: on a redis-server of this file's own (emptied before each test), and on a Redis
// Cluster of 3 primaries, where an aggregate's keys must share one slot.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { createClient } from 'redis';
import { RedisAggregateStore } from '../../src/aggregates/redis-aggregate-store.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { aggregateContract } from '../contract/aggregate-contract.ts';
import { skipWithoutRedis, startRedisCluster, startRedisServer, type RedisClusterServers, type RedisServer } from '../helpers/redis-server.ts';

const skip = skipWithoutRedis();
let redis: RedisServer | undefined;
let cluster: RedisClusterServers | undefined;
let admin: ReturnType<typeof createClient> | undefined;
let nodeAdmins: ReturnType<typeof createClient>[] = [];
const opened: RedisStore[] = [];
before(async () => {
  if (skip) return;
  [redis, cluster] = await Promise.all([startRedisServer(), startRedisCluster()]);
  admin = createClient({ url: redis.url });
  nodeAdmins = cluster.nodes.map((n) => createClient({ url: n.url }));
  await Promise.all([admin, ...nodeAdmins].map((c) => c.connect()));
});
const flushCluster = () => Promise.all(nodeAdmins.map((c) => c.flushAll()));
after(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await Promise.all([admin, ...nodeAdmins].map((c) => c?.close()));
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

const on = (url: () => string) => async (opts: ConstructorParameters<typeof RedisAggregateStore>[1]) => {
  const store = await RedisStore.open({ url: url(), maxStoredPerUserAgent: 10 });
  opened.push(store);
  return new RedisAggregateStore(store, opts);
};

aggregateContract('RedisAggregateStore', async (opts) => {
  await admin!.flushDb();
  return on(() => redis!.url)(opts);
}, { skip });

aggregateContract('RedisAggregateStore on a Redis Cluster', async (opts) => {
  await flushCluster();
  return on(() => cluster!.url)(opts);
}, { skip });

test('Redis Cluster: an aggregate of many members is changed by one script on one slot', { skip }, async () => {
  await flushCluster();
  const store = await on(() => cluster!.url)({ maxMembers: 1000, maxPerOwner: 1, idleMs: 60_000 });
  const members = Array.from({ length: 500 }, () => ({ uaid: randomBytes(16), chid: randomBytes(16), keyHash: null }));
  const created = await store.create(randomBytes(16), members);
  assert.ok(created.ok);
  assert.equal((await store.get(created.id))!.members, 500);
});
