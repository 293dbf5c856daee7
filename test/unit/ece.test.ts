// Content codings on their own: aes128gcm (RFC 8188) and the legacy aesgcm record layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import {
  EceError,
  decryptAes128gcm,
  deriveAes128gcmKey,
  encryptAes128gcm,
  randomSalt,
  recordNonce,
} from '../../src/crypto/aes128gcm.ts';
import type { ContentKey } from '../../src/crypto/aes128gcm.ts';
import { decryptAesgcm, encryptAesgcm } from '../../src/crypto/aesgcm.ts';

interface HttpEce {
  encrypt(buffer: Buffer, params: Record<string, unknown>): Buffer;
  decrypt(buffer: Buffer, params: Record<string, unknown>): Buffer;
}
const ece = createRequire(import.meta.url)('http_ece') as HttpEce;

const b64 = (text: string) => Buffer.from(text, 'base64url');
const WALRUS = Buffer.from('I am the walrus');

// RFC 8188 3.1 and 3.2 (see docs in /work/shared/spec/encryption.md).
const RFC_3_1 = {
  ikm: b64('yqdlZ-tYemfogSmv7Ws5PQ'),
  body: b64('I1BsxtFttlv3u_Oo94xnmwAAEAAA-NAVub2qFgBEuQKRapoZu-IxkIva3MEB1PD-ly8Thjg'),
};
const RFC_3_2 = {
  ikm: b64('BO3ZVPxUlnLORbVGMpbT1Q'),
  body: b64(
    'uNCkWiNYzKTnBN9ji3-qWAAAABkCYTHOG8chz_gnvgOqdGYovxyjuqRyJFjEDyoF1Fvkj6hQPdPHI51OEUKEpgz3SsLWIqS_uA',
  ),
};
// Legacy aesgcm known answer: the record layer with a given CEK and nonce.
const AESGCM_KAT = {
  key: { cek: b64('AN2-xhvFWeYh5z0fcDu0Ww'), nonce: b64('JY1Okw5rw1Drkg9J') },
  ciphertext: b64('6nqAQUME8hNqw5J3kl8cpVVJylXKYqZOeseZG8UueKpA'),
};

/** Asserts fn throws an EceError (never another type) whose message matches pattern. */
function rejects(fn: () => unknown, pattern: RegExp, label = ''): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof EceError, `${label}: expected EceError, got ${String(err)}`);
    assert.match(err.message, pattern, label);
    return true;
  });
}

/** aes128gcm header + records from raw record plaintexts (delimiters included), for malformed cases. */
function sealRecords(ikm: Buffer, rs: number, plaintexts: Buffer[], salt = randomBytes(16)): Buffer {
  const key = deriveAes128gcmKey(salt, ikm);
  const header = Buffer.alloc(21);
  salt.copy(header);
  header.writeUInt32BE(rs, 16);
  const records = plaintexts.map((plain, seq) => {
    const cipher = createCipheriv('aes-128-gcm', key.cek, recordNonce(key.nonce, seq));
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  });
  return Buffer.concat([header, ...records]);
}

test('RFC 8188 3.1: decrypts to "I am the walrus" and encryption reproduces the body', () => {
  const out = decryptAes128gcm(RFC_3_1.body, RFC_3_1.ikm);
  assert.deepEqual(out.plaintext, WALRUS);
  assert.equal(out.rs, 4096);
  assert.equal(out.keyid.length, 0);
  assert.equal(RFC_3_1.body.length, 53);
  const again = encryptAes128gcm({ plaintext: WALRUS, ikm: RFC_3_1.ikm, salt: out.salt });
  assert.deepEqual(again, RFC_3_1.body);
  // An already derived key gives the same body.
  const key = deriveAes128gcmKey(out.salt, RFC_3_1.ikm);
  assert.deepEqual(encryptAes128gcm({ plaintext: WALRUS, key, salt: out.salt }), RFC_3_1.body);
});

