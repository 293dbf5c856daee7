// The application-server HTTP API against an in-process server: every status code with the
// autopush-style JSON error body ({code, errno, error, message, more_info}) and its headers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { generateVapidKeys, signVapidToken, vapidAuthorization } from '../../src/vapid/sign.ts';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Client port of the connection that carried the request. */
  localPort: number | undefined;
}

interface RequestOptions {
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: Buffer;
  /** Send the body with Transfer-Encoding: chunked (no Content-Length), in pieces. */
  chunked?: boolean;
  /** A keep-alive agent; by default every request has its own connection. */
  agent?: http.Agent;
}

function request(url: string, o: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(o.headers ?? {})) if (v !== undefined) headers[k] = v;
    if (o.chunked) headers['transfer-encoding'] = 'chunked';
    const req = http.request(url, { method: o.method ?? 'POST', headers, agent: o.agent ?? false }, (res) => {
      const localPort = res.socket?.localPort;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), localPort }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = o.body ?? Buffer.alloc(0);
    if (o.chunked) {
      for (let i = 0; i < body.length; i += 1000) req.write(body.subarray(i, i + 1000));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** An aes128gcm body the service accepts: header (salt, rs, idlen 65, sender key) + one record. */
function aes128gcm(total = 120): Buffer {
  const header = Buffer.alloc(21);
  randomBytes(16).copy(header);
  header.writeUInt32BE(4096, 16);
  header[20] = 65;
  const key = Buffer.concat([Buffer.of(4), randomBytes(64)]);
  return Buffer.concat([header, key, randomBytes(total - 86)]);
}

const SALT = randomBytes(16).toString('base64url');
const DH = Buffer.concat([Buffer.of(4), randomBytes(64)]).toString('base64url');

interface PushOptions extends Omit<RequestOptions, 'method'> {
  /** TTL header; null: none. Default '60'. */
  ttl?: string | null;
}

/** POST to a push URL: TTL 60, and Content-Encoding aes128gcm when there is a body, unless overridden. */
function push(url: string, o: PushOptions = {}): Promise<Reply> {
  const headers: http.OutgoingHttpHeaders = {};
  const ttl = o.ttl === undefined ? '60' : o.ttl;
  if (ttl !== null) headers.ttl = ttl;
  if (o.body && o.body.length > 0) headers['content-encoding'] = 'aes128gcm';
  return request(url, { ...o, method: 'POST', headers: { ...headers, ...o.headers } });
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  410: 'Gone',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
};

/** The autopush error shape, exactly these five fields. */
function assertError(r: Reply, status: number, errno: number, label?: string): Record<string, unknown> {
  const what = `${label ?? ''} -> ${r.status} ${r.body}`;
  assert.equal(r.status, status, what);
  assert.match(String(r.headers['content-type']), /^application\/json\b/, what);
  assert.equal(Number(r.headers['content-length']), Buffer.byteLength(r.body), what);
  const body = JSON.parse(r.body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'errno', 'error', 'message', 'more_info'], what);
  assert.equal(body.code, status, what);
  assert.equal(body.errno, errno, what);
  assert.equal(body.error, REASONS[status], what);
  assert.equal(typeof body.message, 'string', what);
  assert.ok((body.message as string).length > 0, what);
  assert.match(String(body.more_info), /^https:\/\/\S+$/, what);
  if (status !== 410) assert.equal(r.headers['cache-control'], undefined, what);
  return body;
}

function assertCreated(r: Reply, server: TestServer, ttl: string, label?: string): string {
  const what = `${label ?? ''} -> ${r.status} ${r.body}`;
  assert.equal(r.status, 201, what);
  assert.equal(r.body, '', what);
  assert.equal(r.headers.ttl, ttl, what);
  const location = String(r.headers.location);
  assert.ok(location.startsWith(`${server.url}/m/`), `Location ${location} is not under ${server.url}/m/`);
  assert.match(location.slice(`${server.url}/m/`.length), /^[A-Za-z0-9_-]{40,}$/);
  return location;
}

/** The same token with one character in the middle changed. */
function tamper(urlOrToken: string): string {
  const slash = urlOrToken.lastIndexOf('/');
  const token = urlOrToken.slice(slash + 1);
  const i = Math.floor(token.length / 2);
  const c = token[i] === 'A' ? 'B' : 'A';
  return `${urlOrToken.slice(0, slash + 1)}${token.slice(0, i)}${c}${token.slice(i + 1)}`;
}

