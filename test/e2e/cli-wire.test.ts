// The console that shows the wire, and user agents that acknowledge by hand: `ua subscribe|listen
// --trace` over RFC 8030 (h2c) and WebSocket, secrets shortened unless --trace-secrets;
// `ua listen --nowait` exits once drained; `--no-ack` leaves messages at the service until
// `webpushd ack --url`. Child processes of the checkout's CLI against an in-process webpushd.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PushClient } from '../../src/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

const BIN = new URL('../../bin/webpushd', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

const lines = (text: string) => (text.trim() === '' ? [] : text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>));
const traces = (run: Run, event: string) => lines(run.stderr).filter((l) => l.trace === event);

let dir: string;
let server: TestServer;
const client = new PushClient();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'webpushd-cli-wire-'));
  server = await startTestServer();
});

after(async () => {
  await client.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('RFC 8030 (h2c): --trace, --nowait, --no-ack, ack', () => {
  test('subscribe --trace shows the POST and its 201 with shortened URLs', async () => {
    const state = join(dir, 'h2.json');
    const run = await cli(['ua', 'subscribe', '--protocol', 'http2', '--server', server.url, '--state', state, '--trace']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(traces(run, 'connect')[0]?.protocol, 'h2c');
    const post = traces(run, 'request').find((r) => (r.headers as Record<string, string>)[':method'] === 'POST')!;
    assert.equal((post.headers as Record<string, string>)[':path'], '/subscribe');
    const answer = traces(run, 'response').find((r) => r.stream === post.stream)!;
    const h = answer.headers as Record<string, unknown>;
    assert.equal(h[':status'], 201);
    assert.match(String(h.location), /\/s\/[A-Za-z0-9_-]{8}…$/);
    assert.ok(!run.stderr.includes((lines(run.stdout)[0]!.endpoint as string).split('/').at(-1)!), 'the push token is not in the trace');
  });

  test('listen --nowait --no-ack prints what waits and exits; the same again until `ack --url`', async () => {
    const state = join(dir, 'h2.json');
    const sub = JSON.parse(readFileSync(state, 'utf8')) as { subscriptions: { endpoint: string; keys: { p256dh: string; auth: string } }[] };
    const subscription = sub.subscriptions[0]!;
    for (const text of ['one', 'two']) await client.sendNotification(subscription, text, { TTL: 600 });

    const first = await cli(['ua', 'listen', '--state', state, '--nowait', '--no-ack', '--trace']);
    assert.equal(first.code, 0, first.stderr);
    const got = lines(first.stdout);
    assert.deepEqual(got.map((m) => m.text), ['one', 'two']);
    const get = traces(first, 'request').find((r) => (r.headers as Record<string, string>)[':method'] === 'GET')!;
    assert.equal((get.headers as Record<string, string>).prefer, 'wait=0');
    const promises = traces(first, 'push_promise');
    assert.equal(promises.length, 2);
    for (const p of promises) {
      assert.equal(typeof p.promised, 'number');
      assert.match(String((p.headers as Record<string, string>)[':path']), /^\/m\/[A-Za-z0-9_-]{8}…$/);
    }
    assert.ok(traces(first, 'data').some((d) => typeof d.received === 'number' && d.received > 0), 'DATA lengths of the pushed bodies');
    assert.ok(!traces(first, 'request').some((r) => (r.headers as Record<string, string>)[':method'] === 'DELETE'), '--no-ack: no DELETE');
    assert.ok(lines(first.stderr).some((l) => l.event === 'stopping' && l.drained === true));

    const again = await cli(['ua', 'listen', '--state', state, '--nowait', '--no-ack']);
    assert.deepEqual(lines(again.stdout).map((m) => m.text), ['one', 'two'], 'not acknowledged: they wait still');

    const ack = await cli(['ack', '--url', got[0]!.version as string]);
    assert.equal(ack.code, 0, ack.stderr);
    assert.deepEqual(lines(ack.stdout), [{ acknowledged: true }]);
    const twice = await cli(['ack', '--url', got[0]!.version as string]);
    assert.equal(twice.code, 1);
    assert.equal(lines(twice.stdout)[0]!.statusCode, 410);

    const rest = await cli(['ua', 'listen', '--state', state, '--nowait']);
    assert.equal(rest.code, 0, rest.stderr);
    assert.deepEqual(lines(rest.stdout).map((m) => m.text), ['two'], 'the acknowledged one is gone; this one is acknowledged now');
    const none = await cli(['ua', 'listen', '--state', state, '--nowait']);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual(lines(none.stdout), []);
  });
});

describe('WebSocket: --trace shows every frame', () => {
  test('hello and register frames, the uaid shortened; --trace-secrets shows it whole; --nowait is refused', async () => {
    const state = join(dir, 'ws.json');
    const run = await cli(['ua', 'subscribe', '--server', server.wsUrl, '--state', state, '--trace']);
    assert.equal(run.code, 0, run.stderr);
    const frames = traces(run, 'frame');
    const sent = frames.filter((f) => f.sent).map((f) => (f.sent as Record<string, unknown>).messageType);
    const received = frames.filter((f) => f.received).map((f) => (f.received as Record<string, unknown>).messageType);
    assert.deepEqual(sent.slice(0, 2), ['hello', 'register']);
    assert.deepEqual(received.slice(0, 2), ['hello', 'register']);
    const { uaid } = JSON.parse(readFileSync(state, 'utf8')) as { uaid: string };
    const hello = frames.find((f) => f.received && (f.received as Record<string, unknown>).messageType === 'hello')!;
    assert.equal((hello.received as Record<string, unknown>).uaid, `${uaid.slice(0, 8)}…`);
    assert.equal(traces(run, 'response')[0]?.status, 101);
    assert.ok(!JSON.stringify(lines(run.stderr).filter((l) => l.trace)).includes(uaid), 'the uaid is in no trace line');

    const whole = await cli(['ua', 'subscribe', '--state', state, '--trace-secrets']);
    assert.equal(whole.code, 0, whole.stderr);
    assert.ok(traces(whole, 'frame').some((f) => (f.sent as Record<string, unknown> | undefined)?.uaid === uaid), 'the hello names the uaid whole');

    const nowait = await cli(['ua', 'listen', '--state', state, '--nowait']);
    assert.equal(nowait.code, 1);
    assert.match(nowait.stderr, /nowait needs protocol http2/);
  });
});
