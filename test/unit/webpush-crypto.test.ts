// Message Encryption for Web Push (RFC 8291) and legacy aesgcm: keys, known answers, round
// trips, cross-checks against http_ece, and rejections.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createECDH, createHmac, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { deriveAes128gcmKey } from '../../src/crypto/aes128gcm.ts';
import { ecdh, validatePublicKey } from '../../src/crypto/keys.ts';
import {
  EceError,
  MAX_PLAINTEXT_LENGTH,
  decryptMessage,
  deriveWebPushIkm,
  encryptMessage,
  generateUserAgentKeys,
} from '../../src/crypto/webpush.ts';
import type { ReceivedHeaders, UserAgentPrivateKeys } from '../../src/crypto/webpush.ts';

type Ecdh = ReturnType<typeof createECDH>;
interface HttpEce {
  encrypt(buffer: Buffer, params: Record<string, unknown>): Buffer;
  decrypt(buffer: Buffer, params: Record<string, unknown>): Buffer;
}
const ece = createRequire(import.meta.url)('http_ece') as HttpEce;

const b64 = (text: string) => Buffer.from(text, 'base64url');

// RFC 8291 Appendix A.
const A = {
  plaintext: Buffer.from('When I grow up, I want to be a watermelon'),
  asPublic: b64('BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8'),
  asPrivate: b64('yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw'),
  uaPublic: b64('BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4'),
  uaPrivate: b64('q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94'),
  salt: b64('DGv6ra1nlYgDCS1FRnbzlw'),
  auth: b64('BTBZMqHH6r4Tts7J_aSIgg'),
  ecdhSecret: b64('kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs'),
  prkKey: b64('Snr3JMxaHVDXHWJn5wdC52WjpCtd2EIEGBykDcZW32k'),
  ikm: b64('S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg'),
  prk: b64('09_eUZGrsvxChDCGRCdkLiDXrReGOEVeSCdCcPBSJSc'),
  cek: b64('oIhVW04MRdy2XN9CiKLxTg'),
  nonce: b64('4h_95klXJ5E_qnoN'),
  header: b64(
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8',
  ),
  body: b64(
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
  ),
};
const A_UA: UserAgentPrivateKeys = { publicKey: A.uaPublic, privateKey: A.uaPrivate, auth: A.auth };
const AES128GCM: ReceivedHeaders = { encoding: 'aes128gcm' };

/** Asserts fn throws an EceError (never another type) whose message matches pattern. */
function rejects(fn: () => unknown, pattern: RegExp, label = ''): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EceError, `${label}: expected EceError, got ${String(err)}`);
    assert.match(err.message, pattern, label);
    return true;
  });
}

/** A user agent as both APIs see it: our key shape and an http_ece ECDH object. */
function userAgent(): { keys: UserAgentPrivateKeys; ecdh: Ecdh } {
  const keys = generateUserAgentKeys();
  const uaEcdh = createECDH('prime256v1');
  uaEcdh.setPrivateKey(keys.privateKey);
  return { keys, ecdh: uaEcdh };
}

function publicOf(keys: UserAgentPrivateKeys) {
  return { p256dh: keys.publicKey, auth: keys.auth };
}

/** Invalid public keys, each with the message it must produce. */
function invalidPublicKeys(valid: Buffer): [string, Buffer, RegExp][] {
  const offCurve = Buffer.from(valid);
  offCurve[64] = offCurve[64]! ^ 1;
  const wrongPrefix = Buffer.from(valid);
  wrongPrefix[0] = 5;
  const compressed = Buffer.concat([Buffer.of(2 + (valid[64]! & 1)), valid.subarray(1, 33)]);
  const tooLarge = Buffer.concat([Buffer.of(4), Buffer.alloc(64, 0xff)]);
  return [
    ['64 bytes', valid.subarray(0, 64), /must be a 65-byte uncompressed P-256 point, not 64 bytes/],
    ['66 bytes', Buffer.concat([valid, Buffer.of(0)]), /not 66 bytes/],
    ['empty', Buffer.alloc(0), /not 0 bytes/],
    ['compressed', compressed, /is a compressed point/],
    ['not on the curve', offCurve, /is not a point on the P-256 curve/],
    ['coordinates >= p', tooLarge, /is not a point on the P-256 curve/],
    ['all zero', Buffer.concat([Buffer.of(4), Buffer.alloc(64)]), /is not a point on the P-256 curve/],
    ['prefix 0x05', wrongPrefix, /does not start with 0x04/],
  ];
}

