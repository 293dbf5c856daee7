// Messages answered 201 survive kill -9 of the server; the same data dir keeps every URL valid.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aes128gcmBody } from '../helpers/bodies.ts';
import { startServerProcess } from '../helpers/server-process.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

const CHANNEL = '9a1f0c52-7d3e-4b8a-a6c1-2f4e5d6c7b8a';

/** A server process and a user agent that registered CHANNEL and went offline. */
async function serverWithOfflineUserAgent() {
  const first = await startServerProcess();
  const wsUrl = `${first.url.replace('http', 'ws')}/`;
  const ua = await TestUserAgent.connect(wsUrl);
  const uaid = await ua.hello();
  const { pushEndpoint } = await ua.register(CHANNEL);
  await ua.close();
  return { first, wsUrl, uaid, endpoint: (pushEndpoint as string).replace('localhost', '127.0.0.1') };
}

test('stored messages survive kill -9 and are delivered after restart, in order', async () => {
  const { first, wsUrl, uaid, endpoint } = await serverWithOfflineUserAgent();

  // Many concurrent sends land in a few group commits; each 201 must mean committed.
  const sends = Array.from({ length: 50 }, () =>
    fetch(endpoint, { method: 'POST', headers: { TTL: '600' } }),
  );
  const statuses = (await Promise.all(sends)).map((r) => r.status);
  assert.deepEqual(new Set(statuses), new Set([201]));
  await first.kill9();

  const second = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  try {
    const again = await TestUserAgent.connect(wsUrl);
    assert.equal(await again.hello(uaid), uaid, 'the uaid is still known');
    const versions: string[] = [];
    for (let i = 0; i < 50; i++) {
      const n = await again.next('notification');
      assert.equal(n.channelID, CHANNEL);
      versions.push(n.version as string);
      again.ack(CHANNEL, n.version as string);
    }
    assert.equal(new Set(versions).size, 50, 'every message exactly once');
    const ids = versions.map((v) => parseInt(v, 36));
    assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'in the order they were accepted');

    // The old push URL still works after the restart: the secret was kept in the data dir.
    const res = await fetch(endpoint, { method: 'POST', headers: { TTL: '60' } });
    assert.equal(res.status, 201);
    const live = await again.next('notification');
    assert.equal(live.channelID, CHANNEL);
    await again.close();
  } finally {
    await second.stop();
  }
});

test('SIGTERM stops the server cleanly and quickly', async () => {
  const server = await startServerProcess();
  const started = Date.now();
  await server.stop();
  assert.equal(server.proc.exitCode, 0, server.output());
  assert.ok(Date.now() - started < 5000);
  assert.match(server.output(), /"msg":"stopped"/);
});

test('SIGTERM does not wait for idle keep-alive clients', async () => {
  const server = await startServerProcess();
  const res = await fetch(`${server.url}/health`); // leaves an idle keep-alive connection open
  await res.text();
  const started = Date.now();
  await server.stop();
  assert.equal(server.proc.exitCode, 0, server.output());
  // the keep-alive timeout is 5 s: the connection must be ended, not waited out
  assert.ok(Date.now() - started < 2000, `stopped after ${Date.now() - started} ms`);
});

test('graceful shutdown under load: every message answered 201 is delivered after the restart', async () => {
  const { first, wsUrl, uaid, endpoint } = await serverWithOfflineUserAgent();

  // Senders keep sends in flight until the server stops taking them. SIGTERM goes only once
  // MIN_ACCEPTED were answered 201: a shutdown that beat every send would prove nothing (0 = 0).
  const MIN_ACCEPTED = 20;
  const statuses: number[] = [];
  let accepted = 0;
  let signalled = false;
  const sender = async () => {
    for (;;) {
      const status = await fetch(endpoint, { method: 'POST', headers: { TTL: '600', connection: 'close' } }).then(
        (r) => r.status,
        () => 0,
      );
      statuses.push(status);
      // refused or cut: the server is going
      if (status !== 201) return;
      if (++accepted >= MIN_ACCEPTED && !signalled) {
        signalled = true;
        first.proc.kill('SIGTERM');
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: 10 }, sender));
    assert.ok(signalled, `only ${accepted} sends answered 201 before the server refused (statuses: ${[...new Set(statuses)].join(', ')})`);
  } finally {
    await first.stop();
  }
  assert.equal(first.proc.exitCode, 0, first.output());

  const second = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  try {
    const again = await TestUserAgent.connect(wsUrl);
    assert.equal(await again.hello(uaid), uaid);
    // a marked message sent now comes after every stored one (ids are in order): it ends the count
    const fence = await fetch(endpoint, { method: 'POST', headers: { TTL: '600', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody('fence') });
    assert.equal(fence.status, 201);
    let received = 0;
    for (;;) {
      const n = await again.next('notification', 10_000);
      again.ack(CHANNEL, n.version as string);
      if (n.data !== undefined) break;
      received++;
    }
    assert.equal(received, accepted, `${accepted} answered 201 (statuses: ${[...new Set(statuses)].join(', ')})`);
    await again.close();
  } finally {
    await second.stop();
  }
});

test('a second SIGTERM during shutdown does not kill the process: it still exits 0 after stopping', async () => {
  const { first } = await serverWithOfflineUserAgent();
  first.proc.kill('SIGTERM');
  while (!first.output().includes('shutting down')) await new Promise((r) => setTimeout(r, 1));
  first.proc.kill('SIGTERM');
  await first.stop();
  assert.equal(first.proc.signalCode, null, first.output());
  assert.equal(first.proc.exitCode, 0, first.output());
  assert.match(first.output(), /"msg":"stopped"/);
});
