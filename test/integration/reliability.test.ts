// Failures inside one connection or one store call: they end that connection or answer that
// request, never the process (an unhandled rejection here fails this test file), and closed
// connections leave nothing behind.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { after, afterEach, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { closeReason, MAX_CLOSE_REASON_BYTES } from '../../src/connect/protocol.ts';
import { DB_FILE } from '../../src/server.ts';
import { StoreUnavailable } from '../../src/store/errors.ts';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

async function push(endpoint: string, marker = 'x'): Promise<Response> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody(marker) });
  await res.arrayBuffer();
  return res;
}

describe('close reasons', () => {
  test('are cut to 123 bytes of UTF-8 at a character boundary', () => {
    for (const text of ['€'.repeat(60), 'a'.repeat(200), '😀'.repeat(40), `x${'é'.repeat(100)}`, 'short', '']) {
      const cut = closeReason(text);
      assert.ok(Buffer.byteLength(cut) <= MAX_CLOSE_REASON_BYTES, text);
      assert.ok(text.startsWith(cut));
      assert.equal(Buffer.from(cut).toString(), cut, 'no character split');
      // as long as fits: one more character would not
      if (cut !== text) assert.ok(Buffer.byteLength(cut + [...text][[...cut].length]!) > MAX_CLOSE_REASON_BYTES);
    }
    assert.equal(closeReason('€'.repeat(60)), '€'.repeat(41));
    assert.equal(closeReason('😀'.repeat(40)), '😀'.repeat(30));
    assert.equal(closeReason('a'.repeat(123)), 'a'.repeat(123));
  });
});

describe('a store that fails', () => {
  let server: TestServer;
  /** Seen here, a rejection nobody handled would have ended the service. */
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  before(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startTestServer({ adminPort: 0 });
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await server.close();
  });
  afterEach(async () => {
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(unhandled, [], 'no store failure left unhandled');
  });

  /** Makes the store's `method` reject with StoreUnavailable until the returned function is called. */
  function failing(method: 'deleteMessage' | 'putSubscription' | 'saveMessage' | 'deleteSubscription' | 'hasUserAgent'): () => void {
    const store = server.store as unknown as Record<string, unknown>;
    const real = store[method];
    store[method] = () => Promise.reject(new StoreUnavailable('database or disk is full'));
    return () => {
      store[method] = real;
    };
  }

  test('a failed ack, live or in a catch-up batch, leaves the message stored and the connection open', async () => {
    const ua = await TestUserAgent.connect(server.wsUrl);
    const uaid = await ua.hello();
    const channelID = randomUUID();
    const endpoint = (await ua.register(channelID)).pushEndpoint as string;
    assert.equal((await push(endpoint, 'live')).status, 201);
    const live = await ua.next('notification');
    const restore = failing('deleteMessage');
    try {
      ua.ack(channelID, live.version as string);
      ua.send({});
      assert.deepEqual(await ua.next(), {});
      await ua.close();
      // the catch-up batch: its ack completes the batch and is awaited
      const again = await TestUserAgent.connect(server.wsUrl);
      await again.hello(uaid);
      const stored = await again.next('notification');
      assert.equal(stored.version, live.version);
      again.ack(channelID, stored.version as string);
      again.send({});
      assert.deepEqual(await again.next(), {});
      await again.close();
    } finally {
      restore();
    }
    const last = await TestUserAgent.connect(server.wsUrl);
    await last.hello(uaid);
    assert.equal((await last.next('notification')).version, live.version, 'still stored');
    await last.close();
  });

  test('register and unregister answer status 503 and the connection goes on', async () => {
    const ua = await TestUserAgent.connect(server.wsUrl);
    await ua.hello();
    const channelID = randomUUID();
    let restore = failing('putSubscription');
    try {
      const reply = await ua.register(channelID);
      assert.equal(reply.status, 503);
      assert.equal(reply.pushEndpoint, undefined);
    } finally {
      restore();
    }
    assert.equal((await ua.register(channelID)).status, 200);
    restore = failing('deleteSubscription');
    try {
      ua.send({ messageType: 'unregister', channelID });
      assert.equal((await ua.next('unregister')).status, 503);
    } finally {
      restore();
    }
    await ua.close();
  });

  test('a hello the store cannot answer closes with 1013; other connections go on', async () => {
    const bystander = await TestUserAgent.connect(server.wsUrl);
    await bystander.hello();
    const channelID = randomUUID();
    const endpoint = (await bystander.register(channelID)).pushEndpoint as string;
    const restore = failing('hasUserAgent');
    try {
      const ua = await TestUserAgent.connect(server.wsUrl);
      ua.send({ messageType: 'hello', uaid: randomUUID().replaceAll('-', ''), use_webpush: true });
      assert.equal((await ua.closed).code, 1013);
    } finally {
      restore();
    }
    assert.equal((await push(endpoint)).status, 201);
    assert.equal((await bystander.next('notification')).channelID, channelID);
    await bystander.close();
  });

  test('a push the store cannot take is 503 errno 201 with Retry-After, not 500', async () => {
    const ua = await TestUserAgent.connect(server.wsUrl);
    await ua.hello();
    const endpoint = (await ua.register(randomUUID())).pushEndpoint as string;
    const restore = failing('saveMessage');
    try {
      const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '60' } });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '30');
      const body = (await res.json()) as { code: number; errno: number };
      assert.deepEqual([body.code, body.errno], [503, 201]);
    } finally {
      restore();
    }
    assert.equal((await push(endpoint)).status, 201);
    await ua.close();
  });
});

