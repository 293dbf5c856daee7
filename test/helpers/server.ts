// An in-process webpushd on a free port with its own data dir, for integration tests.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { DEFAULTS, type Config } from '../../src/config.ts';
import { startServer, type WebPushServer } from '../../src/server.ts';

export interface TestServer extends WebPushServer {
  readonly dataDir: string;
  /** ws://127.0.0.1:PORT/ */
  readonly wsUrl: string;
}

export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'webpushd-test-'));
  const config: Config = { ...DEFAULTS, host: '127.0.0.1', port: 0, sync: 'normal', ...overrides, dataDir };
  const server = await startServer(config, pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  return Object.assign(server, { dataDir, wsUrl: `${server.url.replace(/^http/, 'ws')}/` });
}
