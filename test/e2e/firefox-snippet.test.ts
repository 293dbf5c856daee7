// The README's snippet for one's own site ("Push notifications on your own site"), as written
// there: a little site serves its service worker and page, a Firefox with only the README's
// prefs clicks its button and answers the permission prompt, the site receives the subscription,
// the SDK sends to it, and Firefox hands the message to that site's service worker (seen in
// the browser's chrome as Firefox's push-message notification: headless Firefox shows none).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { generateVAPIDKeys, sendNotification, type PushSubscription } from '../../src/index.ts';
import { answerNotificationPrompt, createProfile, FIREFOX_BIN, launchFirefox, marionette } from '../helpers/firefox.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startTestServer } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

const skip = skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`);

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const SECTION = README.slice(README.indexOf('### Push notifications on your own site'));
const SW = /```js\n([\s\S]*?)```/.exec(SECTION)?.[1];
const PAGE = /```html\n([\s\S]*?)```/.exec(SECTION)?.[1];
const KEY_PLACEHOLDER = "'B…'";

test("the README's service worker and subscribe snippet receive a message in Firefox", { skip, timeout: 120_000 }, async () => {
  assert.ok(SW && PAGE?.includes(KEY_PLACEHOLDER), 'the README section has its js and html blocks');
  const vapid = generateVAPIDKeys();
  const subscriptions: PushSubscription[] = [];
  const site = createServer((req, res) => {
    if (req.url === '/sw.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(SW);
    if (req.method === 'POST' && req.url === '/api/push-subscriptions') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        subscriptions.push(JSON.parse(body) as PushSubscription);
        res.writeHead(201).end();
      });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE!.replace(KEY_PLACEHOLDER, JSON.stringify(vapid.publicKey)));
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const server = await startTestServer();
  const profile = createProfile({ serverUrl: server.wsUrl, readmeOnly: true, marionette: true });
  const firefox = launchFirefox(profile, `${origin}/`, { marionette: true });
  const page = await marionette(profile);
  try {
    // what Firefox hands to service workers, with the scope it is for and the decrypted text
    await page.chrome(`window.pushed = [];
      Services.obs.addObserver((message, _topic, scope) => window.pushed.push({ scope, text: message?.QueryInterface(Ci.nsIPushMessage).data?.text() }), 'push-message');`);
    // the button's listener is added once the snippet registered its service worker
    await until(() => page.execute<boolean>('return navigator.serviceWorker.getRegistration().then((r) => Boolean(r))'), 'the service worker registered', 30_000);
    await page.click('#notify');
    await answerNotificationPrompt(page, 'allow');
    await until(() => subscriptions.length > 0, 'the subscription posted to the site', 30_000);
    assert.ok(subscriptions[0]!.endpoint.startsWith(`${server.url}/wpush/v2/`), subscriptions[0]!.endpoint);
    const sent = await sendNotification(subscriptions[0]!, 'hello from the snippet', { vapidDetails: { subject: 'mailto:test@example.org', ...vapid } });
    assert.equal(sent.statusCode, 201);
    let pushed: { scope: string; text: string }[] = [];
    await until(async () => (pushed = await page.chrome<typeof pushed>('return window.pushed')).length > 0, 'the push in Firefox', 30_000);
    assert.deepEqual(pushed, [{ scope: `${origin}/`, text: 'hello from the snippet' }]);
  } catch (err) {
    console.error(firefox.output().slice(-5000));
    throw err;
  } finally {
    page.close();
    await firefox.close();
    await server.close();
    site.close();
    for (const dir of [profile, server.dataDir]) rmSync(dir, { recursive: true, force: true });
  }
});