test('RFC 8291 Appendix A: key schedule intermediates', () => {
  assert.deepEqual(ecdh(A.asPrivate, A.uaPublic), A.ecdhSecret);
  assert.deepEqual(ecdh(A.uaPrivate, A.asPublic), A.ecdhSecret);
  assert.deepEqual(createHmac('sha256', A.auth).update(A.ecdhSecret).digest(), A.prkKey);
  const ikm = deriveWebPushIkm(A.auth, A.ecdhSecret, A.uaPublic, A.asPublic);
  assert.deepEqual(ikm, A.ikm);
  assert.deepEqual(createHmac('sha256', A.salt).update(ikm).digest(), A.prk);
  assert.deepEqual(deriveAes128gcmKey(A.salt, ikm), { cek: A.cek, nonce: A.nonce });
});

test('RFC 8291 Appendix A: encryptMessage produces the 144-byte body; decryptMessage reverses it', () => {
  const message = encryptMessage(A.plaintext, { p256dh: A.uaPublic, auth: A.auth }, {
    salt: A.salt,
    senderPrivateKey: A.asPrivate,
  });
  assert.equal(message.encoding, 'aes128gcm');
  assert.equal(message.encryption, undefined);
  assert.equal(message.cryptoKey, undefined);
  assert.equal(message.body.length, 144); // the RFC's Content-Length 145 is a typo
  assert.deepEqual(message.body.subarray(0, 86), A.header);
  assert.deepEqual(message.body, A.body);
  assert.deepEqual(decryptMessage(A.body, AES128GCM, A_UA), A.plaintext);
  assert.deepEqual(decryptMessage(A.body, { encoding: ' AES128GCM ' }, A_UA), A.plaintext);
});

test('generateUserAgentKeys: 65-byte point, 32-byte scalar (zero-padded), 16-byte auth', () => {
  const peer = generateUserAgentKeys();
  // ECDH.getPrivateKey drops leading zeros once in 256 keys: 1500 keys hit that ~99.7% of the time.
  for (let i = 0; i < 1500; i++) {
    const keys = generateUserAgentKeys();
    assert.equal(keys.publicKey.length, 65);
    assert.equal(keys.privateKey.length, 32);
    assert.equal(keys.auth.length, 16);
    const check = createECDH('prime256v1');
    check.setPrivateKey(keys.privateKey);
    assert.deepEqual(check.getPublicKey(), keys.publicKey);
    if (i % 100 === 0) {
      validatePublicKey(keys.publicKey);
      assert.deepEqual(ecdh(keys.privateKey, peer.publicKey), ecdh(peer.privateKey, keys.publicKey));
    }
  }
});

test('validatePublicKey and ecdh reject invalid keys with EceError', () => {
  const { publicKey, privateKey } = generateUserAgentKeys();
  validatePublicKey(publicKey);
  for (const [label, key, pattern] of invalidPublicKeys(publicKey)) {
    rejects(() => validatePublicKey(key, 'p256dh'), new RegExp(`^p256dh .*${pattern.source}`), label);
    rejects(() => ecdh(privateKey, key), pattern, label);
  }
  rejects(() => validatePublicKey('BAAA' as unknown as Buffer), /must be a Buffer/);
  rejects(() => ecdh(Buffer.concat([Buffer.of(1), privateKey]), publicKey), /private key must be a P-256 scalar of at most 32 bytes, not 33 bytes/);
  rejects(() => ecdh(Buffer.alloc(0), publicKey), /not 0 bytes/);
  // ECDH.getPrivateKey() drops leading zero bytes: such a shorter scalar is the same key
  const short = Buffer.concat([Buffer.of(0), privateKey.subarray(1)]);
  assert.deepEqual(ecdh(short.subarray(1), publicKey), ecdh(short, publicKey));
  rejects(() => ecdh(Buffer.alloc(32), publicKey), /not a valid P-256 private key/);
  rejects(() => ecdh(Buffer.alloc(32, 0xff), publicKey), /not a valid P-256 private key/);
});

