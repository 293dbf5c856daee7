// Clients written for autopush, not for webpushd: they send every optional field, as JSON null
// when they have no value. autopush reads null as absent; so does webpushd.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generateVapidKeys, signVapidToken } from '../../src/vapid/sign.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s.close());

async function push(endpoint: string): Promise<number> {
  const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody() });
  await res.arrayBuffer();
  return res.status;
}

describe('null means absent in client messages', () => {
  test('hello with uaid, channelIDs and broadcasts null; register with key null; ack and nack with code null; unregister with code null', async () => {
    const ua = await TestUserAgent.connect(s.wsUrl);
    ua.send({ messageType: 'hello', uaid: null, channelIDs: null, broadcasts: null, use_webpush: true });
    const hello = await ua.next('hello');
    assert.equal(hello.status, 200);
    assert.match(String(hello.uaid), /^[0-9a-f]{32}$/);
    assert.deepEqual(hello.broadcasts, {});

    const channelID = randomUUID();
    ua.send({ messageType: 'register', channelID, key: null });
    const reg = await ua.next('register');
    assert.equal(reg.status, 200);
    const endpoint = String(reg.pushEndpoint);
    assert.match(endpoint, /\/wpush\/v1\//, 'an unrestricted subscription');

    assert.equal(await push(endpoint), 201);
    const n = await ua.next('notification');
    ua.send({ messageType: 'ack', updates: [{ channelID, version: n.version, code: null }] });
    ua.send({ messageType: 'nack', version: n.version, code: null });
    ua.send({ messageType: 'unregister', channelID, code: null });
    assert.equal((await ua.next('unregister')).status, 200);
    assert.equal(await push(endpoint), 410);
    assert.equal(ua.ws.readyState, ua.ws.OPEN, 'the connection stayed open throughout');
    await ua.close();
  });

  test('a resumed uaid with channelIDs listed is served as before', async () => {
    const first = await TestUserAgent.connect(s.wsUrl);
    const uaid = await first.hello();
    const channelID = randomUUID();
    await first.register(channelID);
    await first.close();
    const again = await TestUserAgent.connect(s.wsUrl);
    again.send({ messageType: 'hello', uaid, channelIDs: [channelID], broadcasts: null, use_webpush: true });
    assert.equal((await again.next('hello')).uaid, uaid);
    await again.close();
  });

  test('fields of the wrong type are still refused (1002)', async () => {
    for (const frame of [
      { messageType: 'register', channelID: randomUUID(), key: 5 },
      { messageType: 'hello', channelIDs: 'x' },
      { messageType: 'hello', broadcasts: [1] },
    ]) {
      const ua = await TestUserAgent.connect(s.wsUrl);
      if (frame.messageType !== 'hello') await ua.hello();
      ua.send(frame);
      assert.equal((await ua.closed).code, 1002, JSON.stringify(frame));
    }
  });
});

describe('VAPID in the form of the early drafts', () => {
  test('Authorization: Bearer <jwt> with Crypto-Key: p256ecdsa=<key> is verified like WebPush (any case of the scheme)', async () => {
    const keys = generateVapidKeys();
    const ua = await TestUserAgent.connect(s.wsUrl);
    await ua.hello();
    const endpoint = String((await ua.register(randomUUID(), keys.publicKey)).pushEndpoint);
    assert.match(endpoint, /\/wpush\/v2\//);
    const send = async (authorization: string, cryptoKey: string) => {
      const res = await fetch(endpoint, {
        method: 'POST',
        headers: { ttl: '60', 'content-encoding': 'aes128gcm', authorization, 'crypto-key': cryptoKey },
        body: aes128gcmBody(),
      });
      return { status: res.status, body: await res.text() };
    };
    const jwt = (k = keys) => signVapidToken({ aud: new URL(s.url).origin, exp: Math.floor(Date.now() / 1000) + 600, sub: 'mailto:ops@example.com' }, k);
    for (const scheme of ['Bearer', 'bearer', 'BEARER']) {
      assert.equal((await send(`${scheme} ${jwt()}`, `p256ecdsa=${keys.publicKey}`)).status, 201, scheme);
      assert.equal((await ua.next('notification')).messageType, 'notification');
    }
    // a valid signature by another key than the subscription's: 403 (RFC 8292 4.2), as for every form
    const other = generateVapidKeys();
    assert.equal((await send(`Bearer ${jwt(other)}`, `p256ecdsa=${other.publicKey}`)).status, 403);
    // a signature that does not match the key given
    const refused = await send(`Bearer ${jwt(other)}`, `p256ecdsa=${keys.publicKey}`);
    assert.equal(refused.status, 401);
    assert.equal((JSON.parse(refused.body) as { errno: number }).errno, 109);
    // Bearer without the key
    assert.equal((await send(`Bearer ${jwt()}`, 'dh=abc')).status, 401);
    await ua.close();
  });
});
