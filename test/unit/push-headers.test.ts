// Unit tests of the push request validation (src/endpoint/push-headers.ts) and of the capability
// tokens (src/tokens): pure functions, no server.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Errno, PushError } from '../../src/common/push-error.ts';
import {
  checkBody,
  headerParams,
  parseEncoding,
  parsePushHeaders,
  parseTopic,
  parseTtl,
  parseUrgency,
} from '../../src/endpoint/push-headers.ts';
import type { EncodingHeaders } from '../../src/store/types.ts';
import { Capabilities, type PushTarget } from '../../src/tokens/capabilities.ts';
import { Sealer } from '../../src/tokens/sealer.ts';

const MAX_TTL = 30 * 24 * 3600;

/** Asserts fn throws a 400 PushError with this errno. */
function rejects400(fn: () => unknown, errno: number, label?: string): void {
  assert.throws(
    fn,
    (err: unknown) => {
      assert.ok(err instanceof PushError, `expected PushError, got ${String(err)}${label ? ` (${label})` : ''}`);
      assert.equal(err.status, 400, label);
      assert.equal(err.errno, errno, label);
      assert.ok(err.message.length > 0);
      return true;
    },
    label,
  );
}

const b64 = (n: number) => randomBytes(n).toString('base64url');
const SALT = b64(16);
const DH = Buffer.concat([Buffer.of(4), randomBytes(64)]).toString('base64url');

/** An aes128gcm body: salt(16) rs(4) idlen(1) keyid(idlen) then `records` bytes. */
function aes128gcmBody(opts: { rs?: number; idlen?: number; keyidFirst?: number; records?: number } = {}): Buffer {
  const { rs = 4096, idlen = 65, keyidFirst = 4, records = 40 } = opts;
  const header = Buffer.alloc(21);
  randomBytes(16).copy(header);
  header.writeUInt32BE(rs, 16);
  header[20] = idlen;
  const keyid = randomBytes(idlen);
  if (idlen > 0) keyid[0] = keyidFirst;
  return Buffer.concat([header, keyid, randomBytes(records)]);
}

const AES128GCM: EncodingHeaders = { encoding: 'aes128gcm' };
const AESGCM: EncodingHeaders = { encoding: 'aesgcm', encryption: `salt=${SALT}`, cryptoKey: `dh=${DH}` };

describe('TTL', () => {
  test('missing TTL: 400, errno 111', () => {
    rejects400(() => parseTtl(undefined, MAX_TTL), Errno.missingTtl);
    rejects400(() => parsePushHeaders({}, MAX_TTL), Errno.missingTtl);
  });

  test('negative, non-numeric or empty TTL: 400, errno 114', () => {
    for (const v of ['-1', '-0', '-86400', 'abc', '', ' ', '1.5', '1e3', '+5', '0x10', '60s', '60, 60', 'Infinity', 'NaN']) {
      rejects400(() => parseTtl(v, MAX_TTL), Errno.invalidTtl, JSON.stringify(v));
    }
  });

  test('valid TTLs are kept as sent, surrounding whitespace ignored', () => {
    assert.equal(parseTtl('0', MAX_TTL), 0);
    assert.equal(parseTtl('60', MAX_TTL), 60);
    assert.equal(parseTtl(' 3600 ', MAX_TTL), 3600);
    assert.equal(parseTtl('007', MAX_TTL), 7);
    assert.equal(parseTtl(String(MAX_TTL), MAX_TTL), MAX_TTL);
  });

  test('TTLs above the maximum, however huge, are clamped to it', () => {
    assert.equal(parseTtl(String(MAX_TTL + 1), MAX_TTL), MAX_TTL);
    assert.equal(parseTtl('2147483648', MAX_TTL), MAX_TTL); // RFC 8030 overflow value 2^31
    assert.equal(parseTtl('4294967296', MAX_TTL), MAX_TTL);
    assert.equal(parseTtl('99999999999', MAX_TTL), MAX_TTL);
    assert.equal(parseTtl('9'.repeat(400), MAX_TTL), MAX_TTL);
    assert.equal(parseTtl('3600', 60), 60);
    assert.equal(parsePushHeaders({ ttl: '1000000000000000000000' }, 60).ttl, 60);
  });
});

