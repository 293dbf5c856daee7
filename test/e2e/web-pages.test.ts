// The web pages in a real browser (headless Firefox): the admin dashboard renders live numbers
// that rise as traffic arrives, and the demo page on the public port makes a full push round
// trip (subscribe through webpushd, POST /demo/send, the service worker posts the text back to
// the page's log). The pages report what they render to a small collector server through their
// `?report=` hook (loopback only).
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createProfile, FIREFOX_BIN, launchFirefox, type Firefox } from '../helpers/firefox.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const skip = skipUnlessInstalled(existsSync(FIREFOX_BIN), `${FIREFOX_BIN} is missing (apt-get install firefox-esr)`);

type Report = Record<string, unknown>;

/** Collects what the pages send to /CHANNEL; waitFor() polls until a report matches. */
async function startCollector() {
  const reports = new Map<string, Report[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const channel = (req.url ?? '/').slice(1);
      try {
        const list = reports.get(channel) ?? reports.set(channel, []).get(channel)!;
        list.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Report);
      } catch {
        // not JSON: ignored
      }
      res.writeHead(204, { 'access-control-allow-origin': '*' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: (channel: string) => `${origin}/${channel}`,
    all: (channel: string) => reports.get(channel) ?? [],
    async waitFor(channel: string, what: string, match: (r: Report) => boolean, ms = 60_000): Promise<Report> {
      const deadline = Date.now() + ms;
      for (;;) {
        const found = (reports.get(channel) ?? []).find(match);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(`no ${what} within ${ms} ms; ${channel} reports:\n${JSON.stringify(reports.get(channel) ?? [], null, 1).slice(-4000)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const count = (s: unknown) => Number(String(s ?? '0').replace(/,/g, ''));

describe('web pages in headless Firefox', { skip, timeout: 180_000 }, () => {
  let server: TestServer;
  let collector: Awaited<ReturnType<typeof startCollector>>;
  const browsers: Firefox[] = [];
  const profiles: string[] = [];
  let subscription: unknown;

  before(async () => {
    server = await startTestServer({ adminPort: 0 });
    collector = await startCollector();
  });

  after(async () => {
    await Promise.allSettled(browsers.map((b) => b.close()));
    await collector?.close();
    await server?.close();
    for (const dir of [...profiles, server?.dataDir]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function open(url: string): Firefox {
    const profile = createProfile({ serverUrl: server.wsUrl });
    profiles.push(profile);
    const firefox = launchFirefox(profile, url);
    browsers.push(firefox);
    return firefox;
  }

  it('the demo page subscribes, sends a test notification and logs its arrival', async () => {
    const firefox = open(`${server.url}/demo/?autosend=1&report=${encodeURIComponent(collector.url('demo'))}`);
    try {
      const subscribed = await collector.waitFor('demo', 'subscription', (r) => r.kind === 'subscribed' || r.kind === 'error');
      assert.equal(subscribed.kind, 'subscribed', JSON.stringify(collector.all('demo')));
      subscription = subscribed.subscription;
      assert.ok(String((subscription as { endpoint: string }).endpoint).startsWith(`${server.url}/wpush/`));
      await collector.waitFor('demo', 'accepted send', (r) => r.kind === 'sent');
      const push = await collector.waitFor('demo', 'push in the page log', (r) => r.kind === 'push');
      assert.equal(push.text, 'received: "Hello from webpushd!"');
      assert.equal(push.shown, true);
    } catch (err) {
      console.error(firefox.output().slice(-5000));
      throw err;
    }
  });

  it('the dashboard renders live numbers that rise with traffic', async () => {
    const firefox = open(`${server.adminUrl}/dashboard?report=${encodeURIComponent(collector.url('dashboard'))}`);
    try {
      const first = await collector.waitFor('dashboard', 'rendered dashboard', () => true);
      assert.ok(count(first.accepted) >= 1, `accepted ${String(first.accepted)} after the demo's message`);
      assert.match(String(first.status), /^live/);
      const before = count(collector.all('dashboard').at(-1)!.accepted);
      // traffic: refused sends (404) and one more demo message
      for (let i = 0; i < 3; i++) await (await fetch(`${server.url}/wpush/v1/nonsense`, { method: 'POST' })).arrayBuffer();
      await collector.waitFor('dashboard', '404 responses shown', (r) => count((r.responses as Record<string, string>)?.['404']) >= 3);
      // the rising count needs the demo page's subscription, from the test before
      assert.ok(subscription, 'the demo page reported no subscription');
      const res = await fetch(`${server.url}/demo/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subscription, text: 'dashboard tick' }),
      });
      assert.equal(res.status, 200, await res.text());
      await collector.waitFor('dashboard', 'accepted count rising', (r) => count(r.accepted) > before);
      await collector.waitFor('demo', 'second push', (r) => r.kind === 'push' && r.text === 'received: "dashboard tick"');
      const later = await collector.waitFor('dashboard', 'chart history', (r) => Number(r.points) >= 2);
      assert.ok(Number(later.points) >= 2);
    } catch (err) {
      console.error(firefox.output().slice(-5000));
      throw err;
    }
  });
});
