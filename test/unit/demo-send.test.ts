// parseSend (src/web/demo.ts): the demo application server sends only to push URLs of this
// service, judged on the URL as it will be requested (normalised), never on the raw string.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseSend } from '../../src/web/demo.ts';

const BASE = 'http://127.0.0.1:8080';
const PREFIX = `${BASE}/wpush/`;
const keys = { p256dh: 'BKey', auth: 'auth' };
const send = (endpoint: string) => parseSend(Buffer.from(JSON.stringify({ subscription: { endpoint, keys } })), PREFIX);

/** Path pieces that normalise away, or to other paths, or stay. */
const segment = fc.constantFrom('..', '.', '%2e%2e', '%2E.', '.%2e', 'v1', 'v2', 'subscribe', 'demo', 'send', 'health', 'abc_-9', '%2f', '', '?x=1', '#f');
const separator = fc.constantFrom('/', '\\', '//');
const endpoint = fc
  .tuple(fc.constantFrom(PREFIX, `${BASE}/`, `${BASE}/wpush`, 'http://127.0.0.1.evil.example:8080/wpush/', 'http://127.0.0.1:8080@evil.example/wpush/', 'http://x@127.0.0.1:8080/wpush/'), fc.array(fc.tuple(segment, separator), { maxLength: 6 }), segment)
  .map(([start, parts, last]) => start + parts.map(([s, sep]) => s + sep).join('') + last);

test('accepted: exactly the URLs that are, once normalised, this service\'s push URL prefix + version + token', () => {
  fc.assert(
    fc.property(endpoint, (raw) => {
      const parsed = send(raw);
      const href = new URL(raw).href;
      const isPushUrl = href.startsWith(PREFIX) && /^v[12]\/[A-Za-z0-9_-]+$/.test(href.slice(PREFIX.length));
      if (typeof parsed === 'string') {
        assert.ok(!isPushUrl, `${raw} refused: ${parsed}`);
        return;
      }
      assert.ok(isPushUrl, `${raw} accepted, but it requests ${href}`);
      assert.equal(parsed.subscription.endpoint, href, 'the URL checked is the URL requested');
    }),
    { numRuns: 2000 },
  );
});

test('the forms that pass a prefix check on the raw string but leave /wpush/', () => {
  for (const raw of [`${PREFIX}../subscribe`, `${PREFIX}%2e%2e/demo/send`, `${PREFIX}v1/../../health`, `${BASE}/wpush\\..\\subscribe`]) {
    assert.match(String(send(raw)), /Only endpoints of this push service/, raw);
  }
  const ok = send(`${PREFIX}v2/abc`);
  assert.ok(typeof ok !== 'string' && ok.subscription.endpoint === `${PREFIX}v2/abc`);
});
