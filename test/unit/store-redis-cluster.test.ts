// The Store contract (test/contract/store-contract.ts) on a Redis Cluster of 3 primaries of this
// file's own (redis-cluster:// seed nodes, emptied before each test), and what only a cluster
// does: keys spread over every primary, sweeps and idle user agents read on each slot's node,
// the functions loaded again on a primary that lost them, and seed nodes that cannot be reached.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { loadConfig } from '../../src/config/load.ts';
import { StoreUnavailable } from '../../src/store/errors.ts';
import { parseClusterUrl, where } from '../../src/store/redis/url.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import { message, reopenable, save, storeContract, sub } from '../contract/store-contract.ts';
import { freePort } from '../helpers/net.ts';
import { skipWithoutRedis, startRedisCluster, type RedisClusterServers } from '../helpers/redis-server.ts';
import { until } from '../helpers/wait.ts';

const skip = skipWithoutRedis();
let cluster: RedisClusterServers | undefined;
/** A client of one node; a test kills a primary: it reconnects (the error events of meanwhile are expected). */
function nodeClient(url: string) {
  const c = createClient({ url });
  c.on('error', () => {});
  return c;
}
let nodes: ReturnType<typeof nodeClient>[] = [];
before(async () => {
  if (skip) return;
  cluster = await startRedisCluster();
  nodes = cluster.nodes.map((n) => nodeClient(n.url));
  await Promise.all(nodes.map((c) => c.connect()));
});
after(async () => {
  await Promise.all(nodes.map((c) => c.close()));
  await cluster?.stop();
});

test('redis-cluster:// and rediss-cluster:// name seed nodes and shared credentials; the password is masked', () => {
  assert.deepEqual(parseClusterUrl('rediss-cluster://app:p%40ss@10.0.0.1:7000,[::1]:7001'), {
    tls: true,
    username: 'app',
    password: 'p@ss',
    nodes: [
      { host: '10.0.0.1', port: 7000 },
      { host: '::1', port: 7001 },
    ],
  });
  assert.deepEqual(parseClusterUrl('redis-cluster://:pw@h:1')?.password, 'pw');
  for (const bad of ['redis-cluster://h', 'redis-cluster://h:1/2', 'redis-cluster://h:1,', 'redis-cluster://h:99999', 'redis://h:1']) {
    assert.equal(parseClusterUrl(bad), null, bad);
  }
  assert.equal(where('redis-cluster://:hunter2@h:1,h:2'), 'redis-cluster://h:1,h:2');
  assert.equal(loadConfig({ flags: { store: 'redis-cluster://:pw@h:1,h:2' } }).config.store, 'redis-cluster://:pw@h:1,h:2');
  assert.throws(() => loadConfig({ flags: { store: 'redis-cluster://h' } }), /seed nodes/);
});

const flushAll = () => Promise.all(nodes.map((c) => c.flushAll()));

storeContract(
  'RedisStore on a Redis Cluster',
  async (opts) => {
    await flushAll();
    return reopenable(() => RedisStore.open({ url: cluster!.url, ...opts }));
  },
  { skip },
);

