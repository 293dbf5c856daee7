// Oversized message headers (docs/SECURITY.md, "Limits"): `Encryption` and `Crypto-Key` are
// stored with an aesgcm message and forwarded to the user agent. Unbounded, a 4 kB message carried
// 16 kB of them over HTTP/1.1 (a 20 kB row), and over HTTP/2 the first request of a session, sent
// before the client acknowledged SETTINGS_MAX_HEADER_LIST_SIZE, carried 60 kB. Now each header is
// bounded (400 errno 110), what is stored of them past the 192 bytes a valid aesgcm needs counts
// with the body against --max-message-size (413 errno 104), and every HTTP/2 header list is held
// to --max-header-size (stream reset ENHANCE_YOUR_CALM), the first too.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import http2 from 'node:http2';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ENCRYPTION_HEADERS_ALLOWANCE, MAX_CRYPTO_KEY_HEADER, MAX_ENCRYPTION_HEADER } from '../../src/endpoint/push-headers.ts';
import { bystander, heapAfterGc, type Bystander } from '../helpers/abuse.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { within } from '../helpers/wait.ts';

const MAX_MESSAGE = 4096;
/** A stored message's body and headers together, at most. */
const MAX_STORED = MAX_MESSAGE + ENCRYPTION_HEADERS_ALLOWANCE;
/** What the attacks may add to the heap: nothing of theirs is kept in memory. */
const HEAP_BOUND = 16 * 1024 * 1024;
const salt = () => randomBytes(16).toString('base64url');
const dh = () => Buffer.concat([Buffer.of(4), randomBytes(64)]).toString('base64url');
/** An Encryption or Crypto-Key value of `length` bytes, or just the valid part when that is longer or too close to it. */
const padded = (valid: string, length: number) => (length < valid.length + 4 ? valid : `${valid};x=${'a'.repeat(length - valid.length - 3)}`);

interface Answer {
  status: number;
  errno?: number;
  message?: string;
}

