import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseVapidAuthorization } from '../../src/vapid/authorization.ts';
import type { VapidCredentials } from '../../src/vapid/authorization.ts';
import { generateVapidKeys, signVapidToken, vapidAuthorization } from '../../src/vapid/sign.ts';
import {
  VapidError,
  VapidVerifier,
  decodeVapidPublicKey,
  publicKeyHash,
  verifyVapidToken,
} from '../../src/vapid/verify.ts';

// RFC 8292 section 2.4 example.
const RFC_TOKEN =
  'eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3B1c2guZXhhbXBsZS5uZXQiLCJleHAiOjE0NTM1MjM3NjgsInN1YiI6Im1haWx0bzpwdXNoQGV4YW1wbGUuY29tIn0.i3CYb7t4xfxCDquptFOepC9GAu_HLGkMlMuCGSK2rpiUfnK9ojFwDXb1JrErtmysazNjjvW2L9OkSSHzvoD1oA';
const RFC_KEY = 'BA1Hxzyi1RUM1b5wjxsn7nGxAszw2u61m164i3MrAIxHF6YK5h4SDYic-dRuU_RCPCfA5aq9ojSwk5Y2EmClBPs';
const RFC_EXP = 1453523768;
const AUD = 'https://push.example.net';
const NOW = 1_700_000_000;

const KEYS = generateVapidKeys();
const OTHER_KEYS = generateVapidKeys();

function creds(token: string, publicKey = KEYS.publicKey): VapidCredentials {
  return { token, publicKey, scheme: 'vapid' };
}

function b64(json: unknown): string {
  return Buffer.from(typeof json === 'string' ? json : JSON.stringify(json)).toString('base64url');
}

function withPart(token: string, index: number, part: string): string {
  const parts = token.split('.');
  parts[index] = part;
  return parts.join('.');
}

/** Runs fn, asserts it throws a VapidError matching pattern, returns the reason. */
function reasonOf(fn: () => unknown, pattern: RegExp): string {
  let reason = '';
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof VapidError, `expected VapidError, got ${String(err)}`);
    assert.match(err.reason, pattern);
    reason = err.reason;
    return true;
  });
  return reason;
}

test('RFC 8292 example verifies with a fixed clock', () => {
  const claims = verifyVapidToken(creds(RFC_TOKEN, RFC_KEY), AUD, RFC_EXP - 60);
  assert.deepEqual(claims, { aud: AUD, exp: RFC_EXP, sub: 'mailto:push@example.com' });
  assert.deepEqual(verifyVapidToken(creds(RFC_TOKEN, RFC_KEY), `${AUD}/`, RFC_EXP - 60).exp, RFC_EXP);
});

test('RFC 8292 example fails once expired or for another audience', () => {
  reasonOf(() => verifyVapidToken(creds(RFC_TOKEN, RFC_KEY), AUD, RFC_EXP + 1), /expired/);
  reasonOf(() => verifyVapidToken(creds(RFC_TOKEN, RFC_KEY), AUD, RFC_EXP), /expired/);
  reasonOf(
    () => verifyVapidToken(creds(RFC_TOKEN, RFC_KEY), 'https://push.example.org', RFC_EXP - 60),
    /aud "https:\/\/push.example.net" is not "https:\/\/push.example.org"/,
  );
});

test('sign -> verify round trip', () => {
  assert.equal(Buffer.from(KEYS.publicKey, 'base64url').length, 65);
  assert.equal(Buffer.from(KEYS.privateKey, 'base64url').length, 32);
  const token = signVapidToken({ aud: AUD, exp: NOW + 3600, sub: 'mailto:ops@example.com' }, KEYS);
  const [header] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(header!, 'base64url').toString()), { typ: 'JWT', alg: 'ES256' });
  assert.deepEqual(verifyVapidToken(creds(token), AUD, NOW), {
    aud: AUD,
    exp: NOW + 3600,
    sub: 'mailto:ops@example.com',
  });
  const noSub = verifyVapidToken(creds(signVapidToken({ aud: AUD, exp: NOW + 60 }, KEYS)), AUD, NOW);
  assert.deepEqual(noSub, { aud: AUD, exp: NOW + 60 });
  assert.equal(vapidAuthorization(token, KEYS.publicKey), `vapid t=${token}, k=${KEYS.publicKey}`);
});

