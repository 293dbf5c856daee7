/**
 * The "aes128gcm" Encrypted Content-Encoding (RFC 8188): header || records, AES-128-GCM per
 * record, CEK and nonce from HKDF-SHA-256 over (salt, IKM). Pure: no I/O, node:crypto only.
 *
 * Speed notes (Node 24, measured with bench/crypto-micro.ts): keys reach createHmac and
 * createCipheriv as latin1 strings with `encoding: 'latin1'` (documented options; the bytes
 * round-trip exactly). Given a Buffer, Node first runs two brand checks that throw and catch
 * internally (isKeyObject, isCryptoKey): ~7 us per call, ~9 us per HMAC in all. A string skips
 * them: ~1.9 us per HMAC, against ~2.7 us for createSecretKey + a KeyObject key. HKDF is
 * spelled out as HMAC calls: every output here is at most 32 bytes, so expand is a single
 * HMAC over info || 0x01.
 */

import { createCipheriv, createDecipheriv, createHmac, randomFillSync } from 'node:crypto';
import type { CipherGCM, DecipherGCM, Hmac } from 'node:crypto';
import { constants } from 'node:buffer';

/** Any failure to encrypt or decrypt: bad parameters, malformed or tampered content. */
export class EceError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EceError';
  }
}

/** The content-encryption key and the nonce base that record nonces are derived from. */
export interface ContentKey {
  /** 16 bytes */
  cek: Buffer;
  /** 12 bytes */
  nonce: Buffer;
}

export interface Aes128gcmEncryptParams {
  plaintext: Buffer;
  /** Input keying material (at least 16 bytes); exclusive with `key`. */
  ikm?: Buffer;
  /** An already derived key (e.g. from deriveAes128gcmKey with the same salt); exclusive with `ikm`. */
  key?: ContentKey;
  /** 16 bytes; default: fresh random. */
  salt?: Buffer;
  /** Record size, 18 to 2^32 - 1; default 4096. */
  rs?: number;
  /** At most 255 bytes; default empty. */
  keyid?: Buffer;
  /** Zero bytes added after the plaintext's delimiters; default 0. */
  padding?: number;
}

export interface Aes128gcmDecrypted {
  plaintext: Buffer;
  /** A view into the body */
  keyid: Buffer;
  /** A view into the body */
  salt: Buffer;
  rs: number;
}

/** The IKM itself, or a function of the header's keyid (Web Push: the sender's public key). */
export type IkmSource = Buffer | ((keyid: Buffer) => Buffer);

export const SALT_LENGTH = 16;
export const TAG_LENGTH = 16;
export const KEY_LENGTH = 16;
export const NONCE_LENGTH = 12;
/** salt(16) | rs(4) | idlen(1), before the keyid */
export const HEADER_FIXED_LENGTH = 21;
/** A record holds at least a delimiter and the tag. */
export const MIN_RECORD_SIZE = TAG_LENGTH + 2;
/** What every record holds besides data: the tag and at least the delimiter. */
const RECORD_OVERHEAD = TAG_LENGTH + 1;
const MAX_RECORD_SIZE = 0xffff_ffff;
const DEFAULT_RECORD_SIZE = 4096;
const MIN_IKM_LENGTH = 16;
const MAX_LENGTH = constants.MAX_LENGTH;

const CEK_INFO = Buffer.from('Content-Encoding: aes128gcm\0\x01', 'latin1');
const NONCE_INFO = Buffer.from('Content-Encoding: nonce\0\x01', 'latin1');
const DELIMITER_MORE = 1;
const DELIMITER_LAST = 2;
const TAIL_MORE = Buffer.of(DELIMITER_MORE);
const TAIL_LAST = Buffer.of(DELIMITER_LAST);
const EMPTY = Buffer.alloc(0);

const LATIN1 = { encoding: 'latin1' } as const;
const DECIPHER_OPTIONS = { encoding: 'latin1', authTagLength: TAG_LENGTH } as const;

/** HMAC-SHA-256 keyed by `key` (passed as a latin1 string: see the speed notes above). */
export function hmacSha256(key: Buffer): Hmac {
  return createHmac('sha256', key.toString('latin1'), LATIN1);
}

/** AES-128-GCM with a key from latin1Key(). */
export function gcmCipher(key: string, nonce: Buffer): CipherGCM {
  return createCipheriv('aes-128-gcm', key, nonce, LATIN1);
}

