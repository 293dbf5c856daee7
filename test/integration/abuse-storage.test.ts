// Attacks on storage (docs/SECURITY.md): one site filling an offline browser's queue, a client
// creating subscriptions without end, a disk filled with messages, and the data dir's
// permissions (the uaid in the database is a bearer credential).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { DEFAULTS } from '../../src/config.ts';
import { DB_FILE, startServer } from '../../src/server.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

interface Answer {
  status: number;
  retryAfter: string | null;
  body: string;
}

async function push(endpoint: string, extra: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '600', 'content-encoding': 'aes128gcm', ...extra }, body: aes128gcmBody() });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

async function withServer(overrides: Parameters<typeof startTestServer>[0], fn: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startTestServer(overrides);
  try {
    await fn(s);
  } finally {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
}

/** An offline user agent with `n` subscriptions: their push URLs. */
async function offlineUserAgent(s: TestServer, n: number): Promise<string[]> {
  const ua = await TestUserAgent.connect(s.wsUrl);
  await ua.hello();
  const endpoints: string[] = [];
  for (let i = 0; i < n; i++) endpoints.push(String((await ua.register(randomUUID())).pushEndpoint));
  await ua.close();
  return endpoints;
}

describe('one site filling an offline user agent', () => {
  test("fills only its subscription's share; the refusal is the same whichever cap is reached", async () => {
    await withServer({ maxStoredPerSubscription: 3, maxStoredPerUserAgent: 7 }, async (s) => {
      const [a, b, c] = await offlineUserAgent(s, 3);
      for (let i = 0; i < 3; i++) assert.equal((await push(a!)).status, 201);
      const own = await push(a!);
      assert.equal(own.status, 429);
      // another site's subscription of the same browser is not affected
      for (let i = 0; i < 3; i++) assert.equal((await push(b!)).status, 201);
      assert.equal((await push(c!)).status, 201); // 7 in all: the user agent's total
      const total = await push(c!);
      assert.equal(total.status, 429);
      assert.deepEqual(total, own, 'the total refusal says nothing the own-cap one does not');
      assert.equal(own.retryAfter, '60');
      assert.equal((JSON.parse(own.body) as { errno: number }).errno, 116);
    });
  });
});

describe('subscriptions without end', () => {
  test('a user agent holds at most --max-channels subscriptions; registering one again always works', async () => {
    await withServer({ maxChannelsPerUserAgent: 3 }, async (s) => {
      const ua = await TestUserAgent.connect(s.wsUrl);
      await ua.hello();
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      for (const id of ids) assert.equal((await ua.register(id)).status, 200);
      const over = await ua.register(randomUUID());
      assert.equal(over.status, 429);
      assert.equal(over.pushEndpoint, undefined);
      assert.equal((await ua.register(ids[0]!)).status, 200, 'an existing one again');
      ua.send({ messageType: 'unregister', channelID: ids[1] });
      await ua.next('unregister');
      assert.equal((await ua.register(randomUUID())).status, 200, 'room again after an unregister');
      assert.match(await s.metrics.text(), /^webpushd_limited_total\{limit="channels"\} 1$/m);
      await ua.close();
    });
  });

  test('new subscriptions per client address are rate-limited (WebSocket register and POST /subscribe)', async () => {
    await withServer({ loopbackLimits: 'limited', rateLimitRegister: 1, rateLimitRegisterBurst: 3 }, async (s) => {
      const ua = await TestUserAgent.connect(s.wsUrl);
      await ua.hello();
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push(Number((await ua.register(randomUUID())).status));
      assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
      assert.ok(statuses.slice(3).every((code) => code === 429), String(statuses));
      // the same budget for RFC 8030 subscribes (cleartext HTTP/2 is refused on HTTP/1.1: the limit comes first)
      const res = await fetch(`${s.url}/subscribe`, { method: 'POST' });
      assert.equal(res.status, 429);
      assert.equal(((await res.json()) as { errno: number }).errno, 124);
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      ua.send({});
      assert.deepEqual(await ua.next(), {}, 'the connection goes on');
      assert.match(await s.metrics.text(), /^webpushd_limited_total\{limit="register_rate"\} [3-9]$/m);
      await ua.close();
    });
  });
});

describe('a disk filled with messages', { skip: skipOnRedis('the disk quota guards the database file') }, () => {
  test('past --max-store-size new messages get 507 errno 126; TTL 0 and subscriptions still work', async () => {
    await withServer({ maxStoreMib: 1, maxStoredPerSubscription: 100_000, maxStoredPerUserAgent: 100_000, rateLimitSubscription: 0 }, async (s) => {
      const [endpoint] = await offlineUserAgent(s, 1);
      const big = aes128gcmBody('x'.repeat(4000));
      let refused: Answer | undefined;
      for (let i = 0; i < 2000 && !refused; i++) {
        const res = await fetch(endpoint!, { method: 'POST', headers: { ttl: '600', 'content-encoding': 'aes128gcm' }, body: big });
        const answer = { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
        if (answer.status !== 201) refused = answer;
        // the quota is read at most once a second
        if (i % 50 === 49) await new Promise((resolve) => setTimeout(resolve, 1000));
      }
      assert.ok(refused, 'refused before 8 MB were stored');
      assert.equal(refused.status, 507);
      assert.equal(refused.retryAfter, '60');
      assert.equal((JSON.parse(refused.body) as { errno: number }).errno, 126);
      assert.match(await s.metrics.text(), /^webpushd_messages_rejected_total\{reason="store_full"\} [1-9]/m);
      assert.equal((await push(endpoint!, { ttl: '0' })).status, 201, 'TTL 0 is never stored');
      assert.equal((await offlineUserAgent(s, 1)).length, 1);
    });
  });

  test('with less free disk than --min-free-disk, new messages get 507', async () => {
    await withServer({ minFreeDiskMib: 1024 * 1024 * 1024 }, async (s) => {
      const [endpoint] = await offlineUserAgent(s, 1);
      const refused = await push(endpoint!);
      assert.equal(refused.status, 507);
      assert.match(refused.body, /disk is nearly full/);
    });
  });
});

describe('the data dir', { skip: skipOnRedis('the database file\'s modes') }, () => {
  const modeOf = (path: string) => statSync(path).mode & 0o777;

  test('is created 0700 with every file in it 0600', async () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), 'webpushd-perm-')), 'data');
    await withServer({ dataDir, demo: 'on' }, async (s) => {
      await offlineUserAgent(s, 1); // the database has written its WAL
      assert.equal(modeOf(dataDir), 0o700);
      for (const name of [DB_FILE, `${DB_FILE}-wal`, `${DB_FILE}-shm`, 'secret.key']) {
        assert.equal(modeOf(join(dataDir, name)).toString(8), '600', name);
      }
    });
  });

  test('files an older version left readable are made 0600; a dir open to others is warned about', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'webpushd-perm-'));
    mkdirSync(dataDir, { recursive: true });
    chmodSync(dataDir, 0o755);
    writeFileSync(join(dataDir, DB_FILE), '', { mode: 0o644 });
    chmodSync(join(dataDir, DB_FILE), 0o644);
    let logged = '';
    const log = pino({ level: 'warn' }, new Writable({ write: (chunk, _enc, done) => ((logged += String(chunk)), done()) }));
    const s = await startServer({ ...DEFAULTS, host: '127.0.0.1', port: 0, dataDir }, log);
    try {
      assert.equal(modeOf(join(dataDir, DB_FILE)), 0o600);
      assert.match(logged, /the data dir is open to other users/);
    } finally {
      await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
