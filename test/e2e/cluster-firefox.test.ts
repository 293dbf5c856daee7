// A real browser on a cluster: an unmodified headless Firefox connected to node A of two
// `webpushd serve` processes on one private Redis receives, in its service worker, a message the
// web-push library posted to node B. Set FIREFOX_PUSH_DEBUG=1 for Firefox's push log on failure.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import webPush from 'web-push';
import { on, startCluster, type Cluster } from '../helpers/cluster.ts';
import { createProfile, FIREFOX_BIN, launchFirefox, type Firefox } from '../helpers/firefox.ts';
import { startPushTestPage, type PushTestPage } from '../helpers/push-test-page.ts';
import { skipWithoutRedis, startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';

const skip =
  skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`) || skipWithoutRedis();

test('Firefox connected to node A gets a message posted to node B', { skip, timeout: 90_000 }, async () => {
  const vapid = webPush.generateVAPIDKeys();
  let redis: RedisServer | undefined;
  let cluster: Cluster | undefined;
  let page: PushTestPage | undefined;
  let firefox: Firefox | undefined;
  let profileDir = '';
  let passed = false;
  try {
    redis = await startRedisServer();
    cluster = await startCluster(redis.url, 2);
    const [a, b] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]];
    page = await startPushTestPage();
    profileDir = createProfile({ serverUrl: `ws://127.0.0.1:${a.port}/`, debug: process.env.FIREFOX_PUSH_DEBUG === '1' });
    firefox = launchFirefox(profileDir, page.pageUrl(vapid.publicKey));
    const { subscription } = await page.nextSubscription();
    assert.ok(subscription.endpoint.startsWith(`${a.url}/wpush/v2/`), `endpoint ${subscription.endpoint} is not node A's`);

    const text = `across nodes ${Date.now()} ✓`;
    const details = webPush.generateRequestDetails({ ...subscription, endpoint: on(b, subscription.endpoint) }, text, {
      vapidDetails: { subject: 'mailto:e2e@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: 600,
    });
    // over http (web-push itself only sends https); fetch sets Content-Length from the body
    const { 'Content-Length': _length, ...headers } = details.headers;
    const res = await fetch(details.endpoint, { method: details.method, headers, body: details.body });
    assert.equal(res.status, 201, `POST to node B answered ${res.status}: ${await res.text()}`);
    assert.equal(await page.nextPush(), text);
    passed = true;
  } finally {
    await Promise.allSettled([firefox?.close(), page?.close()]);
    if (!passed) {
      for (const [i, node] of (cluster?.nodes ?? []).entries()) console.error(`\n===== node ${i} =====\n${node.output().slice(-10_000)}`);
      console.error(`\n===== Firefox (profile ${profileDir}) =====\n${firefox?.output().slice(-20_000) ?? ''}\n${page?.log() ?? ''}`);
    } else rmSync(profileDir, { recursive: true, force: true });
    await cluster?.stop();
    await redis?.stop();
  }
});
