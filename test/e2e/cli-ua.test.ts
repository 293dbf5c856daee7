// `webpushd ua subscribe|listen|unsubscribe` as child processes against a `webpushd serve`
// child process; the `web-push` npm library is the application server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import webpush from 'web-push';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;
const vapidKeys = webpush.generateVAPIDKeys();
const vapidDetails = { subject: 'mailto:cli@example.com', ...vapidKeys };
const TEXT = 'Hello, CLI: ünïcödé ✓ 🚀 "quotes" & <tags>\n second line';

interface Subscription {
  endpoint: string;
  expirationTime: null;
  keys: { p256dh: string; auth: string };
}

let dir: string;
let server: ServerProcess;
const children = new Set<ChildProcess>();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-cli-ua-'));
  server = await startServerProcess();
});

after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(args: string[], timeoutMs = 10_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`webpushd ${args.join(' ')} did not finish within ${timeoutMs} ms:\n${stdout}${stderr}`));
    }, timeoutMs);
    proc.on('exit', (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A running `ua listen`, its stdout and stderr split in lines. */
function listen(args: string[]) {
  const proc = spawn(BIN, ['ua', 'listen', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  const out: string[] = [];
  const err: string[] = [];
  const split = (into: string[]) => {
    let rest = '';
    return (d: Buffer) => {
      rest += d.toString();
      const lines = rest.split('\n');
      rest = lines.pop()!;
      into.push(...lines);
    };
  };
  proc.stdout.on('data', split(out));
  proc.stderr.on('data', split(err));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      children.delete(proc);
      resolve({ code, signal });
    }),
  );
  let taken = 0;
  const waitFor = async (check: () => boolean, what: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline || proc.exitCode !== null) {
        throw new Error(`${what}: not within ${ms} ms\nstdout:\n${out.join('\n')}\nstderr:\n${err.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return {
    proc,
    out,
    err,
    exited,
    /** The next stdout line, parsed. */
    async next(ms = 5000): Promise<Record<string, unknown>> {
      await waitFor(() => out.length > taken, 'a message line', ms);
      return JSON.parse(out[taken++]!) as Record<string, unknown>;
    },
    /** Waits for the n-th stderr diagnostic of this event (1-based). */
    async event(name: string, n = 1, ms = 5000): Promise<Record<string, unknown>> {
      const matching = () => err.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === name);
      await waitFor(() => matching().length >= n, `stderr event ${name} #${n}`, ms);
      return matching()[n - 1]!;
    },
  };
}

async function subscribe(state: string, ...extra: string[]): Promise<Subscription> {
  const r = await run(['ua', 'subscribe', '--server', server.url, '--state', state, ...extra]);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.equal(lines.length, 2, 'one line');
  assert.equal(lines[1], '');
  return JSON.parse(lines[0]!) as Subscription;
}

/** web-push encrypts and signs; fetch sends (web-push's own sender needs https). */
async function send(
  sub: Subscription,
  payload: string | Buffer | null,
  encoding: 'aes128gcm' | 'aesgcm' = 'aes128gcm',
  urgency?: 'very-low' | 'low' | 'normal' | 'high',
): Promise<number> {
  const details = webpush.generateRequestDetails(sub, payload ?? undefined, {
    TTL: 60,
    contentEncoding: encoding,
    vapidDetails,
    ...(urgency ? { urgency } : {}),
  });
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(details.headers)) if (k.toLowerCase() !== 'content-length') headers[k] = String(v);
  const res = await fetch(details.endpoint, { method: details.method, headers, body: details.body ?? undefined });
  await res.arrayBuffer();
  return res.status;
}

