// End to end with a real browser: an unmodified headless Firefox uses webpushd as its push
// service; the web-push npm library and the project's own SDK play the application server.
// Set FIREFOX_PUSH_DEBUG=1 to add Firefox's push client log to the failure diagnostics.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, describe, it, type TestContext } from 'node:test';
import webPush from 'web-push';
import { sendNotification } from '../../src/index.ts';
import { createProfile, FIREFOX_BIN, launchFirefox, type Firefox } from '../helpers/firefox.ts';
import { startPushTestPage, type PushTestPage, type SubscriptionJSON } from '../helpers/push-test-page.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';

const skip = skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`);
const DIAGNOSTIC_TAIL = 20_000;

describe('headless Firefox using webpushd as its push service', { skip, timeout: 200_000 }, () => {
  const vapid = webPush.generateVAPIDKeys();
  let server: ServerProcess;
  let page: PushTestPage;
  let firefox: Firefox | undefined;
  let profileDir = '';
  let subscription: SubscriptionJSON;
  let failed = false;
  let steps = 0;
  let passed = 0;

  // Each step builds on the previous ones: after a failure the rest are skipped, not failed again.
  function step(name: string, fn: () => Promise<void>): void {
    steps++;
    it(name, async (t: TestContext) => {
      if (failed) return t.skip('an earlier step failed');
      try {
        await fn();
        passed++;
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  }

  /** Sends `text` the way an application server does, but over http (web-push only sends https). */
  async function send(text: string): Promise<Response> {
    const details = webPush.generateRequestDetails(subscription, text, {
      vapidDetails: { subject: 'mailto:e2e@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey },
      TTL: 600,
    });
    // fetch sets Content-Length itself from the body.
    const { 'Content-Length': _length, ...headers } = details.headers;
    return fetch(details.endpoint, { method: details.method, headers, body: details.body });
  }

  async function expectStatus(res: Response, status: number): Promise<void> {
    assert.equal(res.status, status, `POST ${res.url} answered ${res.status}: ${await res.text()}`);
  }

  step('starts webpushd, the test page and Firefox', async () => {
    server = await startServerProcess();
    page = await startPushTestPage();
    profileDir = createProfile({ serverUrl: `ws://127.0.0.1:${server.port}/`, debug: process.env.FIREFOX_PUSH_DEBUG === '1' });
    firefox = launchFirefox(profileDir, page.pageUrl(vapid.publicKey));
  });

  step('the page subscribes and gets a restricted (v2) endpoint of webpushd', async () => {
    const report = await page.nextSubscription();
    assert.equal(report.existing, false);
    subscription = report.subscription;
    assert.ok(
      subscription.endpoint.startsWith(`${server.url}/wpush/v2/`),
      `endpoint ${subscription.endpoint} is not under ${server.url}/wpush/v2/`,
    );
    assert.ok(subscription.keys.p256dh && subscription.keys.auth, 'subscription has no keys');
  });

  step('a message sent with web-push reaches the service worker', async () => {
    const text = `live message ${Date.now()} ✓`;
    await expectStatus(await send(text), 201);
    assert.equal(await page.nextPush(), text);
  });

  step('a message sent with the SDK (aes128gcm and aesgcm) reaches the service worker', async () => {
    const vapidDetails = { subject: 'mailto:e2e@example.com', publicKey: vapid.publicKey, privateKey: vapid.privateKey };
    for (const contentEncoding of ['aes128gcm', 'aesgcm'] as const) {
      const text = `sdk ${contentEncoding} ${Date.now()} ✓`;
      const result = await sendNotification(subscription, text, { vapidDetails, TTL: 600, contentEncoding });
      assert.equal(result.statusCode, 201);
      assert.equal(await page.nextPush(), text);
    }
  });

  step('a message sent while Firefox is closed arrives after a relaunch', async () => {
    await firefox?.close();
    const text = `stored message ${Date.now()}`;
    await expectStatus(await send(text), 201);
    firefox = launchFirefox(profileDir, page.pageUrl(vapid.publicKey));
    const report = await page.nextSubscription();
    assert.equal(report.existing, true, 'Firefox lost its subscription across the relaunch');
    assert.deepEqual(report.subscription, subscription);
    assert.equal(await page.nextPush(), text);
  });

  step('after the page unsubscribes, sending answers 410 Gone', async () => {
    assert.equal(await page.unsubscribe(), true);
    // Firefox resolves unsubscribe() without waiting for the server's reply to its unregister
    // frame, so webpushd may not have processed it yet: try again for a few seconds.
    const deadline = Date.now() + 10_000;
    let res = await send('after unsubscribe');
    while (res.status !== 410 && Date.now() < deadline) {
      console.log(`a send after unsubscribe answered ${res.status}; trying again`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      res = await send('after unsubscribe');
    }
    await expectStatus(res, 410);
  });

  after(async () => {
    const closed = await Promise.allSettled([firefox?.close(), page?.close(), server?.stop()]);
    const closeError = closed.find((r) => r.status === 'rejected')?.reason;
    // Fewer passes than steps also covers a step cancelled by the suite's timeout.
    if (passed < steps || closeError) printDiagnostics(server, firefox, page, profileDir);
    else for (const dir of [profileDir, server.dataDir]) rmSync(dir, { recursive: true, force: true });
    if (closeError) throw closeError;
  });
});

function printDiagnostics(server?: ServerProcess, firefox?: Firefox, page?: PushTestPage, profileDir?: string): void {
  const tail = (s: string) => s.slice(-DIAGNOSTIC_TAIL);
  console.error(`\n===== webpushd output (data dir ${server?.dataDir}) =====\n${tail(server?.output() ?? '')}`);
  console.error(`\n===== Firefox output (profile ${profileDir}) =====\n${tail(firefox?.output() ?? '')}`);
  console.error(`\n===== test page reports =====\n${page?.log() ?? ''}\n`);
}