test('aes128gcm round trips: empty, sizes, padding, and a 3993-byte message in a 4096-byte body', () => {
  const { keys } = userAgent();
  for (const [length, padding] of [
    [0, 0],
    [0, 100],
    [1, 0],
    [41, 3],
    [1000, 2993],
    [3993, 0],
    [3992, 1],
  ] as const) {
    const plaintext = randomBytes(length);
    const { body, encoding } = encryptMessage(plaintext, publicOf(keys), { padding });
    assert.equal(encoding, 'aes128gcm');
    assert.equal(body.length, 86 + length + padding + 17);
    assert.equal(body.readUInt32BE(16), 4096);
    assert.equal(body[20], 65);
    validatePublicKey(body.subarray(21, 86));
    assert.deepEqual(decryptMessage(body, AES128GCM, keys), plaintext, `${length}+${padding}`);
  }
  assert.equal(MAX_PLAINTEXT_LENGTH, 3993);
  assert.equal(encryptMessage(randomBytes(MAX_PLAINTEXT_LENGTH), publicOf(keys)).body.length, 4096);
});

test('aes128gcm: one record of rs - 17 bytes at most; fresh salt and sender key each time', () => {
  const { keys } = userAgent();
  const max = encryptMessage(randomBytes(4079), publicOf(keys));
  assert.equal(max.body.length, 86 + 4096);
  rejects(
    () => encryptMessage(randomBytes(4080), publicOf(keys)),
    /plaintext \(4080 bytes\) \+ padding \(0\) must fit one record: at most 4079 bytes for rs 4096/,
  );
  rejects(() => encryptMessage(randomBytes(4000), publicOf(keys), { padding: 80 }), /must fit one record/);
  const small = encryptMessage(randomBytes(83), publicOf(keys), { rs: 100 });
  assert.equal(small.body.readUInt32BE(16), 100);
  assert.equal(decryptMessage(small.body, AES128GCM, keys).length, 83);
  rejects(() => encryptMessage(randomBytes(84), publicOf(keys), { rs: 100 }), /at most 83 bytes for rs 100/);
  rejects(() => encryptMessage(randomBytes(1), publicOf(keys), { rs: 17 }), /rs must be an integer from 18/);

  const a = encryptMessage(A.plaintext, publicOf(keys)).body;
  const b = encryptMessage(A.plaintext, publicOf(keys)).body;
  assert.notDeepEqual(a.subarray(0, 16), b.subarray(0, 16));
  assert.notDeepEqual(a.subarray(21, 86), b.subarray(21, 86));
});

test('aesgcm round trips with padding; Encryption and Crypto-Key values', () => {
  const { keys } = userAgent();
  for (const [length, padding, rs] of [
    [0, 0, undefined],
    [15, 0, undefined],
    [100, 30, undefined],
    [4000, 78, undefined],
    [5000, 0, undefined],
    [50, 7, 20],
  ] as const) {
    const plaintext = randomBytes(length);
    const message = encryptMessage(plaintext, publicOf(keys), { encoding: 'aesgcm', padding, rs });
    assert.equal(message.encoding, 'aesgcm');
    assert.match(message.encryption!, rs === undefined ? /^salt=[A-Za-z0-9_-]{22}$/ : /^salt=[A-Za-z0-9_-]{22};rs=20$/);
    assert.match(message.cryptoKey!, /^dh=B[A-Za-z0-9_-]{86}$/);
    const headers = { encoding: 'aesgcm', encryption: message.encryption, cryptoKey: message.cryptoKey };
    assert.deepEqual(decryptMessage(message.body, headers, keys), plaintext, `${length}+${padding}`);
  }
});