describe('ua subscribe + ua listen', () => {
  test('the exact text, binary and empty messages are printed as JSON lines; SIGINT exits 0', async () => {
    const state = join(dir, 'main.json');
    const sub = await subscribe(state, '--vapid-key', vapidKeys.publicKey);
    assert.deepEqual(Object.keys(sub), ['endpoint', 'expirationTime', 'keys']);
    assert.ok(sub.endpoint.startsWith(`${server.url}/wpush/v2/`), sub.endpoint);
    assert.equal(Buffer.from(sub.keys.p256dh, 'base64url').length, 65);
    assert.equal(Buffer.from(sub.keys.auth, 'base64url').length, 16);
    assert.equal(statSync(state).mode & 0o777, 0o600);

    const l = listen(['--state', state]);
    await l.event('connected');
    assert.equal(await send(sub, TEXT), 201);
    const m = await l.next();
    assert.deepEqual(Object.keys(m), ['channelID', 'endpoint', 'version', 'text']);
    assert.equal(m.text, TEXT);
    assert.equal(m.endpoint, sub.endpoint);
    assert.match(m.channelID as string, /^[0-9a-f-]{36}$/);

    assert.equal(await send(sub, TEXT, 'aesgcm'), 201);
    assert.equal((await l.next()).text, TEXT);

    const binary = Buffer.concat([Buffer.from([0xff, 0x00, 0xc3, 0x28]), randomBytes(32)]);
    assert.equal(await send(sub, binary), 201);
    const b = await l.next();
    assert.equal(b.text, undefined);
    assert.deepEqual(Buffer.from(b.base64 as string, 'base64'), binary);

    assert.equal(await send(sub, null), 201);
    const e = await l.next();
    assert.equal(e.empty, true);
    assert.equal(e.text, undefined);

    l.proc.kill('SIGINT');
    assert.deepEqual(await l.exited, { code: 0, signal: null });
    assert.equal(l.out.length, 4, 'stdout holds only the messages');
    for (const line of l.err) assert.doesNotThrow(() => JSON.parse(line), `stderr line is JSON: ${line}`);

    // everything was acknowledged: a new listener gets only what is sent now
    const again = listen(['--state', state]);
    await again.event('connected');
    assert.equal(await send(sub, 'after'), 201);
    assert.equal((await again.next()).text, 'after');
    again.proc.kill('SIGTERM');
    assert.deepEqual(await again.exited, { code: 0, signal: null });
    assert.equal(again.out.length, 1);
  });

  test('the console on both sides: webpushd send (the SDK) to webpushd ua listen, both encodings', async () => {
    const state = join(dir, 'console.json');
    const sub = await subscribe(state, '--vapid-key', vapidKeys.publicKey);
    const keysFile = join(dir, 'vapid.json');
    writeFileSync(keysFile, JSON.stringify(vapidKeys));
    const l = listen(['--state', state]);
    await l.event('connected');
    for (const encoding of ['aes128gcm', 'aesgcm']) {
      const r = await run([
        'send',
        '--subscription',
        JSON.stringify(sub),
        '--data',
        TEXT,
        '--encoding',
        encoding,
        '--topic',
        'console',
        '--urgency',
        'high',
        '--vapid-keys',
        keysFile,
        '--vapid-subject',
        'mailto:cli@example.com',
      ]);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const outcome = JSON.parse(r.stdout) as Record<string, unknown>;
      assert.equal(outcome.ok, true);
      assert.equal(outcome.statusCode, 201);
      assert.match(outcome.location as string, new RegExp(`^${server.url}/m/`));
      const m = await l.next();
      assert.equal(m.text, TEXT, encoding);
      assert.equal(m.endpoint, sub.endpoint);
    }
    l.proc.kill('SIGINT');
    assert.equal((await l.exited).code, 0);
  });

  test('listen reconnects when the push service restarts and receives what is sent afterwards', async () => {
    const own = await startServerProcess();
    let current = own;
    try {
      const state = join(dir, 'restart.json');
      const r = await run(['ua', 'subscribe', '--server', own.url, '--state', state]);
      assert.equal(r.status, 0, r.stderr);
      const sub = JSON.parse(r.stdout) as Subscription;
      const l = listen(['--state', state]);
      await l.event('connected');
      await own.stop();
      const reconnecting = await l.event('reconnecting');
      assert.equal(reconnecting.code, 1001);
      current = await startServerProcess({ port: own.port, dataDir: own.dataDir });
      await l.event('connected', 2, 8000);
      assert.equal(await send(sub, 'after the restart'), 201);
      assert.equal((await l.next()).text, 'after the restart');
      l.proc.kill('SIGINT');
      assert.equal((await l.exited).code, 0);
    } finally {
      await current.stop();
    }
  });

  test('over https with --ca: web-push sends with its own sender, listen prints the text', async () => {
    const cert: TestCertificate = createTestCertificate();
    const tls = await startServerProcess({ scheme: 'https', args: ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile] });
    const agent = new https.Agent({ ca: cert.cert });
    try {
      const state = join(dir, 'tls.json');
      const r = await run(['ua', 'subscribe', '--server', tls.url, '--state', state, '--ca', cert.certFile]);
      assert.equal(r.status, 0, r.stderr);
      const sub = JSON.parse(r.stdout) as Subscription;
      assert.ok(sub.endpoint.startsWith(`${tls.url}/wpush/v1/`), sub.endpoint);
      const l = listen(['--state', state, '--ca', cert.certFile]);
      assert.match((await l.event('connected')).url as string, /^wss:\/\//);
      const result = await webpush.sendNotification(sub, TEXT, { TTL: 60, vapidDetails, agent });
      assert.equal(result.statusCode, 201);
      assert.equal((await l.next()).text, TEXT);
      l.proc.kill('SIGINT');
      assert.equal((await l.exited).code, 0);

      // without --ca the certificate is not trusted: a clear error
      const untrusted = await run(['ua', 'subscribe', '--server', tls.url, '--state', join(dir, 'untrusted.json')]);
      assert.equal(untrusted.status, 1);
      assert.match(untrusted.stderr, /error: could not connect to wss:\/\/127\.0\.0\.1:\d+\/: .*certificate/);
    } finally {
      agent.destroy();
      await tls.stop();
      cert.remove();
    }
  });

  test('a second subscription in the same state; ua unsubscribe removes one (then 410)', async () => {
    const state = join(dir, 'two.json');
    const a = await subscribe(state);
    const b = await subscribe(state);
    assert.notEqual(a.endpoint, b.endpoint);
    const r = await run(['ua', 'unsubscribe', '--state', state, '--endpoint', a.endpoint]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(await send(a, 'gone'), 410);
    assert.equal(await send(b, 'kept'), 201);
    const again = await run(['ua', 'unsubscribe', '--state', state, '--endpoint', a.endpoint]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /--endpoint/);
  });
});

describe('ua: arguments and state errors', () => {
  test('bad arguments name the option, without a stack trace', async () => {
    const state = join(dir, 'args.json');
    const cases: [string[], RegExp][] = [
      [['ua', 'subscribe', '--state', state, '--server', 'ftp://example.com'], /--server/],
      [['ua', 'subscribe', '--state', state, '--server', 'not a url'], /--server/],
      [['ua', 'subscribe', '--state', state, '--server', server.url, '--vapid-key', 'abc'], /--vapid-key/],
      [['ua', 'subscribe', '--state', state, '--server', server.url, '--ca', join(dir, 'nope.pem')], /--ca.*ENOENT/],
      [['ua', 'subscribe', '--server', server.url], /--state/],
      [['ua', 'subscribe', '--state', join(dir, 'new.json')], /--server/],
      [['ua', 'listen'], /--state/],
      [['ua', 'listen', '--state', state, '--bogus'], /--bogus/],
      [['ua', 'unsubscribe', '--state', state], /--endpoint/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      const [args, pattern] = cases[i]!;
      assert.equal(r.status, 1, args.join(' '));
      assert.match(r.stderr, pattern, args.join(' '));
      assert.equal(r.stdout, '', args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  });

  test('a missing or corrupt state file gives a clear error', async () => {
    const missing = join(dir, 'missing.json');
    const corrupt = join(dir, 'corrupt.json');
    writeFileSync(corrupt, '{"server": ');
    const wrong = join(dir, 'wrong.json');
    writeFileSync(wrong, JSON.stringify({ server: server.url, uaid: null, subscriptions: 'none' }));
    const [a, b, c, d] = await Promise.all([
      run(['ua', 'listen', '--state', missing]),
      run(['ua', 'listen', '--state', corrupt]),
      run(['ua', 'unsubscribe', '--state', wrong, '--endpoint', 'http://x/']),
      run(['ua', 'subscribe', '--state', corrupt, '--server', server.url]),
    ]);
    assert.equal(a.status, 1);
    assert.match(a.stderr, /error: state file .*missing\.json does not exist/);
    assert.equal(b.status, 1);
    assert.match(b.stderr, /error: state file .*corrupt\.json is not valid JSON/);
    assert.equal(c.status, 1);
    assert.match(c.stderr, /wrong\.json is not a webpushd user-agent state: subscriptions must be an array/);
    assert.equal(d.status, 1);
    assert.match(d.stderr, /corrupt\.json is not valid JSON/);
    for (const r of [a, b, c, d]) assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test('--help on every command', async () => {
    const cases: [string[], RegExp][] = [
      [['ua', '--help'], /subscribe[\s\S]*listen[\s\S]*unsubscribe/],
      [['ua', 'subscribe', '--help'], /--server <url>[\s\S]*--vapid-key <key>[\s\S]*--ca <file>/],
      [['ua', 'listen', '--help'], /SIGINT[\s\S]*--state <file>/],
      [['ua', 'unsubscribe', '--help'], /--endpoint <url>/],
    ];
    const results = await Promise.all(cases.map(([args]) => run(args)));
    results.forEach((r, i) => {
      assert.equal(r.status, 0, cases[i]![0].join(' '));
      assert.match(r.stdout, cases[i]![1]);
    });
  });
});

describe('ua over RFC 8030 (--protocol http2)', () => {
  test('subscribe --protocol http2 + listen: the exact text sent by web-push, both encodings; a second subscribe joins the set', async () => {
    const state = join(dir, 'http2.json');
    const sub = await subscribe(state, '--protocol', 'http2', '--vapid-key', vapidKeys.publicKey);
    assert.deepEqual(Object.keys(sub), ['endpoint', 'expirationTime', 'keys']);
    assert.ok(sub.endpoint.startsWith(`${server.url}/`), sub.endpoint);
    assert.equal(statSync(state).mode & 0o777, 0o600);
    const saved = JSON.parse(readFileSync(state, 'utf8')) as { protocol: string; subscriptions: { subscriptionUrl: string; setUrl: string }[] };
    assert.equal(saved.protocol, 'http2');
    assert.ok(saved.subscriptions[0]!.subscriptionUrl.startsWith(`${server.url}/`));

    const l = listen(['--state', state]);
    const connected = await l.event('connected');
    assert.equal(connected.protocol, 'http2');
    assert.equal(connected.url, `${server.url}/`);
    for (const encoding of ['aes128gcm', 'aesgcm'] as const) {
      assert.equal(await send(sub, TEXT, encoding), 201);
      const m = await l.next();
      assert.deepEqual(Object.keys(m), ['channelID', 'endpoint', 'version', 'text']);
      assert.equal(m.text, TEXT, encoding);
      assert.equal(m.endpoint, sub.endpoint);
    }

    // the protocol comes from the state file; the new subscription joins the set the listener receives
    const second = await subscribe(state);
    const both = JSON.parse(readFileSync(state, 'utf8')) as typeof saved;
    assert.equal(both.subscriptions.length, 2);
    assert.equal(both.subscriptions[1]!.setUrl, both.subscriptions[0]!.setUrl);
    assert.equal(await send(second, 'to the second'), 201);
    const m2 = await l.next();
    assert.equal(m2.text, 'to the second');
    assert.equal(m2.endpoint, second.endpoint);

    l.proc.kill('SIGINT');
    assert.deepEqual(await l.exited, { code: 0, signal: null });
    assert.equal(l.out.length, 3, 'stdout holds only the messages');
    for (const line of l.err) assert.doesNotThrow(() => JSON.parse(line), `stderr line is JSON: ${line}`);

    const r = await run(['ua', 'unsubscribe', '--state', state, '--endpoint', second.endpoint]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await send(second, 'gone'), 410);
  });

  test('listen --urgency high: a low message waits until a listener takes all', async () => {
    const state = join(dir, 'http2-urgency.json');
    const sub = await subscribe(state, '--protocol', 'http2');
    const l = listen(['--state', state, '--urgency', 'high']);
    await l.event('connected');
    assert.equal(await send(sub, 'low', 'aes128gcm', 'low'), 201);
    assert.equal(await send(sub, 'high', 'aes128gcm', 'high'), 201);
    assert.equal((await l.next()).text, 'high');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(l.out.length, 1, 'the low message waits');
    l.proc.kill('SIGINT');
    assert.equal((await l.exited).code, 0);

    const all = listen(['--state', state]);
    assert.equal((await all.next()).text, 'low');
    all.proc.kill('SIGINT');
    assert.equal((await all.exited).code, 0);
  });

  test('protocol and urgency errors; --help names the options', async () => {
    const ws = join(dir, 'ws-for-urgency.json');
    await subscribe(ws);
    const [urgency, mismatch, badProtocol, badUrgency, helpSub, helpListen] = await Promise.all([
      run(['ua', 'listen', '--state', ws, '--urgency', 'high']),
      run(['ua', 'listen', '--state', ws, '--protocol', 'http2']),
      run(['ua', 'subscribe', '--state', join(dir, 'never.json'), '--server', server.url, '--protocol', 'spdy']),
      run(['ua', 'listen', '--state', ws, '--urgency', 'urgent']),
      run(['ua', 'subscribe', '--help']),
      run(['ua', 'listen', '--help']),
    ]);
    assert.equal(urgency.status, 1);
    assert.match(urgency.stderr, /urgency needs protocol http2/);
    assert.equal(mismatch.status, 1);
    assert.match(mismatch.stderr, /is for protocol websocket, not http2/);
    assert.equal(badProtocol.status, 1);
    assert.match(badProtocol.stderr, /--protocol/);
    assert.equal(badUrgency.status, 1);
    assert.match(badUrgency.stderr, /--urgency/);
    for (const r of [urgency, mismatch, badProtocol, badUrgency]) {
      assert.equal(r.stdout, '');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.match(helpSub.stdout, /--protocol <protocol>[\s\S]*http2/);
    assert.match(helpListen.stdout, /--urgency <level>[\s\S]*--ca <file>/);
  });
});
