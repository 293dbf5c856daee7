import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VapidSigner, generateVapidKeys, signVapidToken } from '../../src/vapid/sign.ts';
import { verifyVapidToken } from '../../src/vapid/verify.ts';
import type { VapidClaims } from '../../src/vapid/verify.ts';

const KEYS = generateVapidKeys();
const SUBJECT = 'mailto:ops@example.com';
const NOW = 1_700_000_000;
const ENDPOINT = 'https://push.example.net/wpush/v2/abc';
const AUD = 'https://push.example.net';

function clockedSigner(ttlSeconds?: number) {
  const clock = { now: NOW };
  const signer = new VapidSigner({ subject: SUBJECT, ...KEYS }, { ttlSeconds, now: () => clock.now });
  return { clock, signer };
}

function verify(value: { token: string; publicKey: string }, aud: string, now: number): VapidClaims {
  return verifyVapidToken({ token: value.token, publicKey: value.publicKey, scheme: 'vapid' }, aud, now);
}

test('VapidSigner tokens verify: aud is the endpoint origin, exp now + 12 h, sub the subject', () => {
  const { signer } = clockedSigner();
  const value = signer.token(ENDPOINT);
  assert.equal(value.publicKey, KEYS.publicKey);
  assert.deepEqual(verify(value, AUD, NOW), { aud: AUD, exp: NOW + 12 * 3600, sub: SUBJECT });
  const [header] = value.token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), { typ: 'JWT', alg: 'ES256' });
});

test('VapidSigner reuses a token per origin; another origin gets its own aud', () => {
  const { signer } = clockedSigner();
  const first = signer.token(ENDPOINT);
  assert.equal(signer.token('https://push.example.net/wpush/v2/other?x=1'), first);
  assert.equal(signer.token('https://push.example.net'), first);

  const other = signer.token('https://updates.push.services.mozilla.com/wpush/v2/xyz');
  assert.notEqual(other.token, first.token);
  assert.equal(verify(other, 'https://updates.push.services.mozilla.com', NOW).aud, 'https://updates.push.services.mozilla.com');

  // Spellings of the same origin all get that origin as aud.
  for (const endpoint of [
    'https://push.example.net:443/a',
    'HTTPS://Push.Example.NET/b',
    'https://user@push.example.net/c',
    'https://push.example.net#frag',
  ]) {
    assert.equal(verify(signer.token(endpoint), AUD, NOW).aud, AUD, endpoint);
  }
  // Ports and plain http (local push services) are part of the origin.
  assert.equal(verify(signer.token('https://push.example.net:8443/a'), 'https://push.example.net:8443', NOW).exp, NOW + 43_200);
  assert.equal(verify(signer.token('http://127.0.0.1:8080/push/x'), 'http://127.0.0.1:8080', NOW).exp, NOW + 43_200);
});

test('VapidSigner renews once less than a quarter of the lifetime remains', () => {
  const { clock, signer } = clockedSigner(3600);
  const first = signer.token(ENDPOINT);
  assert.equal(verify(first, AUD, NOW).exp, NOW + 3600);
  clock.now = NOW + 2700; // exactly a quarter left
  assert.equal(signer.token(ENDPOINT), first);
  clock.now = NOW + 2700.5;
  const second = signer.token(ENDPOINT);
  assert.notEqual(second, first);
  assert.equal(verify(second, AUD, clock.now).exp, NOW + 2700 + 3600);
  clock.now = NOW + 5000;
  assert.equal(signer.token(ENDPOINT), second);
  // A clock set back before the issue time gets a fresh token (exp must stay within 24 h).
  clock.now = NOW - 86_400;
  const third = signer.token(ENDPOINT);
  assert.notEqual(third, second);
  assert.equal(verify(third, AUD, clock.now).exp, NOW - 86_400 + 3600);
});

test('VapidSigner: a 24 h lifetime verifies; longer ones and bad values are refused', () => {
  const { signer } = clockedSigner(86_400);
  assert.equal(verify(signer.token(ENDPOINT), AUD, NOW).exp, NOW + 86_400);
  for (const ttlSeconds of [0, -1, 86_401, 1.5, Number.NaN]) {
    assert.throws(() => clockedSigner(ttlSeconds), /VAPID ttlSeconds must be an integer from 1 to 86400/, String(ttlSeconds));
  }
});