const tokenOf = (url: string) => url.slice(url.lastIndexOf('/') + 1);

interface Subscribed {
  ua: TestUserAgent;
  uaid: string;
  channelID: string;
  endpoint: string;
}

async function subscribe(server: TestServer, key?: string, ua?: TestUserAgent, uaid?: string): Promise<Subscribed> {
  if (!ua) {
    ua = await TestUserAgent.connect(server.wsUrl);
    uaid = await ua.hello();
  }
  const channelID = randomUUID();
  const reply = await ua.register(channelID, key);
  assert.equal(reply.status, 200);
  assert.equal(reply.channelID, channelID);
  const endpoint = reply.pushEndpoint as string;
  assert.match(endpoint, new RegExp(`^${server.url.replace(/\./g, '\\.')}/wpush/v${key ? 2 : 1}/[A-Za-z0-9_-]+$`));
  return { ua, uaid: uaid!, channelID, endpoint };
}

/** Resolves once the server has handled every frame sent before (acks included). */
async function settle(ua: TestUserAgent): Promise<void> {
  const reply = await ua.register(randomUUID());
  assert.equal(reply.status, 200);
}

/** Asserts no notification arrives within `ms`. */
async function assertNoNotification(ua: TestUserAgent, ms = 150): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
  assert.deepEqual(
    ua.pending().filter((m) => m.messageType === 'notification'),
    [],
  );
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

let server: TestServer;
/** maxTtl 60 and at most 3 stored messages per user agent. */
let small: TestServer;
const userAgents: TestUserAgent[] = [];
const track = <T extends { ua: TestUserAgent }>(s: T): T => {
  userAgents.push(s.ua);
  return s;
};

before(async () => {
  [server, small] = await Promise.all([startTestServer(), startTestServer({ maxTtl: 60, maxStoredPerUserAgent: 3 })]);
});

after(async () => {
  await Promise.all(userAgents.map((ua) => (ua.ws.readyState === ua.ws.OPEN ? ua.close() : undefined)));
  await Promise.all([server.close(), small.close()]);
});

