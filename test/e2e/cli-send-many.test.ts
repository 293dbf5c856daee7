// `webpushd send --subscriptions FILE` against a webpushd process over HTTPS: 1,000
// subscriptions of 50 user agents (JSON lines), one unsubscribed and one with broken keys; a
// line per subscription, the summary, exit 1 for the refused ones, every message decrypted by
// its user agent. Then a JSON array file with --receipt and --trace, and `receipts listen` /
// `cancel` on what it printed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomUUID, type ECDH } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decryptMessage } from '../../src/crypto/webpush.ts';
import { createSubscriberKeys, privateKeyOf } from '../helpers/decrypt.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { until, within } from '../helpers/wait.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;
const AGENTS = 50;
const PER_AGENT = 20;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], timeout = 30_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

interface Sub {
  ua: TestUserAgent;
  channelID: string;
  ecdh: ECDH;
  auth: string;
  json: { endpoint: string; keys: { p256dh: string; auth: string } };
}

let dir: string;
let cert: TestCertificate;
let server: ServerProcess;
const agents: TestUserAgent[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-send-many-'));
  cert = createTestCertificate();
  server = await startServerProcess({ scheme: 'https', args: ['--tls-cert', cert.certFile, '--tls-key', cert.keyFile] });
  for (let i = 0; i < AGENTS; i++) {
    const ua = await TestUserAgent.connect(`${server.url.replace('https', 'wss')}/`, 'push-notification', { ca: cert.cert });
    await ua.hello();
    agents.push(ua);
  }
});