describe('a write that fails half way', () => {
  test('keeps none of its statements: a Topic replacement whose insert fails keeps the old message', { skip: skipOnRedis('breaks a statement in the database file (Redis runs a function whole or not at all)') }, async () => {
    const server = await startTestServer();
    const other = new DatabaseSync(join(server.dataDir, DB_FILE));
    try {
      const ua = await TestUserAgent.connect(server.wsUrl);
      const uaid = await ua.hello();
      const channelID = randomUUID();
      const endpoint = (await ua.register(channelID)).pushEndpoint as string;
      await ua.close();
      const topicPush = async (marker: string) => {
        const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '60', topic: 't', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody(marker) });
        await res.arrayBuffer();
        return res.status;
      };
      assert.equal(await topicPush('old'), 201);
      // the replacement's delete of the old message runs, then its insert fails
      other.exec("CREATE TRIGGER refuse_insert BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
      assert.equal(await topicPush('new'), 500);
      other.exec('DROP TRIGGER refuse_insert');
      const again = await TestUserAgent.connect(server.wsUrl);
      await again.hello(uaid);
      assert.equal(markerOf(Buffer.from((await again.next('notification')).data as string, 'base64url')), 'old');
      await again.close();
    } finally {
      other.close();
      await server.close();
    }
  });
});

describe('closed connections', () => {
  test('leave the deadline wheel and the heap: 20,000 connect/hello/register/close cycles', { timeout: 240_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    // a long ping interval: without removal on close, every session would wait in the wheel for it
    const server = await startTestServer({ pingIntervalMs: 300_000 });
    const openConnections = async () => Number(/^webpushd_connections\{kind="websocket"\} (\d+)$/m.exec(await server.metrics.text())?.[1]);
    try {
      const cycle = async () => {
        const ua = await TestUserAgent.connect(server.wsUrl);
        await ua.hello();
        await ua.register(randomUUID());
        await ua.close();
      };
      const cycles = async (n: number, parallel = 8) => {
        let next = 0;
        await Promise.all(
          Array.from({ length: parallel }, async () => {
            while (next++ < n) await cycle();
          }),
        );
      };
      await cycles(1000); // warm up: code, caches, pools
      await until(async () => (await openConnections()) === 0, 'connections closed');
      gc();
      const baseline = process.memoryUsage().heapUsed;
      await cycles(20_000);
      await until(async () => (await openConnections()) === 0, 'connections closed');
      gc();
      const grown = process.memoryUsage().heapUsed - baseline;
      // 4 kB held per closed session would be 80 MB
      assert.ok(grown < 8 * 1024 * 1024, `heap grew by ${(grown / 1024 / 1024).toFixed(1)} MB`);
    } finally {
      await server.close();
    }
  });
});

describe('HTTP/1.1 after a 413', () => {
  test('the connection is closed instead of reading the declared body and answering again', async () => {
    const server = await startTestServer();
    try {
      const ua = await TestUserAgent.connect(server.wsUrl);
      await ua.hello();
      const endpoint = new URL((await ua.register(randomUUID())).pushEndpoint as string);
      await ua.close();
      const socket = connect(Number(endpoint.port), endpoint.hostname);
      let received = '';
      socket.on('data', (d) => (received += d.toString()));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(
        `POST ${endpoint.pathname} HTTP/1.1\r\nHost: ${endpoint.host}\r\nTTL: 60\r\nContent-Encoding: aes128gcm\r\nContent-Length: 100000\r\n\r\n`,
      );
      // part of the body, then nothing: the server must not wait for the rest
      socket.write(Buffer.alloc(1000));
      await until(() => received.includes('\r\n\r\n'), 'the 413');
      await closed;
      assert.match(received, /^HTTP\/1\.1 413 /);
      assert.match(received, /\r\nconnection: close\r\n/i);
      assert.equal(received.match(/HTTP\/1\.1 /g)?.length, 1, 'answered once');
    } finally {
      await server.close();
    }
  });
});
