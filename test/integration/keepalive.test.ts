// Server pings with a pong timeout under one wheel tick: the pong deadline is scheduled from
// inside the ping deadline's handler, in the tick being run, and must still fire.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';
import { within } from '../helpers/wait.ts';

const TICK_MS = 1000; // the deadline wheel's
const PONG_TIMEOUT_MS = 100;

let server: TestServer;
before(async () => {
  server = await startTestServer({ pingIntervalMs: 1000, pongTimeoutMs: PONG_TIMEOUT_MS });
});
after(() => server.close());

test('a user agent that never answers pings is cut within about a tick after its pong deadline; one that answers stays', async () => {
  const good = await TestUserAgent.connect(server.wsUrl);
  await good.hello();
  let goodPings = 0;
  good.ws.on('ping', () => goodPings++);

  const mute = new WebSocket(server.wsUrl, ['push-notification'], { autoPong: false });
  mute.on('error', () => {});
  let pingedAt = 0;
  mute.once('ping', () => (pingedAt = performance.now()));
  const closed = new Promise<number>((resolve) => mute.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    mute.once('open', () => resolve());
    mute.once('error', reject);
  });
  const hello = new Promise<void>((resolve) => mute.once('message', () => resolve()));
  mute.send(JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: {} }));
  await within(hello, 'the hello reply', 5000);

  const code = await within(closed, 'the mute user agent cut', 10_000);
  const cutAfter = performance.now() - pingedAt;
  assert.ok(pingedAt > 0, 'it was pinged');
  assert.equal(code, 1006, 'cut without a close handshake (the peer is gone)');
  // its pong deadline plus at most one tick, and room for a busy machine
  assert.ok(cutAfter <= PONG_TIMEOUT_MS + TICK_MS + 1500, `cut ${cutAfter.toFixed(0)} ms after the ping`);

  assert.ok(goodPings >= 1);
  good.send({});
  assert.deepEqual(await good.next(), {}, 'the answering user agent is still connected');
  await good.close();
});