describe('201 Created', () => {
  test('a message with a body: 201, Location under /m/, TTL, empty body; the user agent gets it', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(server));
    const body = aes128gcm(200);
    const r = await push(endpoint, { body, headers: { urgency: 'high', topic: 'news' } });
    assertCreated(r, server, '60');
    assert.equal(r.headers['content-length'], '0');
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(n.data, body.toString('base64url'));
    assert.deepEqual(n.headers, { encoding: 'aes128gcm' });
    ua.ack(channelID, n.version as string);
  });

  test('an empty body needs no Content-Encoding', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(server));
    assertCreated(await push(endpoint), server, '60');
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(n.data, undefined);
    ua.ack(channelID, n.version as string);
  });

  test('an empty body ignores encoding headers, even malformed ones (as autopush does)', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(server));
    assertCreated(await push(endpoint, { headers: { 'Content-Encoding': 'aesgcm', Encryption: 'rs=1' } }), server, '60');
    const n = await ua.next('notification');
    assert.deepEqual(Object.keys(n).sort(), ['channelID', 'messageType', 'version']);
    ua.ack(channelID, n.version as string);
  });

  test('aesgcm with Encryption salt and Crypto-Key dh: 201, headers forwarded', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(server));
    const body = randomBytes(50);
    const r = await push(endpoint, {
      body,
      headers: { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${DH}` },
    });
    assertCreated(r, server, '60');
    const n = await ua.next('notification');
    assert.equal(n.data, body.toString('base64url'));
    assert.deepEqual(n.headers, { encoding: 'aesgcm', encryption: `salt=${SALT}`, crypto_key: `dh=${DH}` });
    ua.ack(channelID, n.version as string);
  });

  test('TTL 0 to a connected user agent: 201 with TTL 0, delivered', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(server));
    assertCreated(await push(endpoint, { ttl: '0', body: aes128gcm() }), server, '0');
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
  });

  test('a TTL above the maximum is clamped and the 201 says so', async () => {
    const { ua, channelID, endpoint } = track(await subscribe(small));
    for (const [sent, kept] of [
      ['3600', '60'],
      ['61', '60'],
      ['2592000', '60'],
      ['99999999999999999999', '60'],
      ['60', '60'],
      ['30', '30'],
    ] as const) {
      assertCreated(await push(endpoint, { ttl: sent }), small, kept, `TTL ${sent}`);
      const n = await ua.next('notification');
      ua.ack(channelID, n.version as string);
      await settle(ua); // at most 3 stored messages on this server
    }
  });

  test('a Topic replacement gets a new Location; the replaced message resource is gone', async () => {
    const { ua, uaid, channelID, endpoint } = await subscribe(server);
    await ua.close();
    const newer = aes128gcm(140);
    const l1 = assertCreated(await push(endpoint, { body: aes128gcm(), headers: { topic: 'score' } }), server, '60');
    const l2 = assertCreated(await push(endpoint, { body: newer, headers: { topic: 'score' } }), server, '60');
    assert.notEqual(l1, l2);
    assertError(await request(l1, { method: 'DELETE' }), 410, 106);
    const back = track({ ua: await TestUserAgent.connect(server.wsUrl) });
    assert.equal(await back.ua.hello(uaid), uaid);
    const n = await back.ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(n.data, newer.toString('base64url'));
    await assertNoNotification(back.ua);
    // not acknowledged yet: the sender may still cancel it
    assert.equal((await request(l2, { method: 'DELETE' })).status, 204);
  });

  test('DELETE on the Location: 204, not delivered on reconnect; again: 410; tampered: 404', async () => {
    const { ua, uaid, channelID, endpoint } = await subscribe(server);
    await ua.close(); // offline: messages are stored
    const first = aes128gcm(120);
    const second = aes128gcm(130);
    const l1 = assertCreated(await push(endpoint, { body: first }), server, '60');
    const l2 = assertCreated(await push(endpoint, { body: second }), server, '60');
    assert.notEqual(l1, l2);

    const del = await request(l1, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(del.body, '');
    const again = await request(l1, { method: 'DELETE' });
    assertError(again, 410, 106);
    assert.equal(again.headers['cache-control'], 'max-age=86400');
    assertError(await request(tamper(l2), { method: 'DELETE' }), 404, 102);
    assertError(await request(`${server.url}/m/${randomBytes(61).toString('base64url')}`, { method: 'DELETE' }), 404, 102);
    // a push token is not a message token
    assertError(await request(`${server.url}/m/${tokenOf(endpoint)}`, { method: 'DELETE' }), 404, 102);

    const back = track({ ua: await TestUserAgent.connect(server.wsUrl) });
    assert.equal(await back.ua.hello(uaid), uaid);
    const n = await back.ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(n.data, second.toString('base64url'), 'the cancelled message is not delivered');
    await assertNoNotification(back.ua);
    back.ua.ack(channelID, n.version as string);
    // once acknowledged, the message resource is gone
    await settle(back.ua);
    assertError(await request(l2, { method: 'DELETE' }), 410, 106);
  });
});

describe('400 Bad Request', () => {
  let sub: Subscribed;
  before(async () => {
    sub = track(await subscribe(server));
  });

  test('missing TTL: errno 111', async () => {
    assertError(await push(sub.endpoint, { ttl: null }), 400, 111);
    assertError(await push(sub.endpoint, { ttl: null, body: aes128gcm() }), 400, 111);
  });

  test('invalid TTL: errno 114', async () => {
    for (const ttl of ['-1', 'abc', '1.5', '', '1e3', '-0']) {
      assertError(await push(sub.endpoint, { ttl }), 400, 114, `TTL ${JSON.stringify(ttl)}`);
    }
    // two TTL header lines
    assertError(await push(sub.endpoint, { ttl: null, headers: { ttl: ['60', '60'] } }), 400, 114);
  });

  test('bad Topic: errno 113', async () => {
    for (const topic of ['x'.repeat(33), 'a b', 'a.b', 'a/b', 'a:b', '']) {
      assertError(await push(sub.endpoint, { headers: { topic } }), 400, 113, `Topic ${JSON.stringify(topic)}`);
    }
  });

  test('bad or repeated Urgency: errno 115', async () => {
    for (const urgency of ['urgent', 'medium', '', 'very low']) {
      assertError(await push(sub.endpoint, { headers: { urgency } }), 400, 115, `Urgency ${JSON.stringify(urgency)}`);
    }
    assertError(await push(sub.endpoint, { headers: { urgency: ['low', 'high'] } }), 400, 115, 'two Urgency lines');
    assertError(await push(sub.endpoint, { headers: { urgency: 'low, low' } }), 400, 115, 'Urgency list');
    for (const urgency of ['very-low', 'low', 'normal', 'high']) {
      assertCreated(await push(sub.endpoint, { headers: { urgency } }), server, '60', urgency);
    }
  });

  test('a body without Content-Encoding: errno 110', async () => {
    assertError(await push(sub.endpoint, { body: aes128gcm(), headers: { 'content-encoding': undefined } }), 400, 110);
  });

  test('an unknown Content-Encoding: errno 110', async () => {
    for (const ce of ['gzip', 'aes256gcm', 'identity']) {
      assertError(await push(sub.endpoint, { body: aes128gcm(), headers: { 'content-encoding': ce } }), 400, 110, ce);
    }
  });

  test('aesgcm without salt or dh: errno 110', async () => {
    const body = randomBytes(40);
    const cases: http.OutgoingHttpHeaders[] = [
      { 'content-encoding': 'aesgcm', 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}` },
      { 'content-encoding': 'aesgcm' },
      { 'content-encoding': 'aesgcm', encryption: 'rs=4096', 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `p256ecdsa=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT.slice(0, 10)}`, 'crypto-key': `dh=${DH}` },
    ];
    for (const headers of cases) assertError(await push(sub.endpoint, { body, headers }), 400, 110, JSON.stringify(headers));
  });

  test('aes128gcm with a salt or dh header: errno 110', async () => {
    const body = aes128gcm();
    assertError(await push(sub.endpoint, { body, headers: { encryption: `salt=${SALT}` } }), 400, 110);
    assertError(await push(sub.endpoint, { body, headers: { 'crypto-key': `dh=${DH}` } }), 400, 110);
  });

  test('malformed aes128gcm bodies: errno 110', async () => {
    const good = aes128gcm();
    const wrongIdlen = Buffer.from(good);
    wrongIdlen[20] = 32;
    const smallRs = Buffer.from(good);
    smallRs.writeUInt32BE(17, 16);
    const compressedKey = Buffer.from(good);
    compressedKey[21] = 2;
    const multiRecord = Buffer.from(aes128gcm(200));
    multiRecord.writeUInt32BE(20, 16);
    const cases: Record<string, Buffer> = {
      'one byte': Buffer.of(1),
      'shorter than its header': randomBytes(20),
      'header and key, no record': good.subarray(0, 86),
      'record shorter than a tag': good.subarray(0, 100),
      'idlen 32': wrongIdlen,
      'rs 17': smallRs,
      'keyid not 0x04': compressedKey,
      'two records': multiRecord,
    };
    for (const [label, body] of Object.entries(cases)) {
      assertError(await push(sub.endpoint, { body }), 400, 110, label);
    }
  });

  test('nothing refused reached the user agent', async () => {
    // four Urgency sends were accepted above; nothing else
    for (let i = 0; i < 4; i++) {
      const n = await sub.ua.next('notification');
      assert.equal(n.data, undefined);
      sub.ua.ack(sub.channelID, n.version as string);
    }
    await assertNoNotification(sub.ua);
  });
});

