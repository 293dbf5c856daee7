// The Store contract (test/contract/store-contract.ts) on the Redis store, against a redis-server
// of this file's own (emptied before each test), and what only Redis does: the functions loaded
// again into a Redis that lost them, and "cannot serve now" as StoreUnavailable.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { StoreUnavailable } from '../../src/store/errors.ts';
import { decodeMessage, decodeMessageHint } from '../../src/store/redis/record.ts';
import { hintChannel, holderKey, receiptKeys, receiptSlot, subscriptionsKey, userAgentKey, userAgentKeys, userAgentSlot } from '../../src/store/redis/keys.ts';
import { RedisStore } from '../../src/store/redis-store.ts';
import type { NewMessage } from '../../src/store/types.ts';
import { reopenable, storeContract } from '../contract/store-contract.ts';
import { freePort } from '../helpers/net.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { until } from '../helpers/wait.ts';

const skip = skipWithoutRedis();
let redis: RedisServer | undefined;
let admin: ReturnType<typeof createClient> | undefined;
before(async () => {
  if (skip) return;
  redis = await startRedisServer();
  admin = createClient({ url: redis.url });
  await admin.connect();
});
after(async () => {
  await admin?.close();
  await redis?.stop();
});

storeContract(
  'RedisStore',
  async (opts) => {
    await admin!.flushDb();
    return reopenable(() => RedisStore.open({ url: redis!.url, ...opts }));
  },
  { skip },
);

const message = (uaid: Buffer, chid: Buffer, over: Partial<NewMessage> = {}): NewMessage => ({
  uaid,
  chid,
  ttl: 60,
  topic: null,
  urgency: 'normal',
  headers: null,
  body: Buffer.alloc(100),
  createdAt: Date.now(),
  ...over,
});