test('RFC 8188 3.2: two records, rs 25, keyid "a1"; encryption reproduces the body', () => {
  let seenKeyid: Buffer | undefined;
  const out = decryptAes128gcm(RFC_3_2.body, (keyid) => {
    seenKeyid = Buffer.from(keyid);
    return RFC_3_2.ikm;
  });
  assert.deepEqual(out.plaintext, WALRUS);
  assert.equal(out.rs, 25);
  assert.equal(seenKeyid?.toString(), 'a1');
  assert.equal(out.keyid.toString(), 'a1');
  // 23-byte header, then two 25-byte records: 7 data bytes + 0x01 + 1 padding, 8 data + 0x02.
  assert.equal(RFC_3_2.body.length, 23 + 25 + 25);
  const again = encryptAes128gcm({
    plaintext: WALRUS,
    ikm: RFC_3_2.ikm,
    salt: out.salt,
    rs: 25,
    keyid: Buffer.from('a1'),
    padding: 1,
  });
  assert.deepEqual(again, RFC_3_2.body);
});

test('deriveAes128gcmKey and recordNonce', () => {
  const salt = RFC_3_1.body.subarray(0, 16);
  const { cek, nonce } = deriveAes128gcmKey(salt, RFC_3_1.ikm);
  assert.equal(cek.length, 16);
  assert.equal(nonce.length, 12);
  const expected = Buffer.from(hkdfSync('sha256', RFC_3_1.ikm, salt, 'Content-Encoding: aes128gcm\0', 16));
  assert.deepEqual(cek, expected);
  assert.equal(recordNonce(nonce, 0), nonce);
  const n1 = recordNonce(nonce, 0x0102_0304_0506);
  assert.deepEqual(n1.subarray(0, 6), nonce.subarray(0, 6));
  assert.deepEqual(
    [...n1.subarray(6)].map((byte, i) => byte ^ nonce[6 + i]!),
    [1, 2, 3, 4, 5, 6],
  );
  assert.notEqual(randomSalt().toString('hex'), randomSalt().toString('hex'));
  assert.equal(randomSalt().length, 16);
});

test('aes128gcm round trips around record boundaries, with padding, matching http_ece', () => {
  const ikm = randomBytes(16);
  for (const rs of [18, 19, 25, 64]) {
    const capacity = rs - 17;
    const lengths = [0, 1, capacity - 1, capacity, capacity + 1, 2 * capacity, 2 * capacity + 1, 3 * capacity + 2];
    const paddings = [0, 1, Math.max(0, capacity - 1), capacity, capacity + 1, 2 * rs + 3];
    for (const length of lengths) {
      for (const padding of paddings) {
        const label = `rs ${rs}, ${length} bytes, padding ${padding}`;
        const plaintext = randomBytes(length);
        const salt = randomBytes(16);
        const body = encryptAes128gcm({ plaintext, ikm, salt, rs, padding });
        const out = decryptAes128gcm(body, ikm);
        assert.deepEqual(out.plaintext, plaintext, label);
        // Every record but the last is exactly rs; each carries 17 bytes of overhead.
        const records = Math.ceil((body.length - 21) / rs);
        assert.equal(body.length, 21 + length + padding + 17 * records, label);
        assert.deepEqual(ece.decrypt(body, { version: 'aes128gcm', key: ikm }), plaintext, label);
        // Same layout as the reference implementation where its output is valid (it mis-sizes
        // padding-only records, and takes one padding byte per record at rs 18).
        if (rs > 18 && (padding <= 1 || length > padding)) {
          const theirs = ece.encrypt(plaintext, { version: 'aes128gcm', key: ikm, salt, rs, pad: padding });
          assert.deepEqual(body, theirs, label);
        }
      }
    }
  }
});

