// Linking push URLs through the message URL of a TTL 0 send (docs/SECURITY.md, "Limits"): the
// Location of a message that is never stored must not name its subscription the same way every
// time, or senders holding different push URLs of one subscription (or one sender over time)
// could tell they reach the same user agent. A stored message keeps its one URL (Location,
// PUSH_PROMISE and receipt agree); a TTL 0 one gets a random one, and DELETE of it is 410.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assertAlive, bystander, rssOf, type Bystander } from '../helpers/abuse.ts';
import { H2Client } from '../helpers/h2-client.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const SENDS = 50;
/** Resident memory the sends may add: nothing is stored. */
const RSS_BOUND = 32 * 1024 * 1024;

describe('message URLs of TTL 0 sends', { timeout: 60_000 }, () => {
  let server: ServerProcess;
  let app: H2Client;
  let other: Bystander;
  let rssBefore: number;
  const agents: TestUserAgent[] = [];

  before(async () => {
    server = await startServerProcess();
    app = await H2Client.connect(server.url);
    other = await bystander(server.url);
    await other.check('before');
    rssBefore = rssOf(server.proc.pid!);
  });

  after(async () => {
    for (const ua of agents) ua.ws.terminate();
    await other?.close();
    await app?.close();
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  async function locations(pushUrl: string, n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = await app.send(pushUrl, { headers: { ttl: '0' } });
      assert.equal(r.status, 201, r.body.toString());
      out.push(String(r.headers.location));
    }
    return out;
  }

  test('a WebSocket subscription: every TTL 0 Location differs, from each push URL; each DELETE is 410', async () => {
    const ua = await TestUserAgent.connect(`${server.url.replace(/^http/, 'ws')}/`);
    agents.push(ua);
    await ua.hello();
    const channelID = randomUUID();
    const first = String((await ua.register(channelID)).pushEndpoint);
    // the same channel registered again: another push URL for it
    const second = String((await ua.register(channelID)).pushEndpoint);
    assert.notEqual(first, second);
    const all = [...(await locations(first, SENDS)), ...(await locations(second, SENDS))];
    assert.equal(new Set(all).size, all.length, 'no two Locations alike');
    for (const location of all.slice(0, 10)) assert.equal(await app.ack(location), 410, 'nothing stored to delete');
  });

  test('an RFC 8030 subscription (one stable push URL): the same', async () => {
    const ua = await H2Client.connect(server.url);
    try {
      const sub = await ua.subscribe();
      const all = await locations(sub.push, SENDS);
      assert.equal(new Set(all).size, all.length, 'no two Locations alike');
      assert.equal(await app.ack(all[0]!), 410);
      // a stored message keeps its one URL: DELETE of it removes it
      const kept = await app.send(sub.push, { headers: { ttl: '60' } });
      assert.equal(kept.status, 201);
      assert.equal(await app.ack(String(kept.headers.location)), 204);
    } finally {
      await ua.close();
    }
  });

  test('the process lives, its memory stayed bounded, another user agent kept its service', async () => {
    assertAlive(server);
    assert.ok(rssOf(server.proc.pid!) - rssBefore < RSS_BOUND, 'resident memory stayed bounded');
    await other.check('after the sends');
  });
});