test('VapidSigner keeps at most 1000 origins, evicting the oldest', () => {
  const { signer } = clockedSigner();
  const first = signer.token('https://o0.example/');
  const second = signer.token('https://o1.example/');
  for (let i = 2; i <= 1000; i++) signer.token(`https://o${i}.example/`);
  // o0 was evicted by o1000 (ECDSA signatures are randomized, so a new token differs).
  const again = signer.token('https://o0.example/');
  assert.notEqual(again, first);
  assert.notEqual(again.token, first.token);
  // Re-adding o0 evicted o1.
  assert.notEqual(signer.token('https://o1.example/'), second);
  assert.equal(verify(again, 'https://o0.example', NOW).aud, 'https://o0.example');
});

test('VapidSigner rejects bad subjects, keys and endpoints with errors naming the field', () => {
  const other = generateVapidKeys();
  const make = (details: Partial<{ subject: unknown; publicKey: unknown; privateKey: unknown }>) => () =>
    new VapidSigner({ subject: SUBJECT, ...KEYS, ...details } as { subject: string; publicKey: string; privateKey: string });
  for (const subject of ['ops@example.com', 'http://example.com', 'mailto:', 'https://', '', 'ftp://example.com', 42, undefined]) {
    assert.throws(make({ subject }), /VAPID subject (is required|must be a mailto: address or an https: URL)/, String(subject));
  }
  for (const subject of ['mailto:ops@example.com', 'https://example.com/contact', 'MAILTO:ops@example.com']) {
    assert.doesNotThrow(make({ subject }), subject);
  }
  const point = Buffer.from(KEYS.publicKey, 'base64url');
  const offCurve = Buffer.from(point);
  offCurve[64] = offCurve[64]! ^ 1;
  const cases: [Partial<{ publicKey: unknown; privateKey: unknown }>, RegExp][] = [
    [{ publicKey: KEYS.publicKey.slice(0, 40) }, /VAPID publicKey must be a 65-byte P-256 point, not 30 bytes/],
    [{ publicKey: offCurve.toString('base64url') }, /VAPID publicKey is not a point on the P-256 curve/],
    [{ publicKey: 'not base64!' }, /VAPID publicKey is not base64url/],
    [{ publicKey: 42 }, /VAPID publicKey must be a base64url string/],
    [{ privateKey: KEYS.privateKey.slice(0, 40) }, /VAPID privateKey must be a 32-byte P-256 scalar, not 30 bytes/],
    [{ privateKey: 'a+b/' }, /VAPID privateKey is not base64url/],
    [{ privateKey: Buffer.alloc(32).toString('base64url') }, /VAPID privateKey is not a valid P-256 private key/],
    [{ privateKey: Buffer.alloc(32, 0xff).toString('base64url') }, /VAPID privateKey is not a valid P-256 private key/],
    [{ privateKey: other.privateKey }, /VAPID publicKey does not match privateKey/],
    [{ privateKey: undefined }, /VAPID privateKey must be a base64url string/],
  ];
  for (const [details, pattern] of cases) assert.throws(make(details), pattern, JSON.stringify(details));
  // Padded base64url keys are accepted.
  assert.doesNotThrow(make({ publicKey: `${KEYS.publicKey}=`, privateKey: `${KEYS.privateKey}=` }));

  const { signer } = clockedSigner();
  for (const endpoint of ['not a url', 'ftp://push.example.net/x', 'wss://push.example.net/x', '']) {
    assert.throws(() => signer.token(endpoint), /push endpoint (is not a URL|must be an https: \(or http:\) URL)/, endpoint);
  }
  assert.throws(() => signer.token('https://exa mple.net/x'), /push endpoint is not a URL/);
});

test('signVapidToken still verifies when key pairs alternate (imported-key memo)', () => {
  const other = generateVapidKeys();
  for (const keys of [KEYS, other, KEYS, other]) {
    const token = signVapidToken({ aud: AUD, exp: NOW + 60, sub: SUBJECT }, keys);
    assert.equal(verify({ token, publicKey: keys.publicKey }, AUD, NOW).exp, NOW + 60);
  }
});