test('aes128gcm decrypts what http_ece encrypts, keyid and large rs included', () => {
  const ikm = randomBytes(32);
  for (const [length, rs, pad] of [
    [0, 4096, 0],
    [100, 4096, 0],
    [3993, 4096, 0],
    [5000, 4096, 10],
    [300, 50, 7],
    [17, 18, 0],
  ] as const) {
    const plaintext = randomBytes(length);
    const body = ece.encrypt(plaintext, { version: 'aes128gcm', key: ikm.subarray(0, 16), rs, pad, keyid: 'k1' });
    const out = decryptAes128gcm(body, (keyid) => {
      assert.equal(keyid.toString(), 'k1');
      return ikm.subarray(0, 16);
    });
    assert.deepEqual(out.plaintext, plaintext, `${length}/${rs}/${pad}`);
  }
});

test('aes128gcm: empty plaintext is one 17-byte record; keyid up to 255 bytes', () => {
  const ikm = randomBytes(16);
  const body = encryptAes128gcm({ plaintext: Buffer.alloc(0), ikm });
  assert.equal(body.length, 21 + 17);
  assert.equal(decryptAes128gcm(body, ikm).plaintext.length, 0);
  const keyid = randomBytes(255);
  const withId = encryptAes128gcm({ plaintext: WALRUS, ikm, keyid });
  assert.deepEqual(decryptAes128gcm(withId, ikm).keyid, keyid);
  // Large record size: a 100 kB message in one record.
  const big = randomBytes(100_000);
  assert.deepEqual(decryptAes128gcm(encryptAes128gcm({ plaintext: big, ikm, rs: 200_000 }), ikm).plaintext, big);
});

test('aes128gcm rejects bad encryption parameters', () => {
  const ikm = randomBytes(16);
  const plaintext = WALRUS;
  rejects(() => encryptAes128gcm({ plaintext, ikm, rs: 17 }), /record size rs must be an integer from 18/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, rs: 2 ** 32 }), /record size rs/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, rs: 100.5 }), /record size rs/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, salt: randomBytes(15) }), /salt must be 16 bytes, not 15/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, keyid: randomBytes(256) }), /keyid is 256 bytes/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, padding: -1 }), /padding must be a non-negative integer/);
  rejects(() => encryptAes128gcm({ plaintext, ikm, padding: 1.5 }), /padding must be a non-negative integer/);
  rejects(() => encryptAes128gcm({ plaintext, ikm: randomBytes(15) }), /IKM must be at least 16 bytes, not 15/);
  rejects(() => encryptAes128gcm({ plaintext }), /an ikm or a key is required/);
  const key = deriveAes128gcmKey(randomBytes(16), ikm);
  rejects(() => encryptAes128gcm({ plaintext, ikm, key }), /either ikm or key/);
  rejects(() => encryptAes128gcm({ plaintext, key: { ...key, cek: randomBytes(32) } }), /cek must be 16 bytes/);
  rejects(() => encryptAes128gcm({ plaintext, key: { ...key, nonce: randomBytes(16) } }), /nonce must be 12 bytes/);
  rejects(() => encryptAes128gcm({ plaintext: 'text' as unknown as Buffer, ikm }), /plaintext must be a Buffer/);
});

test('aes128gcm rejects every truncation of the header and first record', () => {
  const body = RFC_3_1.body;
  for (let length = 0; length <= 21 + 16; length++) {
    const pattern = length < 21 ? /truncated header/ : length === 21 ? /no records/ : /truncated record/;
    rejects(() => decryptAes128gcm(body.subarray(0, length), RFC_3_1.ikm), pattern, `length ${length}`);
  }
  // Cut inside the record: authentication fails.
  for (let length = 38; length < body.length; length++) {
    rejects(() => decryptAes128gcm(body.subarray(0, length), RFC_3_1.ikm), /authentication failed/, `length ${length}`);
  }
  // The keyid announced by idlen is missing.
  const header = Buffer.from(RFC_3_2.body.subarray(0, 22));
  rejects(() => decryptAes128gcm(header, RFC_3_2.ikm), /truncated header: 22 bytes, but idlen 2 needs 23/);
});