describe('Topic', () => {
  test('absent: null', () => {
    assert.equal(parseTopic(undefined), null);
    assert.equal(parsePushHeaders({ ttl: '60' }, MAX_TTL).topic, null);
  });

  test('1 to 32 characters of A-Z a-z 0-9 - _ are accepted', () => {
    for (const v of ['a', 'Z', '0', '-', '_', 'news-Update_42', 'x'.repeat(32), 'AZaz09-_'.repeat(4)]) {
      assert.equal(parseTopic(v), v);
    }
  });

  test('too long, empty or other characters: 400, errno 113', () => {
    for (const v of ['x'.repeat(33), '', ' ', 'a b', 'a.b', 'a/b', 'a=b', 'a+b', 'a,b', 'a\tb', ' a', 'a ', 'é', 'a\u0000']) {
      rejects400(() => parseTopic(v), Errno.invalidTopic, JSON.stringify(v));
    }
  });

  test('a repeated Topic header is refused', () => {
    rejects400(() => parsePushHeaders({ ttl: '60', topic: ['a', 'b'] }, MAX_TTL), Errno.invalidTopic);
  });
});

describe('Urgency', () => {
  test('absent: normal', () => {
    assert.equal(parseUrgency(undefined), 'normal');
    assert.equal(parsePushHeaders({ ttl: '60' }, MAX_TTL).urgency, 'normal');
  });

  test('the four RFC 8030 values', () => {
    for (const v of ['very-low', 'low', 'normal', 'high'] as const) {
      assert.equal(parseUrgency(v), v);
      assert.equal(parsePushHeaders({ ttl: '60', urgency: v }, MAX_TTL).urgency, v);
    }
  });

  test('unknown values: 400, errno 115', () => {
    for (const v of ['', 'urgent', 'very low', 'verylow', 'medium', 'critical', '1', 'low;q=1']) {
      rejects400(() => parseUrgency(v), Errno.invalidUrgency, JSON.stringify(v));
    }
  });

  test('repeated Urgency (two header lines or a list), even with equal values: 400, errno 115', () => {
    rejects400(() => parsePushHeaders({ ttl: '60', urgency: ['low', 'high'] }, MAX_TTL), Errno.invalidUrgency);
    rejects400(() => parsePushHeaders({ ttl: '60', urgency: ['low', 'low'] }, MAX_TTL), Errno.invalidUrgency);
    // node:http joins repeated unknown headers into one value
    rejects400(() => parseUrgency('low, high'), Errno.invalidUrgency);
    rejects400(() => parseUrgency('normal, normal'), Errno.invalidUrgency);
  });
});

