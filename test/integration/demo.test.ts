// The demo application server on the public port (src/web/demo.ts), without a browser: a
// PushUserAgent subscribes with the demo's VAPID key, POST /demo/send reaches it through the
// service; refusals have the push endpoint's JSON shape, count in /metrics, take the per-address
// rate limit; `demo: 'off'` removes it. The browser round trip is test/e2e/web-pages.test.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { PushUserAgent } from '../../src/ua/client.ts';
import { inbox } from '../helpers/inbox.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

interface ErrorBody {
  code: number;
  errno: number;
  message: string;
}

const servers: TestServer[] = [];
async function start(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer({ adminPort: 0, ...overrides });
  servers.push(server);
  return server;
}

after(async () => {
  for (const s of servers) {
    await s.close();
    rmSync(s.dataDir, { recursive: true, force: true });
  }
});

const post = (server: TestServer, body: string, contentType = 'application/json') =>
  fetch(`${server.url}/demo/send`, { method: 'POST', headers: { 'content-type': contentType }, body });

async function responses(server: TestServer, code: number): Promise<number> {
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  return Number(new RegExp(`^webpushd_http_responses_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

describe('demo application server', () => {
  let server: TestServer;
  let client: PushUserAgent;

  before(async () => {
    server = await start();
    client = await PushUserAgent.open({ server: server.url });
  });
  after(() => client?.close());

  test('sends the text to a subscription made with its VAPID key; the user agent decrypts it', async () => {
    const key = (await (await fetch(`${server.url}/demo/key`)).json()) as { publicKey: string; endpointPrefix: string };
    assert.equal(key.endpointPrefix, `${server.url}/wpush/`);
    const messages = inbox(client);
    const subscription = await client.subscribe({ vapidKey: key.publicKey });
    const res = await post(server, JSON.stringify({ subscription, text: 'demo says hi' }));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 201 });
    assert.equal((await messages.next()).text, 'demo says hi');
  });

  test('refusals: autopush-shaped JSON with errno 125 (or the shared ones), counted in /metrics', async () => {
    const before400 = await responses(server, 400);
    const keys = { p256dh: 'x', auth: 'y' };
    for (const endpoint of ['https://push.example/wpush/v1/abc', `${server.url}.evil.example/wpush/v1/abc`, `${server.url}/other`]) {
      const res = await post(server, JSON.stringify({ subscription: { endpoint, keys }, text: 'hi' }));
      assert.equal(res.status, 400, endpoint);
      const body = (await res.json()) as ErrorBody;
      assert.equal(body.errno, 125);
      assert.match(body.message, /Only endpoints of this push service/);
    }
    assert.equal((await post(server, '{')).status, 400);
    assert.equal(await responses(server, 400), before400 + 4);

    const unsupported = await post(server, '{}', 'text/plain');
    assert.equal(unsupported.status, 415);
    assert.equal(((await unsupported.json()) as ErrorBody).errno, 125);
    const big = await post(server, JSON.stringify({ subscription: { endpoint: `${server.url}/wpush/v1/a`, keys }, text: 'x'.repeat(5000) }));
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as ErrorBody).errno, 104);
    const get = await fetch(`${server.url}/demo/send`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal((await fetch(`${server.url}/demo/nothing`)).status, 404);
    const redirect = await fetch(`${server.url}/demo`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/demo/');
  });
});

test('POST /demo/send takes the per-address rate limit: 429 with Retry-After and errno 124', async () => {
  const server = await start({ rateLimitAddress: 1, rateLimitAddressBurst: 1, loopbackLimits: 'limited' });
  const body = JSON.stringify({ subscription: { endpoint: 'https://push.example/wpush/v1/a', keys: { p256dh: 'x', auth: 'y' } } });
  assert.equal((await post(server, body)).status, 400);
  const limited = await post(server, body);
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  assert.equal(((await limited.json()) as ErrorBody).errno, 124);
  // the pages themselves are not sends: still served
  assert.equal((await fetch(`${server.url}/demo/`)).status, 200);
});

test("demo: 'off' serves no /demo on the public port", async () => {
  const server = await start({ demo: 'off' });
  for (const path of ['/demo', '/demo/', '/demo/key', '/demo/sw.js']) {
    const res = await fetch(`${server.url}${path}`, { redirect: 'manual' });
    assert.equal(res.status, 404, path);
    assert.equal(((await res.json()) as ErrorBody).errno, 404);
  }
  assert.equal((await post(server, '{}')).status, 404);
});
