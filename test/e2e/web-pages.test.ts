// The web pages in a real browser (headless Firefox): the admin dashboard renders live numbers
// that rise as traffic arrives, and the demo page on the public port makes a full push round
// trip (subscribe through webpushd, POST /demo/send, the service worker posts the text back to
// the page's log). The test reads what the pages show through Marionette (the pages themselves
// send nothing anywhere but to their own origin).
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createProfile, FIREFOX_BIN, launchFirefox, marionette, type Firefox, type PageReader } from '../helpers/firefox.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { until } from '../helpers/wait.ts';

const skip = skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`);

type Report = Record<string, unknown>;

/** The demo page's log lines and subscription, as shown. */
const DEMO_STATE = `return {
  log: [...document.querySelectorAll('#log li')].map((li) => ({ kind: li.className, text: li.textContent.replace(/^.*?  \\S+ +/, '') })),
  subscription: document.getElementById('subscription').textContent,
};`;

/** The dashboard's numbers, as shown. */
const DASHBOARD_STATE = `return {
  accepted: document.getElementById('msg-accepted').textContent,
  delivered: document.getElementById('msg-delivered').textContent,
  responses: Object.fromEntries([...document.querySelectorAll('[id^="code-"]')].map((el) => [el.id.slice(5), el.textContent])),
  points: document.getElementById('chart').dataset.points ?? '0',
  status: document.getElementById('status').textContent,
};`;

/** Reads the page with `script` until `match` finds something in what it shows. */
async function waitFor<T>(page: PageReader, script: string, what: string, match: (shown: Report) => T | undefined, ms = 60_000): Promise<T> {
  let found: T | undefined;
  let shown: Report = {};
  await until(async () => {
    shown = await page.execute<Report>(script);
    found = match(shown);
    return found !== undefined;
  }, what, ms).catch((err: Error) => {
    throw new Error(`${err.message}; the page shows:\n${JSON.stringify(shown, null, 1).slice(-4000)}`);
  });
  return found!;
}

/** The first line of the demo page's log that `match` takes. */
const logLine = (page: PageReader, what: string, match: (line: { kind: string; text: string }) => boolean) =>
  waitFor(page, DEMO_STATE, what, (shown) => (shown.log as { kind: string; text: string }[]).find(match));

const count = (s: unknown) => Number(String(s ?? '0').replace(/,/g, ''));

describe('web pages in headless Firefox', { skip, timeout: 180_000 }, () => {
  let server: TestServer;
  const browsers: Firefox[] = [];
  const pages: PageReader[] = [];
  const profiles: string[] = [];
  let subscription: unknown;
  let demo: PageReader;

  before(async () => {
    server = await startTestServer({ adminPort: 0 });
  });

  after(async () => {
    for (const page of pages) page.close();
    await Promise.allSettled(browsers.map((b) => b.close()));
    await server?.close();
    for (const dir of [...profiles, server?.dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(url: string): Promise<{ firefox: Firefox; page: PageReader }> {
    const profile = createProfile({ serverUrl: server.wsUrl, marionette: true });
    profiles.push(profile);
    const firefox = launchFirefox(profile, url, { marionette: true });
    browsers.push(firefox);
    const page = await marionette(profile);
    pages.push(page);
    return { firefox, page };
  }

  it('the demo page subscribes on a click, sends a test notification and logs its arrival', async () => {
    const { firefox, page } = await open(`${server.url}/demo/?autosend=1`);
    demo = page;
    try {
      // the page subscribes on a click only (this profile has the notification permission already)
      await until(() => page.execute<boolean>("return !document.getElementById('subscribe').disabled"), 'Subscribe enabled', 30_000);
      await page.click('#subscribe');
      const subscribed = await logLine(page, 'subscription', (l) => l.kind === 'subscribed' || l.kind === 'error');
      assert.equal(subscribed.kind, 'subscribed', subscribed.text);
      subscription = JSON.parse(String((await page.execute<Report>(DEMO_STATE)).subscription));
      assert.ok(String((subscription as { endpoint: string }).endpoint).startsWith(`${server.url}/wpush/`));
      await logLine(page, 'accepted send', (l) => l.kind === 'sent');
      const push = await logLine(page, 'push in the page log', (l) => l.kind === 'push');
      assert.equal(push.text, 'received: "Hello from webpushd!"');
    } catch (err) {
      console.error(firefox.output().slice(-5000));
      throw err;
    }
  });

  it('the dashboard renders live numbers that rise with traffic', async () => {
    const { firefox, page } = await open(`${server.adminUrl}/dashboard`);
    const shown = (what: string, match: (r: Report) => boolean) => waitFor(page, DASHBOARD_STATE, what, (r) => (match(r) ? r : undefined));
    try {
      const first = await shown('rendered dashboard', (r) => /^live/.test(String(r.status)));
      assert.ok(count(first.accepted) >= 1, `accepted ${String(first.accepted)} after the demo's message`);
      const before = count((await page.execute<Report>(DASHBOARD_STATE)).accepted);
      // traffic: refused sends (404) and one more demo message
      for (let i = 0; i < 3; i++) await (await fetch(`${server.url}/wpush/v1/nonsense`, { method: 'POST' })).arrayBuffer();
      await shown('404 responses shown', (r) => count((r.responses as Record<string, string>)?.['404']) >= 3);
      // the rising count needs the demo page's subscription, from the test before
      assert.ok(subscription, 'the demo page reported no subscription');
      const res = await fetch(`${server.url}/demo/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subscription, text: 'dashboard tick' }),
      });
      assert.equal(res.status, 200, await res.text());
      await shown('accepted count rising', (r) => count(r.accepted) > before);
      await logLine(demo, 'second push', (l) => l.kind === 'push' && l.text === 'received: "dashboard tick"');
      const later = await shown('chart history', (r) => Number(r.points) >= 2);
      assert.ok(Number(later.points) >= 2);
    } catch (err) {
      console.error(firefox.output().slice(-5000));
      throw err;
    }
  });
});
