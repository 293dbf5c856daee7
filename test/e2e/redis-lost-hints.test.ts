// A hint between nodes can be lost (pub/sub is at most once): the message still arrives, within
// --cluster-recheck-interval-ms. Two nodes on one Redis (in one process, sharing the data dir's
// secret): a message stored with no hint at all, the pub/sub connections killed, and publishing
// refused by Redis altogether; a takeover whose hint was lost.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { on } from '../helpers/cluster.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { within } from '../helpers/wait.ts';

const RECHECK_MS = 400;
const post = (url: string) => fetch(url, { method: 'POST', headers: { TTL: '60' } });

describe('lost hints between nodes delay a message by the recheck interval at most', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let admin: ReturnType<typeof createClient>;
  let a: TestServer;
  let b: TestServer;
  const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-hints-'));
  before(async () => {
    redis = await startRedisServer();
    admin = createClient({ url: redis.url });
    await admin.connect();
    a = await startTestServer({ store: redis.url, dataDir, clusterRecheckIntervalMs: RECHECK_MS });
    b = await startTestServer({ store: redis.url, dataDir, clusterRecheckIntervalMs: RECHECK_MS });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await admin?.close();
    await redis?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** A user agent on B with one subscription. */
  async function userAgentOnB() {
    const ua = await TestUserAgent.connect(b.wsUrl);
    await ua.hello();
    const channelID = randomUUID();
    const endpoint = (await ua.register(channelID)).pushEndpoint as string;
    return { ua, channelID, endpoint };
  }

  /** Posts to A and waits for B's user agent to get it: how long it took. */
  async function deliveredAfter(ua: TestUserAgent, channelID: string, endpoint: string): Promise<number> {
    const started = Date.now();
    assert.equal((await post(on(a, endpoint))).status, 201);
    const n = await ua.next('notification', 5 * RECHECK_MS);
    assert.equal(n.channelID, channelID);
    ua.ack(channelID, n.version as string);
    return Date.now() - started;
  }

  test('publishing refused by Redis (no hint sent at all): messages still come, within the interval, in order', async () => {
    const { ua, channelID, endpoint } = await userAgentOnB();
    try {
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '-spublish']);
      const took = [];
      for (let i = 0; i < 3; i++) took.push(await deliveredAfter(ua, channelID, endpoint));
      assert.ok(Math.max(...took) < RECHECK_MS + 300, `delivered after ${took.join(', ')} ms`);
      // several at once while no hint goes out: all of them, in order
      for (let i = 0; i < 5; i++) assert.equal((await post(on(a, endpoint))).status, 201);
      const ids: number[] = [];
      for (let i = 0; i < 5; i++) {
        const n = await ua.next('notification', 5 * RECHECK_MS);
        ids.push(parseInt(n.version as string, 36));
        ua.ack(channelID, n.version as string);
      }
      assert.deepEqual(ids, [...ids].sort((x, y) => x - y));
      assert.equal(new Set(ids).size, 5);
    } finally {
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '+spublish']);
      await ua.close();
    }
  });

  test('a takeover whose hint was lost: the older connection is closed at the recheck that finds a message for it', async () => {
    const first = await TestUserAgent.connect(a.wsUrl);
    const uaid = await first.hello();
    const channelID = randomUUID();
    const endpoint = (await first.register(channelID)).pushEndpoint as string;
    const second = await TestUserAgent.connect(b.wsUrl);
    try {
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '-spublish']);
      assert.equal(await second.hello(uaid), uaid);
      assert.equal(a.router.has(Buffer.from(uaid, 'hex')), true, 'A was not told');
      assert.equal((await post(on(b, endpoint))).status, 201);
      assert.equal((await second.next('notification', 2000)).channelID, channelID);
      // A's recheck sees a message past what it handed over: the older connection is replaced, not sent it
      assert.equal((await within(first.closed, 'the older connection closed', 5 * RECHECK_MS)).code, 4774);
      assert.equal(a.router.has(Buffer.from(uaid, 'hex')), false);
    } finally {
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '+spublish']);
      await first.close();
      await second.close();
    }
  });

  test('the pub/sub connections killed: a message posted right then still comes', async () => {
    const { ua, channelID, endpoint } = await userAgentOnB();
    try {
      await admin.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
      assert.ok((await deliveredAfter(ua, channelID, endpoint)) < RECHECK_MS + 300);
      // and once they are back, hints work again: at once
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((await deliveredAfter(ua, channelID, endpoint)) < RECHECK_MS / 2);
    } finally {
      await ua.close();
    }
  });

  test('acknowledged or deleted messages past the last handed over do not make every recheck read again', async () => {
    const { ua, channelID, endpoint } = await userAgentOnB();
    try {
      await deliveredAfter(ua, channelID, endpoint);
      // a message stored and deleted before B heard of it: ids in Redis go past what B handed over
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '-spublish']);
      const sent = await post(on(a, endpoint));
      assert.equal((await fetch(on(a, sent.headers.get('location')!), { method: 'DELETE' })).status, 204);
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '+spublish']);
      const before = Number(((await admin.info('commandstats')).match(/cmdstat_fcall_ro:calls=(\d+)/) ?? [])[1] ?? 0);
      await new Promise((r) => setTimeout(r, 4 * RECHECK_MS));
      const after = Number(((await admin.info('commandstats')).match(/cmdstat_fcall_ro:calls=(\d+)/) ?? [])[1] ?? 0);
      assert.ok(after - before <= 1, `store reads in ${4 * RECHECK_MS} ms: ${after - before}`);
      assert.ok((await deliveredAfter(ua, channelID, endpoint)) < RECHECK_MS / 2, 'the next one comes live');
    } finally {
      await admin.sendCommand(['ACL', 'SETUSER', 'default', '+spublish']);
      await ua.close();
    }
  });
});
