// Two webpushd nodes on one Redis (in one process, sharing the data dir's secret): a message
// posted to node A for a user agent connected to node B is delivered at once, over WebSocket and
// RFC 8030; a second connection on the other node takes the user agent over; acknowledgements
// and receipts cross nodes too; a connection Redis cannot record is closed.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { on } from '../helpers/cluster.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';


describe('two nodes on one Redis', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let a: TestServer;
  let b: TestServer;
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-cluster-'));
  before(async () => {
    redis = await startRedisServer();
    a = await startTestServer({ store: redis.url, dataDir });
    b = await startTestServer({ store: redis.url, dataDir });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (url: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: { TTL: '60', ...headers } });

  test('WebSocket: a message posted to A for a user agent on B comes at once, in order with B\'s own', async () => {
    const ua = await TestUserAgent.connect(b.wsUrl);
    try {
      await ua.hello();
      const channelID = randomUUID();
      const endpoint = (await ua.register(channelID)).pushEndpoint as string;
      const started = Date.now();
      assert.equal((await post(on(a, endpoint))).status, 201);
      const first = await ua.next('notification', 2000);
      assert.ok(Date.now() - started < 1000, `delivered after ${Date.now() - started} ms`);
      ua.ack(channelID, first.version as string);
      // both nodes at once: every message once, in the order stored
      const statuses = await Promise.all(Array.from({ length: 20 }, (_, i) => post(on(i % 2 ? a : b, endpoint)).then((r) => r.status)));
      assert.deepEqual(new Set(statuses), new Set([201]));
      const ids: number[] = [];
      for (let i = 0; i < 20; i++) {
        const n = await ua.next('notification', 2000);
        ids.push(parseInt(n.version as string, 36));
        ua.ack(channelID, n.version as string);
      }
      assert.equal(new Set(ids).size, 20);
      assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
      // TTL 0 exists only on the node it was posted to: it is handed over with its hint
      assert.equal((await post(on(a, endpoint), { TTL: '0' })).status, 201);
      assert.equal((await ua.next('notification', 2000)).channelID, channelID);
    } finally {
      await ua.close();
    }
  });

  test('a second connection on the other node takes the user agent over; the first is closed', async () => {
    const first = await TestUserAgent.connect(b.wsUrl);
    const uaid = await first.hello();
    const channelID = randomUUID();
    const endpoint = (await first.register(channelID)).pushEndpoint as string;
    const second = await TestUserAgent.connect(a.wsUrl);
    try {
      assert.equal(await second.hello(uaid), uaid);
      assert.equal((await first.closed).code, 4774, 'the older connection is told to back off');
      assert.equal((await post(on(b, endpoint))).status, 201);
      assert.equal((await second.next('notification', 2000)).channelID, channelID);
      assert.equal(b.router.has(Buffer.from(uaid, 'hex')), false);
    } finally {
      await second.close();
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
      // acknowledged on A: the receipt is queued there and told to B, whose monitor pushes it
      assert.equal((await fetch(on(a, pushed.url), { method: 'DELETE' })).status, 204);
      const receipt = await receipts.next(2000);
      assert.equal(receipt.status, 204);
      monitor.close();
      receipts.close();
    } finally {
      await ua.close();
      await app.close();
    }
  });

  test('a connection Redis cannot record (down) is closed, to come back later; then it is recorded and reached', async () => {
    await redis.kill9();
    const lost = await TestUserAgent.connect(b.wsUrl);
    await lost.hello();
    assert.equal((await lost.closed).code, 4774, 'no other node could reach it');
    await redis.restart();
    await until(async () => (await b.store.unavailable()) === null && (await a.store.unavailable()) === null, 'both nodes back');
    const ua = await TestUserAgent.connect(b.wsUrl);
    try {
      await ua.hello();
      const endpoint = (await ua.register(randomUUID())).pushEndpoint as string;
      assert.equal((await post(on(a, endpoint))).status, 201);
      await ua.next('notification', 2000);
    } finally {
      await ua.close();
    }
  });
});