export function gcmDecipher(key: string, nonce: Buffer): DecipherGCM {
  return createDecipheriv('aes-128-gcm', key, nonce, DECIPHER_OPTIONS);
}

/** A CEK in the form gcmCipher and gcmDecipher take, converted once per message. */
export function latin1Key(cek: Buffer): string {
  return cek.toString('latin1');
}

/** HKDF-SHA-256(salt, ikm) -> CEK (16 bytes) and nonce base (12 bytes), RFC 8188 2.2 and 2.3. */
export function deriveAes128gcmKey(salt: Buffer, ikm: Buffer): ContentKey {
  const prk = hmacSha256(salt).update(ikm).digest();
  return {
    cek: hmacSha256(prk).update(CEK_INFO).digest().subarray(0, KEY_LENGTH),
    nonce: hmacSha256(prk).update(NONCE_INFO).digest().subarray(0, NONCE_LENGTH),
  };
}

/** The nonce of record `seq`: the base XOR seq in its low 48 bits (RFC 8188 2.3). */
export function recordNonce(base: Buffer, seq: number): Buffer {
  if (seq === 0) return base;
  const nonce = Buffer.from(base);
  let rest = seq;
  for (let i = NONCE_LENGTH - 1; rest > 0; i--) {
    nonce[i] = nonce[i]! ^ (rest % 256);
    rest = Math.floor(rest / 256);
  }
  return nonce;
}

let saltPool = EMPTY;
let saltOffset = 0;

/** 16 fresh random bytes. Drawn from a pooled randomFillSync: randomBytes(16) costs ~2 us a call. */
export function randomSalt(): Buffer {
  if (saltOffset + SALT_LENGTH > saltPool.length) {
    saltPool = randomFillSync(Buffer.allocUnsafeSlow(4096));
    saltOffset = 0;
  }
  const salt = Buffer.allocUnsafe(SALT_LENGTH);
  saltPool.copy(salt, 0, saltOffset, saltOffset + SALT_LENGTH);
  saltOffset += SALT_LENGTH;
  return salt;
}

/**
 * Encrypts `plaintext` into header || records. Records are filled in order, each non-last one
 * exactly `rs` bytes. Padding goes first, as in the RFC 8188 3.2 example and the http_ece
 * reference: while data remains a record takes as much padding as leaves room for one data
 * byte; padding left once the data is out fills padding-only records.
 */
export function encryptAes128gcm(params: Aes128gcmEncryptParams): Buffer {
  const { plaintext } = params;
  if (!(plaintext instanceof Uint8Array)) throw new EceError('plaintext must be a Buffer');
  const rs = checkRecordSize(params.rs ?? DEFAULT_RECORD_SIZE);
  const padding = checkPadding(params.padding ?? 0);
  const keyid = params.keyid ?? EMPTY;
  if (keyid.length > 255) throw new EceError(`keyid is ${keyid.length} bytes; the header allows at most 255`);
  const salt = params.salt ?? randomSalt();
  if (salt.length !== SALT_LENGTH) throw new EceError(`salt must be ${SALT_LENGTH} bytes, not ${salt.length}`);
  const key = resolveEncryptionKey(params, salt);

  const capacity = rs - MIN_RECORD_SIZE + 1; // data + padding bytes per record
  const records = countRecords(plaintext.length, padding, capacity);
  const headerLength = HEADER_FIXED_LENGTH + keyid.length;
  const total = headerLength + plaintext.length + padding + records * RECORD_OVERHEAD;
  if (total > MAX_LENGTH) throw new EceError(`the encrypted body would be ${total} bytes, more than a Buffer holds`);
  const out = Buffer.allocUnsafe(total);
  salt.copy(out, 0);
  out.writeUInt32BE(rs, SALT_LENGTH);
  out[20] = keyid.length;
  keyid.copy(out, HEADER_FIXED_LENGTH);

  const cek = latin1Key(key.cek);
  let pos = headerLength;
  let dataStart = 0;
  let padLeft = padding;
  for (let seq = 0; seq < records; seq++) {
    const dataLeft = plaintext.length - dataStart;
    const pad = dataLeft > 0 ? Math.min(padLeft, capacity - 1) : Math.min(padLeft, capacity);
    const dataLength = Math.min(dataLeft, capacity - pad);
    padLeft -= pad;
    const last = seq === records - 1;
    const cipher = gcmCipher(cek, recordNonce(key.nonce, seq));
    if (dataLength > 0) {
      pos += cipher.update(plaintext.subarray(dataStart, dataStart + dataLength)).copy(out, pos);
      dataStart += dataLength;
    }
    let tail = last ? TAIL_LAST : TAIL_MORE;
    if (pad > 0) {
      tail = Buffer.alloc(1 + pad);
      tail[0] = last ? DELIMITER_LAST : DELIMITER_MORE;
    }
    pos += cipher.update(tail).copy(out, pos);
    cipher.final();
    pos += cipher.getAuthTag().copy(out, pos);
  }
  return out;
}

