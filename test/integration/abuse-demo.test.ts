// Abuse of the demo on the public port (docs/SECURITY.md, "Limits"): POST /demo/send as a
// request forger that reaches other paths of the service (`…/wpush/../subscribe`), and the demo
// page's test hook that sent every log line, the subscription's keys too, to a URL its query
// named (loopback only, and its CSP let it).
import assert from 'node:assert/strict';
import { createECDH, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assertAlive, bystander, rssOf, type Bystander } from '../helpers/abuse.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';

/** Resident memory the attacks may add; they store nothing, so any real growth is a leak. */
const RSS_BOUND = 32 * 1024 * 1024;
/** A user agent's keys the demo can encrypt to: only the endpoint is wrong. */
const KEYS = { p256dh: createECDH('prime256v1').generateKeys('base64url'), auth: randomBytes(16).toString('base64url') };

describe('the demo under attack', { timeout: 60_000 }, () => {
  let server: ServerProcess;
  let other: Bystander;
  let rssBefore: number;

  before(async () => {
    server = await startServerProcess();
    other = await bystander(server.url);
    await other.check('before');
    rssBefore = rssOf(server.proc.pid!);
  });

  after(async () => {
    await other?.close();
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('/demo/send to a path that leaves /wpush/ once normalised: 400 errno 125, nothing requested', async () => {
    const forged = [
      `${server.url}/wpush/../subscribe`,
      `${server.url}/wpush/%2e%2e/subscribe`,
      `${server.url}/wpush/v1/./../../subscribe`,
      `${server.url}/wpush\\..\\demo/send`,
      `${server.url}/wpush/v1/..%2f..%2fsubscribe`,
      `${server.url}/wpush/v1/token?x=1`,
      `${server.url}/wpush/v1/token#fragment`,
      `http://user@127.0.0.1:${server.port}/wpush/v1/token`,
    ];
    for (const endpoint of forged) {
      const res = await fetch(`${server.url}/demo/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ subscription: { endpoint, keys: KEYS }, text: 'forged' }),
      });
      const body = (await res.json()) as { errno: number; message: string };
      assert.equal(res.status, 400, `${endpoint}: ${JSON.stringify(body)}`);
      assert.equal(body.errno, 125, endpoint);
      assert.match(body.message, /Only endpoints of this push service/, endpoint);
    }
    // the demo application server sent nothing: it logs each send it made
    assert.doesNotMatch(server.output(), /"msg":"demo notification (sent|refused)"/);
  });

  test('the demo page ships no hook that sends its log (the subscription\'s keys) elsewhere', async () => {
    const page = await fetch(`${server.url}/demo/`);
    await page.arrayBuffer();
    assert.match(page.headers.get('content-security-policy') ?? '', /connect-src 'self';/, 'the page may only fetch its own origin');
    const script = await (await fetch(`${server.url}/demo/demo.js`)).text();
    assert.doesNotMatch(script, /sendBeacon|report=|params\.get\('report'\)/);
  });

  test('the process lives, its memory stayed bounded, another user agent kept its service', async () => {
    assertAlive(server);
    assert.ok(rssOf(server.proc.pid!) - rssBefore < RSS_BOUND, 'resident memory stayed bounded');
    await other.check('after the attacks');
  });
});