describe('VAPID: 401 and 403 (errno 109)', () => {
  const keys = generateVapidKeys();
  const otherKeys = generateVapidKeys();
  let aud: string;
  let v2: Subscribed;
  let v1: Subscribed;
  const token = (claims: { aud?: string; exp?: number } = {}, k = keys) =>
    signVapidToken({ aud: claims.aud ?? aud, exp: claims.exp ?? nowSeconds() + 3600, sub: 'mailto:ops@example.com' }, k);
  const vapid = (t: string, k = keys.publicKey) => ({ authorization: vapidAuthorization(t, k) });

  before(async () => {
    aud = new URL(server.url).origin;
    v2 = track(await subscribe(server, keys.publicKey));
    v1 = await subscribe(server, undefined, v2.ua, v2.uaid);
  });

  test('valid VAPID on a restricted (v2) subscription: 201, delivered', async () => {
    const body = aes128gcm();
    assertCreated(await push(v2.endpoint, { body, headers: vapid(token()) }), server, '60');
    const n = await v2.ua.next('notification');
    assert.equal(n.channelID, v2.channelID);
    assert.equal(n.data, body.toString('base64url'));
    v2.ua.ack(v2.channelID, n.version as string);
  });

  test('valid VAPID on an unrestricted (v1) subscription: 201', async () => {
    assertCreated(await push(v1.endpoint, { headers: vapid(token()) }), server, '60');
    assertCreated(await push(v1.endpoint, { headers: vapid(token({}, otherKeys), otherKeys.publicKey) }), server, '60');
    for (let i = 0; i < 2; i++) {
      const n = await v1.ua.next('notification');
      assert.equal(n.channelID, v1.channelID);
      v1.ua.ack(v1.channelID, n.version as string);
    }
  });

  test('legacy Authorization: WebPush <jwt> + Crypto-Key: p256ecdsa=<key>: 201', async () => {
    const legacy = { authorization: `WebPush ${token()}`, 'crypto-key': `p256ecdsa=${keys.publicKey}` };
    assertCreated(await push(v2.endpoint, { headers: legacy }), server, '60', 'v2');
    assertCreated(await push(v1.endpoint, { headers: legacy }), server, '60', 'v1');
    // aesgcm: dh and p256ecdsa share the Crypto-Key header
    const aesgcm = {
      authorization: `WebPush ${token()}`,
      'content-encoding': 'aesgcm',
      encryption: `salt=${SALT}`,
      'crypto-key': `dh=${DH};p256ecdsa=${keys.publicKey}`,
    };
    assertCreated(await push(v2.endpoint, { body: randomBytes(40), headers: aesgcm }), server, '60', 'aesgcm');
    for (let i = 0; i < 3; i++) {
      const n = await v2.ua.next('notification');
      v2.ua.ack(n.channelID as string, n.version as string);
    }
  });

  test('missing VAPID on a restricted subscription: 401', async () => {
    assertError(await push(v2.endpoint), 401, 109);
    assertError(await push(v2.endpoint, { body: aes128gcm() }), 401, 109);
    // a Crypto-Key p256ecdsa alone is not VAPID
    assertError(await push(v2.endpoint, { headers: { 'crypto-key': `p256ecdsa=${keys.publicKey}` } }), 401, 109);
  });

  test('bad signature: 401', async () => {
    // signed with another key, presented with the registered one
    assertError(await push(v2.endpoint, { headers: vapid(token({}, otherKeys)) }), 401, 109, 'other signer');
    // a corrupted signature
    const t = token();
    const sig = Buffer.from(t.split('.')[2]!, 'base64url');
    sig[10]! ^= 1;
    const corrupted = `${t.split('.').slice(0, 2).join('.')}.${sig.toString('base64url')}`;
    assertError(await push(v2.endpoint, { headers: vapid(corrupted) }), 401, 109, 'corrupted');
    // claims changed after signing
    const [h, , s] = t.split('.');
    const claims = Buffer.from(JSON.stringify({ aud, exp: nowSeconds() + 7200 })).toString('base64url');
    assertError(await push(v2.endpoint, { headers: vapid(`${h}.${claims}.${s}`) }), 401, 109, 'altered claims');
    // on v1 too: VAPID that is present must be valid
    assertError(await push(v1.endpoint, { headers: vapid(token({}, otherKeys)) }), 401, 109, 'v1');
  });

  test('expired exp: 401', async () => {
    assertError(await push(v2.endpoint, { headers: vapid(token({ exp: nowSeconds() - 60 })) }), 401, 109);
    assertError(await push(v1.endpoint, { headers: vapid(token({ exp: nowSeconds() - 60 })) }), 401, 109, 'v1');
  });

  test('exp more than 24 hours ahead: 401', async () => {
    assertError(await push(v2.endpoint, { headers: vapid(token({ exp: nowSeconds() + 86_400 + 600 })) }), 401, 109);
    assertError(await push(v2.endpoint, { headers: vapid(token({ exp: nowSeconds() + 7 * 86_400 })) }), 401, 109);
    // just under 24 h is fine
    assertCreated(await push(v2.endpoint, { headers: vapid(token({ exp: nowSeconds() + 86_400 - 60 })) }), server, '60');
    const n = await v2.ua.next('notification');
    v2.ua.ack(v2.channelID, n.version as string);
  });

  test('wrong aud: 401', async () => {
    const port = new URL(server.url).port;
    for (const wrong of ['https://push.example.net', `https://127.0.0.1:${port}`, `http://127.0.0.1:${Number(port) + 1}`, `${aud}/wpush`]) {
      assertError(await push(v2.endpoint, { headers: vapid(token({ aud: wrong })) }), 401, 109, wrong);
    }
  });

  test('malformed Authorization: 401', async () => {
    const t = token();
    const cases = [
      'vapid',
      `vapid t=${t}`,
      `vapid k=${keys.publicKey}`,
      `vapid t=${t} k=${keys.publicKey}`,
      `vapid t=${t}, k=${keys.publicKey.slice(0, 40)}`,
      `vapid t=not-a-jwt, k=${keys.publicKey}`,
      `vapid t=${t.split('.').slice(0, 2).join('.')}, k=${keys.publicKey}`,
      `Bearer ${t}`,
      `WebPush ${t}`, // without Crypto-Key
      'key=AIzaSyExample',
      '',
    ];
    for (const authorization of cases) {
      assertError(await push(v2.endpoint, { headers: { authorization } }), 401, 109, authorization.slice(0, 40));
    }
    // the same malformed header on v1
    assertError(await push(v1.endpoint, { headers: { authorization: `vapid t=${t}` } }), 401, 109, 'v1');
  });

  test('valid VAPID with another key on a restricted subscription: 403', async () => {
    assertError(await push(v2.endpoint, { headers: vapid(token({}, otherKeys), otherKeys.publicKey) }), 403, 109);
    const legacy = { authorization: `WebPush ${token({}, otherKeys)}`, 'crypto-key': `p256ecdsa=${otherKeys.publicKey}` };
    assertError(await push(v2.endpoint, { headers: legacy }), 403, 109, 'legacy');
  });

  test('nothing refused reached the user agent', async () => {
    await assertNoNotification(v2.ua);
  });
});

