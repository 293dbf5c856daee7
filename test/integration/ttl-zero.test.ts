// TTL 0 end to end, in one place (docs/ARCHITECTURE.md: checked against the store, never
// written): delivered to a connected user agent with a version of its own form, dropped for an
// offline one, never stored (so it takes no room under the cap, and DELETE of its URL is 410),
// never acknowledged (so it gets no receipt: 201, no Link, whatever the sender asked for).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { H2Client, REL_RECEIPT, links, type H2Response } from '../helpers/h2-client.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const TOKEN = '[A-Za-z0-9_-]+';

/** The marker of a notification frame's body. */
const markerOfFrame = (n: Record<string, unknown>): string => markerOf(Buffer.from(n.data as string, 'base64url'));

describe('TTL 0', () => {
  let server: TestServer;
  let app: H2Client;
  const agents: TestUserAgent[] = [];
  before(async () => {
    // a cap of one: a stored TTL 0 message would leave no room for the next send
    server = await startTestServer({ maxStoredPerUserAgent: 1 });
    app = await H2Client.connect(server.url);
  });
  after(async () => {
    for (const ua of agents) ua.ws.terminate();
    await app.close();
    await server.close();
    rmSync(server.dataDir, { recursive: true, force: true });
  });

  async function subscribed() {
    const ua = await TestUserAgent.connect(server.wsUrl);
    agents.push(ua);
    const uaid = await ua.hello();
    const channelID = randomUUID();
    const reply = await ua.register(channelID);
    assert.equal(reply.status, 200);
    return { ua, uaid, channelID, endpoint: String(reply.pushEndpoint) };
  }

  const stored = async (uaid: string) => (await server.store.pendingMessages(Buffer.from(uaid, 'hex'), 0, 10)).length;

  const send = (endpoint: string, marker: string, headers: Record<string, string> = {}) =>
    app.send(endpoint, { body: aes128gcmBody(marker), headers: { ttl: '0', ...headers } });

  /** The 201 of a message nobody will acknowledge: TTL 0, a message URL, no receipt Link. */
  function assertEphemeral(r: H2Response, what: string): string {
    assert.equal(r.status, 201, `${what}: ${r.body.toString()}`);
    assert.equal(r.headers.ttl, '0', what);
    assert.equal(r.headers.link, undefined, `${what}: never stored, never acknowledged: no receipt`);
    const location = String(r.headers.location);
    assert.match(location, new RegExp(`^${server.url}/m/${TOKEN}$`), what);
    return location;
  }

  test('to a connected user agent: delivered with an ephemeral version, never stored; no receipt even when asked for', async () => {
    const { ua, uaid, channelID, endpoint } = await subscribed();
    const location = assertEphemeral(await send(endpoint, 'now', { prefer: 'respond-async' }), 'Prefer: respond-async');
    const n = await ua.next('notification');
    assert.equal(n.channelID, channelID);
    assert.equal(markerOfFrame(n), 'now');
    // not the base-36 id of a stored message, which an ack of it would delete
    assert.match(String(n.version), /^e-[0-9a-f]{8}-[0-9a-z]+$/);
    assert.equal(await stored(uaid), 0);
    assert.equal(await app.ack(location), 410, 'DELETE of its URL: nothing to delete');

    // the cap is not taken: a TTL 60 message asking for a receipt is stored, and gets one
    const kept = await app.send(endpoint, { body: aes128gcmBody('kept'), headers: { prefer: 'respond-async' } });
    assert.equal(kept.status, 202, kept.body.toString());
    const receipts = links(kept.headers.link).get(REL_RECEIPT);
    assert.ok(receipts, 'a stored message gets its receipt subscription');
    assert.equal(await stored(uaid), 1);
    assert.equal(markerOfFrame(await ua.next('notification')), 'kept');

    // naming that receipt subscription does not give a TTL 0 message a receipt either
    const named = assertEphemeral(await send(endpoint, 'named', { link: `<${receipts}>; rel="${REL_RECEIPT}"` }), 'a receipt Link');
    assertEphemeral(await send(endpoint, 'both', { link: `<${receipts}>; rel="${REL_RECEIPT}"`, prefer: 'respond-async' }), 'Link and Prefer');
    // its URL names no stored message, not even with one stored now
    assert.equal(await app.ack(named), 410);
    assert.equal(await stored(uaid), 1);
  });

  test('to an offline user agent: dropped, not stored; the next TTL 60 send fits under a cap of one', async () => {
    const { ua, uaid, channelID, endpoint } = await subscribed();
    await ua.close();
    const location = assertEphemeral(await send(endpoint, 'lost'), 'offline');
    assert.equal(await stored(uaid), 0);
    assert.equal(await app.ack(location), 410);
    const kept = await app.send(endpoint, { body: aes128gcmBody('kept') });
    assert.equal(kept.status, 201, kept.body.toString());

    // back online: only the TTL 60 message (a stored TTL 0 one would come first)
    const again = await TestUserAgent.connect(server.wsUrl);
    agents.push(again);
    assert.equal(await again.hello(uaid), uaid);
    const n = await again.next('notification');
    assert.equal(markerOfFrame(n), 'kept');
    assert.match(String(n.version), /^[0-9a-z]+$/, 'a stored message: its id in base 36');
    assert.equal(n.channelID, channelID);
  });

  test('to an unknown subscription: 410, as any send', async () => {
    const { ua, channelID, endpoint } = await subscribed();
    ua.send({ messageType: 'unregister', channelID });
    assert.equal((await ua.next('unregister')).status, 200);
    const r = await send(endpoint, 'nobody');
    assert.equal(r.status, 410, r.body.toString());
  });
});
