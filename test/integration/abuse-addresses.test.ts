// Getting around the per-address limits (docs/SECURITY.md, "Limits"). An IPv6 host is handed a
// whole /64 and may use any of its 2^64 addresses: keyed by the full address, each had limits of
// its own. Now an IPv6 client is its /64 (--ipv6-limit-prefix). And behind a proxy on the same
// host that --trusted-proxies does not name, every client is the proxy's loopback address, which
// the default --loopback-limits exempt lets through every per-address limit: the service says so
// in a warning when such a request comes. The clients here come through a trusted proxy (the test
// itself on 127.0.0.1), which names them in X-Forwarded-For.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { assertAlive, bystander, rssOf, type Bystander } from '../helpers/abuse.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

/** Resident memory the attacks may add: they keep nothing. */
const RSS_BOUND = 32 * 1024 * 1024;
/** The attacker's /64, and an address in it. */
const attacker = (n: number) => `2001:db8:1:2:${n.toString(16)}::${(n * 7).toString(16)}`;

async function sendFrom(server: ServerProcess, address: string): Promise<{ status: number; errno: number; retryAfter: string | null }> {
  // a push URL that does not exist: the per-address limit comes first, then the 404
  const r = await fetch(`${server.url}/wpush/v1/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`, { method: 'POST', headers: { ttl: '60', 'x-forwarded-for': address } });
  const body = (await r.json()) as { errno: number };
  return { status: r.status, errno: body.errno, retryAfter: r.headers.get('retry-after') };
}

describe('per-address limits and IPv6 addresses of one /64', { timeout: 60_000 }, () => {
  let server: ServerProcess;
  let other: Bystander;
  let rssBefore: number;
  const agents: TestUserAgent[] = [];

  before(async () => {
    server = await startServerProcess({
      args: ['--trusted-proxies', '127.0.0.1', '--rate-limit-address', '1', '--rate-limit-address-burst', '3', '--max-connections-per-address', '2'],
    });
    other = await bystander(server.url);
    await other.check('before');
    rssBefore = rssOf(server.proc.pid!);
  });

  after(async () => {
    for (const ua of agents) ua.ws.terminate();
    await other?.close();
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('requests from 20 addresses of one /64 share its budget: the 4th on gets 429 errno 124; another /64 has its own', async () => {
    const answers = [];
    for (let n = 1; n <= 20; n++) answers.push(await sendFrom(server, attacker(n)));
    assert.deepEqual(answers.slice(0, 3).map((a) => a.status), [404, 404, 404], 'the burst');
    for (const a of answers.slice(3)) {
      assert.equal(a.status, 429, JSON.stringify(a));
      assert.equal(a.errno, 124);
      assert.ok(Number(a.retryAfter) >= 1);
    }
    assert.equal((await sendFrom(server, '2001:db8:1:3::1')).status, 404, 'the next /64 is another client');
  });

  test('WebSocket connections from addresses of one /64 share its connection limit: the 3rd is refused 429 before the upgrade', async () => {
    const open = (address: string) => TestUserAgent.connect(`${server.url.replace(/^http/, 'ws')}/`, 'push-notification', { headers: { 'x-forwarded-for': address } });
    agents.push(await open('2001:db8:9:9::1'), await open('2001:db8:9:9:1:2:3:4'));
    await assert.rejects(open('2001:db8:9:9:ffff::5'), /Unexpected server response: 429/);
    agents.push(await open('2001:db8:9:a::1'));
  });

  test('the process lives, its memory stayed bounded, another user agent kept its service', async () => {
    assertAlive(server);
    assert.ok(rssOf(server.proc.pid!) - rssBefore < RSS_BOUND, 'resident memory stayed bounded');
    await other.check('after the attacks');
  });
});

describe('a proxy on this host that --trusted-proxies does not name', { timeout: 60_000 }, () => {
  let server: ServerProcess;

  before(async () => {
    server = await startServerProcess({ args: ['--rate-limit-address', '1', '--rate-limit-address-burst', '1'] });
  });

  after(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  const warning = /"msg":"X-Forwarded-For from a loopback peer not in --trusted-proxies: its clients count as that loopback address, exempt from every per-address limit/g;

  test('its first forwarded request gets a warning (once): the per-address limits are off for its clients', async () => {
    assert.doesNotMatch(server.output(), warning, 'none before such a request');
    // what the clients behind it get: no limit at all (each address would be allowed 1)
    for (const client of ['198.51.100.1', '198.51.100.1', '198.51.100.1']) assert.equal((await sendFrom(server, client)).status, 404);
    assert.equal(server.output().match(warning)?.length, 1, server.output().slice(-2000));
    assertAlive(server);
  });
});
