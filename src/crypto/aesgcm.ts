/**
 * The legacy "aesgcm" content coding (draft-ietf-httpbis-encryption-encoding-03 as used by
 * draft-ietf-webpush-encryption-04). No header in the body: salt and rs travel in the
 * Encryption header, the sender's key in Crypto-Key. Each record's plaintext is a 2-byte
 * big-endian padding length, that many zero bytes, then data; records are rs bytes of
 * plaintext (rs + 16 encrypted) and the final one must be shorter than rs, so a body cut at a
 * record boundary is detected. Pure: no I/O, node:crypto only.
 */

import { constants } from 'node:buffer';
import {
  EceError,
  KEY_LENGTH,
  NONCE_LENGTH,
  TAG_LENGTH,
  checkContentKey,
  checkFinalRecord,
  checkPadding,
  decryptRecords,
  gcmCipher,
  hmacSha256,
  latin1Key,
  recordNonce,
} from './aes128gcm.ts';
import type { ContentKey } from './aes128gcm.ts';

export { EceError };
export type { ContentKey };

export const DEFAULT_AESGCM_RECORD_SIZE = 4096;
const PAD_LENGTH_SIZE = 2;
const MAX_RECORD_PADDING = 0xffff;
/** A record's plaintext holds the padding length; the final record must be shorter than rs. */
const MIN_RECORD_SIZE = PAD_LENGTH_SIZE + 1;
/** What every record holds besides data: the padding length and the tag. */
const RECORD_OVERHEAD = PAD_LENGTH_SIZE + TAG_LENGTH;
/** The largest plaintext whose body (one record) fits the 4096 bytes every push service must accept (RFC 8030 7.2). */
export const MAX_AESGCM_PLAINTEXT_LENGTH = 4096 - RECORD_OVERHEAD;

const AUTH_INFO = Buffer.from('Content-Encoding: auth\0\x01', 'latin1');
const CEK_INFO = Buffer.from('Content-Encoding: aesgcm\0', 'latin1');
const NONCE_INFO = Buffer.from('Content-Encoding: nonce\0', 'latin1');
const P256_LABEL = Buffer.from('P-256\0', 'latin1');
const KEY_LENGTH_PREFIX = Buffer.of(0, 65);
const ONE = Buffer.of(1);
const MAX_LENGTH = constants.MAX_LENGTH;

export interface AesgcmKeyInput {
  /** 16 bytes, from the Encryption header */
  salt: Buffer;
  /** The subscription's auth secret (16 bytes) */
  authSecret: Buffer;
  /** ECDH(sender, user agent), 32 bytes */
  sharedSecret: Buffer;
  /** The user agent's (receiver's) 65-byte public key */
  uaPublic: Buffer;
  /** The application server's (sender's) 65-byte public key */
  asPublic: Buffer;
}

/**
 * draft-ietf-webpush-encryption-04 key schedule:
 *   IKM     = HKDF(auth, ecdh, "Content-Encoding: auth\0", 32)
 *   context = "P-256\0" || 0x0041 || ua_public || 0x0041 || as_public
 *   CEK     = HKDF(salt, IKM, "Content-Encoding: aesgcm\0" || context, 16)
 *   NONCE   = HKDF(salt, IKM, "Content-Encoding: nonce\0" || context, 12)
 */
export function deriveAesgcmKey(input: AesgcmKeyInput): ContentKey {
  const { salt, authSecret, sharedSecret, uaPublic, asPublic } = input;
  const ikm = hmacSha256(hmacSha256(authSecret).update(sharedSecret).digest()).update(AUTH_INFO).digest();
  const prk = hmacSha256(salt).update(ikm).digest();
  const context = Buffer.concat([P256_LABEL, KEY_LENGTH_PREFIX, uaPublic, KEY_LENGTH_PREFIX, asPublic]);
  return {
    cek: hmacSha256(prk).update(CEK_INFO).update(context).update(ONE).digest().subarray(0, KEY_LENGTH),
    nonce: hmacSha256(prk).update(NONCE_INFO).update(context).update(ONE).digest().subarray(0, NONCE_LENGTH),
  };
}

export interface AesgcmEncryptParams {
  plaintext: Buffer;
  key: ContentKey;
  /** Record size (plaintext bytes per record, padding length included); default 4096. */
  rs?: number;
  /** Zero bytes of padding in total; default 0. */
  padding?: number;
}

