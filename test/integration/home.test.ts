// GET / on the public port names the service: JSON for tools, a small page for a browser, each
// with the dom.push.serverURL that makes Firefox use it and the demo's link while it is on.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { startTestServer } from '../helpers/server.ts';

test('GET / names the service and links the demo while it is on', async () => {
  for (const demo of ['on', 'off'] as const) {
    const server = await startTestServer({ demo });
    try {
      const res = await fetch(`${server.url}/`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/json');
      const info = (await res.json()) as Record<string, unknown>;
      assert.equal(info.service, 'webpushd');
      assert.deepEqual(info.firefox, { 'dom.push.serverURL': server.wsUrl });
      assert.equal(info.pushUrls, `${server.url}/wpush/`);
      assert.equal(info.demo, demo === 'on' ? `${server.url}/demo/` : undefined);

      const page = await fetch(`${server.url}/`, { headers: { accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.8' } });
      assert.equal(page.status, 200);
      assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      const html = await page.text();
      assert.match(html, /<h1>webpushd<\/h1>/);
      assert.ok(html.includes(`<code>${server.wsUrl}</code>`), html);
      assert.equal(html.includes('<a href="/demo/">'), demo === 'on');

      const post = await fetch(`${server.url}/`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.equal(post.headers.get('allow'), 'GET, HEAD');
    } finally {
      await server.close();
      rmSync(server.dataDir, { recursive: true, force: true });
    }
  }
});