test('aes128gcm rejects a body cut at a record boundary or inside a later record', () => {
  const body = RFC_3_2.body;
  rejects(
    () => decryptAes128gcm(body.subarray(0, 23 + 25), RFC_3_2.ikm),
    /final record has delimiter 0x01, so records are missing/,
  );
  for (const length of [23 + 25 + 1, 23 + 25 + 16]) {
    rejects(() => decryptAes128gcm(body.subarray(0, length), RFC_3_2.ikm), /truncated record/, `length ${length}`);
  }
  for (let length = 23 + 25 + 17; length < body.length; length++) {
    rejects(() => decryptAes128gcm(body.subarray(0, length), RFC_3_2.ikm), /authentication failed/, `length ${length}`);
  }
  // Records swapped: the nonces no longer match.
  const swapped = Buffer.concat([body.subarray(0, 23), body.subarray(48), body.subarray(23, 48)]);
  rejects(() => decryptAes128gcm(swapped, RFC_3_2.ikm), /record 0: authentication failed/);
});

test('aes128gcm rejects rs < 18', () => {
  for (const rs of [0, 1, 17]) {
    const body = Buffer.from(RFC_3_1.body);
    body.writeUInt32BE(rs, 16);
    rejects(() => decryptAes128gcm(body, RFC_3_1.ikm), new RegExp(`invalid record size rs ${rs}: the minimum is 18`));
  }
});

test('aes128gcm rejects wrong delimiters and non-zero padding', () => {
  const ikm = randomBytes(16);
  const data = Buffer.from('data');
  const cases: [Buffer[], number, RegExp][] = [
    [[Buffer.concat([data, Buffer.of(1)])], 4096, /final record has delimiter 0x01/],
    [[Buffer.concat([data, Buffer.of(3)])], 4096, /non-zero padding or invalid delimiter \(0x03\)/],
    [[Buffer.concat([data, Buffer.of(2, 0, 5, 0)])], 4096, /non-zero padding or invalid delimiter \(0x05\)/],
    [[Buffer.alloc(5)], 4096, /no padding delimiter \(the record is all zeros\)/],
    [[Buffer.alloc(0)], 4096, /truncated record: the final record is 16 bytes/],
    // rs 20: non-last records are 20 bytes, so 4 bytes of record plaintext.
    [[Buffer.of(65, 66, 67, 2), Buffer.of(68, 2)], 20, /record 0: delimiter 0x02 marks the final record/],
    [[Buffer.of(65, 66, 67, 0), Buffer.of(68, 2)], 20, /record 0: .*invalid delimiter \(0x43\)/],
    [[Buffer.of(65, 1, 0, 7), Buffer.of(68, 2)], 20, /record 0: non-zero padding or invalid delimiter \(0x07\)/],
    [[Buffer.of(65, 66, 67, 1), Buffer.of(68, 1)], 20, /record 1: the final record has delimiter 0x01/],
    [[Buffer.of(65, 66, 67, 1), Buffer.of(68, 2, 9)], 20, /record 1: non-zero padding .*0x09/],
  ];
  for (const [plaintexts, rs, pattern] of cases) {
    rejects(() => decryptAes128gcm(sealRecords(ikm, rs, plaintexts), ikm), pattern, String(pattern));
  }
  // Well-formed counterparts decrypt.
  const good = sealRecords(ikm, 20, [Buffer.of(65, 1, 0, 0), Buffer.of(68, 2, 0)]);
  assert.equal(decryptAes128gcm(good, ikm).plaintext.toString(), 'AD');
});

test('aes128gcm rejects tampering and a wrong IKM, without partial plaintext', () => {
  const ikm = randomBytes(16);
  const body = encryptAes128gcm({ plaintext: randomBytes(100), ikm, rs: 50, padding: 3 });
  for (let i = 0; i < body.length; i++) {
    const tampered = Buffer.from(body);
    tampered[i] = tampered[i]! ^ 0x40;
    if (i === 20) {
      // idlen: the header now claims a keyid.
      rejects(() => decryptAes128gcm(tampered, ikm), /truncated|authentication failed/, `byte ${i}`);
      continue;
    }
    rejects(
      () => decryptAes128gcm(tampered, ikm),
      i >= 16 && i < 20 ? /record size|authentication failed|truncated|delimiter/ : /authentication failed/,
      `byte ${i}`,
    );
  }
  rejects(() => decryptAes128gcm(body, randomBytes(16)), /record 0: authentication failed/);
  rejects(() => decryptAes128gcm(body, randomBytes(8)), /IKM must be at least 16 bytes/);
});