test('aesgcm: header values parsed leniently (params, quotes, padding, keyid, case)', () => {
  const { keys } = userAgent();
  const salt = randomBytes(16);
  const message = encryptMessage(A.plaintext, publicOf(keys), { encoding: 'aesgcm', salt });
  const dh = message.cryptoKey!.slice(3);
  const s = salt.toString('base64url');
  const sPadded = salt.toString('base64');
  const other = generateUserAgentKeys().publicKey.toString('base64url');
  for (const [encryption, cryptoKey] of [
    [`salt=${s}`, `dh=${dh}`],
    [`salt="${s}"`, `dh="${dh}"`],
    [`salt=${sPadded}`, `dh=${dh}=`],
    [`keyid=p256dh;salt=${s}`, `keyid=p256dh;dh=${dh};p256ecdsa=${other}`],
    [` Salt = ${s} ; rs=4096`, `p256ecdsa=${other}, DH=${dh}`],
    [`salt=${s}`, `dh=${dh}; p256ecdsa=${other}`],
    [`keyid=a;salt=${s}`, `keyid=b;dh=${other}, keyid=a;dh=${dh}`],
    [`junk, salt=${s}, salt=${randomBytes(16).toString('base64url')}`, `junk;dh=${dh}`],
  ]) {
    const headers = { encoding: 'AESGCM', encryption, cryptoKey };
    assert.deepEqual(decryptMessage(message.body, headers, keys), A.plaintext, `${encryption} / ${cryptoKey}`);
  }
});

test('aesgcm: missing or bad salt, dh and rs are EceErrors', () => {
  const { keys } = userAgent();
  const message = encryptMessage(A.plaintext, publicOf(keys), { encoding: 'aesgcm' });
  const { body } = message;
  const encryption = message.encryption!;
  const cryptoKey = message.cryptoKey!;
  const cases: [Partial<ReceivedHeaders>, RegExp][] = [
    [{ cryptoKey }, /aesgcm needs an Encryption header with salt=/],
    [{ encryption }, /aesgcm needs a Crypto-Key header with dh=/],
    [{ encryption: 'rs=4096', cryptoKey }, /the Encryption header lacks salt=/],
    [{ encryption: 'salt=', cryptoKey }, /Encryption salt= is not base64url/],
    [{ encryption: 'salt=***', cryptoKey }, /Encryption salt= is not base64url/],
    [{ encryption: `salt=${randomBytes(12).toString('base64url')}`, cryptoKey }, /salt= must be 16 bytes, not 12/],
    [{ encryption: `${encryption};rs=2`, cryptoKey }, /Encryption rs= must be an integer of at least 3, not "2"/],
    [{ encryption: `${encryption};rs=abc`, cryptoKey }, /rs= must be an integer .* not "abc"/],
    [{ encryption, cryptoKey: 'p256ecdsa=abc' }, /the Crypto-Key header lacks dh=/],
    [{ encryption, cryptoKey: 'dh=!!' }, /Crypto-Key dh= is not base64url/],
    [{ encryption, cryptoKey: `dh=${randomBytes(65).toString('base64url')}` }, /Crypto-Key dh= does not start with 0x04/],
    [{ encryption, cryptoKey: `${cryptoKey.slice(0, -2)}AA` }, /Crypto-Key dh= is not a point on the P-256 curve/],
    [{ encryption: `salt=${randomBytes(16).toString('base64url')}`, cryptoKey }, /authentication failed/],
    [{ encryption, cryptoKey: `dh=${generateUserAgentKeys().publicKey.toString('base64url')}` }, /authentication failed/],
    [{ encryption: `${encryption};rs=10`, cryptoKey }, /authentication failed|truncated/],
  ];
  for (const [headers, pattern] of cases) {
    rejects(() => decryptMessage(body, { encoding: 'aesgcm', ...headers }, keys), pattern, JSON.stringify(headers));
  }
  const headers = { encoding: 'aesgcm', encryption, cryptoKey };
  rejects(() => decryptMessage(Buffer.alloc(0), headers, keys), /empty body/);
  for (let length = 1; length < body.length; length++) {
    rejects(() => decryptMessage(body.subarray(0, length), headers, keys), /truncated|authentication failed/);
  }
});

test('cross-check with http_ece: aes128gcm (Web Push mode) both ways, byte-identical', () => {
  for (const [length, pad, rs] of [
    [0, 0, 4096],
    [41, 0, 4096],
    [1000, 17, 4096],
    [3993, 0, 4096],
    [100, 0, 117],
  ] as const) {
    const ua = userAgent();
    const plaintext = randomBytes(length);
    const label = `${length}+${pad}, rs ${rs}`;

    const ours = encryptMessage(plaintext, publicOf(ua.keys), { padding: pad, rs });
    const decrypted = ece.decrypt(ours.body, { version: 'aes128gcm', privateKey: ua.ecdh, authSecret: ua.keys.auth });
    assert.deepEqual(decrypted, plaintext, label);

    const sender = createECDH('prime256v1');
    sender.generateKeys();
    const salt = randomBytes(16);
    const theirs = ece.encrypt(plaintext, {
      version: 'aes128gcm',
      privateKey: sender,
      dh: ua.keys.publicKey,
      authSecret: ua.keys.auth,
      salt,
      rs,
      pad,
    });
    assert.deepEqual(decryptMessage(theirs, AES128GCM, ua.keys), plaintext, label);
    const same = encryptMessage(plaintext, publicOf(ua.keys), {
      padding: pad,
      rs,
      salt,
      senderPrivateKey: sender.getPrivateKey(),
    });
    assert.deepEqual(same.body, theirs, label);
  }
});

