// `webpushd send` against a webpushd process (HTTP, and HTTPS with --ca): one JSON line per
// outcome, exit codes 0 (sent) / 1 (refused) / 2 (bad arguments, naming the option).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createECDH, randomBytes, randomUUID, type ECDH } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptMessage } from '../../src/crypto/webpush.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;
const SUBJECT = 'mailto:cli@example.com';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN, args, { env: { ...process.env, ...env }, timeout: 15_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

interface Receiver {
  channelID: string;
  ecdh: ECDH;
  auth: Buffer;
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
}

let dir: string;
let server: ServerProcess;
let ua: TestUserAgent;
let vapidFile: string;
let vapid: { publicKey: string; privateKey: string };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-cli-send-'));
  server = await startServerProcess();
  ua = await TestUserAgent.connect(`${server.url.replace('http', 'ws')}/`);
  await ua.hello();
  const generated = await cli(['vapid', 'generate']);
  assert.equal(generated.code, 0);
  vapid = JSON.parse(generated.stdout) as typeof vapid;
  vapidFile = join(dir, 'vapid.json');
  writeFileSync(vapidFile, generated.stdout);
});

after(async () => {
  if (ua && ua.ws.readyState === ua.ws.OPEN) await ua.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function subscribe(agent: TestUserAgent, key?: string): Promise<Receiver> {
  const channelID = randomUUID();
  const reply = await agent.register(channelID, key);
  assert.equal(reply.status, 200);
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  const auth = randomBytes(16);
  const endpoint = (reply.pushEndpoint as string).replace('//localhost:', '//127.0.0.1:');
  return {
    channelID,
    ecdh,
    auth,
    subscription: { endpoint, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') } },
  };
}

async function receive(agent: TestUserAgent, r: Receiver): Promise<string> {
  const n = await agent.next('notification');
  agent.ack(n.channelID as string, n.version as string);
  assert.equal(n.channelID, r.channelID);
  const h = n.headers as Record<string, string>;
  return decryptMessage(
    Buffer.from(n.data as string, 'base64url'),
    { encoding: h.encoding!, encryption: h.encryption, cryptoKey: h.crypto_key },
    { publicKey: r.ecdh.getPublicKey(), privateKey: r.ecdh.getPrivateKey(), auth: r.auth },
  ).toString('utf8');
}

function outcome(run: Run): Record<string, unknown> {
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `one JSON line: ${run.stdout}${run.stderr}`);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('webpushd send', () => {
  test('aes128gcm with VAPID from --vapid-keys, inline subscription JSON: ok JSON, exit 0', async () => {
    const r = await subscribe(ua, vapid.publicKey);
    const text = 'hello from the CLI ✓';
    const run = await cli([
      'send', '--subscription', JSON.stringify(r.subscription), '--data', text, '--vapid-keys', vapidFile,
      '--vapid-subject', SUBJECT, '--ttl', '60', '--urgency', 'high', '--topic', 'news',
    ]);
    assert.equal(run.code, 0, run.stderr);
    const o = outcome(run);
    assert.equal(o.ok, true);
    assert.equal(o.statusCode, 201);
    assert.equal(o.ttl, 60);
    assert.ok(String(o.location).startsWith(`${server.url}/m/`), String(o.location));
    assert.equal(await receive(ua, r), text);
  });

  test('aesgcm, subscription and payload from files, VAPID keys from the environment', async () => {
    const r = await subscribe(ua, vapid.publicKey);
    const subFile = join(dir, `${r.channelID}.json`);
    const payloadFile = join(dir, `${r.channelID}.txt`);
    writeFileSync(subFile, JSON.stringify(r.subscription));
    writeFileSync(payloadFile, 'from a file\n');
    const run = await cli(['send', '--subscription', subFile, '--file', payloadFile, '--encoding', 'aesgcm'], {
      WEBPUSHD_VAPID_PUBLIC_KEY: vapid.publicKey,
      WEBPUSHD_VAPID_PRIVATE_KEY: vapid.privateKey,
      WEBPUSHD_VAPID_SUBJECT: SUBJECT,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(outcome(run).ttl, 2419200);
    assert.equal(await receive(ua, r), 'from a file\n');
  });

  test('the largest message of each encoding is sent; one byte more is refused locally, naming --data or --file', async () => {
    for (const [encoding, max] of [['aes128gcm', 3993], ['aesgcm', 4078]] as const) {
      const r = await subscribe(ua, vapid.publicKey);
      const fits = await cli(['send', '--subscription', JSON.stringify(r.subscription), '--data', 'x'.repeat(max), '--encoding', encoding,
        '--vapid-keys', vapidFile, '--vapid-subject', SUBJECT]);
      assert.equal(fits.code, 0, fits.stdout + fits.stderr);
      assert.equal((await receive(ua, r)).length, max);
      const file = join(dir, `${encoding}-over.bin`);
      writeFileSync(file, Buffer.alloc(max + 1, 'y'));
      const overs = [['--data', 'y'.repeat(max + 1)], ['--file', file]] as const;
      const runs = await Promise.all(overs.map(([option, value]) => cli(['send', '--subscription', JSON.stringify(r.subscription), option, value, '--encoding', encoding])));
      for (const [i, over] of runs.entries()) {
        const option = overs[i]![0];
        assert.equal(over.code, 2, over.stdout + over.stderr);
        assert.equal(over.stdout, '', 'nothing was sent');
        assert.equal(over.stderr, `error: ${option}: the message is ${max + 1} bytes; with --encoding ${encoding} at most ${max} fit, ` +
          'as its encrypted body must fit the 4096 bytes push services accept (413 above)\n');
      }
    }
  });

  test('after unsubscribing: gone JSON with the service body, exit 1', async () => {
    const r = await subscribe(ua);
    ua.send({ messageType: 'unregister', channelID: r.channelID, code: 200 });
    assert.equal((await ua.next('unregister')).status, 200);
    const run = await cli(['send', '--subscription', JSON.stringify(r.subscription), '--data', 'x']);
    assert.equal(run.code, 1);
    const o = outcome(run);
    assert.equal(o.ok, false);
    assert.equal(o.statusCode, 410);
    assert.equal(o.gone, true);
    assert.equal((o.body as { errno: number }).errno, 106);
    assert.equal(run.stderr, '');
  });

  test('a push service that cannot be reached: error JSON, exit 1', async () => {
    const r = await subscribe(ua);
    const sub = { ...r.subscription, endpoint: 'http://127.0.0.1:1/wpush/v1/x' };
    const run = await cli(['send', '--subscription', JSON.stringify(sub), '--timeout', '2000']);
    assert.equal(run.code, 1);
    assert.deepEqual(outcome(run), { ok: false, error: 'connect ECONNREFUSED 127.0.0.1:1', code: 'ECONNREFUSED' });
  });

  test('bad arguments: exit 2, one error naming the option, no stack trace', async () => {
    const r = await subscribe(ua);
    const sub = JSON.stringify(r.subscription);
    const noKeys = JSON.stringify({ endpoint: r.subscription.endpoint });
    const cases: [string[], RegExp][] = [
      [['--subscription', sub, '--urgency', 'urgent'], /--urgency.*urgent.*very-low, low, normal, high/],
      [['--subscription', sub, '--encoding', 'gzip'], /--encoding/],
      [['--subscription', sub, '--ttl', '-1'], /--ttl/],
      [['--subscription', sub, '--ttl', 'soon'], /--ttl/],
      [['--subscription', sub, '--topic', 'not a topic'], /--topic/],
      [['--subscription', sub, '--data', 'a', '--file', '/etc/hostname'], /--data.*--file/],
      [['--subscription', '{not json'], /--subscription.*not valid JSON/],
      [['--subscription', join(dir, 'missing.json')], /--subscription.*ENOENT/],
      [['--subscription', noKeys, '--data', 'x'], /--subscription: .*'auth' and 'p256dh' keys/],
      [['--data', 'x'], /--subscription/],
      [['--subscription', sub, '--vapid-keys', vapidFile], /--vapid-subject/],
      [['--subscription', sub, '--vapid-public-key', vapid.publicKey, '--vapid-subject', SUBJECT], /--vapid-private-key/],
      [['--subscription', sub, '--vapid-keys', vapidFile, '--vapid-subject', 'ftp://x'], /--vapid-subject/],
      [
        ['--subscription', sub, '--vapid-public-key', vapid.publicKey, '--vapid-private-key', 'AAAA', '--vapid-subject', SUBJECT],
        /--vapid-private-key/,
      ],
      [['--subscription', sub, '--ca', join(dir, 'missing.pem')], /--ca/],
      [['--subscription', sub, '--bogus'], /unknown option '--bogus'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(['send', ...args])));
    runs.forEach((run, i) => {
      const [args, pattern] = cases[i]!;
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
      assert.equal(run.stdout, '', args.join(' '));
      assert.match(run.stderr, pattern, args.join(' '));
      assert.doesNotMatch(run.stderr, /\n\s+at /, `no stack trace: ${args.join(' ')}`);
    });
  });

  test('--help describes every option', async () => {
    const run = await cli(['send', '--help']);
    assert.equal(run.code, 0);
    for (const option of [
      '--subscription', '--data', '--file', '--ttl', '--topic', '--urgency', '--encoding', '--vapid-subject',
      '--vapid-public-key', '--vapid-private-key', '--vapid-keys', '--ca', '--timeout', '--retries', '--header', '--no-http2',
    ]) {
      assert.match(run.stdout, new RegExp(`^\\s+${option} .*\\S`, 'm'), option);
    }
    assert.match(run.stdout, /very-low/);
    assert.match(run.stdout, /Exit codes/);
  });
});

describe('webpushd send over HTTPS', () => {
  let cert: TestCertificate;
  let tlsServer: ServerProcess;
  let tlsUa: TestUserAgent;

  before(async () => {
    cert = createTestCertificate();
    tlsServer = await startServerProcess({ scheme: 'https', args: ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile] });
    tlsUa = await TestUserAgent.connect(`${tlsServer.url.replace('https', 'wss')}/`, 'push-notification', { ca: cert.cert });
    await tlsUa.hello();
  });

  after(async () => {
    if (tlsUa && tlsUa.ws.readyState === tlsUa.ws.OPEN) await tlsUa.close();
    await tlsServer?.stop();
    cert?.remove();
  });

  test('--ca trusts the test certificate; without it the send fails', async () => {
    const r = await subscribe(tlsUa);
    const sub = JSON.stringify(r.subscription);
    const ok = await cli(['send', '--subscription', sub, '--data', 'over TLS', '--ca', cert.certFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(outcome(ok).statusCode, 201);
    assert.equal(await receive(tlsUa, r), 'over TLS');

    const untrusted = await cli(['send', '--subscription', sub, '--data', 'x']);
    assert.equal(untrusted.code, 1);
    assert.equal(outcome(untrusted).code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  });
});
