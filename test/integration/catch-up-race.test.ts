// With a store whose reads take time (Redis, a worker thread), a message can be committed while a
// session reads its stored backlog: it is neither in what was read nor sent live (the session is
// still catching up). The session must read again before going live, so nothing waits for the
// next connection.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { aes128gcmBody, markerOf } from '../helpers/bodies.ts';
import { startTestServer } from '../helpers/server.ts';
import { TestUserAgent } from '../helpers/ua-client.ts';

test('a message committed while the backlog is read is delivered on the same connection, in order', async () => {
  const s = await startTestServer();
  try {
    const first = await TestUserAgent.connect(s.wsUrl);
    const uaid = await first.hello();
    const channelID = randomUUID();
    const endpoint = String((await first.register(channelID)).pushEndpoint);
    await first.close();
    const push = async (marker: string) => {
      const res = await fetch(endpoint, { method: 'POST', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody(marker) });
      await res.arrayBuffer();
      assert.equal(res.status, 201);
    };
    await push('stored');

    // the store's read of the backlog is slow, and a message is committed meanwhile
    const store = s.store as unknown as { pendingMessages: (...args: unknown[]) => Promise<unknown[]> };
    const read = store.pendingMessages.bind(store);
    let raced = false;
    store.pendingMessages = async (...args: unknown[]) => {
      const result = await read(...args);
      if (!raced) {
        raced = true;
        await push('during-read');
      }
      return result;
    };
    const again = await TestUserAgent.connect(s.wsUrl);
    await again.hello(uaid);
    const got = [];
    for (let i = 0; i < 2; i++) got.push(markerOf(Buffer.from(String((await again.next('notification', 3000)).data), 'base64url')));
    assert.deepEqual(got, ['stored', 'during-read']);
    await push('live');
    assert.equal(markerOf(Buffer.from(String((await again.next('notification', 3000)).data), 'base64url')), 'live');
    await again.close();
  } finally {
    await s.close();
  }
});