describe('RedisStore on Redis only', { skip }, () => {
  test('every key of a user agent, with its slot indexes, and of a receipt slot is in one hash slot of Redis Cluster', async () => {
    const cluster = await startRedisServer({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] });
    const c = createClient({ url: cluster.url });
    try {
      await c.connect();
      for (let i = 0; i < 20; i++) {
        const uaid = randomBytes(16);
        const slots = await Promise.all(userAgentKeys(uaid).map((k) => c.clusterKeySlot(k)));
        assert.deepEqual(new Set(slots), new Set([userAgentSlot(uaid)]), userAgentKeys(uaid).join(' '));
        // the single keys the store reads alone are those the functions take
        const keys = userAgentKeys(uaid);
        assert.deepEqual([userAgentKey(uaid), subscriptionsKey(uaid), holderKey(uaid)], [keys[0], keys[1], keys[12]]);
        const rslot = receiptSlot(randomBytes(16));
        assert.deepEqual(new Set(await Promise.all(receiptKeys(rslot).map((k) => c.clusterKeySlot(k)))), new Set([rslot]));
      }
    } finally {
      await c.close();
      await cluster.stop();
    }
  });

  test('a save says which node held the connection as it stored the message, and its record; as a node, it publishes the hint to that node itself', async () => {
    await admin!.flushDb();
    const store = await RedisStore.open({ url: redis!.url, maxStoredPerUserAgent: 10 });
    try {
      const [uaid, chid] = [randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      const first = await store.saveMessage(message(uaid, chid));
      assert.ok(first.ok);
      assert.equal(store.savedWith(first.message)?.holder, null, 'no connection');
      await store.claimUserAgent(uaid, 'node-a');
      const saved = await store.saveMessage(message(uaid, chid, { topic: 't', headers: { encoding: 'aes128gcm' } }));
      assert.ok(saved.ok);
      const seen = store.savedWith(saved.message);
      assert.equal(seen?.holder, 'node-a');
      assert.deepEqual(decodeMessage(uaid, saved.message.id, seen.record), (await store.pendingMessages(uaid, first.message.id, 10))[0]);
      assert.equal(seen.hinted, false, 'hints are published only as a node');
      assert.equal(store.savedWith({ ...saved.message }), undefined, 'only the message the save returned');
      // as node-b (publishHintsAs): the save publishes the hint to node-a itself, the record in it
      const hints: Buffer[] = [];
      const stop = await store.subscribe([hintChannel('node-a')], (hint) => hints.push(hint), () => {});
      store.publishHintsAs('node-b');
      const third = await store.saveMessage(message(uaid, chid));
      assert.ok(third.ok);
      assert.equal(store.savedWith(third.message)?.hinted, true);
      await until(async () => hints.length === 1, 'the hint');
      assert.deepEqual(decodeMessageHint(hints[0]!), { uaid, id: third.message.id, rec: store.savedWith(third.message)!.record });
      await stop();
    } finally {
      await store.close();
    }
  });

  test('a refused save (either cap) leaves the counts as they were; the slot expiry index holds the earliest expiry', async () => {
    await admin!.flushDb();
    const store = await RedisStore.open({ url: redis!.url, maxStoredPerUserAgent: 3, maxStoredPerSubscription: 2 });
    try {
      const [uaid, a, b, c] = [randomBytes(16), randomBytes(16), randomBytes(16), randomBytes(16)];
      for (const chid of [a, b, c]) await store.putSubscription({ uaid, chid, keyHash: null });
      const keys = userAgentKeys(uaid);
      const [countsKey, expiryIndex] = [keys[2]!, keys[9]!];
      const now = Date.now();
      const later = await store.saveMessage(message(uaid, a, { ttl: 120, createdAt: now }));
      assert.ok(later.ok);
      assert.equal(await admin!.zScore(expiryIndex, uaid), now + 120_000);
      const sooner = await store.saveMessage(message(uaid, a, { ttl: 60, createdAt: now }));
      assert.ok(sooner.ok);
      assert.equal(await admin!.zScore(expiryIndex, uaid), now + 60_000, 'lowered');
      assert.deepEqual(await store.saveMessage(message(uaid, a, { ttl: 300, createdAt: now })), { ok: false, reason: 'too-many-stored' });
      assert.ok((await store.saveMessage(message(uaid, b, { ttl: 300, createdAt: now }))).ok);
      assert.equal(await admin!.zScore(expiryIndex, uaid), now + 60_000, 'not raised');
      assert.deepEqual(await store.saveMessage(message(uaid, c)), { ok: false, reason: 'too-many-stored' }, 'the user agent holds its 3');
      assert.deepEqual([await admin!.hGet(countsKey, a), await admin!.hGet(countsKey, b), await admin!.hLen(countsKey)], ['2', '1', 2], 'no count for c');
      assert.ok(await store.deleteMessage(uaid, a, sooner.message.id));
      assert.equal(await admin!.zScore(expiryIndex, uaid), now + 120_000, 'the next earliest');
      assert.ok((await store.saveMessage(message(uaid, c))).ok, 'room again');
    } finally {
      await store.close();
    }
  });

  test('a Redis that lost the functions (FUNCTION FLUSH) gets them again on the next call', async () => {
    await admin!.flushDb();
    const store = await RedisStore.open({ url: redis!.url, maxStoredPerUserAgent: 10 });
    try {
      const [uaid, chid] = [randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      await admin!.functionFlush();
      assert.ok((await store.saveMessage(message(uaid, chid))).ok);
      assert.equal((await store.pendingMessages(uaid, 0, 10)).length, 1);
    } finally {
      await store.close();
    }
  });

  test('a receipt left in an outbox (a crash before it was moved) is moved by the sweep, once', async () => {
    await admin!.flushDb();
    const notified: Buffer[][] = [];
    const store = await RedisStore.open({ url: redis!.url, maxStoredPerUserAgent: 10, onReceipts: (ids) => notified.push(ids) });
    try {
      const [uaid, chid, rid] = [randomBytes(16), randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      const saved = await store.saveMessage(message(uaid, chid), { id: rid, create: true });
      assert.ok(saved.ok);
      // the acknowledgement as the store's first step alone, the move never made
      const keys = userAgentKeys(uaid);
      await admin!.fCall('wp1_delete_message', { keys, arguments: [uaid, chid, String(saved.message.id)] as never });
      assert.deepEqual(await store.pendingReceipts(rid, 0, 10), []);
      await store.sweep();
      const [r] = await store.pendingReceipts(rid, 0, 10);
      assert.deepEqual([r?.messageId, r?.status], [saved.message.id, 204]);
      assert.deepEqual(notified, [[rid]]);
      // moved again (the outbox was cleared after a failure to clear it): still one receipt
      const entry = Buffer.concat([rid, chid, Buffer.from('204')]);
      await admin!.hSet(keys[7]!, String(saved.message.id), entry);
      await admin!.sAdd(keys[10]!, uaid);
      await store.sweep();
      assert.equal((await store.pendingReceipts(rid, 0, 10)).length, 1);
      assert.equal(await admin!.exists(keys[7]!), 0, 'the outbox is empty');
    } finally {
      await store.close();
    }
  });

  test('Redis down: StoreUnavailable, reported once, readiness says so; back: it recovers by itself, nothing lost', async () => {
    const own = await startRedisServer();
    const events: (string | null)[] = [];
    const store = await RedisStore.open({
      url: own.url,
      maxStoredPerUserAgent: 10,
      commandTimeoutMs: 1000,
      onWritable: (failure) => events.push(failure ? failure.message : null),
    });
    try {
      const [uaid, chid] = [randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      const kept = await store.saveMessage(message(uaid, chid));
      assert.ok(kept.ok);
      await own.kill9();
      await assert.rejects(store.saveMessage(message(uaid, chid)), StoreUnavailable);
      await assert.rejects(store.pendingMessages(uaid, 0, 10), StoreUnavailable);
      await assert.rejects(store.deleteMessage(uaid, chid, kept.message.id), StoreUnavailable);
      assert.match((await store.unavailable()) ?? '', /^store cannot write: redis: /);
      assert.equal(events.filter((e) => e !== null).length, 1, 'the change to failing is reported once');
      await own.restart();
      await until(async () => (await store.unavailable()) === null, 'ready again');
      assert.equal(events.at(-1), null);
      assert.deepEqual((await store.pendingMessages(uaid, 0, 10)).map((m) => m.id), [kept.message.id], 'from the AOF');
      assert.ok((await store.saveMessage(message(uaid, chid))).ok);
    } finally {
      await store.close();
      await own.stop();
    }
  });

  test('a Redis that stops answering (SIGSTOP) fails the commands written to it as StoreUnavailable; going on, it serves again', async () => {
    const own = await startRedisServer();
    const store = await RedisStore.open({ url: own.url, maxStoredPerUserAgent: 10, commandTimeoutMs: 300 });
    const admin = await createClient({ url: own.url }).connect();
    const pid = Number(/process_id:(\d+)/.exec(await admin.info('server'))![1]);
    await admin.close();
    try {
      const [uaid, chid] = [randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      process.kill(pid, 'SIGSTOP');
      await assert.rejects(store.saveMessage(message(uaid, chid)), (err) => err instanceof StoreUnavailable && /no reply from Redis/.test(err.message));
      await assert.rejects(store.pendingMessages(uaid, 0, 10), StoreUnavailable);
      process.kill(pid, 'SIGCONT');
      assert.ok((await store.saveMessage(message(uaid, chid))).ok);
    } finally {
      process.kill(pid, 'SIGCONT');
      await store.close();
      await own.stop();
    }
  });

  test('a full Redis (maxmemory, noeviction) refuses new messages as StoreUnavailable, yet takes acknowledgements', async () => {
    const own = await startRedisServer({ args: ['--maxmemory-policy', 'noeviction'] });
    const c = createClient({ url: own.url });
    const store = await RedisStore.open({ url: own.url, maxStoredPerUserAgent: 100 });
    try {
      await c.connect();
      const [uaid, chid] = [randomBytes(16), randomBytes(16)];
      await store.putSubscription({ uaid, chid, keyHash: null });
      const ids: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await store.saveMessage(message(uaid, chid));
        assert.ok(r.ok);
        ids.push(r.message.id);
      }
      // whatever it holds now is more than it may
      await c.configSet('maxmemory', '1');
      await assert.rejects(store.saveMessage(message(uaid, chid)), (err) => err instanceof StoreUnavailable && /OOM/.test(err.message));
      await assert.rejects(store.putSubscription({ uaid, chid: randomBytes(16), keyHash: null }), StoreUnavailable);
      assert.match((await store.unavailable()) ?? '', /^store cannot write: redis: OOM/);
      assert.deepEqual((await store.pendingMessages(uaid, 0, 100)).map((m) => m.id), ids, 'a refused write left nothing behind');
      // acknowledgements free memory, so they pass
      for (const id of ids.slice(0, 5)) assert.equal(await store.deleteMessage(uaid, chid, id), true);
      await c.configSet('maxmemory', '0');
      assert.equal(await store.unavailable(), null, 'room again');
      assert.ok((await store.saveMessage(message(uaid, chid))).ok);
    } finally {
      await c.close();
      await store.close();
      await own.stop();
    }
  });

  test('commands go over several connections, each user agent\'s over one: a read sent after a write sees it', async () => {
    await admin!.flushDb();
    const store = await RedisStore.open({ url: redis!.url, maxStoredPerUserAgent: 10, connections: 4 });
    try {
      const subs = Array.from({ length: 40 }, () => ({ uaid: randomBytes(16), chid: randomBytes(16), keyHash: null }));
      for (const s of subs) await store.putSubscription(s);
      // sent in one tick, not awaited in between: only their order on one connection orders them
      const reads = subs.map((s) => {
        void store.saveMessage(message(s.uaid, s.chid));
        return store.pendingMessages(s.uaid, 0, 10);
      });
      assert.deepEqual((await Promise.all(reads)).map((r) => r.length), subs.map(() => 1));
      const clients = (await admin!.clientList()).filter((c) => c.cmd === 'fcall_ro' || c.cmd === 'fcall');
      assert.equal(clients.length, 4, 'every connection was used');
    } finally {
      await store.close();
    }
  });

  test('a Redis that cannot be reached fails the start, naming it without its password', async () => {
    const port = await freePort();
    await assert.rejects(
      RedisStore.open({ url: `redis://:hunter2@127.0.0.1:${port}/3`, maxStoredPerUserAgent: 10, commandTimeoutMs: 500 }),
      (err) => err instanceof StoreUnavailable && err.message.includes(`127.0.0.1:${port}/3`) && !err.message.includes('hunter2'),
    );
  });
});
