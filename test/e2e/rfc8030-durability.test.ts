// RFC 8030 state survives kill -9: stored messages of an HTTP/2 subscription, the receipt a
// message asked for, and every URL (subscription, push, message, receipt subscription).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { H2Client, REL_RECEIPT, links } from '../helpers/h2-client.ts';
import { startServerProcess } from '../helpers/server-process.ts';
import { aes128gcmBody, markerOf as bodyMarker } from '../helpers/bodies.ts';

test('messages and receipts survive kill -9; after restart the ack gives the receipt', async () => {
  const first = await startServerProcess();
  const c = await H2Client.connect(first.url);
  const sub = await c.subscribe();
  const plain = await c.send(sub.push, { body: aes128gcmBody('plain'), headers: { ttl: '600' } });
  assert.equal(plain.status, 201);
  const asked = await c.send(sub.push, { body: aes128gcmBody('receipt'), headers: { ttl: '600', prefer: 'respond-async' } });
  assert.equal(asked.status, 202);
  const receiptsUrl = links(asked.headers.link).get(REL_RECEIPT)!;
  assert.ok(receiptsUrl);
  c.session.destroy();
  await first.kill9();

  const second = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  try {
    const ua = await H2Client.connect(second.url);
    const monitor = ua.monitor(sub.url, { prefer: 'wait=0' });
    const pushed = await monitor.take(2);
    assert.deepEqual(
      pushed.map((p) => [p.url, bodyMarker(p.body)]),
      [
        [plain.headers.location, 'plain'],
        [asked.headers.location, 'receipt'],
      ],
    );
    assert.equal((await monitor.done).status, 200);

    const app = await H2Client.connect(second.url);
    const receipts = app.monitor(receiptsUrl);
    await receipts.quiet(200);
    for (const p of pushed) assert.equal(await ua.ack(p.url), 204);
    const receipt = await receipts.next();
    assert.deepEqual([receipt.url, receipt.status], [asked.headers.location, 204]);
    await receipts.quiet(200);
    receipts.close();
    await Promise.all([ua.close(), app.close()]);
  } finally {
    await second.stop();
  }
  assert.equal(second.proc.exitCode, 0, second.output());
});

test('a queued receipt survives kill -9 too', async () => {
  const first = await startServerProcess();
  const c = await H2Client.connect(first.url);
  const sub = await c.subscribe();
  const sent = await c.send(sub.push, { body: aes128gcmBody('x'), headers: { prefer: 'respond-async' } });
  const monitor = c.monitor(sub.url, { prefer: 'wait=0' });
  assert.equal(await c.ack((await monitor.next()).url), 204);
  c.session.destroy();
  await first.kill9();

  const second = await startServerProcess({ dataDir: first.dataDir, port: first.port });
  try {
    const app = await H2Client.connect(second.url);
    const receipts = app.monitor(links(sent.headers.link).get(REL_RECEIPT)!, { prefer: 'wait=0' });
    const r = await receipts.next();
    assert.deepEqual([r.url, r.status], [sent.headers.location, 204]);
    assert.equal((await receipts.done).status, 200);
    await app.close();
  } finally {
    await second.stop();
  }
});

test('SIGTERM with monitors open: GOAWAY to the user agent, a clean and quick exit', async () => {
  const server = await startServerProcess();
  const c = await H2Client.connect(server.url);
  const sub = await c.subscribe();
  const sent = await c.send(sub.push, { body: aes128gcmBody('x'), headers: { prefer: 'respond-async' } });
  const monitor = c.monitor(sub.url);
  const receipts = c.monitor(links(sent.headers.link).get(REL_RECEIPT)!);
  await monitor.next();
  let goaway: number | undefined;
  c.session.on('goaway', (code) => (goaway = code));
  const started = Date.now();
  await server.stop();
  assert.equal(server.proc.exitCode, 0, server.output());
  assert.ok(Date.now() - started < 3000, `stopped in ${Date.now() - started} ms`);
  assert.equal(goaway, 0, 'GOAWAY NO_ERROR');
  assert.equal((await monitor.done).status, 0);
  assert.equal((await receipts.done).status, 0);
});