describe('Content-Encoding', () => {
  const enc = (h: IncomingHttpHeaders) => parseEncoding(h);

  test('absent: null (an empty body needs none)', () => {
    assert.equal(enc({}), null);
  });

  test('aes128gcm alone, case-insensitive', () => {
    assert.deepEqual(enc({ 'content-encoding': 'aes128gcm' }), { encoding: 'aes128gcm' });
    assert.deepEqual(enc({ 'content-encoding': ' AES128GCM ' }), { encoding: 'aes128gcm' });
  });

  test('aes128gcm with a VAPID-only Crypto-Key (p256ecdsa) or an Encryption without salt is accepted', () => {
    assert.deepEqual(enc({ 'content-encoding': 'aes128gcm', 'crypto-key': `p256ecdsa=${DH}` }), { encoding: 'aes128gcm' });
    assert.deepEqual(enc({ 'content-encoding': 'aes128gcm', encryption: 'rs=4096' }), { encoding: 'aes128gcm' });
  });

  test('aes128gcm with a salt or dh header: 400, errno 110', () => {
    rejects400(() => enc({ 'content-encoding': 'aes128gcm', encryption: `salt=${SALT}` }), Errno.invalidEncryption);
    rejects400(() => enc({ 'content-encoding': 'aes128gcm', 'crypto-key': `dh=${DH}` }), Errno.invalidEncryption);
    rejects400(
      () => enc({ 'content-encoding': 'aes128gcm', 'crypto-key': `p256ecdsa=${DH};dh=${DH}` }),
      Errno.invalidEncryption,
    );
  });

  test('aesgcm with a 16-byte salt and a 65-byte dh keeps both headers as sent', () => {
    const h = { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${DH}` };
    assert.deepEqual(enc(h), { encoding: 'aesgcm', encryption: `salt=${SALT}`, cryptoKey: `dh=${DH}` });
    // quoted, padded, keyid-labelled, with rs, with the VAPID key in the same header
    const padded = Buffer.from(SALT, 'base64url').toString('base64');
    const variants: IncomingHttpHeaders[] = [
      { 'content-encoding': 'aesgcm', encryption: `salt="${SALT}"`, 'crypto-key': `dh="${DH}"` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${padded}`, 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `keyid=p256dh;salt=${SALT};rs=4096`, 'crypto-key': `keyid=p256dh;dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${DH};p256ecdsa=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `p256ecdsa=${DH}, dh=${DH}` },
    ];
    for (const v of variants) assert.equal(enc(v)?.encoding, 'aesgcm', JSON.stringify(v));
  });

  test('aesgcm: a legacy VAPID key in Crypto-Key is not kept for the user agent', () => {
    const base = { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}` };
    assert.equal(enc({ ...base, 'crypto-key': `dh=${DH};p256ecdsa=${DH}` })?.cryptoKey, `dh=${DH}`);
    assert.equal(enc({ ...base, 'crypto-key': `p256ecdsa=${DH}, dh=${DH}` })?.cryptoKey, `dh=${DH}`);
    assert.equal(enc({ ...base, 'crypto-key': `keyid=a;dh=${DH}` })?.cryptoKey, `keyid=a;dh=${DH}`);
  });

  test('aesgcm without salt or dh, or with wrong lengths: 400, errno 110', () => {
    const cases: IncomingHttpHeaders[] = [
      { 'content-encoding': 'aesgcm', 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}` },
      { 'content-encoding': 'aesgcm' },
      { 'content-encoding': 'aesgcm', encryption: 'rs=4096', 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `p256ecdsa=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${b64(15)}`, 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${b64(17)}`, 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${b64(64)}` },
      { 'content-encoding': 'aesgcm', encryption: `salt=${SALT}`, 'crypto-key': `dh=${b64(33)}` },
      { 'content-encoding': 'aesgcm', encryption: 'salt=not*base64!', 'crypto-key': `dh=${DH}` },
      { 'content-encoding': 'aesgcm', encryption: 'salt=', 'crypto-key': `dh=${DH}` },
    ];
    for (const h of cases) rejects400(() => enc(h), Errno.invalidEncryption, JSON.stringify(h));
  });

  test('unknown or empty Content-Encoding: 400, errno 110', () => {
    for (const v of ['gzip', 'identity', 'aes256gcm', '', 'aes128gcm, gzip', 'aes128gcm, aes128gcm']) {
      rejects400(() => enc({ 'content-encoding': v }), Errno.invalidEncryption, JSON.stringify(v));
    }
  });

  test('headerParams splits ; and , lists, unquotes, and keeps the first occurrence', () => {
    const p = headerParams('keyid=a; Salt="b" , dh=c;dh=d;novalue');
    assert.equal(p.get('keyid'), 'a');
    assert.equal(p.get('salt'), 'b');
    assert.equal(p.get('dh'), 'c');
    assert.equal(p.has('novalue'), false);
  });
});

describe('checkBody', () => {
  test('an empty body needs no encoding', () => {
    checkBody(Buffer.alloc(0), null);
    checkBody(Buffer.alloc(0), AES128GCM);
    checkBody(Buffer.alloc(0), AESGCM);
  });

  test('a body without Content-Encoding: 400, errno 110', () => {
    rejects400(() => checkBody(Buffer.from('hello'), null), Errno.invalidEncryption);
    rejects400(() => checkBody(aes128gcmBody(), null), Errno.invalidEncryption);
  });

  test('well-formed aes128gcm bodies pass', () => {
    checkBody(aes128gcmBody(), AES128GCM);
    checkBody(aes128gcmBody({ records: 17 }), AES128GCM); // smallest record: 1 delimiter byte + tag
    checkBody(aes128gcmBody({ rs: 18, records: 18 }), AES128GCM); // one full record of the smallest size
    checkBody(aes128gcmBody({ rs: 100, records: 100 }), AES128GCM); // exactly one record of rs bytes
    checkBody(aes128gcmBody({ rs: 4096, records: 4096 - 86 }), AES128GCM); // 4096 bytes in all
    checkBody(aes128gcmBody({ rs: 0xffffffff, records: 50 }), AES128GCM);
  });

  test('short aes128gcm bodies: 400, errno 110', () => {
    for (const n of [1, 16, 20]) rejects400(() => checkBody(randomBytes(n), AES128GCM), Errno.invalidEncryption, `${n} bytes`);
    // a whole header and keyid but no or too short a record
    for (const records of [0, 1, 16]) {
      rejects400(() => checkBody(aes128gcmBody({ records }), AES128GCM), Errno.invalidEncryption, `${records} record bytes`);
    }
    // header promises a 65-byte keyid the body does not hold
    rejects400(() => checkBody(aes128gcmBody().subarray(0, 60), AES128GCM), Errno.invalidEncryption);
  });

  test('keyid not a 65-byte uncompressed P-256 key: 400, errno 110', () => {
    for (const idlen of [0, 1, 32, 33, 64, 66, 255]) {
      rejects400(() => checkBody(aes128gcmBody({ idlen }), AES128GCM), Errno.invalidEncryption, `idlen ${idlen}`);
    }
    rejects400(() => checkBody(aes128gcmBody({ keyidFirst: 2 }), AES128GCM), Errno.invalidEncryption);
    rejects400(() => checkBody(aes128gcmBody({ keyidFirst: 0 }), AES128GCM), Errno.invalidEncryption);
  });

  test('record size below 18: 400, errno 110', () => {
    for (const rs of [0, 1, 16, 17]) {
      rejects400(() => checkBody(aes128gcmBody({ rs, records: 17 }), AES128GCM), Errno.invalidEncryption, `rs ${rs}`);
    }
  });

  test('more than one record: 400, errno 110', () => {
    rejects400(() => checkBody(aes128gcmBody({ rs: 18, records: 19 }), AES128GCM), Errno.invalidEncryption);
    rejects400(() => checkBody(aes128gcmBody({ rs: 18, records: 36 }), AES128GCM), Errno.invalidEncryption);
    rejects400(() => checkBody(aes128gcmBody({ rs: 100, records: 101 }), AES128GCM), Errno.invalidEncryption);
    rejects400(() => checkBody(aes128gcmBody({ rs: 1000, records: 2000 }), AES128GCM), Errno.invalidEncryption);
  });

  test('aesgcm: at least one record (2 padding bytes + 16-byte tag)', () => {
    checkBody(randomBytes(18), AESGCM);
    checkBody(randomBytes(4096), AESGCM);
    for (const n of [1, 16, 17]) rejects400(() => checkBody(randomBytes(n), AESGCM), Errno.invalidEncryption, `${n} bytes`);
  });
});

// ---------------------------------------------------------------------------------------------
// Capability tokens

const secret = () => randomBytes(32);
const raw = (token: string) => Buffer.from(token, 'base64url');
const enc64 = (b: Buffer) => b.toString('base64url');
const NONCE = 12;
const TAG = 16;

function target(restricted: boolean): PushTarget {
  return { uaid: randomBytes(16), chid: randomBytes(16), keyHash: restricted ? randomBytes(16) : null };
}

function bitsDiffering(a: Buffer, b: Buffer): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    let x = a[i]! ^ b[i]!;
    while (x) {
      n += x & 1;
      x >>= 1;
    }
  }
  return n;
}

describe('Sealer', () => {
  test('round trip of payloads of any length', () => {
    const s = new Sealer([secret()]);
    for (const n of [0, 1, 33, 49, 1000]) {
      const p = randomBytes(n);
      const t = s.seal(p);
      assert.match(t, /^[A-Za-z0-9_-]+$/, 'URL-safe, unpadded');
      assert.deepEqual(s.open(t), p);
      assert.equal(raw(t).length, 1 + NONCE + n + TAG);
    }
  });

  test('needs at least one secret', () => {
    assert.throws(() => new Sealer([]));
  });

  test('openRepeated: what open answers, kept for the last tokens used only, forgotten with a dropped secret', () => {
    const old = secret();
    const s = new Sealer([old], 2);
    const [a, b, c] = [randomBytes(33), randomBytes(33), randomBytes(33)].map((p) => ({ p, t: s.seal(p) }));
    assert.deepEqual(s.openRepeated(a!.t), a!.p);
    assert.deepEqual(s.openRepeated(a!.t), a!.p, 'again, from the cache');
    const bad = raw(a!.t);
    bad[bad.length - 1]! ^= 1;
    assert.equal(s.openRepeated(enc64(bad)), null, 'a forged token never opens');
    assert.equal(s.openRepeated(enc64(bad)), null, 'nor the second time');
    assert.equal(s.openRepeated(`${a!.t}=`), null, 'nor one a byte off the exact token');
    assert.deepEqual(s.openRepeated(b!.t), b!.p);
    assert.deepEqual(s.openRepeated(a!.t), a!.p, 'a used again: b is the least recent');
    assert.deepEqual(s.openRepeated(c!.t), c!.p, 'evicts b');
    assert.deepEqual(s.openRepeated(b!.t), b!.p, 'b opened again');
    s.setSecrets([secret()]);
    for (const { t } of [a!, b!, c!]) assert.equal(s.openRepeated(t), null, 'tokens of a dropped secret stop opening, cached or not');
  });

  test('openRepeated keeps --push-token-cache tokens opened (the same payload again), none at 0', () => {
    const cached = new Sealer([secret()], 1);
    const [a, b] = [cached.seal(randomBytes(33)), cached.seal(randomBytes(33))];
    assert.equal(cached.openRepeated(a), cached.openRepeated(a), 'opened once, kept');
    const first = cached.openRepeated(b);
    assert.equal(cached.openRepeated(b), first);
    cached.openRepeated(a);
    const again = cached.openRepeated(b);
    assert.deepEqual(again, first);
    assert.notEqual(again, first, 'b was evicted by a, and opened again');
    const none = new Sealer([secret()], 0);
    const t = none.seal(randomBytes(33));
    const [x, y] = [none.openRepeated(t), none.openRepeated(t)];
    assert.deepEqual(x, y);
    assert.notEqual(x, y, 'opened each time');
  });

  test('a flipped bit anywhere (key id, nonce, ciphertext, tag) makes the token invalid', () => {
    const s = new Sealer([secret()]);
    const payload = randomBytes(33);
    const t = raw(s.seal(payload));
    const regions = {
      keyId: [0],
      nonce: [1, 6, NONCE],
      ciphertext: [1 + NONCE, 1 + NONCE + 16, 1 + NONCE + 32],
      tag: [t.length - TAG, t.length - 8, t.length - 1],
    };
    for (const [region, offsets] of Object.entries(regions)) {
      for (const i of offsets) {
        for (const bit of [0x01, 0x80]) {
          const bad = Buffer.from(t);
          bad[i]! ^= bit;
          assert.equal(s.open(enc64(bad)), null, `${region} byte ${i} bit ${bit}`);
        }
      }
    }
    // every single byte, not just samples
    for (let i = 0; i < t.length; i++) {
      const bad = Buffer.from(t);
      bad[i]! ^= 0x55;
      assert.equal(s.open(enc64(bad)), null, `byte ${i}`);
    }
    assert.deepEqual(s.open(enc64(t)), payload, 'the untouched token still opens');
  });

  test('truncated, extended, padded, non-base64url or empty tokens are invalid', () => {
    const s = new Sealer([secret()]);
    const token = s.seal(randomBytes(33));
    const t = raw(token);
    assert.equal(s.open(enc64(t.subarray(0, t.length - 1))), null);
    assert.equal(s.open(enc64(t.subarray(1))), null);
    assert.equal(s.open(enc64(Buffer.concat([t, Buffer.of(0)]))), null);
    assert.equal(s.open(enc64(t.subarray(0, 1 + NONCE + TAG - 1))), null);
    const std = t.toString('base64');
    if (std !== token) assert.equal(s.open(std), null, 'standard base64 (padding, + and /) is not the token');
    assert.equal(s.open(`${token}=`), null);
    assert.equal(s.open(`${token}==`), null);
    assert.equal(s.open(`${token}!`), null);
    assert.equal(s.open(''), null);
    assert.equal(s.open('AAAA'), null);
    assert.equal(s.open(enc64(Buffer.alloc(1 + NONCE + TAG + 33))), null);
  });

  test('a token sealed with another secret does not open', () => {
    const a = new Sealer([secret()]);
    const b = new Sealer([secret()]);
    const t = a.seal(randomBytes(33));
    assert.equal(b.open(t), null);
    // forge the key id byte so the other sealer actually tries its key
    const forged = raw(t);
    forged[0] = raw(b.seal(Buffer.alloc(0)))[0]!;
    assert.equal(b.open(enc64(forged)), null);
  });

  test('two secrets whose key ids collide: each opens only its own tokens', () => {
    const first = secret();
    const id = createHash('sha256').update(first).digest()[0];
    let second = secret();
    while (createHash('sha256').update(second).digest()[0] !== id) second = secret();
    const a = new Sealer([first]);
    const b = new Sealer([second]);
    const both = new Sealer([second, first]);
    const ta = a.seal(Buffer.from('a'));
    const tb = b.seal(Buffer.from('b'));
    assert.equal(raw(ta)[0], raw(tb)[0]);
    assert.equal(a.open(tb), null);
    assert.equal(b.open(ta), null);
    assert.deepEqual(both.open(ta), Buffer.from('a'));
    assert.deepEqual(both.open(tb), Buffer.from('b'));
  });

  test('key rotation: Sealer([new, old]) opens old tokens and seals with the new secret', () => {
    const oldSecret = secret();
    const newSecret = secret();
    const before = new Sealer([oldSecret]);
    const after = new Sealer([newSecret, oldSecret]);
    const p = randomBytes(41);
    const oldToken = before.seal(p);
    assert.deepEqual(after.open(oldToken), p);
    const newToken = after.seal(p);
    assert.deepEqual(after.open(newToken), p);
    assert.deepEqual(new Sealer([newSecret]).open(newToken), p);
    assert.equal(before.open(newToken), null, 'sealed with the new secret, not the old one');
    // a server that dropped the old secret no longer opens old tokens
    assert.equal(new Sealer([newSecret]).open(oldToken), null);
  });
});

describe('Capabilities', () => {
  const caps = new Capabilities(new Sealer([secret()]));

  test('v1 push token round trip', () => {
    const t = target(false);
    const token = caps.pushToken(t);
    assert.deepEqual(caps.openPushToken(token, false), t);
  });

  test('v2 (restricted) push token round trip keeps the key hash', () => {
    const t = target(true);
    const token = caps.pushToken(t);
    assert.deepEqual(caps.openPushToken(token, true), t);
  });

  test('a v1 token is refused on the v2 path and a v2 token on the v1 path', () => {
    assert.equal(caps.openPushToken(caps.pushToken(target(false)), true), null);
    assert.equal(caps.openPushToken(caps.pushToken(target(true)), false), null);
  });

  test('message token round trip, ids up to 2^53', () => {
    for (const id of [0, 1, 42, 2 ** 32 + 7, Number.MAX_SAFE_INTEGER]) {
      const { uaid, chid } = target(false);
      const ref = { uaid, chid, id };
      assert.deepEqual(caps.openMessageToken(caps.messageToken(ref)), ref);
    }
  });

  test('push and message tokens are not interchangeable', () => {
    const { uaid, chid } = target(false);
    const m = caps.messageToken({ uaid, chid, id: 1 });
    assert.equal(caps.openPushToken(m, false), null);
    assert.equal(caps.openPushToken(m, true), null);
    assert.equal(caps.openMessageToken(caps.pushToken(target(false))), null);
    assert.equal(caps.openMessageToken(caps.pushToken(target(true))), null);
  });

  test('a well-sealed payload of the wrong kind or length is refused', () => {
    const sealer = new Sealer([secret()]);
    const c = new Capabilities(sealer);
    const ids = randomBytes(32);
    assert.equal(c.openPushToken(sealer.seal(Buffer.concat([Buffer.of(1), ids, Buffer.of(0)])), false), null);
    assert.equal(c.openPushToken(sealer.seal(Buffer.concat([Buffer.of(2), ids])), true), null);
    assert.equal(c.openPushToken(sealer.seal(Buffer.concat([Buffer.of(9), ids])), false), null);
    assert.equal(c.openMessageToken(sealer.seal(Buffer.concat([Buffer.of(3), ids]))), null);
    assert.equal(c.openPushToken(sealer.seal(Buffer.alloc(0)), false), null);
  });

  test('tokens from a server with another secret are refused', () => {
    const other = new Capabilities(new Sealer([secret()]));
    const { uaid, chid } = target(false);
    assert.equal(caps.openPushToken(other.pushToken(target(false)), false), null);
    assert.equal(caps.openPushToken(other.pushToken(target(true)), true), null);
    assert.equal(caps.openMessageToken(other.messageToken({ uaid, chid, id: 1 })), null);
  });

  test('tampered push and message tokens are refused', () => {
    const t = target(true);
    const token = raw(caps.pushToken(t));
    const { uaid, chid } = t;
    const msg = raw(caps.messageToken({ uaid, chid, id: 5 }));
    for (let i = 0; i < token.length; i++) {
      const bad = Buffer.from(token);
      bad[i]! ^= 1;
      assert.equal(caps.openPushToken(enc64(bad), true), null, `push byte ${i}`);
    }
    for (let i = 0; i < msg.length; i++) {
      const bad = Buffer.from(msg);
      bad[i]! ^= 1;
      assert.equal(caps.openMessageToken(enc64(bad)), null, `message byte ${i}`);
    }
  });

  test('>= 120 bits: tokens for the same ids differ, each carries no ids in clear', () => {
    for (const restricted of [false, true]) {
      const t = target(restricted);
      const tokens = Array.from({ length: 200 }, () => caps.pushToken(t));
      assert.equal(new Set(tokens).size, tokens.length, 'every token for the same ids is new');
      for (const token of tokens) assert.deepEqual(caps.openPushToken(token, restricted), t);
      for (let i = 1; i < tokens.length; i++) {
        const a = raw(tokens[i - 1]!);
        const b = raw(tokens[i]!);
        assert.ok(bitsDiffering(a, b) >= 120, `tokens ${i - 1} and ${i} differ in only ${bitsDiffering(a, b)} bits`);
        assert.equal(b.includes(t.uaid), false, 'uaid not in clear');
        assert.equal(b.includes(t.chid), false, 'chid not in clear');
      }
    }
    // A message keeps one URL (Location, PUSH_PROMISE, receipt); any other message's differs.
    const { uaid, chid } = target(false);
    const m7 = caps.messageToken({ uaid, chid, id: 7 });
    assert.equal(caps.messageToken({ uaid, chid, id: 7 }), m7);
    for (const other of [
      caps.messageToken({ uaid, chid, id: 8 }),
      caps.messageToken({ uaid, chid: target(false).chid, id: 7 }),
    ]) {
      assert.ok(bitsDiffering(raw(m7), raw(other)) >= 120);
      assert.equal(raw(other).includes(chid), false, 'chid not in clear');
    }
  });
});
