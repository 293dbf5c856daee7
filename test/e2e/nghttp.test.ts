// An independent HTTP/2 client drives the RFC 8030 resources: nghttp (nghttp2-client), h2c by
// prior knowledge. Its verbose output shows the frames: the PUSH_PROMISEs with the message
// paths, the promised responses, and the answers to subscribe, acknowledge and receipts.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { generateVapidKeys } from '../../src/vapid/sign.ts';
import { H2Client, REL_PUSH, REL_RECEIPT, REL_SET, links } from '../helpers/h2-client.ts';
import { skipUnlessInstalled } from '../helpers/required-tool.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { aes128gcmBody } from '../helpers/bodies.ts';

const skip = skipUnlessInstalled(spawnSync('nghttp', ['--version']).error === undefined, 'nghttp is not installed (apt-get install nghttp2-client)');

/** The parts of `nghttp -v` output the tests look at. */
interface Trace {
  /** Response header fields by stream id (`recv (stream_id=N) name: value`). */
  headers: Map<number, [string, string][]>;
  /** Each PUSH_PROMISE: the promised stream and the promised request's :path. */
  promises: { stream: number; path: string }[];
  /** The stream of the request (nghttp 1.52 opens 13, after its PRIORITY placeholders). */
  request: number;
  text: string;
}

async function nghttp(args: string[]): Promise<Trace> {
  const { stdout } = await promisify(execFile)('nghttp', ['-v', '-t', '10', ...args], { encoding: 'utf8' });
  const headers = new Map<number, [string, string][]>();
  const promises: Trace['promises'] = [];
  let pending: [string, string][] = [];
  let pendingStream = -1;
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const field = /^\[[ \d.]+\] recv \(stream_id=(\d+)\) ([^:]*|:[a-z]+): (.*)$/.exec(line);
    if (field) {
      const stream = Number(field[1]);
      if (stream !== pendingStream) pending = [];
      pendingStream = stream;
      pending.push([field[2]!, field[3]!]);
      continue;
    }
    const frame = /^\[[ \d.]+\] recv (HEADERS|PUSH_PROMISE) frame .*stream_id=(\d+)>/.exec(line);
    if (!frame) continue;
    if (frame[1] === 'PUSH_PROMISE') {
      const promised = Number(/promised_stream_id=(\d+)/.exec(lines[i + 2] ?? '')?.[1]);
      promises.push({ stream: promised, path: pending.find(([k]) => k === ':path')?.[1] ?? '' });
    } else {
      headers.set(Number(frame[2]), pending);
    }
    pending = [];
    pendingStream = -1;
  }
  const request = Number(/send HEADERS frame <[^>]*stream_id=(\d+)>/.exec(stdout)?.[1]);
  return { headers, promises, request, text: stdout };
}

const field = (t: Trace, stream: number, name: string): string[] =>
  (t.headers.get(stream) ?? []).filter(([k]) => k === name).map(([, v]) => v);
const statusOf = (t: Trace): number => Number(field(t, t.request, ':status')[0]);

