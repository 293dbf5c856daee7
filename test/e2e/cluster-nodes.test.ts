// Three `webpushd serve` processes on one private Redis (appendonly, appendfsync always), as a
// cluster runs: any node takes a push for any user agent, wherever it is connected. Delivery
// over WebSocket and RFC 8030 monitors, takeover, receipts, Topic replacement, TTL and the
// per-user-agent cap, each with the parts on different nodes.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { on, startCluster, wsUrl, type Cluster } from '../helpers/cluster.ts';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import type { ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

/** Low, so the cap test reaches it in a few sends; the other tests keep fewer unacknowledged. */
const MAX_STORED = 6;

const post = (url: string, marker: string, headers: Record<string, string> = {}) =>
  fetch(url, { method: 'POST', headers: { TTL: '60', 'content-encoding': 'aes128gcm', ...headers }, body: aes128gcmBody(marker) });

const markerOfNotification = (n: Record<string, unknown>) => markerOf(Buffer.from(n.data as string, 'base64url'));

describe('three node processes on one Redis', { skip: skipWithoutRedis(), timeout: 60_000 }, () => {
  let redis: RedisServer;
  let cluster: Cluster;
  let a: ServerProcess;
  let b: ServerProcess;
  let c: ServerProcess;
  before(async () => {
    redis = await startRedisServer();
    cluster = await startCluster(redis.url, 3, ['--max-stored', String(MAX_STORED)]);
    [a, b, c] = cluster.nodes as [ServerProcess, ServerProcess, ServerProcess];
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
  });

  /** A user agent that registered one channel on `node` and went offline. */
  async function offlineUserAgent(node: ServerProcess) {
    const ua = await TestUserAgent.connect(wsUrl(node));
    const uaid = await ua.hello();
    const channelID = randomUUID();
    const endpoint = (await ua.register(channelID)).pushEndpoint as string;
    await ua.close();
    return { uaid, channelID, endpoint };
  }

  /** Connects as `uaid` to `node`, takes and acknowledges `n` notifications, and checks nothing more comes. */
  async function receive(node: ServerProcess, uaid: string, n: number): Promise<Record<string, unknown>[]> {
    const ua = await TestUserAgent.connect(wsUrl(node));
    try {
      assert.equal(await ua.hello(uaid), uaid);
      const got: Record<string, unknown>[] = [];
      for (let i = 0; i < n; i++) {
        const m = await ua.next('notification', 3000);
        ua.ack(m.channelID as string, m.version as string);
        got.push(m);
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(ua.pending().filter((f) => f.messageType === 'notification').map(markerOfNotification), [], 'nothing more');
      return got;
    } finally {
      await ua.close();
    }
  }

  test('WebSocket: posts to A and C reach the user agent on B at once, each once, in the order stored', async () => {
    const ua = await TestUserAgent.connect(wsUrl(b));
    try {
      await ua.hello();
      const channelID = randomUUID();
      const endpoint = (await ua.register(channelID)).pushEndpoint as string;
      const started = Date.now();
      assert.equal((await post(on(a, endpoint), 'first')).status, 201);
      const first = await ua.next('notification', 2000);
      assert.equal(markerOfNotification(first), 'first');
      assert.ok(Date.now() - started < 1000, `delivered after ${Date.now() - started} ms`);
      ua.ack(channelID, first.version as string);
      const statuses = await Promise.all(
        Array.from({ length: MAX_STORED }, (_, i) => post(on([a, c][i % 2]!, endpoint), `m${i}`).then((r) => r.status)),
      );
      assert.deepEqual(statuses, Array<number>(MAX_STORED).fill(201));
      const got: Record<string, unknown>[] = [];
      for (let i = 0; i < MAX_STORED; i++) {
        const n = await ua.next('notification', 2000);
        ua.ack(channelID, n.version as string);
        got.push(n);
      }
      assert.deepEqual(got.map(markerOfNotification).toSorted(), Array.from({ length: MAX_STORED }, (_, i) => `m${i}`).sort());
      const ids = got.map((n) => parseInt(n.version as string, 36));
      assert.deepEqual(ids, ids.toSorted((x, y) => x - y), 'in id order');
    } finally {
      await ua.close();
    }
  });

  test('RFC 8030: a monitor on C gets a message posted to A; the DELETE on B acknowledges it everywhere', async () => {
    const ua = await H2Client.connect(c.url);
    try {
      const sub = await ua.subscribe();
      const monitor = ua.monitor(sub.url);
      // the monitor's GET is held open without an answer: give it time to attach
      await new Promise((r) => setTimeout(r, 200));
      assert.equal((await post(on(a, sub.push), 'h2')).status, 201);
      const pushed = await monitor.next(2000);
      assert.equal(markerOf(pushed.body), 'h2');
      assert.equal((await fetch(on(b, pushed.url), { method: 'DELETE' })).status, 204);
      assert.equal((await fetch(on(a, pushed.url), { method: 'DELETE' })).status, 410, 'gone for node A too');
      await monitor.quiet(300);
      monitor.close();
      // nothing left for a fresh monitor on another node
      const again = await H2Client.connect(b.url);
      const late = again.monitor(sub.url, { prefer: 'wait=0' });
      assert.equal((await late.done).status, 204, 'nothing stored');
      await again.close();
    } finally {
      await ua.close();
    }
  });

  test('a connection on C takes the user agent over from A (4774); a post to B reaches the new one', async () => {
    const first = await TestUserAgent.connect(wsUrl(a));
    const uaid = await first.hello();
    const channelID = randomUUID();
    const endpoint = (await first.register(channelID)).pushEndpoint as string;
    const second = await TestUserAgent.connect(wsUrl(c));
    try {
      assert.equal(await second.hello(uaid), uaid);
      assert.equal((await first.closed).code, 4774, 'the older connection is closed with the takeover code');
      assert.equal((await post(on(b, endpoint), 'after')).status, 201);
      assert.equal(markerOfNotification(await second.next('notification', 2000)), 'after');
      assert.deepEqual(first.pending().filter((f) => f.messageType === 'notification'), [], 'not sent to the old one');
    } finally {
      await second.close();
    }
  });

  test('receipts: posted on A, monitored on C, acknowledged by the user agent on B', async () => {
    const ua = await TestUserAgent.connect(wsUrl(b));
    const app = await H2Client.connect(c.url);
    try {
      await ua.hello();
      const channelID = randomUUID();
      const endpoint = (await ua.register(channelID)).pushEndpoint as string;
      const sent = await post(on(a, endpoint), 'receipted', { prefer: 'respond-async' });
      assert.equal(sent.status, 202);
      const receiptUrl = links(sent.headers.get('link') ?? undefined).get(REL_RECEIPT);
      assert.ok(receiptUrl, 'a receipt subscription');
      const receipts = app.monitor(on(c, receiptUrl));
      const n = await ua.next('notification', 2000);
      await receipts.quiet(200);
      ua.ack(channelID, n.version as string);
      const receipt = await receipts.next(2000);
      assert.equal(receipt.status, 204, 'delivered and acknowledged');
      assert.equal(new URL(receipt.url).pathname, new URL(sent.headers.get('location')!).pathname, 'for that message');
      await receipts.quiet(200);
      receipts.close();
    } finally {
      await ua.close();
      await app.close();
    }
  });

  test('Topic: a message posted to C replaces the one posted to A; the user agent on B gets the newest only', async () => {
    const { uaid, endpoint } = await offlineUserAgent(a);
    assert.equal((await post(on(a, endpoint), 'old', { topic: 'score' })).status, 201);
    assert.equal((await post(on(c, endpoint), 'other', { topic: 'news' })).status, 201);
    assert.equal((await post(on(c, endpoint), 'new', { topic: 'score' })).status, 201);
    const got = await receive(b, uaid, 2);
    assert.deepEqual(got.map(markerOfNotification), ['other', 'new']);
  });

  test('TTL: a message stored by A that expired is not delivered by B; the unexpired one from C is', async () => {
    const { uaid, endpoint } = await offlineUserAgent(c);
    assert.equal((await post(on(a, endpoint), 'short', { TTL: '1' })).status, 201);
    assert.equal((await post(on(c, endpoint), 'long')).status, 201);
    await new Promise((r) => setTimeout(r, 1200));
    const got = await receive(b, uaid, 1);
    assert.deepEqual(got.map(markerOfNotification), ['long']);
  });

  test('the per-user-agent cap counts the messages stored by every node', async () => {
    const { uaid, endpoint } = await offlineUserAgent(b);
    const nodes = [a, b, c];
    for (let i = 0; i < MAX_STORED; i++) assert.equal((await post(on(nodes[i % 3]!, endpoint), `m${i}`)).status, 201, `m${i}`);
    for (const node of nodes) {
      const over = await post(on(node, endpoint), 'over');
      assert.equal(over.status, 429, `refused by ${node.url}`);
      assert.ok(Number(over.headers.get('retry-after')) > 0, 'with Retry-After');
    }
    const got = await receive(c, uaid, MAX_STORED);
    assert.deepEqual(got.map(markerOfNotification), Array.from({ length: MAX_STORED }, (_, i) => `m${i}`), 'none refused was stored');
    assert.equal((await post(on(a, endpoint), 'room again')).status, 201, 'acknowledgements on C made room on A');
  });
});
