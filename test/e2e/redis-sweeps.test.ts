// Sweeps and user-agent expiry with two nodes on one Redis (in one process, sharing the data
// dir's secret): one node sweeps at a time (a lease in Redis), so sweeps started together expire
// each message once; a user agent connected to the other node for longer than the expiry is
// not deleted, while one recorded as held by a node that died is. "Not seen for 60 days" is made
// by moving its last seen back in Redis.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { userAgentKeys } from '../../src/store/redis/keys.ts';
import { message, save, sub } from '../contract/store-contract.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { on } from '../helpers/cluster.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const DAY_MS = 86_400_000;

describe('sweeps and user-agent expiry across two nodes', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let admin: ReturnType<typeof createClient>;
  let a: TestServer;
  let b: TestServer;
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-sweeps-'));
  before(async () => {
    redis = await startRedisServer();
    admin = createClient({ url: redis.url });
    await admin.connect();
    a = await startTestServer({ store: redis.url, dataDir, userAgentExpiryDays: 60 });
    b = await startTestServer({ store: redis.url, dataDir, userAgentExpiryDays: 60 });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await admin?.close();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A user agent on `node` with one subscription. */
  async function subscribed(node: TestServer) {
    const ua = await TestUserAgent.connect(node.wsUrl);
    const uaid = await ua.hello();
    const endpoint = (await ua.register(randomUUID())).pushEndpoint as string;
    return { ua, uaid, endpoint };
  }

  /** Moves the user agent's last seen back by `days`, in its record and its slot's index. */
  async function seenDaysAgo(uaid: string, days: number): Promise<void> {
    const id = Buffer.from(uaid, 'hex');
    const keys = userAgentKeys(id);
    const seen = Date.now() - days * DAY_MS;
    await admin.hSet(keys[0]!, 'seen', String(seen));
    await admin.zAdd(keys[8]!, { score: seen, value: id as unknown as string });
  }

  test('sweeps started together on both nodes: one sweeps, each message is expired once', async () => {
    // many user agents, so that two sweeps at once would share them out
    for (let i = 0; i < 50; i++) {
      const s = sub();
      await a.store.putSubscription(s);
      await save(a.store, message(s, { ttl: 1, createdAt: Date.now() }));
    }
    await new Promise((r) => setTimeout(r, 1100));
    const reads = async () => Number(/cmdstat_smembers:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await reads();
    const [ra, rb] = await Promise.all([a.sweep(), b.sweep()]);
    const together = (await reads()) - before;
    assert.equal(ra.expired.length + rb.expired.length, 50);
    assert.ok(ra.expired.length === 0 || rb.expired.length === 0, `one node swept: ${ra.expired.length} and ${rb.expired.length}`);
    // the lease was ended: the next sweep runs, wherever it starts; it reads the same indexes
    assert.equal(await admin.get('{g}:sweep'), null);
    const alone = await reads();
    await b.sweep();
    assert.equal(together, (await reads()) - alone, 'two sweeps started together read the indexes once');
  });

  test('connecting and disconnecting record a user agent as seen (the claim and the release of its connection)', async () => {
    const { ua, uaid } = await subscribed(b);
    const seen = async () => Number(await admin.hGet(userAgentKeys(Buffer.from(uaid, 'hex'))[0]!, 'seen'));
    await seenDaysAgo(uaid, 61);
    const closedAt = Date.now();
    await ua.close();
    await until(async () => (await seen()) >= closedAt, 'seen when it left');
    await seenDaysAgo(uaid, 61);
    const again = await TestUserAgent.connect(a.wsUrl);
    try {
      const connectedAt = Date.now();
      assert.equal(await again.hello(uaid), uaid);
      await until(async () => (await seen()) >= connectedAt, 'seen when it came back');
      assert.equal((await a.sweep()).userAgents, 0);
    } finally {
      await again.close();
    }
  });

  test('a user agent connected to the other node all along stays; one held by a node that died expires', async () => {
    const held = await subscribed(b);
    const orphan = await subscribed(b);
    try {
      await orphan.ua.close();
      await seenDaysAgo(held.uaid, 61);
      await seenDaysAgo(orphan.uaid, 61);
      // as a node killed -9 leaves it: still recorded as the holder, its alive key gone with it
      await admin.hSet(userAgentKeys(Buffer.from(orphan.uaid, 'hex'))[12]!, 'node', 'died');
      const swept = await a.sweep();
      assert.equal(swept.userAgents, 1);
      assert.equal(await a.store.hasUserAgent(Buffer.from(held.uaid, 'hex')), true, 'connected to B: not idle');
      assert.equal(await a.store.hasUserAgent(Buffer.from(orphan.uaid, 'hex')), false);
      assert.equal((await fetch(on(a, held.endpoint), { method: 'POST', headers: { TTL: '60' } })).status, 201);
      await held.ua.next('notification', 2000);
    } finally {
      await held.ua.close();
    }
  });
});