/** Records needed for `data` and `padding` bytes, `capacity` of them per record. */
function countRecords(data: number, padding: number, capacity: number): number {
  if (data + padding <= capacity) return 1;
  // The same greedy fill as encryptAes128gcm, one cheap step per record.
  let records = 0;
  let dataLeft = data;
  let padLeft = padding;
  while (dataLeft > 0) {
    const pad = Math.min(padLeft, capacity - 1);
    dataLeft -= Math.min(dataLeft, capacity - pad);
    padLeft -= pad;
    records++;
  }
  return records + Math.ceil(padLeft / capacity);
}

function resolveEncryptionKey(params: Aes128gcmEncryptParams, salt: Buffer): ContentKey {
  const { ikm, key } = params;
  if (ikm !== undefined && key !== undefined) throw new EceError('pass either ikm or key, not both');
  if (key !== undefined) return checkContentKey(key);
  if (ikm === undefined) throw new EceError('an ikm or a key is required');
  return deriveAes128gcmKey(salt, checkIkm(ikm));
}

/** Throws EceError unless `key` holds a 16-byte CEK and a 12-byte nonce base. */
export function checkContentKey(key: ContentKey): ContentKey {
  if (key.cek.length !== KEY_LENGTH) throw new EceError(`cek must be ${KEY_LENGTH} bytes, not ${key.cek.length}`);
  if (key.nonce.length !== NONCE_LENGTH) {
    throw new EceError(`nonce must be ${NONCE_LENGTH} bytes, not ${key.nonce.length}`);
  }
  return key;
}

function checkIkm(ikm: unknown): Buffer {
  if (!(ikm instanceof Uint8Array)) throw new EceError('the IKM must be a Buffer');
  if (ikm.length < MIN_IKM_LENGTH) {
    throw new EceError(`the IKM must be at least ${MIN_IKM_LENGTH} bytes, not ${ikm.length}`);
  }
  return ikm as Buffer;
}

function checkRecordSize(rs: number): number {
  if (!Number.isInteger(rs) || rs < MIN_RECORD_SIZE || rs > MAX_RECORD_SIZE) {
    throw new EceError(`record size rs must be an integer from ${MIN_RECORD_SIZE} to ${MAX_RECORD_SIZE}, not ${rs}`);
  }
  return rs;
}

export function checkPadding(padding: number): number {
  if (!Number.isSafeInteger(padding) || padding < 0) {
    throw new EceError(`padding must be a non-negative integer, not ${padding}`);
  }
  return padding;
}

/**
 * Parses and decrypts header || records. Throws EceError, and never returns partial
 * plaintext, on a truncated header, rs < 18, a record cut short, a wrong delimiter, non-zero
 * padding or a failed authentication.
 */
export function decryptAes128gcm(body: Buffer, ikm: IkmSource): Aes128gcmDecrypted {
  if (!(body instanceof Uint8Array)) throw new EceError('body must be a Buffer');
  if (body.length < HEADER_FIXED_LENGTH) {
    throw new EceError(`truncated header: ${body.length} bytes, the fixed part alone is ${HEADER_FIXED_LENGTH}`);
  }
  const salt = body.subarray(0, SALT_LENGTH);
  const rs = body.readUInt32BE(SALT_LENGTH);
  const idlen = body[20]!;
  const headerLength = HEADER_FIXED_LENGTH + idlen;
  if (body.length < headerLength) {
    throw new EceError(`truncated header: ${body.length} bytes, but idlen ${idlen} needs ${headerLength}`);
  }
  if (rs < MIN_RECORD_SIZE) throw new EceError(`invalid record size rs ${rs}: the minimum is ${MIN_RECORD_SIZE}`);
  const keyid = body.subarray(HEADER_FIXED_LENGTH, headerLength);
  const content = body.subarray(headerLength);
  if (content.length === 0) throw new EceError('no records after the header (truncated body)');
  checkFinalRecord(content.length, rs, RECORD_OVERHEAD);

  const key = deriveAes128gcmKey(salt, checkIkm(typeof ikm === 'function' ? callKeyFunction(ikm, keyid) : ikm));
  return { plaintext: decryptRecords(content, rs, RECORD_OVERHEAD, key, unpadRecord), keyid, salt, rs };
}