describe('oversized Encryption and Crypto-Key headers', { timeout: 120_000 }, () => {
  let server: TestServer;
  let ua: TestUserAgent;
  let uaid: string;
  let endpoint: string;
  let other: Bystander;
  let heapBefore: number;

  before(async () => {
    // every send goes to one subscription: no per-subscription rate limit in the way
    server = await startTestServer({ rateLimitSubscription: 0 });
    ua = await TestUserAgent.connect(server.wsUrl);
    uaid = await ua.hello();
    endpoint = String((await ua.register('c0ffee00-0000-4000-8000-000000000000')).pushEndpoint);
    await ua.close();
    other = await bystander(server.url);
    await other.check('before');
    heapBefore = heapAfterGc();
  });

  after(async () => {
    await other?.close();
    await server?.close();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  async function send(o: { encryption: string; cryptoKey: string; body: number; ttl?: string }): Promise<Answer> {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { ttl: o.ttl ?? '0', 'content-encoding': 'aesgcm', encryption: o.encryption, 'crypto-key': o.cryptoKey },
      body: randomBytes(o.body),
    });
    const text = await res.text();
    return { status: res.status, ...(text ? (JSON.parse(text) as { errno: number; message: string }) : {}) };
  }

  test('HTTP/1.1: a 4 kB message with 12 kB of Encryption or Crypto-Key is refused 400 errno 110', async () => {
    const longEncryption = await send({ encryption: padded(`salt=${salt()}`, 12_000), cryptoKey: `dh=${dh()}`, body: 4000 });
    assert.equal(longEncryption.status, 400, JSON.stringify(longEncryption));
    assert.equal(longEncryption.errno, 110);
    assert.match(String(longEncryption.message), new RegExp(`Encryption header longer than ${MAX_ENCRYPTION_HEADER} bytes`));
    const longKey = await send({ encryption: `salt=${salt()}`, cryptoKey: padded(`dh=${dh()}`, 12_000), body: 4000 });
    assert.equal(longKey.status, 400, JSON.stringify(longKey));
    assert.equal(longKey.errno, 110);
    assert.match(String(longKey.message), new RegExp(`Crypto-Key header longer than ${MAX_CRYPTO_KEY_HEADER} bytes`));
  });

  test('any header and body sizes: accepted only within the bounds, body and headers together at most --max-message-size + 192', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 0, max: 700 }),
        fc.integer({ min: 18, max: MAX_MESSAGE }),
        async (encryptionLength, cryptoKeyLength, body) => {
          const encryption = padded(`salt=${salt()}`, encryptionLength);
          const cryptoKey = padded(`dh=${dh()}`, cryptoKeyLength);
          const a = await send({ encryption, cryptoKey, body });
          const headers = encryption.length + cryptoKey.length;
          if (encryption.length > MAX_ENCRYPTION_HEADER || cryptoKey.length > MAX_CRYPTO_KEY_HEADER) {
            assert.deepEqual([a.status, a.errno], [400, 110], JSON.stringify(a));
          } else if (body + headers > MAX_STORED) {
            assert.deepEqual([a.status, a.errno], [413, 104], JSON.stringify(a));
            assert.match(String(a.message), new RegExp(`the headers take ${headers}\\)`));
          } else {
            assert.equal(a.status, 201, JSON.stringify(a));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  test('stored: a message at the bounds is stored in at most --max-message-size + 192, headers included; one byte more is 413', async () => {
    const encryption = padded(`salt=${salt()}`, MAX_ENCRYPTION_HEADER);
    const cryptoKey = padded(`dh=${dh()}`, MAX_CRYPTO_KEY_HEADER);
    const fits = MAX_STORED - encryption.length - cryptoKey.length;
    for (let i = 0; i < 20; i++) assert.equal((await send({ encryption, cryptoKey, body: fits, ttl: '60' })).status, 201);
    const over = await send({ encryption, cryptoKey, body: fits + 1, ttl: '60' });
    assert.deepEqual([over.status, over.errno], [413, 104], JSON.stringify(over));
    const stored = await server.store.pendingMessages(Buffer.from(uaid, 'hex'), 0, 100);
    assert.equal(stored.length, 20);
    for (const m of stored) {
      const size = m.body.length + Buffer.byteLength(m.headers?.encryption ?? '') + Buffer.byteLength(m.headers?.cryptoKey ?? '');
      assert.ok(size <= MAX_STORED, `a row of ${size} bytes`);
    }
  });

  test('HTTP/2: the first request of a session, before SETTINGS are acknowledged, with a 60 kB header is reset ENHANCE_YOUR_CALM', async () => {
    const session = http2.connect(server.url);
    session.on('error', () => {});
    let acknowledged = false;
    session.once('remoteSettings', () => (acknowledged = true));
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': new URL(endpoint).pathname,
        ttl: '0',
        'content-encoding': 'aesgcm',
        encryption: padded(`salt=${salt()}`, 60_000),
        'crypto-key': `dh=${dh()}`,
      });
      assert.equal(acknowledged, false, 'sent before the server\'s SETTINGS arrived');
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('error', () => {});
      stream.end(randomBytes(100));
      await within(new Promise((resolve) => stream.once('close', resolve)), 'the stream closed');
      assert.equal(status, 0, 'no answer');
      assert.equal(stream.rstCode, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      // the session goes on: a request within the limits is answered
      const ok = session.request({ ':method': 'GET', ':path': '/health' });
      ok.resume();
      ok.end();
      const head = await within(new Promise<http2.IncomingHttpHeaders>((resolve) => ok.once('response', resolve)), 'a /health answer');
      assert.equal(head[':status'], 200);
    } finally {
      session.destroy();
    }
  });

  test('nothing of the attacks is kept in memory; another user agent kept its service', async () => {
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < HEAP_BOUND, `the heap grew ${Math.round(grown / 2 ** 20)} MiB`);
    await other.check('after the attacks');
  });
});
