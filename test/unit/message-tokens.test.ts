// Message tokens (src/tokens/capabilities.ts): a stored message has one URL; a TTL 0 message
// (no row, numbered <= 0 by the pipeline) has one of its own too, unlike any other message's,
// even across a restart, and it opens as id 0: it names nothing DELETE could remove.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { Capabilities } from '../../src/tokens/capabilities.ts';
import { Sealer } from '../../src/tokens/sealer.ts';

const secret = randomBytes(32);
const uaid = randomBytes(16);
const chid = randomBytes(16);

test('TTL 0 messages: one URL each (the same for the same message), none alike, opening as id 0', () => {
  const caps = new Capabilities(new Sealer([secret]));
  const seen = new Set<string>();
  for (let n = 0; n >= -200; n--) {
    const token = caps.messageToken({ uaid, chid, id: n });
    assert.equal(caps.messageToken({ uaid, chid, id: n }), token, 'the Location and the PUSH_PROMISE agree');
    assert.ok(!seen.has(token), `message ${n} shares a URL with another`);
    seen.add(token);
    const ref = caps.openMessageToken(token)!;
    assert.equal(ref.id, 0);
    assert.ok(ref.uaid.equals(uaid) && ref.chid.equals(chid));
  }
});

test('after a restart (same secret) the numbers repeat, the URLs do not; they still open', () => {
  const before = new Capabilities(new Sealer([secret]));
  const after = new Capabilities(new Sealer([secret]));
  for (const n of [0, -1, -2]) {
    const token = after.messageToken({ uaid, chid, id: n });
    assert.notEqual(token, before.messageToken({ uaid, chid, id: n }));
    assert.equal(before.openMessageToken(token)?.id, 0);
  }
});

test('stored messages keep their id and one URL', () => {
  const caps = new Capabilities(new Sealer([secret]));
  fc.assert(
    fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (id) => {
      const token = caps.messageToken({ uaid, chid, id });
      assert.equal(caps.messageToken({ uaid, chid, id }), token);
      assert.equal(caps.openMessageToken(token)?.id, id);
    }),
  );
});
