// On Redis with `appendfsync always`, a message answered 201 survives kill -9 of the webpushd
// node (alone, or the one of two holding the user agent) and kill -9 of Redis itself (restarted
// from its AOF); while Redis is down pushes get 503 with Retry-After, and the node recovers by
// itself once Redis is back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const CHANNEL = '4f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f';

const push = (endpoint: string, marker: string) =>
  fetch(endpoint, { method: 'POST', headers: { TTL: '600', 'content-encoding': 'aes128gcm', connection: 'close' }, body: aes128gcmBody(marker) });

/** Connects as `uaid` and takes (acknowledging) messages until the marker `last` came; returns the markers in order. */
async function drain(server: ServerProcess, uaid: string, last: string): Promise<string[]> {
  const ua = await TestUserAgent.connect(`${server.url.replace('http', 'ws')}/`);
  try {
    assert.equal(await ua.hello(uaid), uaid, 'the uaid is still known');
    const markers: string[] = [];
    for (;;) {
      const n = await ua.next('notification', 10_000);
      ua.ack(CHANNEL, n.version as string);
      const marker = markerOf(Buffer.from(n.data as string, 'base64url'));
      if (marker === last) return markers;
      markers.push(marker);
    }
  } finally {
    await ua.close();
  }
}

describe('durability on Redis', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  before(async () => {
    redis = await startRedisServer();
  });
  after(async () => {
    await redis?.stop();
  });

  /** A node on `redis` and a user agent that registered CHANNEL and went offline. */
  async function nodeWithOfflineUserAgent() {
    const node = await startServerProcess({ args: ['--store', redis.url] });
    const ua = await TestUserAgent.connect(`${node.url.replace('http', 'ws')}/`);
    const uaid = await ua.hello();
    const { pushEndpoint } = await ua.register(CHANNEL);
    await ua.close();
    return { node, uaid, endpoint: (pushEndpoint as string).replace('localhost', '127.0.0.1') };
  }

  test('kill -9 of the node loses no message answered 201; the restarted node delivers each once', async () => {
    const { node, uaid, endpoint } = await nodeWithOfflineUserAgent();
    const statuses = (await Promise.all(Array.from({ length: 50 }, (_, i) => push(endpoint, `m${i}`)))).map((r) => r.status);
    assert.deepEqual(new Set(statuses), new Set([201]));
    await node.kill9();
    const again = await startServerProcess({ dataDir: node.dataDir, port: node.port, args: ['--store', redis.url] });
    try {
      assert.equal((await push(endpoint, 'fence')).status, 201, 'the push URL is still valid');
      const markers = await drain(again, uaid, 'fence');
      assert.deepEqual(markers.toSorted(), Array.from({ length: 50 }, (_, i) => `m${i}`).sort(), 'every message exactly once');
    } finally {
      await again.stop();
    }
  });

  test('two nodes: the node holding the user agent killed -9; every message answered 201 by the other is delivered on reconnecting there', async () => {
    const { node: holder, uaid, endpoint } = await nodeWithOfflineUserAgent();
    const other = await startServerProcess({ dataDir: holder.dataDir, args: ['--store', redis.url] });
    const viaOther = `${other.url}${new URL(endpoint).pathname}`;
    try {
      // connected to the holder, taking live deliveries of messages posted to the other node
      const ua = await TestUserAgent.connect(`${holder.url.replace('http', 'ws')}/`);
      assert.equal(await ua.hello(uaid), uaid);
      assert.equal((await push(viaOther, 'live')).status, 201);
      assert.equal(markerOf(Buffer.from((await ua.next('notification', 2000)).data as string, 'base64url')), 'live', 'delivered across nodes');
      const statuses = (await Promise.all(Array.from({ length: 30 }, (_, i) => push(viaOther, `m${i}`)))).map((r) => r.status);
      assert.deepEqual(new Set(statuses), new Set([201]));
      // the holder dies with none of them acknowledged
      await holder.kill9();
      assert.equal((await push(viaOther, 'fence')).status, 201);
      const markers = await drain(other, uaid, 'fence');
      assert.deepEqual(
        markers.filter((m) => m !== 'live').toSorted(),
        Array.from({ length: 30 }, (_, i) => `m${i}`).sort(),
      );
    } finally {
      await other.stop();
    }
  });

  test('kill -9 of Redis under load loses no message answered 201; the node gives 503 meanwhile and recovers by itself', async () => {
    const { node, uaid, endpoint } = await nodeWithOfflineUserAgent();
    try {
      const accepted = new Set<string>();
      let sent = 0;
      let killed = false;
      const sender = async () => {
        for (;;) {
          const marker = `m${sent++}`;
          const status = await push(endpoint, marker).then(
            (r) => r.status,
            () => 0,
          );
          if (status !== 201) return;
          accepted.add(marker);
          if (accepted.size >= 30 && !killed) {
            killed = true;
            await redis.kill9();
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, sender));
      assert.ok(killed, 'Redis was killed under load');
      const down = await push(endpoint, 'down');
      assert.equal(down.status, 503, 'Redis down: 503');
      assert.ok(Number(down.headers.get('retry-after')) > 0, 'with Retry-After');
      await redis.restart();
      // no restart of the node: it reconnects by itself
      await until(async () => (await push(endpoint, 'fence')).status === 201, 'pushes accepted again');
      const markers = await drain(node, uaid, 'fence');
      const missing = [...accepted].filter((m) => !markers.includes(m));
      assert.deepEqual(missing, [], `${accepted.size} answered 201, ${markers.length} delivered`);
      // a push cut by the kill may have been stored before its answer was lost: at least once
      assert.equal(new Set(markers).size, markers.length, 'none twice');
      assert.ok(markers.every((m) => /^m\d+$/.test(m) && Number(m.slice(1)) < sent), 'nothing that was never sent');
    } finally {
      await node.stop();
    }
  });
});
