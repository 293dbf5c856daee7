// The demo page in a Firefox set up as the README tells a person: its profile has only the two
// push prefs (no dom.push.testing.ignorePermission, no notification permission granted ahead), so
// the page must ask, from a click on Subscribe, and the test answers Firefox's permission prompt
// in the browser's chrome, as a person clicks it. Then a message sent through the demo arrives,
// and each way subscribing fails shows its message: notifications blocked, an endpoint of another
// push service (with the exact dom.push.serverURL), push disabled.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, describe, it, type TestContext } from 'node:test';
import {
  answerNotificationPrompt,
  createProfile,
  FIREFOX_BIN,
  launchFirefox,
  marionette,
  notificationPromptOpen,
  type Firefox,
  type PageReader,
} from '../helpers/firefox.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

const skip = skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`);

interface Demo {
  state: string;
  /** The problem box's title, null while hidden. */
  problem: string | null;
  text: string;
  prefs: string;
  log: { kind: string; text: string }[];
  subscription: string;
  permission: string;
  buttons: { subscribe: boolean; unsubscribe: boolean; send: boolean };
}

const READ_DEMO = `return {
  state: document.getElementById('state').textContent,
  problem: document.getElementById('problem').hidden ? null : document.getElementById('problem-title').textContent,
  text: document.getElementById('problem-text').textContent,
  prefs: document.getElementById('problem-prefs').hidden ? '' : document.getElementById('problem-prefs').textContent,
  log: [...document.querySelectorAll('#log li')].map((li) => ({ kind: li.className, text: li.textContent.replace(/^.*?  \\S+ +/, '') })),
  subscription: document.getElementById('subscription').textContent,
  permission: Notification.permission,
  buttons: Object.fromEntries(['subscribe', 'unsubscribe', 'send'].map((id) => [id, !document.getElementById(id).disabled])),
};`;

describe('the demo page in a Firefox set up as the README says', { skip, timeout: 180_000 }, () => {
  let server: ServerProcess;
  let other: TestServer;
  let firefox: Firefox | undefined;
  let page: PageReader;
  let profile = '';
  let subscription: { endpoint: string; keys: { p256dh: string; auth: string } } | undefined;
  let failed = false;

  const read = () => page.execute<Demo>(READ_DEMO);
  /** Reads the page until `match` holds; fails naming `what`, with what the page shows. */
  async function shows(what: string, match: (d: Demo) => boolean, ms = 30_000): Promise<Demo> {
    let last: Demo | undefined;
    await until(async () => match((last = await read())), what, ms).catch((err: Error) => {
      throw new Error(`${err.message}; the page shows ${JSON.stringify(last, null, 1)}`);
    });
    return last!;
  }
  const ready = () => shows('Subscribe enabled', (d) => d.buttons.subscribe === true);
  // the person's side of the permission, as the address bar's site panel stores it
  const permissions = (call: string) =>
    page.chrome(`const p = Services.scriptSecurityManager.createContentPrincipalFromOrigin(${JSON.stringify(server.url)}); ${call}`);

  // Each step builds on the previous ones: after a failure the rest are skipped, not failed again.
  function step(name: string, fn: () => Promise<void>): void {
    it(name, async (t: TestContext) => {
      if (failed) return t.skip('an earlier step failed');
      try {
        await fn();
      } catch (err) {
        failed = true;
        console.error(`===== page =====\n${JSON.stringify(await read().catch(() => null), null, 1)}`);
        console.error(`===== webpushd =====\n${server?.output().slice(-5000)}\n===== Firefox =====\n${firefox?.output().slice(-5000)}`);
        throw err;
      }
    });
  }

  after(async () => {
    page?.close();
    await Promise.allSettled([firefox?.close(), server?.stop(), other?.close()]);
    if (!failed) for (const dir of [profile, server?.dataDir, other?.dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  step('on load the page asks for nothing and offers Subscribe', async () => {
    server = await startServerProcess();
    other = await startTestServer();
    profile = createProfile({ serverUrl: `ws://127.0.0.1:${server.port}/`, readmeOnly: true, marionette: true });
    firefox = launchFirefox(profile, `${server.url}/demo/`, { marionette: true });
    page = await marionette(profile);
    const demo = await ready();
    assert.equal(demo.state, 'not subscribed: click Subscribe');
    assert.equal(demo.permission, 'default');
    assert.equal(demo.problem, null);
    assert.equal(await notificationPromptOpen(page), false);
  });

  step('Subscribe, then "Always Block" in the prompt: the page says how to allow it from the address bar', async () => {
    await page.click('#subscribe');
    await answerNotificationPrompt(page, 'block');
    const demo = await shows('the blocked message', (d) => d.problem !== null);
    assert.equal(demo.problem, 'Notifications are blocked for this site');
    assert.match(demo.text, /address bar: click the icon just left of the address/);
    assert.equal(demo.permission, 'denied');
    assert.equal(demo.buttons.subscribe, true, 'Subscribe can be clicked again');
  });

  step('with the block cleared, Subscribe and "Allow": subscribed through this service', async () => {
    await permissions("SitePermissions.removeFromPrincipal(p, 'desktop-notification', gBrowser.selectedBrowser);");
    await page.click('#subscribe');
    await answerNotificationPrompt(page, 'allow');
    const demo = await shows('the subscription', (d) => d.state !== 'subscribing… (allow notifications when the browser asks)' && d.buttons.unsubscribe);
    assert.equal(demo.state, 'subscribed through this service', JSON.stringify(demo.log));
    assert.equal(demo.permission, 'granted');
    assert.equal(demo.problem, null, 'the earlier message is gone');
    subscription = JSON.parse(demo.subscription) as typeof subscription & object;
    assert.ok(subscription.endpoint.startsWith(`${server.url}/wpush/v2/`), subscription.endpoint);
  });

  step('Send test notification: the message arrives in the service worker and the page logs it', async () => {
    await page.click('#send');
    await shows('the push in the log', (d) => d.log.some((l) => l.kind === 'push'));
    const demo = await read();
    assert.ok(demo.log.some((l) => l.kind === 'sent'), JSON.stringify(demo.log));
    assert.equal(demo.log.find((l) => l.kind === 'push')!.text, 'received: "Hello from webpushd!"');
  });

  step('Unsubscribe: the push service answers 410 for that endpoint', async () => {
    await page.click('#unsubscribe');
    await shows('unsubscribed', (d) => d.state === 'not subscribed: click Subscribe' && d.buttons.subscribe);
    // Firefox resolves unsubscribe() before the service has read its unregister frame
    let answer = '';
    await until(async () => {
      const res = await fetch(`${server.url}/demo/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subscription, text: 'gone?' }),
      });
      answer = await res.text();
      return res.status === 502 && answer.includes('410');
    }, `a send answered 410 (last: ${answer})`);
  });

  step('subscribed through another push service: the page names the exact dom.push.serverURL', async () => {
    // what a person gets with dom.push.serverURL naming another service
    await page.chrome(`Services.prefs.setStringPref('dom.push.serverURL', ${JSON.stringify(other.wsUrl)});`);
    await page.click('#subscribe');
    const demo = await shows('the other-service message', (d) => d.problem !== null);
    assert.equal(demo.problem, 'This subscription is not on this push service');
    assert.equal(demo.state, 'subscribed, but through another push service');
    const wanted = `ws://127.0.0.1:${server.port}/`;
    assert.equal(demo.prefs, `dom.push.serverURL = ${wanted}\ndom.push.testing.allowInsecureServerURL = true`);
    // the same value as the server's start line
    assert.ok(server.output().includes(`dom.push.serverURL = ${wanted} `), 'the start line names the same dom.push.serverURL');
    assert.equal(demo.buttons.send, false, 'nothing to send to');
  });

  step('push disabled: the page says which pref turns it on', async () => {
    await page.chrome("Services.prefs.setBoolPref('dom.push.enabled', false);");
    await page.refresh();
    const demo = await shows('the disabled message', (d) => d.problem !== null);
    assert.equal(demo.problem, 'Push is disabled in this browser');
    assert.match(demo.text, /dom\.push\.enabled/);
  });
});
