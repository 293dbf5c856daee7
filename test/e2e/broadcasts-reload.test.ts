// SIGHUP applies the configured broadcast versions again: the file is edited, the service is
// signalled, and a connected user agent that subscribed hears the new version.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

const ID = 'remote-settings/monitor_changes';

test('editing the config file and sending SIGHUP tells the subscribed user agents; a broken file changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-broadcast-conf-'));
  const file = join(dir, 'webpushd.json');
  writeFileSync(file, JSON.stringify({ broadcasts: { [ID]: 'v1' } }));
  const server = await startServerProcess({ args: ['--config', file] });
  try {
    const ua = await TestUserAgent.connect(`ws://127.0.0.1:${server.port}/`);
    ua.send({ messageType: 'hello', use_webpush: true, broadcasts: { [ID]: 'v0' } });
    assert.deepEqual((await ua.next('hello')).broadcasts, { [ID]: 'v1' });

    writeFileSync(file, JSON.stringify({ broadcasts: { [ID]: 'v2' } }));
    server.proc.kill('SIGHUP');
    assert.deepEqual((await ua.next('broadcast', 5000)).broadcasts, { [ID]: 'v2' });

    writeFileSync(file, '{ not json');
    server.proc.kill('SIGHUP');
    await until(() => server.output().includes('the broadcast versions in use stay'), 'the reload error logged');
    ua.send({});
    assert.deepEqual(await ua.next(), {});
    assert.deepEqual(ua.pending(), [], 'no broadcast for a broken file');
    await ua.close();
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