after(async () => {
  for (const ua of agents) await ua.close();
  await server?.stop();
  cert?.remove();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function subscribe(ua: TestUserAgent): Promise<Sub> {
  const channelID = randomUUID();
  const reply = await ua.register(channelID);
  assert.equal(reply.status, 200);
  const { ecdh, keys } = createSubscriberKeys();
  return { ua, channelID, ecdh, auth: keys.auth, json: { endpoint: reply.pushEndpoint as string, keys } };
}

function decrypt(sub: Sub, n: Record<string, unknown>): string {
  const h = n.headers as Record<string, string>;
  return decryptMessage(
    Buffer.from(n.data as string, 'base64url'),
    { encoding: h.encoding! },
    { publicKey: sub.ecdh.getPublicKey(), privateKey: privateKeyOf(sub.ecdh), auth: Buffer.from(sub.auth, 'base64url') },
  ).toString('utf8');
}

describe('webpushd send --subscriptions', () => {
  test(`${AGENTS * PER_AGENT} subscriptions of ${AGENTS} user agents (JSON lines): a line each, the summary, every message delivered`, async (t) => {
    const subs: Sub[] = [];
    for (const ua of agents) for (let i = 0; i < PER_AGENT; i++) subs.push(await subscribe(ua));
    const unsubscribed = subs[3]!;
    unsubscribed.ua.send({ messageType: 'unregister', channelID: unsubscribed.channelID });
    await unsubscribed.ua.next('unregister');
    const broken = subs[500]!;
    const file = join(dir, 'subs.jsonl');
    const json = subs.map((s) => (s === broken ? { ...s.json, keys: { ...s.json.keys, p256dh: 'AAAA' } } : s.json));
    writeFileSync(file, `${json.map((j) => JSON.stringify(j)).join('\n')}\n`);

    const started = Date.now();
    const run = await cli(['send', '--subscriptions', file, '--data', 'news for all', '--ttl', '600', '--ca', cert.certFile]);
    const ms = Date.now() - started;
    assert.equal(run.code, 1, `exit 1: two were refused\n${run.stderr}`);
    assert.equal(run.stderr, '', 'no progress bar when stderr is not a terminal');
    const out = lines(run.stdout);
    assert.equal(out.length, subs.length + 1);
    const summary = out.at(-1)!.summary as Record<string, number>;
    assert.deepEqual({ ...summary, seconds: undefined }, { total: 1000, sent: 998, gone: 1, failed: 1, seconds: undefined });
    assert.ok(summary.seconds! > 0 && summary.seconds! * 1000 <= ms, String(summary.seconds));
    t.diagnostic(`sent in ${summary.seconds} s (the command ran ${ms} ms)`);
    const byIndex = new Map(out.slice(0, -1).map((l) => [l.index as number, l]));
    assert.equal(byIndex.size, subs.length, 'one line per subscription');
    assert.deepEqual(
      { ok: byIndex.get(3)!.ok, statusCode: byIndex.get(3)!.statusCode, gone: byIndex.get(3)!.gone, errno: (byIndex.get(3)!.body as { errno: number }).errno },
      { ok: false, statusCode: 410, gone: true, errno: 106 },
    );
    assert.equal(byIndex.get(500)!.ok, false);
    assert.match(String(byIndex.get(500)!.error), /p256dh/);
    for (const [i, l] of byIndex) {
      assert.equal(l.endpoint, subs[i]!.json.endpoint);
      if (i !== 3 && i !== 500) assert.match(String(l.location), /^https:\/\/127\.0\.0\.1:\d+\/m\//, `line ${i}`);
    }

    for (const ua of agents) {
      const mine = subs.filter((s) => s.ua === ua && s !== unsubscribed && s !== broken);
      for (let i = 0; i < mine.length; i++) {
        const n = await ua.next('notification');
        ua.ack(n.channelID as string, n.version as string);
        const sub = mine.find((s) => s.channelID === n.channelID)!;
        assert.equal(decrypt(sub, n), 'news for all');
      }
    }
  });

  test('a JSON array with --receipt and --trace; then receipts listen --nowait and cancel', async () => {
    const ua = agents[0]!;
    const subs = [await subscribe(ua), await subscribe(ua)];
    const file = join(dir, 'subs.json');
    writeFileSync(file, JSON.stringify(subs.map((s) => s.json)));
    const run = await cli(['send', '--subscriptions', file, '--ttl', '600', '--ca', cert.certFile, '--receipt', '--trace']);
    assert.equal(run.code, 0, run.stderr);
    const out = lines(run.stdout);
    assert.equal(out.length, 3);
    const receiptUrls = new Set(out.slice(0, 2).map((l) => l.receiptSubscription));
    assert.equal(receiptUrls.size, 1, 'one receipt subscription for both');
    const [receiptUrl] = [...receiptUrls] as [string];

    const trace = lines(run.stderr);
    const tls = trace.find((t) => t.trace === 'tls')!;
    assert.equal(tls.alpn, 'h2');
    const requests = trace.filter((t) => t.trace === 'request');
    assert.equal(requests.length, 2);
    const first = requests[0]!.headers as Record<string, string>;
    assert.equal(first.prefer, 'respond-async');
    assert.match(first[':path']!, /^\/wpush\/v1\/[A-Za-z0-9_-]{8}…$/, 'the push token is shortened');
    const second = requests[1]!.headers as Record<string, string>;
    assert.match(second.link!, /^<https:\/\/127\.0\.0\.1:\d+\/r\/[A-Za-z0-9_-]{8}…>; rel="urn:ietf:params:push:receipt"$/);
    const responses = trace.filter((t) => t.trace === 'response').map((t) => (t.headers as Record<string, unknown>)[':status']);
    assert.deepEqual(responses, [202, 202]);
    assert.ok(!run.stderr.includes(new URL(subs[0]!.json.endpoint).pathname), 'no whole push URL without --trace-secrets');

    // one message is cancelled, the other acknowledged: both receipts are 204
    const cancelled = out[0]!.location as string;
    const cancel = await cli(['cancel', '--location', cancelled, '--ca', cert.certFile]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.deepEqual(lines(cancel.stdout), [{ cancelled: true }]);
    const again = await cli(['cancel', '--location', cancelled, '--ca', cert.certFile]);
    assert.equal(again.code, 1);
    assert.deepEqual(lines(again.stdout)[0]!.statusCode, 410);
    for (let i = 0; i < 2; i++) {
      const n = await ua.next('notification');
      ua.ack(n.channelID as string, n.version as string);
    }
    let receipts: Record<string, unknown>[] = [];
    for (let tries = 0; receipts.length < 2 && tries < 20; tries++) {
      const listen = await cli(['receipts', 'listen', '--url', receiptUrl, '--nowait', '--ca', cert.certFile, '--trace-secrets']);
      assert.equal(listen.code, 0, listen.stderr);
      if (listen.stdout.trim() !== '') receipts = receipts.concat(lines(listen.stdout));
      if (receipts.length > 0) {
        const promise = lines(listen.stderr).find((t) => t.trace === 'push_promise')!;
        assert.equal(typeof promise.promised, 'number');
        assert.match(String((promise.headers as Record<string, string>)[':path']), /^\/m\/[A-Za-z0-9_-]{20,}$/, '--trace-secrets: whole paths');
      }
    }
    assert.deepEqual(
      new Set(receipts.map((r) => JSON.stringify([r.status, r.delivered]))),
      new Set([JSON.stringify([204, true])]),
    );
    assert.deepEqual(new Set(receipts.map((r) => r.message)), new Set(out.slice(0, 2).map((l) => l.location)));
  });

  test('receipts listen held open: prints a receipt as the message is acknowledged, exits 0 on SIGTERM', async () => {
    const ua = agents[2]!;
    const sub = await subscribe(ua);
    const sent = await cli(['send', '--subscription', JSON.stringify(sub.json), '--ttl', '600', '--ca', cert.certFile, '--receipt']);
    const { receiptSubscription, location } = lines(sent.stdout)[0] as { receiptSubscription: string; location: string };
    const n = await ua.next('notification');
    const proc = spawn(BIN, ['receipts', 'listen', '--url', receiptSubscription, '--ca', cert.certFile, '--trace'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await until(() => err.includes('"trace":"request"'), 'the GET sent', 15_000);
      ua.ack(n.channelID as string, n.version as string);
      await until(() => out.includes('\n'), 'the receipt printed', 5_000);
      assert.deepEqual(lines(out), [{ status: 204, delivered: true, message: location }]);
      const stopped = Date.now();
      proc.kill('SIGTERM');
      assert.equal(await within(exited, 'exit after SIGTERM', 3_000), 0);
      assert.ok(Date.now() - stopped < 1_000, 'the held-open GET does not keep it waiting');
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  test('receipts subscribe: one send makes the receipt subscription, printed, then its receipts as they come', async () => {
    const ua = agents[3]!;
    const sub = await subscribe(ua);
    const proc = spawn(BIN, ['receipts', 'subscribe', '--subscription', JSON.stringify(sub.json), '--ttl', '600', '--data', 'hi', '--ca', cert.certFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    try {
      await until(() => out.includes('\n'), 'the send printed', 15_000);
      const [sent] = lines(out) as [{ ok: boolean; statusCode: number; location: string; receiptSubscription: string }];
      assert.equal(sent.ok, true, err);
      assert.equal(sent.statusCode, 202);
      assert.match(sent.receiptSubscription, /^https:\/\/127\.0\.0\.1:\d+\/r\//);
      const n = await ua.next('notification');
      assert.equal(decrypt(sub, n), 'hi');
      // the listening GET may still be on its way: the receipt is queued for it either way
      ua.ack(n.channelID as string, n.version as string);
      await until(() => lines(out).length === 2, 'the receipt printed', 10_000);
      assert.deepEqual(lines(out)[1], { status: 204, delivered: true, message: sent.location });
      // the same receipt subscription takes further sends
      const again = await cli(['send', '--subscription', JSON.stringify(sub.json), '--ttl', '600', '--ca', cert.certFile, '--receipt', sent.receiptSubscription]);
      assert.equal(again.code, 0, again.stderr);
      const m = await ua.next('notification');
      ua.ack(m.channelID as string, m.version as string);
      await until(() => lines(out).length === 3, 'the second receipt printed', 10_000);
      assert.deepEqual(lines(out)[2], { status: 204, delivered: true, message: (lines(again.stdout)[0] as { location: string }).location });
      proc.kill('SIGTERM');
      assert.equal(await within(exited, 'exit after SIGTERM', 3_000), 0);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
  });

  test('on a terminal: a progress bar on stderr, cleared at the end', async (t) => {
    if (!existsSync('/usr/bin/script')) return t.skip('needs script(1) for a terminal');
    const ua = agents[1]!;
    const subs = [await subscribe(ua), await subscribe(ua), await subscribe(ua)];
    const file = join(dir, 'tty.json');
    writeFileSync(file, JSON.stringify(subs.map((s) => s.json)));
    const command = [BIN, 'send', '--subscriptions', file, '--ttl', '60', '--ca', cert.certFile].map((a) => `'${a}'`).join(' ');
    const run = await new Promise<Run>((resolve) =>
      execFile('/usr/bin/script', ['-qec', command, '/dev/null'], { timeout: 30_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
      ),
    );
    assert.equal(run.code, 0, run.stdout);
    assert.ok(run.stdout.includes(`\r[${'#'.repeat(30)}] 3/3 sent 3 gone 0 failed 0\r\x1b[K`), `the full bar, then cleared: ${JSON.stringify(run.stdout)}`);
    assert.match(run.stdout, /"summary":\{"total":3,"sent":3,"gone":0,"failed":0,/);
    for (let i = 0; i < 3; i++) await ua.next('notification');
  });
});