test('every kind of bad token fails with its own reason', () => {
  const good = signVapidToken({ aud: AUD, exp: NOW + 3600 }, KEYS);
  const [header, payload, signature] = good.split('.') as [string, string, string];
  const verify = (token: string, key = KEYS.publicKey) => () => verifyVapidToken(creds(token, key), AUD, NOW);
  const signWith = (claims: unknown) => signVapidToken(claims as { aud: string; exp: number }, KEYS);
  const flipped = Buffer.from(signature, 'base64url');
  flipped[10]! ^= 1;

  const reasons = [
    reasonOf(verify(withPart(good, 2, flipped.toString('base64url'))), /^JWT signature does not verify with k$/),
    reasonOf(verify(withPart(good, 2, b64('short'))), /^JWT signature must be 64 bytes, not 5$/),
    reasonOf(verify(withPart(good, 1, b64({ aud: AUD, exp: NOW + 7200 }))), /^JWT signature does not verify/),
    reasonOf(verify(good, OTHER_KEYS.publicKey), /^JWT signature does not verify/),
    reasonOf(verify(withPart(good, 0, b64({ typ: 'JWT', alg: 'none' }))), /^JWT alg must be ES256, not "none"$/),
    reasonOf(verify(withPart(good, 0, b64({ typ: 'JWT', alg: 'HS256' }))), /^JWT alg must be ES256, not "HS256"$/),
    reasonOf(verify(withPart(good, 0, b64({ typ: 'JWT' }))), /^JWT alg must be ES256, not undefined$/),
    reasonOf(verify(withPart(good, 0, b64('{not json'))), /^JWT header is not JSON$/),
    reasonOf(verify(withPart(good, 0, b64([1, 2]))), /^JWT header is not a JSON object$/),
    reasonOf(verify(withPart(good, 1, b64('exp=1'))), /^JWT claims set is not JSON$/),
    reasonOf(verify(withPart(good, 1, b64('null'))), /^JWT claims set is not a JSON object$/),
    reasonOf(verify(`${header}.${payload}`), /^t is not a JWT of three base64url parts$/),
    reasonOf(verify(`${good}.x`), /^t is not a JWT of three base64url parts$/),
    reasonOf(verify(`${header}.${payload}.`), /^t is not a JWT of three base64url parts$/),
    reasonOf(verify(`${header}.${payload}+.${signature}`), /^t is not a JWT of three base64url parts$/),
    reasonOf(verify(signWith({ aud: AUD, exp: NOW + 86_401 })), /^JWT exp \d+ is more than 24 hours after now/),
    reasonOf(verify(signWith({ aud: AUD, exp: NOW - 1 })), /^JWT expired \(exp \d+, now \d+\)$/),
    reasonOf(verify(signWith({ aud: AUD })), /^JWT exp is missing or not a number$/),
    reasonOf(verify(signWith({ aud: AUD, exp: String(NOW + 60) })), /^JWT exp is missing or not a number$/),
    reasonOf(verify(signWith({ exp: NOW + 60 })), /^JWT aud is missing or not a string$/),
    reasonOf(verify(signWith({ aud: `${AUD}/path`, exp: NOW + 60 })), /^JWT aud ".*\/path" is not/),
    reasonOf(verify(signWith({ aud: AUD, exp: NOW + 60, sub: 42 })), /^JWT sub is not a string$/),
  ];
  // 15 causes: a bad signature, tampered claims and a wrong key are indistinguishable by
  // design, and every malformed JWT shape shares one reason.
  const distinctCauses = new Set(reasons.map((r) => r.replace(/"[^"]*"|\d+/g, '')));
  assert.equal(distinctCauses.size, 15, [...distinctCauses].join('\n'));
  // exp exactly 24 h ahead is still allowed.
  assert.equal(verify(signWith({ aud: AUD, exp: NOW + 86_400 }))().exp, NOW + 86_400);
});

test('invalid public keys fail with their own reason', () => {
  const token = signVapidToken({ aud: AUD, exp: NOW + 60 }, KEYS);
  const point = Buffer.from(KEYS.publicKey, 'base64url');
  const offCurve = Buffer.from(point);
  offCurve[64]! ^= 1;
  const wrongPrefix = Buffer.from(point);
  wrongPrefix[0] = 6;
  const compressed = Buffer.concat([Buffer.of(2 + (point[64]! & 1)), point.subarray(1, 33)]);
  const cases: [string, RegExp][] = [
    [point.subarray(0, 64).toString('base64url'), /^k must be a 65-byte P-256 point, not 64 bytes$/],
    [Buffer.concat([point, Buffer.of(0)]).toString('base64url'), /^k must be a 65-byte P-256 point, not 66 bytes$/],
    [offCurve.toString('base64url'), /^k is not a point on the P-256 curve$/],
    [wrongPrefix.toString('base64url'), /^k does not start with 0x04/],
    [compressed.toString('base64url'), /^k is a compressed point/],
    [`${KEYS.publicKey.slice(0, 40)}+${KEYS.publicKey.slice(41)}`, /^k is not base64url$/],
    ['', /^k is not base64url$/],
  ];
  for (const [key, reason] of cases) {
    reasonOf(() => decodeVapidPublicKey(key), reason);
    reasonOf(() => verifyVapidToken(creds(token, key), AUD, NOW), reason);
    reasonOf(() => publicKeyHash(key), reason);
  }
});

test('decodeVapidPublicKey and publicKeyHash accept padded keys', () => {
  const point = decodeVapidPublicKey(`${RFC_KEY}=`);
  assert.equal(point.length, 65);
  assert.equal(point.toString('base64url'), RFC_KEY);
  const hash = publicKeyHash(RFC_KEY);
  assert.equal(hash.length, 16);
  assert.deepEqual(publicKeyHash(`${RFC_KEY}=`), hash);
  assert.notDeepEqual(publicKeyHash(KEYS.publicKey), hash);
});

test('parseVapidAuthorization accepts the vapid forms', () => {
  const expected = { token: 'a.b.c', publicKey: 'BKEY', scheme: 'vapid' };
  for (const header of [
    'vapid t=a.b.c, k=BKEY',
    'vapid t=a.b.c,k=BKEY',
    'VAPID t=a.b.c , k=BKEY',
    'Vapid   k=BKEY, t=a.b.c',
    'vapid t="a.b.c", k="BKEY"',
    'vapid t = a.b.c, K = BKEY',
    'vapid t=a.b.c, k=BKEY=',
    'vapid t=a.b.c, k="BKEY=="',
    '  vapid t=a.b.c, k=BKEY, ',
    'vapid t=a.b.c, future=1, k=BKEY',
  ]) {
    assert.deepEqual(parseVapidAuthorization(header, undefined), expected, header);
  }
  // Crypto-Key is irrelevant to the vapid scheme.
  assert.deepEqual(parseVapidAuthorization('vapid t=a.b.c, k=BKEY', 'p256ecdsa=OTHER'), expected);
});

test('parseVapidAuthorization accepts legacy WebPush and Bearer with Crypto-Key, any case of the scheme', () => {
  const expected = { token: 'a.b.c', publicKey: 'BKEY', scheme: 'webpush' };
  for (const [authorization, cryptoKey] of [
    ['WebPush a.b.c', 'p256ecdsa=BKEY'],
    ['webpush a.b.c', 'dh=abc;p256ecdsa=BKEY'],
    ['WEBPUSH  a.b.c ', 'dh=abc, p256ecdsa=BKEY'],
    ['WebPush a.b.c', 'dh="abc"; P256ECDSA="BKEY=";keyid=p1'],
    ['WebPush a.b.c', 'keyid=p1; dh=abc,p256ecdsa=BKEY,p256ecdsa=BKEY'],
    ['WebPush a.b.c', 'junk, p256ecdsa=BKEY'],
    ['Bearer a.b.c', 'p256ecdsa=BKEY'],
    ['bearer a.b.c', 'dh=abc;p256ecdsa=BKEY'],
    ['BEARER a.b.c', 'p256ecdsa="BKEY="'],
  ] as const) {
    assert.deepEqual(parseVapidAuthorization(authorization, cryptoKey), expected, `${authorization} / ${cryptoKey}`);
  }
});

test('parseVapidAuthorization: no header -> null, malformed -> precise errors', () => {
  assert.equal(parseVapidAuthorization(undefined, undefined), null);
  assert.equal(parseVapidAuthorization(undefined, 'p256ecdsa=BKEY'), null);
  const cases: [string, string | undefined, string][] = [
    ['', undefined, 'Authorization header is empty'],
    ['Bearer abc', undefined, 'Bearer Authorization needs a Crypto-Key header with p256ecdsa='],
    ['Bearer', 'p256ecdsa=BKEY', 'Bearer Authorization lacks the token'],
    ['Basic dXNlcjpwYXNz', undefined, 'Authorization scheme "Basic" is not vapid, WebPush or Bearer'],
    ['key=AIzaSecret', undefined, 'Authorization scheme "key" is not vapid, WebPush or Bearer'],
    ['vapid', undefined, 'vapid Authorization lacks t='],
    ['vapid k=BKEY', undefined, 'vapid Authorization lacks t='],
    ['vapid t=a.b.c', undefined, 'vapid Authorization lacks k='],
    ['vapid t=, k=BKEY', undefined, 'vapid Authorization has an empty t='],
    ['vapid t=a.b.c, k==', undefined, 'vapid Authorization has an empty k='],
    ['vapid t=a.b.c k=BKEY', undefined, 'vapid Authorization has whitespace inside t= (separate parameters with commas)'],
    ['vapid t=a.b.c, t=d.e.f, k=BKEY', undefined, 'vapid Authorization repeats t='],
    ['vapid t=a.b.c, BKEY', undefined, 'vapid Authorization has a parameter that is not name=value'],
    ['vapid t="a.b.c, k=BKEY', undefined, 'vapid Authorization has a parameter that is not name=value'],
    ['vapid t=a.b.c, =BKEY', undefined, 'vapid Authorization has a parameter that is not name=value'],
    ['WebPush', 'p256ecdsa=BKEY', 'WebPush Authorization lacks the token'],
    ['WebPush a.b.c d', 'p256ecdsa=BKEY', 'WebPush Authorization must hold only the token'],
    ['WebPush a.b.c', undefined, 'WebPush Authorization needs a Crypto-Key header with p256ecdsa='],
    ['WebPush a.b.c', 'dh=abc', 'Crypto-Key lacks p256ecdsa='],
    ['WebPush a.b.c', 'p256ecdsa=', 'Crypto-Key has an empty p256ecdsa='],
    ['WebPush a.b.c', 'p256ecdsa=BKEY, p256ecdsa=OTHER', 'Crypto-Key repeats p256ecdsa= with different values'],
  ];
  for (const [authorization, cryptoKey, error] of cases) {
    assert.deepEqual(parseVapidAuthorization(authorization, cryptoKey), { error }, authorization);
  }
});

test('parse -> verify end to end with padded key', () => {
  const token = signVapidToken({ aud: AUD, exp: NOW + 60 }, KEYS);
  const parsed = parseVapidAuthorization(`vapid t=${token}, k=${KEYS.publicKey}=`, undefined);
  assert.ok(parsed !== null && !('error' in parsed));
  assert.equal(parsed.publicKey, KEYS.publicKey);
  assert.equal(verifyVapidToken(parsed, AUD, NOW).exp, NOW + 60);
});

/** A verifier whose clock the test moves. */
function clockedVerifier(maxEntries?: number) {
  const clock = { now: NOW };
  const verifier = new VapidVerifier({ audience: `${AUD}/`, maxEntries, now: () => clock.now });
  return { clock, verifier };
}

test('VapidVerifier serves a repeated pair from its cache until exp', () => {
  const { clock, verifier } = clockedVerifier();
  const token = signVapidToken({ aud: AUD, exp: NOW + 3600 }, KEYS);
  const first = verifier.verify(creds(token));
  assert.equal(verifier.size, 1);
  // Full verification would reject this clock (exp more than 24 h ahead); only a cache hit,
  // which skips the signature and claim checks, accepts it.
  clock.now = NOW - 2 * 86_400;
  assert.equal(verifier.verify(creds(token)), first);
  reasonOf(() => verifyVapidToken(creds(token), AUD, clock.now), /more than 24 hours/);
  assert.equal(verifier.size, 1);
  // The same token with another key is another pair: fully verified, and rejected.
  clock.now = NOW;
  reasonOf(() => verifier.verify(creds(token, OTHER_KEYS.publicKey)), /does not verify/);
  assert.equal(verifier.size, 1);
});

test('VapidVerifier rejects and drops an expired cached pair', () => {
  const { clock, verifier } = clockedVerifier();
  const token = signVapidToken({ aud: AUD, exp: NOW + 60 }, KEYS);
  verifier.verify(creds(token));
  assert.equal(verifier.size, 1);
  clock.now = NOW + 60;
  reasonOf(() => verifier.verify(creds(token)), /^JWT expired/);
  assert.equal(verifier.size, 0);
});

test('VapidVerifier evicts the oldest pair at maxEntries', () => {
  const { clock, verifier } = clockedVerifier(2);
  const tokens = [1, 2, 3].map((i) => signVapidToken({ aud: AUD, exp: NOW + 3600 + i }, KEYS));
  for (const token of tokens) verifier.verify(creds(token));
  assert.equal(verifier.size, 2);
  // Under a clock that full verification rejects, only cached pairs still pass.
  clock.now = NOW - 2 * 86_400;
  reasonOf(() => verifier.verify(creds(tokens[0]!)), /more than 24 hours/);
  assert.equal(verifier.verify(creds(tokens[1]!)).exp, NOW + 3602);
  assert.equal(verifier.verify(creds(tokens[2]!)).exp, NOW + 3603);
  assert.equal(verifier.size, 2);
});

test('VapidVerifier reports the same reasons as verifyVapidToken', () => {
  const { verifier } = clockedVerifier();
  const token = signVapidToken({ aud: 'https://elsewhere.example', exp: NOW + 60 }, KEYS);
  reasonOf(() => verifier.verify(creds(token)), /^JWT aud "https:\/\/elsewhere.example" is not/);
  reasonOf(() => verifier.verify(creds(token, 'BAAA')), /^k must be a 65-byte P-256 point/);
  assert.equal(verifier.size, 0);
});