describe('404 Not Found and 405 Method Not Allowed', () => {
  let v1: Subscribed;
  let v2: Subscribed;
  before(async () => {
    v1 = track(await subscribe(server));
    v2 = await subscribe(server, generateVapidKeys().publicKey, v1.ua, v1.uaid);
  });

  test('tampered, random and cross-version tokens: 404, errno 102', async () => {
    const base = `${server.url}/wpush`;
    const cases: Record<string, string> = {
      'tampered v1': tamper(v1.endpoint),
      'tampered v2': tamper(v2.endpoint),
      'truncated': v1.endpoint.slice(0, -4),
      'random': `${base}/v1/${randomBytes(62).toString('base64url')}`,
      'random v2': `${base}/v2/${randomBytes(78).toString('base64url')}`,
      'short': `${base}/v1/abc`,
      'v1 token on v2': `${base}/v2/${tokenOf(v1.endpoint)}`,
      'v2 token on v1': `${base}/v1/${tokenOf(v2.endpoint)}`,
      'unknown version v9': `${base}/v9/${tokenOf(v1.endpoint)}`,
      'unknown version v0': `${base}/v0/${tokenOf(v1.endpoint)}`,
      'padded token': `${v1.endpoint}=`,
      'path after the token': `${v1.endpoint}/x`,
      'no token': `${base}/v1/`,
      'no version': `${base}/${tokenOf(v1.endpoint)}`,
    };
    for (const [label, url] of Object.entries(cases)) {
      assertError(await push(url, { body: aes128gcm() }), 404, 102, label);
    }
    // a message token is not a push token
    const location = assertCreated(await push(v1.endpoint), server, '60');
    assertError(await push(`${base}/v1/${tokenOf(location)}`), 404, 102, 'message token');
    const n = await v1.ua.next('notification');
    v1.ua.ack(v1.channelID, n.version as string);
    await assertNoNotification(v1.ua);
  });

  test('unknown paths: 404', async () => {
    // `/` is the service's own description (GET; other methods 405)
    for (const [method, path] of [
      ['GET', '/nope'],
      ['POST', '/push/v1/abc'],
      ['POST', '/wpush'],
      ['DELETE', '/m'],
    ] as const) {
      assertError(await request(`${server.url}${path}`, { method }), 404, 404, `${method} ${path}`);
    }
  });

  test('other methods on a push URL: 405 with Allow: POST', async () => {
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
      const r = await request(v1.endpoint, { method });
      assertError(r, 405, 405, method);
      assert.equal(r.headers.allow, 'POST');
    }
    const head = await request(v1.endpoint, { method: 'HEAD' });
    assert.equal(head.status, 405);
    assert.equal(head.headers.allow, 'POST');
  });

  test('other methods on a message URL: 405 with Allow: DELETE', async () => {
    const location = assertCreated(await push(v1.endpoint), server, '60');
    for (const method of ['GET', 'POST', 'PUT']) {
      const r = await request(location, { method });
      assertError(r, 405, 405, method);
      assert.equal(r.headers.allow, 'DELETE');
    }
    const n = await v1.ua.next('notification');
    v1.ua.ack(v1.channelID, n.version as string);
  });
});