let server: ServerProcess;
let dir: string;
before(async () => {
  if (skip) return;
  server = await startServerProcess();
  dir = mkdtempSync(join(tmpdir(), 'webpushd-nghttp-'));
});
after(async () => {
  if (skip) return;
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('nghttp: subscribe, monitor a set with PUSH_PROMISE, acknowledge, receipts', { skip }, async () => {
  // subscribe with a body (nghttp -d makes it a POST): a restricted subscription
  const options = join(dir, 'options.json');
  writeFileSync(options, JSON.stringify({ vapid: generateVapidKeys().publicKey }));
  const restricted = await nghttp(['-d', options, '-H', 'content-type: application/webpush-options+json', `${server.url}/subscribe`]);
  assert.equal(statusOf(restricted), 201, restricted.text);
  const [location] = field(restricted, restricted.request, 'location');
  assert.match(location!, new RegExp(`^${server.url}/s/[A-Za-z0-9_-]+$`));
  const restrictedLinks = links(field(restricted, restricted.request, 'link'));
  assert.equal(field(restricted, restricted.request, 'link').length, 2, 'one link field per relation');
  assert.match(restrictedLinks.get(REL_PUSH)!, /\/wpush\/v2\//);
  const set = restrictedLinks.get(REL_SET)!;

  // a second subscription of the same set, by :method POST with a Link
  const empty = join(dir, 'empty');
  writeFileSync(empty, '');
  const joined = await nghttp(['-d', empty, '-H', `link: <${set}>; rel="${REL_SET}"`, `${server.url}/subscribe`]);
  assert.equal(statusOf(joined), 201, joined.text);
  const joinedLinks = links(field(joined, joined.request, 'link'));
  assert.equal(joinedLinks.get(REL_SET), set);
  const push = joinedLinks.get(REL_PUSH)!;
  const subscription = field(joined, joined.request, 'location')[0]!;

  const app = await H2Client.connect(server.url);
  const sent = [];
  for (const [marker, headers] of [
    ['first', {}],
    ['second', { prefer: 'respond-async' }],
  ] as const) {
    const r = await app.send(push, { body: aes128gcmBody(marker), headers });
    sent.push(r);
  }
  assert.deepEqual(sent.map((r) => r.status), [201, 202]);
  const locations = sent.map((r) => String(r.headers.location));

  // GET the set with Prefer: wait=0: one PUSH_PROMISE per message, promised 200s, then 200
  const monitor = await nghttp(['-n', '-H', 'prefer: wait=0', set]);
  assert.deepEqual(
    monitor.promises.map((p) => p.path),
    locations.map((l) => new URL(l).pathname),
    monitor.text,
  );
  for (const p of monitor.promises) {
    assert.equal(p.stream % 2, 0, 'server-initiated streams');
    assert.deepEqual(field(monitor, p.stream, ':status'), ['200']);
    assert.deepEqual(field(monitor, p.stream, 'content-type'), ['application/octet-stream']);
    assert.deepEqual(field(monitor, p.stream, 'content-encoding'), ['aes128gcm']);
    assert.deepEqual(field(monitor, p.stream, 'link'), [`<${push}>; rel="${REL_PUSH}"`]);
    assert.equal(field(monitor, p.stream, 'last-modified').length, 1);
  }
  assert.equal(statusOf(monitor), 200);
  assert.match(monitor.text, /recv PUSH_PROMISE frame/);

  // acknowledge the second one with DELETE
  const ack = await nghttp(['-H', ':method: DELETE', locations[1]!]);
  assert.equal(statusOf(ack), 204, ack.text);

  // the subscription's GET now pushes only the first; nothing left for the other subscription
  const again = await nghttp(['-n', '-H', 'prefer: wait=0', subscription]);
  assert.deepEqual(again.promises.map((p) => p.path), [new URL(locations[0]!).pathname]);
  const none = await nghttp(['-n', '-H', 'prefer: wait=0', location!]);
  assert.equal(statusOf(none), 204);
  assert.equal(none.promises.length, 0);

  // the receipt: a PUSH_PROMISE for the message URL, promised 204
  const receipts = await nghttp(['-n', '-H', 'prefer: wait=0', links(sent[1]!.headers.link).get(REL_RECEIPT)!]);
  assert.deepEqual(receipts.promises.map((p) => p.path), [new URL(locations[1]!).pathname], receipts.text);
  assert.deepEqual(field(receipts, receipts.promises[0]!.stream, ':status'), ['204']);
  assert.equal(statusOf(receipts), 200);

  // HTTP/1.1 cannot monitor (no keep-alive: it would hold the server's shutdown)
  const h1 = await fetch(subscription, { headers: { connection: 'close' } });
  assert.equal(h1.status, 400);
  await h1.text();
  await app.close();
});
