// Two webpushd nodes (in one process, sharing the data dir's secret) on a Redis Cluster of 3
// primaries (--store redis-cluster://): user agents spread over the primaries, their hint
// channels too; a message posted to node A for a user agent connected to node B comes at once
// over WebSocket, and an RFC 8030 acknowledgement on A sends the receipt to a monitor on B.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { skipWithoutRedis, startRedisCluster, type RedisClusterServers } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { on } from '../helpers/cluster.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const post = (url: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: { TTL: '60', ...headers } });

describe('two nodes on a Redis Cluster of 3 primaries', { skip: skipWithoutRedis() }, () => {
  let cluster: RedisClusterServers;
  let a: TestServer;
  let b: TestServer;
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-cluster-'));
  before(async () => {
    cluster = await startRedisCluster();
    a = await startTestServer({ store: cluster.url, dataDir });
    b = await startTestServer({ store: cluster.url, dataDir });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await cluster?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('WebSocket: user agents on every primary, each gets at once, in order, what is posted to either node', async () => {
    const uas = await Promise.all(Array.from({ length: 12 }, () => TestUserAgent.connect(b.wsUrl)));
    try {
      const endpoints: { ua: TestUserAgent; channelID: string; endpoint: string }[] = [];
      for (const ua of uas) {
        await ua.hello();
        const channelID = randomUUID();
        endpoints.push({ ua, channelID, endpoint: (await ua.register(channelID)).pushEndpoint as string });
      }
      const perPrimary = await Promise.all(
        cluster.nodes.map(async (n) => {
          const c = createClient({ url: n.url });
          await c.connect();
          try {
            return await c.dbSize();
          } finally {
            await c.close();
          }
        }),
      );
      assert.ok(perPrimary.every((keys) => keys > 0), `keys per primary: ${perPrimary.join(', ')}`);
      for (const { ua, channelID, endpoint } of endpoints) {
        const started = Date.now();
        assert.equal((await post(on(a, endpoint))).status, 201);
        assert.equal((await post(on(b, endpoint))).status, 201);
        const ids: number[] = [];
        for (let i = 0; i < 2; i++) {
          const n = await ua.next('notification', 2000);
          assert.equal(n.channelID, channelID);
          ids.push(parseInt(n.version as string, 36));
          ua.ack(channelID, n.version as string);
        }
        assert.ok(ids[0]! < ids[1]!, `in order: ${ids.join(', ')}`);
        assert.ok(Date.now() - started < 1000, `delivered after ${Date.now() - started} ms`);
      }
    } finally {
      await Promise.all(uas.map((ua) => ua.close()));
    }
  });

  test('RFC 8030: a monitor on B gets a message posted to A; its acknowledgement on A sends the receipt to a monitor on B', async () => {
    const ua = await H2Client.connect(b.url);
    const app = await H2Client.connect(b.url);
    try {
      const sub = await ua.subscribe();
      const monitor = ua.monitor(sub.url);
      await new Promise((r) => setTimeout(r, 100));
      const sent = await fetch(on(a, sub.push), { method: 'POST', headers: { TTL: '60', prefer: 'respond-async' } });
      assert.equal(sent.status, 202);
      const receiptUrl = links(sent.headers.get('link') ?? undefined).get(REL_RECEIPT);
      assert.ok(receiptUrl, 'a receipt subscription');
      const receipts = app.monitor(on(b, receiptUrl));
      const pushed = await monitor.next(2000);
      assert.equal(pushed.status, 200);
      assert.equal((await fetch(on(a, pushed.url), { method: 'DELETE' })).status, 204);
      assert.equal((await receipts.next(2000)).status, 204);
      monitor.close();
      receipts.close();
    } finally {
      await ua.close();
      await app.close();
    }
  });
});