describe('RedisStore on a Redis Cluster only', { skip }, () => {
  test('user agents, receipts and slot indexes land on every primary; sweeps and idle user agents read all of them', async () => {
    await flushAll();
    let now = 1_000_000;
    const store = await RedisStore.open({ url: cluster!.url, maxStoredPerUserAgent: 10, now: () => now });
    try {
      const subs = Array.from({ length: 30 }, () => sub());
      for (const s of subs) {
        await store.putSubscription(s);
        await save(store, message(s, { ttl: 1 }), { id: randomBytes(16), create: true });
      }
      const keysPerNode = await Promise.all(nodes.map((c) => c.dbSize()));
      assert.ok(keysPerNode.every((n) => n > 0), `keys per primary: ${keysPerNode.join(', ')}`);
      now += 2000;
      assert.deepEqual(new Set((await store.idleUserAgents(now, 100)).map((u) => u.toString('hex'))), new Set(subs.map((s) => s.uaid.toString('hex'))));
      const swept = await store.sweep();
      assert.equal(swept.expired.length, 30, 'every expired message, whichever primary holds it');
      for (const s of subs) assert.deepEqual(await store.pendingMessages(s.uaid, 0, 10), []);
    } finally {
      await store.close();
    }
  });

  test('the count of stored messages follows every write, summed over the slots of every primary', async () => {
    await flushAll();
    let now = 1_000_000;
    const store = await RedisStore.open({ url: cluster!.url, maxStoredPerUserAgent: 10, now: () => now });
    try {
      assert.equal(await store.storedMessages(), 0);
      const subs = Array.from({ length: 12 }, () => sub());
      const ids: number[] = [];
      for (const s of subs) {
        await store.putSubscription(s);
        ids.push(await save(store, message(s, { topic: 't' })));
        await save(store, message(s, { ttl: 1 }));
      }
      assert.equal(await store.storedMessages(), 24);
      await save(store, message(subs[0]!, { topic: 't' }));
      assert.equal(await store.storedMessages(), 24, 'a Topic replacement is one in, one out');
      await store.deleteMessage(subs[1]!.uaid, subs[1]!.chid, ids[1]!);
      assert.equal(await store.storedMessages(), 23);
      now += 2000;
      assert.equal((await store.sweep()).expired.length, 12);
      assert.equal(await store.storedMessages(), 11);
      await store.deleteSubscription(subs[2]!.uaid, subs[2]!.chid);
      await store.deleteUserAgent(subs[3]!.uaid);
      assert.equal(await store.storedMessages(), 9);
      assert.equal(await store.storedMessages(), (await Promise.all(subs.map((s) => store.pendingMessages(s.uaid, 0, 10)))).flat().length);
      // refused writes count nothing
      const full = subs[4]!;
      for (let i = 0; i < 9; i++) await save(store, message(full));
      assert.equal((await store.saveMessage(message(full))).ok, false);
      assert.equal(await store.storedMessages(), 18);
    } finally {
      await store.close();
    }
  });

  test('a primary that lost the functions (FUNCTION FLUSH) gets them again on the next call', async () => {
    await flushAll();
    // the messages' time (they are made at a fixed time)
    const store = await RedisStore.open({ url: cluster!.url, maxStoredPerUserAgent: 10, now: () => 1_000_000 });
    try {
      const subs = Array.from({ length: 10 }, () => sub());
      for (const s of subs) await store.putSubscription(s);
      await Promise.all(nodes.map((c) => c.functionFlush()));
      for (const s of subs) await save(store, message(s));
      for (const s of subs) assert.equal((await store.pendingMessages(s.uaid, 0, 10)).length, 1);
    } finally {
      await store.close();
    }
  });

  test('a primary down: its user agents get StoreUnavailable, the others are served; back: it recovers by itself', async () => {
    await flushAll();
    const store = await RedisStore.open({ url: cluster!.url, maxStoredPerUserAgent: 10, commandTimeoutMs: 1000, now: () => 1_000_000 });
    const down = cluster!.nodes[0]!;
    try {
      const subs = Array.from({ length: 12 }, () => sub());
      for (const s of subs) await store.putSubscription(s);
      const onDown = await Promise.all(nodes.map((c) => c.dbSize()));
      assert.ok(onDown[0]! > 0);
      await down.kill9();
      const results = await Promise.allSettled(subs.map((s) => store.saveMessage(message(s))));
      const refused = results.filter((r) => r.status === 'rejected');
      assert.ok(refused.length > 0 && refused.length < subs.length, `refused ${refused.length} of ${subs.length}`);
      for (const r of refused) assert.ok(r.reason instanceof StoreUnavailable, String(r.reason));
      await down.restart();
      await until(async () => (await Promise.allSettled(subs.map((s) => store.saveMessage(message(s))))).every((r) => r.status === 'fulfilled'), 'every primary serves again');
      assert.equal(await store.unavailable(), null);
    } finally {
      await store.close();
    }
  });

  test('seed nodes that cannot be reached fail the start, named without the password', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    await assert.rejects(
      RedisStore.open({ url: `redis-cluster://:hunter2@127.0.0.1:${p1},127.0.0.1:${p2}`, maxStoredPerUserAgent: 10, commandTimeoutMs: 500 }),
      (err) => err instanceof StoreUnavailable && err.message.includes(`127.0.0.1:${p1},127.0.0.1:${p2}`) && !err.message.includes('hunter2'),
    );
  });
});