describe('410 Gone (errno 106)', () => {
  test('after the user agent unregisters, with Cache-Control: max-age=86400', async () => {
    const keys = generateVapidKeys();
    const v1 = track(await subscribe(server));
    const v2 = await subscribe(server, keys.publicKey, v1.ua, v1.uaid);
    // a message stored while the subscription existed
    await v1.ua.close();
    const location = assertCreated(await push(v1.endpoint), server, '60');

    const ua = track({ ua: await TestUserAgent.connect(server.wsUrl) }).ua;
    assert.equal(await ua.hello(v1.uaid), v1.uaid);
    await ua.next('notification');
    for (const channelID of [v1.channelID, v2.channelID]) {
      ua.send({ messageType: 'unregister', channelID, code: 200 });
      const reply = await ua.next('unregister');
      assert.equal(reply.status, 200);
    }

    const aud = new URL(server.url).origin;
    const auth = vapidAuthorization(signVapidToken({ aud, exp: nowSeconds() + 600 }, keys), keys.publicKey);
    const cases: Record<string, Promise<Reply>> = {
      v1: push(v1.endpoint),
      'v1 with body': push(v1.endpoint, { body: aes128gcm() }),
      'v1 TTL 0': push(v1.endpoint, { ttl: '0' }),
      'v2 with VAPID': push(v2.endpoint, { headers: { authorization: auth } }),
      'v2 TTL 0': push(v2.endpoint, { ttl: '0', headers: { authorization: auth } }),
      // the pending message went with its subscription
      'DELETE of its message': request(location, { method: 'DELETE' }),
    };
    for (const [label, reply] of Object.entries(cases)) {
      const r = await reply;
      assertError(r, 410, 106, label);
      assert.equal(r.headers['cache-control'], 'max-age=86400', label);
    }
    await assertNoNotification(ua);
  });
});

