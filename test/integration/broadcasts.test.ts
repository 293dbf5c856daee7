// Live broadcasts (megaphone): versions change while the service runs, connected user agents
// that subscribed to an id hear of it at once, versions survive a restart, and a poller of a
// megaphone-style API feeds the table.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { skipOnRedis, startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until } from '../helpers/wait.ts';

async function userAgent(s: TestServer, broadcasts: Record<string, string> | null): Promise<{ ua: TestUserAgent; hello: Record<string, unknown> }> {
  const ua = await TestUserAgent.connect(s.wsUrl);
  ua.send({ messageType: 'hello', use_webpush: true, broadcasts });
  return { ua, hello: await ua.next('hello') };
}

describe('broadcasts while running', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ broadcasts: new Map([['remote-settings/monitor_changes', 'v1'], ['other', 'o1']]) });
  });
  after(() => s.close());

  test('hello reports changed ids and unknown ones under errors', async () => {
    const { ua, hello } = await userAgent(s, { 'remote-settings/monitor_changes': 'v0', other: 'o1', nope: 'x' });
    assert.deepEqual(hello.broadcasts, { 'remote-settings/monitor_changes': 'v1', errors: { nope: 'Broadcast not found' } });
    await ua.close();
  });

  test('a change reaches the user agents that subscribed to that id, without reconnecting; others are not sent it', async () => {
    const viaHello = await userAgent(s, { 'remote-settings/monitor_changes': 'v1' });
    const viaSubscribe = await userAgent(s, {});
    viaSubscribe.ua.send({ messageType: 'broadcast_subscribe', broadcasts: { 'remote-settings/monitor_changes': 'v1' } });
    const other = await userAgent(s, { other: 'o1' });
    const none = await userAgent(s, null);
    // the subscribe is handled before the change (one frame at a time, in order)
    viaSubscribe.ua.send({});
    assert.deepEqual(await viaSubscribe.ua.next(), {});

    assert.deepEqual(await s.setBroadcasts({ 'remote-settings/monitor_changes': 'v2' }), ['remote-settings/monitor_changes']);
    for (const { ua } of [viaHello, viaSubscribe]) {
      assert.deepEqual(await ua.next('broadcast', 2000), { messageType: 'broadcast', broadcasts: { 'remote-settings/monitor_changes': 'v2' } });
    }
    for (const { ua } of [other, none]) {
      ua.send({});
      assert.deepEqual(await ua.next(), {});
      assert.deepEqual(ua.pending(), [], 'not sent what it did not subscribe to');
    }
    // setting the same version again tells nobody
    assert.deepEqual(await s.setBroadcasts({ 'remote-settings/monitor_changes': 'v2' }), []);
    // a closed connection is no longer a listener; the others still are
    await viaHello.ua.close();
    await s.setBroadcasts({ 'remote-settings/monitor_changes': 'v3' });
    assert.deepEqual((await viaSubscribe.ua.next('broadcast', 2000)).broadcasts, { 'remote-settings/monitor_changes': 'v3' });
    for (const { ua } of [viaSubscribe, other, none]) await ua.close();
  });
});

describe('broadcast versions survive a restart', { skip: skipOnRedis('a restart on the same data dir finds the same store') }, () => {
  test('a version set while running is served after a restart; the configured table is applied over the stored one', async () => {
    const first = await startTestServer({ broadcasts: new Map([['a', '1'], ['b', '1']]) });
    const dataDir = first.dataDir;
    await first.setBroadcasts({ a: '2', c: '5' });
    await first.close();
    const second = await startTestServer({ dataDir, broadcasts: new Map([['b', '3']]) });
    try {
      assert.deepEqual(second.broadcasts(), { a: '2', b: '3', c: '5' });
      const { ua, hello } = await userAgent(second, { a: '1', c: '5' });
      assert.deepEqual(hello.broadcasts, { a: '2' });
      await ua.close();
    } finally {
      await second.close();
    }
  });
});

describe('a megaphone-style poller', () => {
  test('polls --broadcast-url with its token and applies what changed; a bad answer keeps the table', async () => {
    let table: unknown = { broadcasts: { 'remote-settings/monitor_changes': 'p1' } };
    const seen: IncomingHttpHeaders[] = [];
    const megaphone = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(table));
    });
    await new Promise<void>((resolve) => megaphone.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(megaphone.address() as AddressInfo).port}/v1/broadcasts`;
    const s = await startTestServer({ broadcastUrl: url, broadcastToken: 'sekrit', broadcastPollIntervalMs: 1000 });
    try {
      await until(() => s.broadcasts()['remote-settings/monitor_changes'] === 'p1', 'the first poll applied');
      assert.equal(seen[0]!.authorization, 'Bearer sekrit');
      const { ua } = await userAgent(s, { 'remote-settings/monitor_changes': 'p1' });
      table = { broadcasts: { 'remote-settings/monitor_changes': 'p2' } };
      assert.deepEqual((await ua.next('broadcast', 5000)).broadcasts, { 'remote-settings/monitor_changes': 'p2' });
      table = { nonsense: true };
      const polls = seen.length;
      await until(() => seen.length > polls + 1, 'two more polls');
      assert.equal(s.broadcasts()['remote-settings/monitor_changes'], 'p2', 'the table in use stays');
      await ua.close();
    } finally {
      await s.close();
      megaphone.close();
    }
  });
});