test('aes128gcm turns key-function failures into EceError', () => {
  rejects(
    () =>
      decryptAes128gcm(RFC_3_2.body, () => {
        throw new TypeError('unknown key a1');
      }),
    /no key for keyid: unknown key a1/,
  );
  const own = new EceError('bad keyid');
  assert.throws(
    () =>
      decryptAes128gcm(RFC_3_2.body, () => {
        throw own;
      }),
    (err) => err === own,
  );
  rejects(() => decryptAes128gcm(RFC_3_2.body, () => 'not a buffer' as unknown as Buffer), /IKM must be a Buffer/);
  rejects(() => decryptAes128gcm('body' as unknown as Buffer, RFC_3_2.ikm), /body must be a Buffer/);
});

test('aes128gcm: random mutations only ever raise EceError', () => {
  const ikm = randomBytes(16);
  const body = encryptAes128gcm({ plaintext: randomBytes(60), ikm, rs: 40, keyid: Buffer.from('id'), padding: 5 });
  for (let i = 0; i < 2000; i++) {
    const mutated = Buffer.from(body);
    const op = i % 4;
    if (op === 0) mutated[i % body.length] = (i * 37) & 0xff;
    let input = mutated;
    if (op === 1) input = mutated.subarray(0, i % body.length);
    if (op === 2) input = Buffer.concat([mutated, randomBytes(1 + (i % 40))]);
    if (op === 3) input = randomBytes(i % 120);
    try {
      decryptAes128gcm(input, ikm);
      // The keyid (bytes 21-22) only selects the IKM: it is not authenticated by itself.
      const rest = (buf: Buffer) => Buffer.concat([buf.subarray(0, 21), buf.subarray(23)]);
      assert.ok(op === 0 && rest(input).equals(rest(body)), `mutation ${i} decrypted`);
    } catch (err) {
      assert.ok(err instanceof EceError, `mutation ${i}: ${String(err)}`);
    }
  }
});

// ---- aesgcm record layer ----

/** The aesgcm key for http_ece's explicit-key mode (no DH context). */
function explicitAesgcmKey(key: Buffer, salt: Buffer): ContentKey {
  return {
    cek: Buffer.from(hkdfSync('sha256', key, salt, 'Content-Encoding: aesgcm\0', 16)),
    nonce: Buffer.from(hkdfSync('sha256', key, salt, 'Content-Encoding: nonce\0', 12)),
  };
}

test('aesgcm known answer: decrypts and re-encrypts exactly', () => {
  assert.deepEqual(decryptAesgcm(AESGCM_KAT.ciphertext, AESGCM_KAT.key), WALRUS);
  assert.deepEqual(encryptAesgcm({ plaintext: WALRUS, key: AESGCM_KAT.key }), AESGCM_KAT.ciphertext);
});

test('aesgcm round trips with padding around record boundaries, byte-identical to http_ece', () => {
  const secret = randomBytes(16);
  for (const rs of [3, 4, 10, 4096]) {
    const capacity = rs - 2;
    const lengths = [0, 1, capacity - 1, capacity, capacity + 1, 2 * capacity, 2 * capacity + 1];
    for (const length of lengths) {
      for (const padding of [0, 1, capacity - 1, capacity, capacity + 5]) {
        if (padding < 0 || (rs === 4096 && padding > 5 && length > 5)) continue;
        const label = `rs ${rs}, ${length} bytes, padding ${padding}`;
        const plaintext = randomBytes(length);
        const salt = randomBytes(16);
        const key = explicitAesgcmKey(secret, salt);
        const body = encryptAesgcm({ plaintext, key, rs, padding });
        assert.deepEqual(decryptAesgcm(body, key, rs), plaintext, label);
        assert.notEqual(body.length % (rs + 16), 0, label);
        assert.deepEqual(ece.decrypt(body, { version: 'aesgcm', key: secret, salt, rs }), plaintext, label);
        // http_ece cannot pad once the data is out (it throws), and at rs 3 pads each record by one.
        if (length > padding && rs > 3) {
          const theirs = ece.encrypt(plaintext, { version: 'aesgcm', key: secret, salt, rs, pad: padding });
          assert.deepEqual(body, theirs, label);
        }
      }
    }
  }
});