test('cross-check with http_ece: multi-record aes128gcm Web Push bodies decrypt (RFC 8188)', () => {
  const ua = userAgent();
  const sender = createECDH('prime256v1');
  sender.generateKeys();
  const plaintext = randomBytes(500);
  const body = ece.encrypt(plaintext, {
    version: 'aes128gcm',
    privateKey: sender,
    dh: ua.keys.publicKey,
    authSecret: ua.keys.auth,
    rs: 64,
    pad: 20,
  });
  assert.ok(body.length > 86 + 64 * 5);
  assert.deepEqual(decryptMessage(body, AES128GCM, ua.keys), plaintext);
});

test('cross-check with http_ece: aesgcm both ways, byte-identical', () => {
  for (const [length, pad, rs] of [
    [0, 0, 4096],
    [15, 0, 4096],
    [300, 20, 4096],
    [5000, 0, 4096],
    [200, 3, 25],
  ] as const) {
    const ua = userAgent();
    const plaintext = randomBytes(length);
    const label = `${length}+${pad}, rs ${rs}`;

    const ours = encryptMessage(plaintext, publicOf(ua.keys), { encoding: 'aesgcm', padding: pad, rs });
    const salt = b64(/salt=([^;]+)/.exec(ours.encryption!)![1]!);
    const dh = b64(ours.cryptoKey!.slice(3));
    const params = { version: 'aesgcm', privateKey: ua.ecdh, dh, salt, authSecret: ua.keys.auth, rs };
    assert.deepEqual(ece.decrypt(ours.body, params), plaintext, label);

    const sender = createECDH('prime256v1');
    const senderPublic = sender.generateKeys();
    const theirSalt = randomBytes(16);
    const theirs = ece.encrypt(plaintext, {
      version: 'aesgcm',
      privateKey: sender,
      dh: ua.keys.publicKey,
      salt: theirSalt,
      authSecret: ua.keys.auth,
      rs,
      pad,
    });
    const headers = {
      encoding: 'aesgcm',
      encryption: `salt=${theirSalt.toString('base64url')};rs=${rs}`,
      cryptoKey: `dh=${senderPublic.toString('base64url')}`,
    };
    assert.deepEqual(decryptMessage(theirs, headers, ua.keys), plaintext, label);
    const same = encryptMessage(plaintext, publicOf(ua.keys), {
      encoding: 'aesgcm',
      padding: pad,
      rs,
      salt: theirSalt,
      senderPrivateKey: sender.getPrivateKey(),
    });
    assert.deepEqual(same.body, theirs, label);
  }
});

test('encryptMessage rejects invalid subscription keys and options with EceError', () => {
  const { keys } = userAgent();
  const plaintext = Buffer.from('hello');
  for (const [label, p256dh, pattern] of invalidPublicKeys(keys.publicKey)) {
    const ua = { p256dh, auth: keys.auth };
    rejects(() => encryptMessage(plaintext, ua), pattern, label);
    rejects(() => encryptMessage(plaintext, ua, { encoding: 'aesgcm' }), pattern, `${label} (aesgcm)`);
    rejects(() => encryptMessage(plaintext, ua, { senderPrivateKey: A.asPrivate }), pattern, `${label} (static)`);
  }
  const ua = publicOf(keys);
  rejects(() => encryptMessage(plaintext, { ...ua, auth: randomBytes(15) }), /auth secret must be 16 bytes, not 15/);
  rejects(() => encryptMessage(plaintext, { ...ua, auth: randomBytes(32) }), /auth secret must be 16 bytes, not 32/);
  rejects(() => encryptMessage(plaintext, ua, { salt: randomBytes(8) }), /salt must be 16 bytes, not 8/);
  rejects(() => encryptMessage(plaintext, ua, { padding: -1 }), /padding must be a non-negative integer/);
  rejects(() => encryptMessage(plaintext, ua, { senderPrivateKey: randomBytes(33) }), /sender private key must be a P-256 scalar of at most 32 bytes/);
  rejects(() => encryptMessage(plaintext, ua, { senderPrivateKey: Buffer.alloc(32) }), /sender private key is not a valid/);
  rejects(
    () => encryptMessage(plaintext, ua, { encoding: 'aes256gcm' as 'aesgcm' }),
    /unsupported content encoding "aes256gcm"/,
  );
  rejects(() => encryptMessage('hello' as unknown as Buffer, ua), /plaintext must be a Buffer/);
});

