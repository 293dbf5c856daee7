// Filling the VAPID verification cache (docs/SECURITY.md, "Limits"): an application server that
// signs a new, huge token for every send. Each verified token stays cached until its exp (up to
// 10,000 of them); kept whole, 14 kB tokens grew the process by hundreds of MB. Tokens over
// 2048 characters are refused (401 errno 109), and the cache is keyed by a hash of the token.
// In process: what the cache keeps is measured on the heap after a full collection.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { generateVapidKeys, signVapidToken, vapidAuthorization } from '../../src/vapid/sign.ts';
import { MAX_TOKEN_LENGTH } from '../../src/vapid/verify.ts';
import { bystander, heapAfterGc, type Bystander } from '../helpers/abuse.ts';
import { H2Client } from '../helpers/h2-client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const HUGE = 5000;
const AT_CAP = 2000;
/** What the attack may add to the heap: kept whole, the huge tokens alone take 120 MB. */
const HEAP_BOUND = 16 * 1024 * 1024;
const KEYS = generateVapidKeys();

describe('VAPID tokens that fill the verification cache', { timeout: 120_000 }, () => {
  let server: TestServer;
  let app: H2Client;
  let ua: H2Client;
  let pushUrl: string;
  let other: Bystander;
  let heapBefore: number;
  let n = 0;

  /** A token signed by KEYS, distinct from every other (its sub), of about `length` characters. */
  function token(length: number): string {
    const claims = { aud: server.url, exp: Math.floor(Date.now() / 1000) + 3600, sub: `mailto:${++n}@example.com` };
    const bare = signVapidToken(claims, KEYS).length;
    // base64url: 4 characters per 3 bytes of claims
    return signVapidToken({ ...claims, sub: `${claims.sub}?${'x'.repeat(Math.max(0, Math.floor(((length - bare) * 3) / 4) - 1))}` }, KEYS);
  }

  /** Sends one TTL 0 message per token, 100 at a time; the statuses and errnos. */
  async function sendAll(tokens: string[]): Promise<{ status: number; errno?: number; message?: string }[]> {
    const out = [];
    for (let i = 0; i < tokens.length; i += 100) {
      const batch = tokens.slice(i, i + 100).map(async (t) => {
        const r = await app.send(pushUrl, { headers: { ttl: '0', authorization: vapidAuthorization(t, KEYS.publicKey) } });
        const body = r.body.length > 0 ? (JSON.parse(r.body.toString()) as { errno: number; message: string }) : {};
        return { status: r.status, ...body };
      });
      out.push(...(await Promise.all(batch)));
    }
    return out;
  }

  before(async () => {
    // one subscription takes every send: no per-subscription rate limit in the way
    server = await startTestServer({ rateLimitSubscription: 0 });
    app = await H2Client.connect(server.url);
    ua = await H2Client.connect(server.url);
    pushUrl = (await ua.subscribe()).push;
    other = await bystander(server.url);
    await other.check('before');
    heapBefore = heapAfterGc();
  });

  after(async () => {
    await other?.close();
    await ua?.close();
    await app?.close();
    await server?.close();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  test(`${HUGE} distinct 14 kB tokens: each refused 401 errno 109, nothing kept`, async () => {
    const tokens = Array.from({ length: HUGE }, () => token(14_000));
    assert.ok(tokens.every((t) => t.length > 13_900 && t.length <= 14_000));
    const answers = await sendAll(tokens);
    tokens.length = 0;
    for (const a of answers) {
      assert.equal(a.status, 401, JSON.stringify(a));
      assert.equal(a.errno, 109);
      assert.match(String(a.message), new RegExp(`longer than ${MAX_TOKEN_LENGTH} characters`));
    }
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < HEAP_BOUND, `the heap grew ${Math.round(grown / 2 ** 20)} MiB`);
  });

  test(`${AT_CAP} distinct tokens of ${MAX_TOKEN_LENGTH} characters: accepted and cached, the heap still bounded`, async () => {
    const tokens = Array.from({ length: AT_CAP }, () => token(MAX_TOKEN_LENGTH));
    assert.ok(tokens.every((t) => t.length > MAX_TOKEN_LENGTH - 8 && t.length <= MAX_TOKEN_LENGTH));
    const answers = await sendAll(tokens);
    assert.ok(answers.every((a) => a.status === 201), JSON.stringify(answers.find((a) => a.status !== 201)));
    // a repeat is served from the cache
    assert.equal((await sendAll(tokens.slice(0, 10))).filter((a) => a.status === 201).length, 10);
    tokens.length = 0;
    const grown = heapAfterGc() - heapBefore;
    assert.ok(grown < HEAP_BOUND, `the heap grew ${Math.round(grown / 2 ** 20)} MiB`);
  });

  test('another user agent kept its service', async () => {
    await other.check('after the attack');
  });
});