describe('413 Payload Too Large (errno 104)', () => {
  let sub: Subscribed;
  before(async () => {
    sub = track(await subscribe(server));
  });

  test('a body of 4097 bytes is refused, with or without Content-Length', async () => {
    assertError(await push(sub.endpoint, { body: aes128gcm(4097) }), 413, 104, 'Content-Length');
    assertError(await push(sub.endpoint, { body: aes128gcm(4097), chunked: true }), 413, 104, 'chunked');
    assertError(await push(sub.endpoint, { body: aes128gcm(1 << 20), chunked: true }), 413, 104, '1 MiB chunked');
    assertError(await push(sub.endpoint, { body: aes128gcm(64 * 1024) }), 413, 104, '64 KiB');
    // aesgcm too
    const headers = { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${DH}` };
    assertError(await push(sub.endpoint, { body: randomBytes(4097), headers }), 413, 104, 'aesgcm');
  });

  test('a body of exactly 4096 bytes is accepted and delivered intact (RFC 8030 7.2)', async () => {
    for (const chunked of [false, true]) {
      const body = aes128gcm(4096);
      assertCreated(await push(sub.endpoint, { body, chunked }), server, '60', chunked ? 'chunked' : 'Content-Length');
      const n = await sub.ua.next('notification');
      assert.equal(Buffer.from(n.data as string, 'base64url').length, 4096);
      assert.equal(n.data, body.toString('base64url'));
      sub.ua.ack(sub.channelID, n.version as string);
    }
    const headers = { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${DH}` };
    const body = randomBytes(4096);
    assertCreated(await push(sub.endpoint, { body, headers }), server, '60', 'aesgcm');
    const n = await sub.ua.next('notification');
    assert.equal(n.data, body.toString('base64url'));
    sub.ua.ack(sub.channelID, n.version as string);
    await assertNoNotification(sub.ua);
  });
});

