// Interoperability: the SDK sends to `web-push-testing`, an independent mock push service that
// checks the VAPID token against the subscription's applicationServerKey, decrypts the message
// (with http_ece) and lets us read back what it received.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import {
  PushClient,
  SubscriptionGoneError,
  WebPushError,
  generateVAPIDKeys,
  type PushSubscription,
  type RequestOptions,
} from '../../src/index.ts';
import { freePort } from '../helpers/net.ts';

interface TestingServer {
  startServer(): void;
  _server: { close(cb: () => void): void; closeAllConnections(): void; once(e: string, cb: () => void): void };
}
// web-push-testing is CommonJS without type declarations; its CLI only starts detached daemons,
// so the server class is used directly, in process.
const require = createRequire(import.meta.url);
const TestingServer = require('web-push-testing/src/server.js') as new (model: unknown, port: number) => TestingServer;
const { PushApiModel } = require('web-push-testing/src/PushApiModel.js') as { PushApiModel: new () => unknown };

type Subscription = PushSubscription & { clientHash: string };

let base: string;
let service: TestingServer;
const client = new PushClient();
const vapidKeys = generateVAPIDKeys();
const vapidDetails = { subject: 'mailto:sdk@example.com', ...vapidKeys };

before(async () => {
  const port = await freePort();
  base = `http://localhost:${port}`;
  const log = console.log;
  console.log = () => {}; // "Server running on port ..."
  try {
    service = new TestingServer(new PushApiModel(), port);
    service.startServer();
    // (listening is set at once; the 'listening' event and its log line follow on the next tick)
    await new Promise<void>((resolve) => service._server.once('listening', resolve));
  } finally {
    console.log = log;
  }
});

after(async () => {
  await client.close();
  service._server.closeAllConnections();
  await new Promise<void>((resolve) => service._server.close(resolve));
});

async function api(path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: res.headers.get('content-type')?.startsWith('application/json') ? (JSON.parse(text) as unknown) : text };
}

async function subscribe(applicationServerKey?: string): Promise<Subscription> {
  const res = await api('/subscribe', { userVisibleOnly: 'true', ...(applicationServerKey ? { applicationServerKey } : {}) });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const sub = (res.json as { data: Subscription }).data;
  assert.ok(sub.endpoint.startsWith(`${base}/notify/`), sub.endpoint);
  return sub;
}

async function received(sub: Subscription): Promise<string[]> {
  const res = await api('/get-notifications', { clientHash: sub.clientHash });
  assert.equal(res.status, 200);
  return (res.json as { data: { messages: string[] } }).data.messages;
}

describe('SDK -> web-push-testing', () => {
  for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
    for (const vapid of [true, false]) {
      test(`${encoding} ${vapid ? 'with VAPID (checked against applicationServerKey)' : 'without VAPID'}`, async () => {
        const sub = await subscribe(vapid ? vapidKeys.publicKey : undefined);
        const options: RequestOptions = { TTL: 60, contentEncoding: encoding, ...(vapid ? { vapidDetails } : {}) };
        const texts = ['first ✓', 'second: ünïcödé 🚀'];
        for (const text of texts) {
          const result = await client.sendNotification(sub, text, options);
          assert.equal(result.statusCode, 201);
        }
        assert.deepEqual(await received(sub), texts);
      });
    }
  }

  test('a VAPID key other than the applicationServerKey: WebPushError 400, nothing stored', async () => {
    const sub = await subscribe(vapidKeys.publicKey);
    const other = { ...vapidDetails, ...generateVAPIDKeys() };
    const errorLog = console.error;
    console.error = () => {}; // web-push-testing logs the rejected token
    try {
      for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
        await assert.rejects(client.sendNotification(sub, 'nope', { vapidDetails: other, contentEncoding: encoding }), (err: unknown) => {
          assert.ok(err instanceof WebPushError, String(err));
          assert.ok(!(err instanceof SubscriptionGoneError));
          assert.equal(err.statusCode, 400);
          assert.equal(err.attempts, 1);
          assert.match(err.body, /Invalid (Crypto-Key header sent|authentication token supplied)/);
          return true;
        });
      }
    } finally {
      console.error = errorLog;
    }
    assert.deepEqual(await received(sub), []);
  });

  test('a restricted subscription without VAPID: WebPushError 400', async () => {
    const sub = await subscribe(vapidKeys.publicKey);
    await assert.rejects(client.sendNotification(sub, 'nope'), { name: 'WebPushError', statusCode: 400 });
  });

  test('an expired subscription: SubscriptionGoneError 410', async () => {
    const sub = await subscribe(vapidKeys.publicKey);
    await client.sendNotification(sub, 'before', { vapidDetails });
    assert.equal((await api(`/expire-subscription/${sub.clientHash}`, {})).status, 200);
    await assert.rejects(client.sendNotification(sub, 'after', { vapidDetails }), (err: unknown) => {
      assert.ok(err instanceof SubscriptionGoneError, String(err));
      assert.equal(err.statusCode, 410);
      assert.equal(err.endpoint, sub.endpoint);
      assert.match(err.body, /unsubscribed or expired/);
      return true;
    });
    assert.deepEqual(await received(sub), ['before']);
  });
});