function callKeyFunction(fn: (keyid: Buffer) => Buffer, keyid: Buffer): Buffer {
  try {
    return fn(keyid);
  } catch (err) {
    if (err instanceof EceError) throw err;
    throw new EceError(`no key for keyid: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Throws EceError unless the final of the records of `chunk` bytes that `length` bytes make
 * holds at least `minimum` bytes.
 */
export function checkFinalRecord(length: number, chunk: number, minimum: number): void {
  const lastLength = length - (Math.ceil(length / chunk) - 1) * chunk;
  if (lastLength < minimum) {
    throw new EceError(`truncated record: the final record is ${lastLength} bytes, a record needs at least ${minimum}`);
  }
}

/**
 * Decrypts `content` cut into records of `chunk` bytes (the final one may be shorter, but the
 * caller has checked it holds at least `overhead` bytes, as every record does: the tag and the
 * least padding): AES-128-GCM per record, the tag last, then `unpad` takes each record's data
 * out of its padded plaintext. Returns the data of all records, concatenated.
 */
export function decryptRecords(
  content: Buffer,
  chunk: number,
  overhead: number,
  key: ContentKey,
  unpad: (padded: Buffer, seq: number, last: boolean) => Buffer,
): Buffer {
  const cek = latin1Key(key.cek);
  const records = Math.ceil(content.length / chunk);
  if (records === 1) return unpad(openRecord(cek, key.nonce, 0, content), 0, true);
  const plaintext = Buffer.allocUnsafe(content.length - records * overhead);
  let written = 0;
  for (let seq = 0; seq < records; seq++) {
    const start = seq * chunk;
    const last = seq === records - 1;
    const record = content.subarray(start, last ? content.length : start + chunk);
    written += unpad(openRecord(cek, key.nonce, seq, record), seq, last).copy(plaintext, written);
  }
  return plaintext.subarray(0, written);
}

/** Decrypts and authenticates record `seq`; returns its padded plaintext. */
function openRecord(cek: string, nonceBase: Buffer, seq: number, record: Buffer): Buffer {
  const tagStart = record.length - TAG_LENGTH;
  const decipher = gcmDecipher(cek, recordNonce(nonceBase, seq));
  decipher.setAuthTag(record.subarray(tagStart));
  const padded = decipher.update(record.subarray(0, tagStart));
  try {
    decipher.final();
  } catch (err) {
    throw new EceError(`record ${seq}: authentication failed (wrong key, or the body was altered)`, { cause: err });
  }
  return padded;
}

/** Strips a decrypted record's delimiter and padding. */
function unpadRecord(padded: Buffer, seq: number, last: boolean): Buffer {
  let i = padded.length - 1;
  while (i >= 0 && padded[i] === 0) i--;
  if (i < 0) throw new EceError(`record ${seq}: no padding delimiter (the record is all zeros)`);
  const delimiter = padded[i];
  if (last && delimiter !== DELIMITER_LAST) {
    if (delimiter === DELIMITER_MORE) {
      throw new EceError(`record ${seq}: the final record has delimiter 0x01, so records are missing (truncated body)`);
    }
    throw new EceError(`record ${seq}: non-zero padding or invalid delimiter (0x${hex(delimiter!)})`);
  }
  if (!last && delimiter !== DELIMITER_MORE) {
    if (delimiter === DELIMITER_LAST) {
      throw new EceError(`record ${seq}: delimiter 0x02 marks the final record, but more records follow`);
    }
    throw new EceError(`record ${seq}: non-zero padding or invalid delimiter (0x${hex(delimiter!)})`);
  }
  return padded.subarray(0, i);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