describe('429 Too Many Requests', () => {
  test('once a user agent has maxStoredPerUserAgent stored messages; a Topic replacement still goes in', async () => {
    const a = await subscribe(small);
    const b = await subscribe(small, undefined, a.ua, a.uaid);
    await a.ua.close(); // offline: everything is stored

    assertCreated(await push(a.endpoint, { body: aes128gcm(), headers: { topic: 'weather' } }), small, '60');
    assertCreated(await push(b.endpoint), small, '60');
    assertCreated(await push(a.endpoint), small, '60');

    // the cap is per user agent: both subscriptions are refused now
    for (const [label, url, headers] of [
      ['a', a.endpoint, {}],
      ['b', b.endpoint, {}],
      ['b, topic of a', b.endpoint, { topic: 'weather' }],
      ['a, new topic', a.endpoint, { topic: 'sports' }],
    ] as const) {
      const r = await push(url, { body: aes128gcm(), headers });
      assertError(r, 429, 116, label);
      // docs/ERRORS.md: errno 116 comes with Retry-After: 60
      assert.equal(r.headers['retry-after'], '60', label);
    }

    // replacing the pending message of the same topic adds nothing: accepted at the cap
    const replacement = aes128gcm(150);
    assertCreated(await push(a.endpoint, { body: replacement, headers: { topic: 'weather' } }), small, '60', 'replacement');
    assertError(await push(a.endpoint), 429, 116, 'still full');

    // the user agent comes back: three messages, the replaced one with its new body
    const ua = track({ ua: await TestUserAgent.connect(small.wsUrl) }).ua;
    assert.equal(await ua.hello(a.uaid), a.uaid);
    const got = [await ua.next('notification'), await ua.next('notification'), await ua.next('notification')];
    await assertNoNotification(ua);
    assert.equal(got.filter((n) => n.data === replacement.toString('base64url')).length, 1);
    assert.equal(got.filter((n) => n.channelID === a.channelID).length, 2);
    ua.send({ messageType: 'ack', updates: got.map((n) => ({ channelID: n.channelID, version: n.version, code: 100 })) });
    await settle(ua);

    // acknowledged: room again
    assertCreated(await push(b.endpoint), small, '60', 'after ack');
    const n = await ua.next('notification');
    assert.equal(n.channelID, b.channelID);
  });
});

describe('after an error the server keeps serving', () => {
  test('the same keep-alive connection carries a valid POST after each error (after a 413, a new one)', async () => {
    const keys = generateVapidKeys();
    const v1 = track(await subscribe(server));
    const v2 = await subscribe(server, keys.publicKey, v1.ua, v1.uaid);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const badRequests: [string, () => Promise<Reply>, number][] = [
        ['400 TTL', () => push(v1.endpoint, { ttl: 'x', agent }), 400],
        ['400 body', () => push(v1.endpoint, { body: Buffer.from('plain text'), headers: { 'content-encoding': undefined }, agent }), 400],
        ['401', () => push(v2.endpoint, { agent }), 401],
        ['403', () => {
          const other = generateVapidKeys();
          const t = signVapidToken({ aud: new URL(server.url).origin, exp: nowSeconds() + 600 }, other);
          return push(v2.endpoint, { headers: { authorization: vapidAuthorization(t, other.publicKey) }, agent });
        }, 403],
        ['404 token', () => push(tamper(v1.endpoint), { body: aes128gcm(), agent }), 404],
        ['404 path', () => request(`${server.url}/nope`, { method: 'POST', body: Buffer.from('x'), agent }), 404],
        ['405', () => request(v1.endpoint, { method: 'GET', agent }), 405],
        // a 413 closes the connection instead of reading the body it refused (docs/ERRORS.md)
        ['413 declared', () => push(v1.endpoint, { body: aes128gcm(8000), agent }), 413],
        ['413 chunked', () => push(v1.endpoint, { body: aes128gcm(8000), chunked: true, agent }), 413],
        ['404 with unread body', () => push(`${server.url}/wpush/v9/x`, { body: aes128gcm(4000), agent }), 404],
        ['410', () => request(`${server.url}/m/${tokenOf(String(gone.headers.location))}`, { method: 'DELETE', agent }), 410],
      ];
      // a message resource that no longer exists, for the 410 case
      const gone = await push(v1.endpoint, { ttl: '0' });
      assert.equal(gone.status, 201);
      await v1.ua.next('notification');

      const first = await push(v1.endpoint, { body: aes128gcm(), agent });
      assertCreated(first, server, '60');
      let port = first.localPort;
      assert.ok(port);
      let sent = 1;
      for (const [label, bad, status] of badRequests) {
        const r = await bad();
        assert.equal(r.status, status, `${label}: ${r.body}`);
        assert.equal(r.localPort, port, `${label}: the connection was kept`);
        const ok = await push(v1.endpoint, { body: aes128gcm(), agent });
        assertCreated(ok, server, '60', `after ${label}`);
        if (status === 413) assert.notEqual(ok.localPort, port, `after ${label}: a new connection`);
        else assert.equal(ok.localPort, port, `after ${label}: same connection`);
        port = ok.localPort;
        sent++;
      }
      for (let i = 0; i < sent; i++) {
        const n = await v1.ua.next('notification');
        v1.ua.ack(v1.channelID, n.version as string);
      }
      await assertNoNotification(v1.ua);
    } finally {
      agent.destroy();
    }
  });

  test('the health check still answers', async () => {
    const r = await request(`${server.url}/health`, { method: 'GET' });
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'OK' });
  });
});