test('aesgcm: a full final record is followed by an empty one', () => {
  const key = explicitAesgcmKey(randomBytes(16), randomBytes(16));
  const body = encryptAesgcm({ plaintext: randomBytes(8), key, rs: 10 });
  assert.equal(body.length, 26 + 18);
  assert.equal(encryptAesgcm({ plaintext: Buffer.alloc(0), key }).length, 18);
  rejects(() => encryptAesgcm({ plaintext: WALRUS, key, rs: 2 }), /rs must be an integer from 3/);
  rejects(() => encryptAesgcm({ plaintext: WALRUS, key, padding: -3 }), /padding must be a non-negative integer/);
  rejects(() => encryptAesgcm({ plaintext: WALRUS, key: { ...key, cek: randomBytes(8) } }), /cek must be 16 bytes/);
  // More than 65535 bytes of padding where no padding-only record can be full.
  rejects(
    () => encryptAesgcm({ plaintext: WALRUS, key, rs: 200_000, padding: 70_000 }),
    /cannot pad by 70000 bytes with rs 200000/,
  );
  const padded = encryptAesgcm({ plaintext: WALRUS, key, rs: 4096, padding: 70_000 });
  assert.deepEqual(decryptAesgcm(padded, key), WALRUS);
});

test('aesgcm rejects malformed, truncated and tampered bodies', () => {
  const { key, ciphertext } = AESGCM_KAT;
  rejects(() => decryptAesgcm(Buffer.alloc(0), key), /empty body/);
  for (let length = 1; length < 18; length++) {
    rejects(() => decryptAesgcm(ciphertext.subarray(0, length), key), /truncated record/, `length ${length}`);
  }
  for (let length = 18; length < ciphertext.length; length++) {
    rejects(() => decryptAesgcm(ciphertext.subarray(0, length), key), /authentication failed/, `length ${length}`);
  }
  // Two records of rs 10, cut after the first (full-size) one.
  const k2 = explicitAesgcmKey(randomBytes(16), randomBytes(16));
  const body = encryptAesgcm({ plaintext: randomBytes(12), key: k2, rs: 10 });
  rejects(() => decryptAesgcm(body.subarray(0, 26), k2, 10), /final record is full-size/);
  rejects(() => decryptAesgcm(body, k2, 4096), /authentication failed/);
  for (let i = 0; i < ciphertext.length; i++) {
    const tampered = Buffer.from(ciphertext);
    tampered[i] = tampered[i]! ^ 1;
    rejects(() => decryptAesgcm(tampered, key), /authentication failed/, `byte ${i}`);
  }
  rejects(() => decryptAesgcm(ciphertext, { ...key, nonce: randomBytes(12) }), /authentication failed/);
  rejects(() => decryptAesgcm(ciphertext, key, 2), /rs must be an integer from 3/);

  const seal = (plain: Buffer) => {
    const cipher = createCipheriv('aes-128-gcm', key.cek, key.nonce);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };
  rejects(() => decryptAesgcm(seal(Buffer.of(0, 5, 0, 0)), key), /padding length 5 exceeds the record \(4 bytes\)/);
  rejects(() => decryptAesgcm(seal(Buffer.of(0, 2, 0, 1, 65)), key), /non-zero padding/);
  assert.deepEqual(decryptAesgcm(seal(Buffer.of(0, 2, 0, 0, 65)), key), Buffer.from('A'));
});
