// Reading the admin listener from a web page (docs/SECURITY.md, "Limits"): a page of another site
// whose DNS name is made to resolve to 127.0.0.1 (DNS rebinding) is same-origin with whatever
// listens there, and read /metrics and /api/stats. The listener answers only Host names that
// cannot be rebound (IP addresses, localhost) or that it was given (--admin-hosts): 403 otherwise;
// with --admin-token, /metrics and /api/stats also need it as a bearer token (401).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { isIP } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { DEFAULTS } from '../../src/config.ts';
import { configToJson } from '../../src/config/load.ts';
import { assertAlive, bystander, rssOf, type Bystander } from '../helpers/abuse.ts';
import { freePort } from '../helpers/net.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';

/** Resident memory the requests may add: they keep nothing. */
const RSS_BOUND = 32 * 1024 * 1024;
const NAME = 'admin.example.org';
const TOKEN = 'tok-3f9c1e7a5b2d48e6a0c4';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** GET on the admin port with the Host header a browser would send for `host`. */
function get(port: number, path: string, host: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { ...headers, host } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function start(args: string[], env: Record<string, string> = {}): Promise<{ server: ServerProcess; admin: number }> {
  const admin = await freePort();
  return { server: await startServerProcess({ args: ['--admin-port', String(admin), ...args], env }), admin };
}

describe('the admin listener read from a rebound DNS name', { timeout: 60_000 }, () => {
  let server: ServerProcess;
  let admin: number;
  let other: Bystander;
  let rssBefore: number;

  before(async () => {
    ({ server, admin } = await start(['--admin-hosts', NAME]));
    other = await bystander(server.url);
    await other.check('before');
    rssBefore = rssOf(server.proc.pid!);
  });

  after(async () => {
    await other?.close();
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('Host of another name: 403 on every route, nothing of the numbers in the answer', async () => {
    for (const path of ['/metrics', '/api/stats', '/dashboard', '/dashboard.js', '/health', '/ready']) {
      const r = await get(admin, path, `rebind.attacker.example:${admin}`);
      assert.equal(r.status, 403, `${path}: ${r.body}`);
      assert.equal((JSON.parse(r.body) as { status: string }).status, 'Forbidden');
      assert.doesNotMatch(r.body, /webpushd_|uptime/);
    }
    assert.match(server.output(), /"msg":"admin request refused/);
  });

  test('its own names still answer: 127.0.0.1, [::1], localhost, --admin-hosts, with or without the port', async () => {
    for (const host of [`127.0.0.1:${admin}`, `[::1]:${admin}`, `localhost:${admin}`, 'localhost', 'LocalHost.', NAME, `${NAME}:${admin}`]) {
      const r = await get(admin, '/metrics', host);
      assert.equal(r.status, 200, `Host ${host}: ${r.body.slice(0, 200)}`);
      assert.match(r.body, /webpushd_messages_accepted_total/);
    }
  });

  test('any Host: answered exactly when its name is an IP address, localhost or one of --admin-hosts', async () => {
    const name = fc.oneof(
      fc.constantFrom('localhost', 'LOCALHOST', 'localhost.', '127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '10.0.0.7', NAME, NAME.toUpperCase()),
      fc.constantFrom('evil.example', 'localhost.evil.example', 'evil-localhost', '127.0.0.1.nip.io', `${NAME}.evil.example`, `x.${NAME}`, 'localhost..', '[::1', '0x7f.1'),
    );
    await fc.assert(
      fc.asyncProperty(name, fc.constantFrom('', `:${admin}`, ':80'), async (n, port) => {
        const r = await get(admin, '/api/stats', n + port);
        const bare = n.replace(/^\[(.*)\]$/, '$1').toLowerCase().replace(/\.$/, '');
        const allowed = isIP(bare) !== 0 || bare === 'localhost' || bare === NAME;
        assert.equal(r.status, allowed ? 200 : 403, `Host ${n + port}`);
      }),
      { numRuns: 100 },
    );
  });

  test('the process lives, its memory stayed bounded, another user agent kept its service', async () => {
    assertAlive(server);
    assert.ok(rssOf(server.proc.pid!) - rssBefore < RSS_BOUND, 'resident memory stayed bounded');
    await other.check('after the requests');
  });
});

describe('the admin listener with --admin-token', { timeout: 60_000 }, () => {
  let server: ServerProcess;
  let admin: number;

  before(async () => {
    // from the environment, as docs/CONFIGURATION.md advises for secrets
    ({ server, admin } = await start([], { WEBPUSHD_ADMIN_TOKEN: TOKEN }));
  });

  after(async () => {
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  test('/metrics and /api/stats: 401 with WWW-Authenticate without the token or with another; 200 with it', async () => {
    const host = `127.0.0.1:${admin}`;
    for (const path of ['/metrics', '/api/stats']) {
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN.slice(0, -1)}`]) {
        const r = await get(admin, path, host, authorization === undefined ? {} : { authorization });
        assert.equal(r.status, 401, `${path} with ${authorization}`);
        assert.match(String(r.headers['www-authenticate']), /^Bearer /);
        assert.doesNotMatch(r.body, /webpushd_|uptime/);
      }
      const ok = await get(admin, path, host, { authorization: `Bearer ${TOKEN}` });
      assert.equal(ok.status, 200, path);
    }
  });

  test('/health, /ready and the dashboard page need no token (probes; the page asks for it)', async () => {
    for (const path of ['/health', '/ready', '/dashboard', '/dashboard.js']) {
      assert.equal((await get(admin, path, `127.0.0.1:${admin}`)).status, 200, path);
    }
    const script = (await get(admin, '/dashboard.js', `127.0.0.1:${admin}`)).body;
    assert.match(script, /location\.hash/, 'the page takes the token from its URL\'s fragment');
  });

  test('--print-config masks it', () => {
    assert.equal(configToJson({ ...DEFAULTS, adminToken: TOKEN }).adminToken, '********');
    assert.equal(configToJson(DEFAULTS).adminToken, null);
  });

  test('the process lives', () => assertAlive(server));
});
