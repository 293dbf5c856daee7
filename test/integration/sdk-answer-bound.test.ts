// The SDK's transport against a push service that never ends its answer: past the body bound it
// stops reading and answers with what it has (truncated), over HTTP/1.1 and HTTP/2 alike.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Transport } from '../../src/sdk/transport.ts';
import { createTestCertificate, type TestCertificate } from '../helpers/tls.ts';

let cert: TestCertificate;
let server: http2.Http2SecureServer;
let url: URL;

before(async () => {
  cert = createTestCertificate();
  server = http2.createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true });
  server.on('request', (_req, res) => {
    res.writeHead(400, { 'content-type': 'application/json' });
    const chunk = 'x'.repeat(16 * 1024);
    const more = () => {
      // until the client goes: written as fast as it reads
      while (!res.destroyed && res.write(chunk));
      if (!res.destroyed) res.once('drain', more);
    };
    more();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/wpush/v1/x`);
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  cert.remove();
});

for (const http2On of [false, true]) {
  test(`${http2On ? 'HTTP/2' : 'HTTP/1.1'}: an endless answer is cut at maxResponseBytes and the request ends`, { timeout: 20_000 }, async () => {
    const transport = new Transport();
    try {
      const res = await transport.request({ url, headers: {}, body: null, timeoutMs: undefined, tls: { ca: cert.cert }, agent: undefined, http2: http2On, maxResponseBytes: 100_000 });
      assert.equal(res.statusCode, 400);
      assert.equal(res.httpVersion, http2On ? '2' : '1.1');
      assert.equal(res.truncated, true);
      assert.equal(res.body.length, 100_000);
    } finally {
      await transport.close();
    }
  });
}
