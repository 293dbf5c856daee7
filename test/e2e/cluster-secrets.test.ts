// Token secrets shared through Redis (src/tokens/secret-store.ts; one Redis, and a Redis Cluster):
// nodes with data dirs of their own seal and open the same URLs; two nodes starting together on
// an empty Redis make one set;
// `webpushd secret rotate|retire --store` reach every running node at once (announced), and a
// change nobody announced within --cluster-refresh-interval-ms; a data dir whose secret.key
// Redis does not hold is refused rather than silently invalidating its URLs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'redis';
import type { RedisStore } from '../../src/store/redis-store.ts';
import { Sealer } from '../../src/tokens/sealer.ts';
import { SECRET_FILE } from '../../src/tokens/secret-file.ts';
import { startingSecrets } from '../../src/tokens/secret-store.ts';
import { skipWithoutRedis, startRedisCluster, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { on } from '../helpers/cluster.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;
const post = (url: string) => fetch(url, { method: 'POST', headers: { TTL: '60' } }).then((r) => r.status);
/** Whether `secret` alone opens a push URL's token: it sealed it. */
const sealedBy = (url: string, secret: Buffer) => new Sealer([secret]).open(new URL(url).pathname.split('/').pop()!) !== null;
const dataDir = () => mkdtempSync(join(tmpdir(), 'webpushd-secrets-'));

function secretCli(...args: string[]): string {
  const r = spawnSync(process.execPath, [MAIN, 'secret', ...args], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('token secrets in Redis', { skip: skipWithoutRedis() }, () => {
  let redis: RedisServer;
  let a: TestServer;
  let b: TestServer;
  let ua: TestUserAgent;
  const dirs: string[] = [];
  before(async () => {
    redis = await startRedisServer();
    // announcements only: the periodic re-read is far away
    const settings = { store: redis.url, clusterRefreshIntervalMs: 3_600_000 };
    [a, b] = await Promise.all([startTestServer({ ...settings, dataDir: dataDir() }), startTestServer({ ...settings, dataDir: dataDir() })]);
    dirs.push(a.dataDir, b.dataDir);
    ua = await TestUserAgent.connect(a.wsUrl);
    await ua.hello();
  });
  after(async () => {
    await ua?.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  const secrets = () => (a.store as RedisStore).tokenSecrets();
  /** A new push URL handed out by `node` (a WebSocket registration there). */
  const pushUrl = async (node: TestServer) => {
    const client = node === a ? ua : await TestUserAgent.connect(node.wsUrl);
    try {
      if (client !== ua) await client.hello();
      return (await client.register(randomUUID())).pushEndpoint as string;
    } finally {
      if (client !== ua) await client.close();
    }
  };

  test('two nodes starting together make one set, kept in Redis only; a URL of one opens on the other', async () => {
    assert.equal((await secrets()).length, 1);
    assert.equal(Number(a.secretsCreated) + Number(b.secretsCreated), 1, 'exactly one start made the secret');
    for (const dir of dirs) assert.equal(existsSync(join(dir, SECRET_FILE)), false);
    const url = await pushUrl(a);
    assert.equal(await post(on(b, url)), 201);
    assert.equal(await post(on(a, await pushUrl(b))), 201);
  });

  test('rotate reaches both nodes at once, old URLs still open on both; retire makes them 404 on both', async () => {
    const old = [await pushUrl(a), await pushUrl(b)];
    assert.match(secretCli('rotate', '--store', redis.url), /added a new secret in Redis \(2 in all\)/);
    const [newest] = await secrets();
    for (const node of [a, b]) await until(async () => sealedBy(await pushUrl(node), newest!), `${node.url} seals with the new secret`, 2000);
    for (const url of old) for (const node of [a, b]) assert.equal(await post(on(node, url)), 201, 'an old URL still opens');
    const fresh = await pushUrl(b);

    assert.match(secretCli('retire', '--store', redis.url, '--keep', '1'), /dropped 1 secret/);
    for (const url of old) for (const node of [a, b]) await until(async () => (await post(on(node, url))) === 404, `an old URL 404 on ${node.url}`, 2000);
    for (const node of [a, b]) assert.equal(await post(on(node, fresh)), 201, 'a URL of the kept secret opens');
  });

  test('a change nobody announced is read within --cluster-refresh-interval-ms', async () => {
    const c = await startTestServer({ store: redis.url, dataDir: dataDir(), clusterRefreshIntervalMs: 200 });
    dirs.push(c.dataDir);
    try {
      // straight into Redis, as if the announcement was lost
      await (a.store as RedisStore).rotateTokenSecrets(Buffer.alloc(32, 7));
      await until(async () => sealedBy(await pushUrl(c), Buffer.alloc(32, 7)), 'the node re-read the secrets', 3000);
    } finally {
      await c.close();
    }
  });

  test('a stalled Redis does not pile up re-reads: one at a time, and one more for what came meanwhile', async () => {
    const c = await startTestServer({ store: redis.url, dataDir: dataDir(), clusterRefreshIntervalMs: 100 });
    dirs.push(c.dataDir);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    const secretReads = async () => Number(/cmdstat_lrange:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
    try {
      const before = await secretReads();
      // 15 refresh intervals while Redis answers nothing
      await admin.sendCommand(['CLIENT', 'PAUSE', '1500', 'ALL']);
      await new Promise((r) => setTimeout(r, 1700));
      const reads = (await secretReads()) - before;
      assert.ok(reads <= 4, `secret re-reads sent over the stall: ${reads}`);
    } finally {
      await admin.close();
      await c.close();
    }
  });

  test('a data dir with a secret.key is refused by a Redis without secrets, naming migrate; --secrets file uses the file', async () => {
    const dir = dataDir();
    dirs.push(dir);
    writeFileSync(join(dir, SECRET_FILE), `${Buffer.alloc(32, 9).toString('base64url')}\n`, { mode: 0o600 });
    // database 1 of the same server: no secrets in it
    const empty = `${redis.url}/1`;
    await assert.rejects(startTestServer({ store: empty, dataDir: dir }), /holds token secrets but Redis holds none: copy them with `webpushd migrate/);
    const file = await startTestServer({ store: empty, dataDir: dir, secrets: 'file' });
    try {
      const client = await TestUserAgent.connect(file.wsUrl);
      await client.hello();
      const url = (await client.register(randomUUID())).pushEndpoint as string;
      await client.close();
      assert.ok(sealedBy(url, Buffer.alloc(32, 9)));
    } finally {
      await file.close();
    }
    // a Redis with secrets of its own: the file's are not used, and the start says so (a warning)
    assert.deepEqual(await startingSecrets(dir, a.store as RedisStore), { secrets: await secrets(), created: false, ignored: 1 });
  });
});

test('on a Redis Cluster: one set made by two nodes starting together, a rotation reaching both', { skip: skipWithoutRedis() }, async () => {
  const cluster = await startRedisCluster();
  const settings = { store: cluster.url, clusterRefreshIntervalMs: 3_600_000 };
  const nodes = await Promise.all([startTestServer(settings), startTestServer(settings)]);
  try {
    assert.equal(nodes.filter((n) => n.secretsCreated).length, 1);
    const [a, b] = nodes as [TestServer, TestServer];
    const ua = await TestUserAgent.connect(b.wsUrl);
    await ua.hello();
    const register = async () => (await ua.register(randomUUID())).pushEndpoint as string;
    const old = await register();
    assert.equal(await post(on(a, old)), 201);
    secretCli('rotate', '--store', cluster.url);
    const [newest] = await (a.store as RedisStore).tokenSecrets();
    await until(async () => sealedBy(await register(), newest!), 'B seals with the new secret', 2000);
    assert.equal(await post(on(a, old)), 201);
    await ua.close();
  } finally {
    for (const node of nodes) {
      await node.close();
      rmSync(node.dataDir, { recursive: true, force: true });
    }
    await cluster.stop();
  }
});
