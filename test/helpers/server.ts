// An in-process webpushd on a free port with its own data dir, for integration tests. With
// WEBPUSHD_TEST_STORE=redis each server gets a redis-server of its own (test/helpers/redis-server.ts)
// as its store, with WEBPUSHD_TEST_STORE=redis-cluster a Redis Cluster of 3 primaries, so the same
// tests check the Redis store end to end.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../src/config.ts';
import { startServer, type WebPushServer } from '../../src/server.ts';
import { startRedisCluster, startRedisServer } from './redis-server.ts';

export interface TestServer extends WebPushServer {
  readonly dataDir: string;
  /** ws://127.0.0.1:PORT/ */
  readonly wsUrl: string;
}

/** WEBPUSHD_TEST_STORE names a Redis store for the test servers. */
export const onRedis = Boolean(process.env.WEBPUSHD_TEST_STORE);

/**
 * The `skip` option of a test of what only SQLite has (a database file, its disk quota, a
 * restart on the same data dir as the way to the same store), under WEBPUSHD_TEST_STORE.
 */
export const skipOnRedis = (reason: string): string | false => (onRedis ? `SQLite only: ${reason}` : false);

/** `overrides.store` set, even to undefined (SQLite), keeps WEBPUSHD_TEST_STORE out. */
export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'webpushd-test-'));
  const kind = 'store' in overrides ? undefined : process.env.WEBPUSHD_TEST_STORE;
  const redis = kind === 'redis' ? await startRedisServer() : kind === 'redis-cluster' ? await startRedisCluster() : null;
  const config: Config = { ...DEFAULTS, host: '127.0.0.1', port: 0, sync: 'normal', ...(redis ? { store: redis.url } : {}), ...overrides, dataDir };
  const server = await startServer(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  if (redis) {
    const close = server.close.bind(server);
    server.close = async () => {
      try {
        await close();
      } finally {
        await redis.stop();
      }
    };
  }
  return Object.assign(server, { dataDir, wsUrl: `${server.url.replace(/^http/, 'ws')}/` });
}