/**
 * Encrypts into records. Padding goes first (at most 65535 bytes per record, and while data
 * remains at least one data byte per record, as http_ece does); a final record that would be
 * exactly rs is followed by a record holding only the padding length.
 */
export function encryptAesgcm(params: AesgcmEncryptParams): Buffer {
  const { plaintext, key } = params;
  if (!(plaintext instanceof Uint8Array)) throw new EceError('plaintext must be a Buffer');
  const rs = checkRecordSize(params.rs ?? DEFAULT_AESGCM_RECORD_SIZE);
  const padding = checkPadding(params.padding ?? 0);
  checkContentKey(key);
  const capacity = rs - PAD_LENGTH_SIZE; // padding + data bytes per record
  if (plaintext.length + padding > MAX_LENGTH) {
    throw new EceError(`plaintext + padding is ${plaintext.length + padding} bytes, more than a Buffer holds`);
  }

  // Lay out the records first: [padding, data] per record.
  const layout: number[] = [];
  let dataLeft = plaintext.length;
  let padLeft = padding;
  for (;;) {
    const maxPad = dataLeft > 0 ? capacity - 1 : capacity;
    const pad = Math.min(padLeft, maxPad, MAX_RECORD_PADDING);
    const data = Math.min(dataLeft, capacity - pad);
    dataLeft -= data;
    padLeft -= pad;
    layout.push(pad, data);
    const full = pad + data === capacity;
    if (dataLeft === 0 && padLeft === 0 && !full) break;
    if (!full) {
      throw new EceError(`cannot pad by ${padding} bytes with rs ${rs}: at most ${MAX_RECORD_PADDING} per record`);
    }
  }

  const records = layout.length / 2;
  const out = Buffer.allocUnsafe(plaintext.length + padding + records * RECORD_OVERHEAD);
  const cek = latin1Key(key.cek);
  let pos = 0;
  let dataStart = 0;
  for (let seq = 0; seq < records; seq++) {
    const pad = layout[2 * seq]!;
    const data = layout[2 * seq + 1]!;
    const cipher = gcmCipher(cek, recordNonce(key.nonce, seq));
    const prefix = Buffer.alloc(PAD_LENGTH_SIZE + pad);
    prefix.writeUInt16BE(pad, 0);
    pos += cipher.update(prefix).copy(out, pos);
    if (data > 0) {
      pos += cipher.update(plaintext.subarray(dataStart, dataStart + data)).copy(out, pos);
      dataStart += data;
    }
    cipher.final();
    pos += cipher.getAuthTag().copy(out, pos);
  }
  return out;
}

/** Decrypts all records; throws EceError on any malformed, truncated or tampered record. */
export function decryptAesgcm(body: Buffer, key: ContentKey, rs = DEFAULT_AESGCM_RECORD_SIZE): Buffer {
  if (!(body instanceof Uint8Array)) throw new EceError('body must be a Buffer');
  checkRecordSize(rs);
  checkContentKey(key);
  if (body.length === 0) throw new EceError('empty body: an aesgcm body holds at least one record');
  const chunk = rs + TAG_LENGTH;
  if (body.length % chunk === 0) {
    throw new EceError(`truncated body: the final record is full-size (${chunk} bytes); it must be shorter than rs`);
  }
  checkFinalRecord(body.length, chunk, RECORD_OVERHEAD);
  return decryptRecords(body, chunk, RECORD_OVERHEAD, key, unpadRecord);
}

/** Strips a decrypted record's padding length and padding. */
function unpadRecord(padded: Buffer, seq: number): Buffer {
  const pad = padded.readUInt16BE(0);
  const dataStart = PAD_LENGTH_SIZE + pad;
  if (dataStart > padded.length) {
    throw new EceError(`record ${seq}: padding length ${pad} exceeds the record (${padded.length} bytes)`);
  }
  for (let i = PAD_LENGTH_SIZE; i < dataStart; i++) {
    if (padded[i] !== 0) throw new EceError(`record ${seq}: non-zero padding`);
  }
  return padded.subarray(dataStart);
}

function checkRecordSize(rs: number): number {
  if (!Number.isInteger(rs) || rs < MIN_RECORD_SIZE || rs > 0xffff_ffff) {
    throw new EceError(`aesgcm record size rs must be an integer from ${MIN_RECORD_SIZE} to 4294967295, not ${rs}`);
  }
  return rs;
}
