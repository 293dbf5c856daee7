// Interoperability: the `web-push` npm library, an independent application server, sends over
// HTTPS to webpushd (self-signed test certificate); a user agent connected over wss decrypts
// what arrives with `http_ece` (an independent RFC 8188/8291 implementation).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID, type ECDH } from 'node:crypto';
import https from 'node:https';
import webpush from 'web-push';
import { createSubscriberKeys, decryptWithHttpEce, type ContentEncoding } from '../helpers/decrypt.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

/** A user agent's subscription as a browser would hand it to the application server. */
interface Receiver {
  channelID: string;
  ecdh: ECDH;
  subscription: webpush.PushSubscription;
}

let cert: TestCertificate;
let agent: https.Agent;
let server: TestServer;
let ua: TestUserAgent;
const vapidKeys = webpush.generateVAPIDKeys();
const SUBJECT = 'mailto:interop@example.com';

before(async () => {
  cert = createTestCertificate();
  agent = new https.Agent({ ca: cert.cert });
  server = await startTestServer({ tlsCert: cert.certFile, tlsKey: cert.keyFile });
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(server.wsUrl, /^wss:\/\//);
  ua = await TestUserAgent.connect(server.wsUrl, 'push-notification', { ca: cert.cert });
  await ua.hello();
});

after(async () => {
  if (ua && ua.ws.readyState === ua.ws.OPEN) await ua.close();
  agent?.destroy();
  await server?.close();
  cert?.remove();
});

/** Registers a channel (restricted to `key` when given) with a fresh P-256 key pair and auth secret. */
async function subscribe(key?: string): Promise<Receiver> {
  const channelID = randomUUID();
  const reply = await ua.register(channelID, key);
  assert.equal(reply.status, 200);
  const endpoint = reply.pushEndpoint as string;
  assert.ok(endpoint.startsWith(`${server.url}/wpush/${key ? 'v2' : 'v1'}/`), endpoint);
  const { ecdh, keys } = createSubscriberKeys();
  return { channelID, ecdh, subscription: { endpoint, keys } };
}

/** Waits for the receiver's notification, acknowledges it and returns the decrypted text. */
async function receive(r: Receiver, encoding: ContentEncoding, bodyBytes?: number): Promise<string> {
  const n = await ua.next('notification');
  ua.ack(n.channelID as string, n.version as string);
  assert.equal(n.channelID, r.channelID);
  assert.equal(typeof n.data, 'string');
  assert.match(n.data as string, /^[A-Za-z0-9_-]+$/, 'data is base64url without padding');
  if (bodyBytes !== undefined) assert.equal(Buffer.from(n.data as string, 'base64url').length, bodyBytes);
  const headers = n.headers as Record<string, string>;
  assert.equal(headers.encoding, encoding);
  if (encoding === 'aes128gcm') {
    assert.deepEqual(Object.keys(headers), ['encoding'], 'aes128gcm carries its salt and key in the body');
  }
  const body = Buffer.from(n.data as string, 'base64url');
  const encryption = { encryption: headers.encryption, cryptoKey: headers.crypto_key };
  return decryptWithHttpEce(body, encoding, r.ecdh, r.subscription.keys.auth, encryption).toString('utf8');
}

function options(encoding: ContentEncoding, vapid: { publicKey: string; privateKey: string } | null): webpush.RequestOptions {
  return {
    TTL: 60,
    contentEncoding: encoding,
    agent,
    ...(vapid ? { vapidDetails: { subject: SUBJECT, publicKey: vapid.publicKey, privateKey: vapid.privateKey } } : {}),
  };
}

async function sendAndReceive(
  r: Receiver,
  text: string,
  encoding: ContentEncoding,
  vapid: boolean,
  bodyBytes?: number,
): Promise<void> {
  const result = await webpush.sendNotification(r.subscription, text, options(encoding, vapid ? vapidKeys : null));
  assert.equal(result.statusCode, 201);
  assert.equal(result.body, '');
  assert.ok(String(result.headers.location).startsWith(`${server.url}/m/`), String(result.headers.location));
  assert.equal(result.headers.ttl, '60');
  assert.equal(await receive(r, encoding, bodyBytes), text);
}

const TEXT = 'Hello from web-push: ünïcödé ✓ 🚀 "quotes" & <tags>\n';

describe('web-push -> webpushd (HTTPS) -> user agent (wss), decrypted with http_ece', () => {
  test('aes128gcm with VAPID, restricted (v2) subscription', async () => {
    const r = await subscribe(vapidKeys.publicKey);
    await sendAndReceive(r, TEXT, 'aes128gcm', true);
    await sendAndReceive(r, 'second message', 'aes128gcm', true); // a reused VAPID token
  });

  test('aes128gcm without VAPID, unrestricted (v1) subscription', async () => {
    const r = await subscribe();
    await sendAndReceive(r, TEXT, 'aes128gcm', false);
  });

  test('aesgcm with VAPID (WebPush + Crypto-Key: p256ecdsa), restricted (v2) subscription', async () => {
    const r = await subscribe(vapidKeys.publicKey);
    await sendAndReceive(r, TEXT, 'aesgcm', true);
  });

  test('aesgcm without VAPID, unrestricted (v1) subscription', async () => {
    const r = await subscribe();
    await sendAndReceive(r, TEXT, 'aesgcm', false);
  });

  test('VAPID on an unrestricted (v1) subscription is accepted', async () => {
    const r = await subscribe();
    await sendAndReceive(r, TEXT, 'aes128gcm', true);
    await sendAndReceive(r, TEXT, 'aesgcm', true);
  });

  test('the largest payload that fits a 4096-byte aes128gcm body', async () => {
    const r = await subscribe(vapidKeys.publicKey);
    // 86 bytes of header (salt, rs, idlen, key) + payload + 1 delimiter + 16 tag = 4096
    const text = 'x'.repeat(4096 - 86 - 17);
    await sendAndReceive(r, text, 'aes128gcm', true, 4096);
  });

  test('an empty message (no payload) arrives without data', async () => {
    const r = await subscribe();
    const result = await webpush.sendNotification(r.subscription, null, options('aes128gcm', null));
    assert.equal(result.statusCode, 201);
    const n = await ua.next('notification');
    ua.ack(n.channelID as string, n.version as string);
    assert.equal(n.channelID, r.channelID);
    assert.equal(n.data, undefined);
  });

  test('after the user agent unregisters: WebPushError with statusCode 410', async () => {
    for (const [restricted, encoding] of [
      [false, 'aes128gcm'],
      [true, 'aesgcm'],
    ] as const) {
      const r = await subscribe(restricted ? vapidKeys.publicKey : undefined);
      await sendAndReceive(r, 'before', encoding, restricted);
      ua.send({ messageType: 'unregister', channelID: r.channelID, code: 200 });
      assert.equal((await ua.next('unregister')).status, 200);
      await assert.rejects(
        webpush.sendNotification(r.subscription, 'after', options(encoding, restricted ? vapidKeys : null)),
        (err: unknown) => {
          assert.ok(err instanceof webpush.WebPushError, String(err));
          assert.equal(err.statusCode, 410);
          assert.equal(err.headers['cache-control'], 'max-age=86400');
          assert.equal(err.endpoint, r.subscription.endpoint);
          const body = JSON.parse(err.body) as Record<string, unknown>;
          assert.equal(body.code, 410);
          assert.equal(body.errno, 106);
          return true;
        },
      );
    }
  });

  test('a wrong VAPID key on a restricted (v2) subscription: WebPushError with statusCode 403', async () => {
    const r = await subscribe(vapidKeys.publicKey);
    const wrong = webpush.generateVAPIDKeys();
    for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
      await assert.rejects(webpush.sendNotification(r.subscription, 'nope', options(encoding, wrong)), (err: unknown) => {
        assert.ok(err instanceof webpush.WebPushError, String(err));
        assert.equal(err.statusCode, 403, `${encoding}: ${err.body}`);
        const body = JSON.parse(err.body) as Record<string, unknown>;
        assert.equal(body.code, 403);
        assert.equal(body.errno, 109);
        return true;
      });
    }
    // without VAPID at all: 401
    await assert.rejects(webpush.sendNotification(r.subscription, 'nope', options('aes128gcm', null)), (err: unknown) => {
      assert.ok(err instanceof webpush.WebPushError, String(err));
      assert.equal(err.statusCode, 401);
      return true;
    });
    // nothing was delivered; the right key still works
    await sendAndReceive(r, 'right key', 'aes128gcm', true);
  });
});