test('decryptMessage rejects every truncation of a Web Push body (0 to header + 16 bytes)', () => {
  for (let length = 0; length <= 86 + 16; length++) {
    const pattern = length < 86 ? /truncated header/ : length === 86 ? /no records/ : /truncated record/;
    rejects(() => decryptMessage(A.body.subarray(0, length), AES128GCM, A_UA), pattern, `length ${length}`);
  }
  for (let length = 86 + 17; length < A.body.length; length++) {
    rejects(() => decryptMessage(A.body.subarray(0, length), AES128GCM, A_UA), /authentication failed/);
  }
});

test('decryptMessage rejects wrong keys, bad keyids and tampering with EceError', () => {
  rejects(() => decryptMessage(A.body, AES128GCM, { ...A_UA, auth: randomBytes(16) }), /authentication failed/);
  const other = generateUserAgentKeys();
  rejects(() => decryptMessage(A.body, AES128GCM, { ...A_UA, privateKey: other.privateKey }), /authentication failed/);
  rejects(() => decryptMessage(A.body, AES128GCM, { ...A_UA, auth: randomBytes(12) }), /auth secret must be 16 bytes/);
  rejects(() => decryptMessage(A.body, AES128GCM, { ...A_UA, publicKey: A.uaPublic.subarray(1) }), /not 64 bytes/);
  rejects(() => decryptMessage(A.body, AES128GCM, { ...A_UA, privateKey: Buffer.alloc(32) }), /not a valid P-256/);
  rejects(() => decryptMessage(A.body, { encoding: 'gzip' }, A_UA), /unsupported Content-Encoding "gzip"/);

  // keyid of the wrong size or not a point.
  const noKeyid = Buffer.concat([A.body.subarray(0, 20), Buffer.of(0), A.body.subarray(86)]);
  rejects(() => decryptMessage(noKeyid, AES128GCM, A_UA), /keyid \(the sender public key\) must be a 65-byte/);
  const offCurve = Buffer.from(A.body);
  offCurve[85] = offCurve[85]! ^ 1;
  rejects(() => decryptMessage(offCurve, AES128GCM, A_UA), /keyid \(the sender public key\) is not a point/);

  for (let i = 0; i < A.body.length; i++) {
    const tampered = Buffer.from(A.body);
    tampered[i] = tampered[i]! ^ 0x80;
    if (i >= 16 && i < 20) {
      // rs is not authenticated (RFC 8188): any rs above the record's length reads the same record.
      assert.deepEqual(decryptMessage(tampered, AES128GCM, A_UA), A.plaintext);
      continue;
    }
    const pattern = i === 20 ? /truncated/ : i === 21 ? /does not start with 0x04/ : /not a point|authentication failed/;
    rejects(() => decryptMessage(tampered, AES128GCM, A_UA), pattern, `byte ${i}`);
  }
});

test('decryptMessage: random inputs and mutations only ever raise EceError', () => {
  const { keys } = userAgent();
  const { body } = encryptMessage(randomBytes(200), publicOf(keys), { padding: 10 });
  for (let i = 0; i < 400; i++) {
    const input =
      i % 3 === 0
        ? randomBytes(i)
        : i % 3 === 1
          ? Buffer.concat([body.subarray(0, 86), randomBytes(i)])
          : Buffer.concat([body.subarray(0, 21), randomBytes(65), body.subarray(86)]);
    assert.throws(
      () => decryptMessage(input, AES128GCM, keys),
      (err) => err instanceof EceError,
      `input ${i}`,
    );
  }
});
