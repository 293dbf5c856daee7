// Broadcast versions on Redis are one table for every node: a change made through node A's admin
// API (and `webpushd broadcast set` against it) reaches a user agent connected to node B at once
// (announced), a change nobody announced
// within --cluster-refresh-interval-ms, and a node started later has the versions.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { RedisStore } from '../../src/store/redis-store.ts';
import { readAdminToken } from '../../src/tokens/admin-token.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const ID = 'remote-settings/monitor_changes';

describe('broadcasts on Redis', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let a: TestServer;
  let b: TestServer;
  const nodes: TestServer[] = [];
  before(async () => {
    redis = await startRedisServer();
    a = await startTestServer({ store: redis.url, adminPort: 0, broadcasts: new Map([[ID, 'v1']]), clusterRefreshIntervalMs: 3_600_000 });
    b = await startTestServer({ store: redis.url, clusterRefreshIntervalMs: 3_600_000 });
    nodes.push(a, b);
  });
  after(async () => {
    for (const node of nodes) {
      await node.close();
      rmSync(node.dataDir, { recursive: true, force: true });
    }
    await redis?.stop();
  });

  const subscribed = async (node: TestServer, version: string) => {
    const ua = await TestUserAgent.connect(node.wsUrl);
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: { [ID]: version } });
    return { ua, hello: await ua.next('hello') };
  };

  test('a node started after the change has the versions', () => {
    assert.deepEqual(b.broadcasts(), { [ID]: 'v1' });
  });

  test("a change through A's admin API reaches a user agent on B at once", async () => {
    const { ua } = await subscribed(b, 'v1');
    try {
      const put = await fetch(`${a.adminUrl}/broadcasts/${encodeURIComponent(ID)}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${readAdminToken(a.dataDir)}` },
        body: 'v2',
      });
      assert.equal(put.status, 200);
      assert.deepEqual((await ua.next('broadcast', 2000)).broadcasts, { [ID]: 'v2' });
      assert.deepEqual(b.broadcasts(), { [ID]: 'v2' });
      // the CLI goes through the same admin API of A (a child process: this one serves A)
      await promisify(execFile)(process.execPath, [MAIN, 'broadcast', 'set', `${ID}=v2b`, '--admin-url', a.adminUrl!, '--data-dir', a.dataDir], { timeout: 10_000 });
      assert.deepEqual((await ua.next('broadcast', 2000)).broadcasts, { [ID]: 'v2b' });
    } finally {
      await ua.close();
    }
    const later = await startTestServer({ store: redis.url });
    nodes.push(later);
    assert.deepEqual(later.broadcasts(), { [ID]: 'v2b' }, 'what a node starting later reads');
    const { ua: fresh, hello } = await subscribed(later, 'v1');
    await fresh.close();
    assert.deepEqual(hello.broadcasts, { [ID]: 'v2b' });
  });

  test('a change nobody announced reaches the user agents within --cluster-refresh-interval-ms', async () => {
    const c = await startTestServer({ store: redis.url, clusterRefreshIntervalMs: 200 });
    nodes.push(c);
    const { ua } = await subscribed(c, 'v2b');
    try {
      // straight into Redis, as if the announcement was lost
      await (a.store as RedisStore).putBroadcasts({ [ID]: 'v3' });
      assert.deepEqual((await ua.next('broadcast', 3000)).broadcasts, { [ID]: 'v3' });
    } finally {
      await ua.close();
    }
  });
});
