/**
 * Message Encryption for Web Push (RFC 8291) over aes128gcm (RFC 8188), and the legacy
 * draft-04 "aesgcm" scheme. The API the application-server SDK (encryptMessage) and the
 * user-agent client (decryptMessage) use. Pure: no I/O, node:crypto only; every failure is
 * an EceError.
 */

import {
  EceError,
  HEADER_FIXED_LENGTH,
  MIN_RECORD_SIZE,
  SALT_LENGTH,
  TAG_LENGTH,
  checkPadding,
  decryptAes128gcm,
  encryptAes128gcm,
  hmacSha256,
  randomSalt,
} from './aes128gcm.ts';
import { DEFAULT_AESGCM_RECORD_SIZE, decryptAesgcm, deriveAesgcmKey, encryptAesgcm } from './aesgcm.ts';
import {
  AUTH_SECRET_LENGTH,
  PUBLIC_KEY_LENGTH,
  ecdh,
  generateUserAgentKeys,
  senderKeyAgreement,
  validatePublicKey,
} from './keys.ts';

export { EceError, generateUserAgentKeys };

export type ContentEncoding = 'aes128gcm' | 'aesgcm';

export interface UserAgentPublicKeys {
  /** 65-byte uncompressed P-256 point */
  p256dh: Buffer;
  /** 16 bytes */
  auth: Buffer;
}

export interface EncryptOptions {
  /** Default aes128gcm. */
  encoding?: ContentEncoding;
  /** Zero bytes to add, hiding the plaintext length; default 0. */
  padding?: number;
  /** 16 bytes; default fresh random. */
  salt?: Buffer;
  /** 32 bytes; default a fresh ephemeral key (RFC 8291 requires one per message). */
  senderPrivateKey?: Buffer;
  /** Record size; default 4096. */
  rs?: number;
}

export interface EncryptedMessage {
  body: Buffer;
  encoding: ContentEncoding;
  /** aesgcm only: values for the Encryption and Crypto-Key headers */
  encryption?: string;
  cryptoKey?: string;
}

export interface UserAgentPrivateKeys {
  publicKey: Buffer;
  privateKey: Buffer;
  auth: Buffer;
}

export interface ReceivedHeaders {
  encoding: string;
  /** e.g. `salt=...`, possibly with several parameters, quotes, or base64 padding missing */
  encryption?: string;
  /** e.g. `dh=...;p256ecdsa=...` */
  cryptoKey?: string;
}

const DEFAULT_RECORD_SIZE = 4096;
/** aes128gcm header for Web Push: salt(16) | rs(4) | idlen(1) | keyid(65) */
const WEBPUSH_HEADER_LENGTH = HEADER_FIXED_LENGTH + PUBLIC_KEY_LENGTH;
/**
 * The largest plaintext (with padding) that fits a 4096-byte body, the size every push
 * service must accept (RFC 8030 7.2): 4096 - 86 (header) - 1 (delimiter) - 16 (tag) = 3993.
 * encryptMessage itself only requires one record (plaintext + padding <= rs - 17).
 */
export const MAX_PLAINTEXT_LENGTH = 4096 - WEBPUSH_HEADER_LENGTH - 1 - TAG_LENGTH;

const WEBPUSH_INFO = Buffer.from('WebPush: info\0', 'latin1');
const ONE = Buffer.of(1);

/**
 * RFC 8291 3.3-3.4:
 *   PRK_key = HMAC-SHA-256(auth_secret, ecdh_secret)
 *   IKM     = HMAC-SHA-256(PRK_key, "WebPush: info\0" || ua_public || as_public || 0x01)
 */
export function deriveWebPushIkm(authSecret: Buffer, sharedSecret: Buffer, uaPublic: Buffer, asPublic: Buffer): Buffer {
  const prkKey = hmacSha256(authSecret).update(sharedSecret).digest();
  return hmacSha256(prkKey).update(WEBPUSH_INFO).update(uaPublic).update(asPublic).update(ONE).digest();
}

/**
 * Encrypts one push message for one subscription. aes128gcm (the default) yields a single
 * record whose keyid is the sender's public key; it throws EceError unless plaintext +
 * padding <= rs - 17 (4079 for rs 4096; but see MAX_PLAINTEXT_LENGTH for the 4096-byte body
 * limit: at most 3993 bytes). aesgcm also returns the Encryption and Crypto-Key values (the
 * caller appends `;p256ecdsa=` for legacy VAPID).
 */
export function encryptMessage(
  plaintext: Buffer,
  ua: UserAgentPublicKeys,
  options: EncryptOptions = {},
): EncryptedMessage {
  if (!(plaintext instanceof Uint8Array)) throw new EceError('plaintext must be a Buffer');
  const encoding = options.encoding ?? 'aes128gcm';
  const padding = checkPadding(options.padding ?? 0);
  checkAuthSecret(ua.auth);
  const salt = options.salt ?? randomSalt();
  if (salt.length !== SALT_LENGTH) throw new EceError(`salt must be ${SALT_LENGTH} bytes, not ${salt.length}`);

  if (encoding === 'aes128gcm') {
    const rs = options.rs ?? DEFAULT_RECORD_SIZE;
    if (!Number.isInteger(rs) || rs < MIN_RECORD_SIZE || rs > 0xffff_ffff) {
      throw new EceError(`record size rs must be an integer from ${MIN_RECORD_SIZE} to 4294967295, not ${rs}`);
    }
    if (plaintext.length + padding > rs - TAG_LENGTH - 1) {
      throw new EceError(
        `plaintext (${plaintext.length} bytes) + padding (${padding}) must fit one record: ` +
          `at most ${rs - TAG_LENGTH - 1} bytes for rs ${rs}`,
      );
    }
    const sender = senderKeyAgreement(ua.p256dh, options.senderPrivateKey);
    const ikm = deriveWebPushIkm(ua.auth, sender.sharedSecret, ua.p256dh, sender.publicKey);
    const body = encryptAes128gcm({ plaintext, ikm, salt, rs, keyid: sender.publicKey, padding });
    return { body, encoding };
  }
  if (encoding === 'aesgcm') {
    const rs = options.rs ?? DEFAULT_AESGCM_RECORD_SIZE;
    const sender = senderKeyAgreement(ua.p256dh, options.senderPrivateKey);
    const key = deriveAesgcmKey({
      salt,
      authSecret: ua.auth,
      sharedSecret: sender.sharedSecret,
      uaPublic: ua.p256dh,
      asPublic: sender.publicKey,
    });
    const body = encryptAesgcm({ plaintext, key, rs, padding });
    const rsParam = rs === DEFAULT_AESGCM_RECORD_SIZE ? '' : `;rs=${rs}`;
    return {
      body,
      encoding,
      encryption: `salt=${salt.toString('base64url')}${rsParam}`,
      cryptoKey: `dh=${sender.publicKey.toString('base64url')}`,
    };
  }
  throw new EceError(`unsupported content encoding ${JSON.stringify(encoding)}: use aes128gcm or aesgcm`);
}

/**
 * Decrypts a push message received with `headers` for the subscription whose keys are `ua`.
 * aes128gcm bodies may hold several records (RFC 8188), though RFC 8291 senders use one.
 */
export function decryptMessage(body: Buffer, headers: ReceivedHeaders, ua: UserAgentPrivateKeys): Buffer {
  checkAuthSecret(ua.auth);
  validatePublicKey(ua.publicKey, 'user agent public key');
  const encoding = typeof headers.encoding === 'string' ? headers.encoding.trim().toLowerCase() : '';
  if (encoding === 'aes128gcm') {
    return decryptAes128gcm(body, (keyid) => {
      validatePublicKey(keyid, 'keyid (the sender public key)');
      return deriveWebPushIkm(ua.auth, ecdh(ua.privateKey, keyid), ua.publicKey, keyid);
    }).plaintext;
  }
  if (encoding === 'aesgcm') {
    const { salt, rs, dh } = parseAesgcmHeaders(headers);
    const key = deriveAesgcmKey({
      salt,
      authSecret: ua.auth,
      sharedSecret: ecdh(ua.privateKey, dh),
      uaPublic: ua.publicKey,
      asPublic: dh,
    });
    return decryptAesgcm(body, key, rs);
  }
  throw new EceError(`unsupported Content-Encoding ${JSON.stringify(headers.encoding)}: expected aes128gcm or aesgcm`);
}

function checkAuthSecret(auth: Buffer): void {
  if (!(auth instanceof Uint8Array)) throw new EceError('auth secret must be a Buffer');
  if (auth.length !== AUTH_SECRET_LENGTH) {
    throw new EceError(`auth secret must be ${AUTH_SECRET_LENGTH} bytes, not ${auth.length}`);
  }
}

/** Salt, rs and the sender key from the Encryption and Crypto-Key headers of an aesgcm message. */
function parseAesgcmHeaders(headers: ReceivedHeaders): { salt: Buffer; rs: number; dh: Buffer } {
  if (headers.encryption === undefined) throw new EceError('aesgcm needs an Encryption header with salt=');
  if (headers.cryptoKey === undefined) throw new EceError('aesgcm needs a Crypto-Key header with dh=');
  const encryption = parseParameters(headers.encryption).find((entry) => entry.has('salt'));
  if (encryption === undefined) throw new EceError('the Encryption header lacks salt=');
  const salt = decodeBase64(encryption.get('salt')!, 'Encryption salt=');
  if (salt.length !== SALT_LENGTH) {
    throw new EceError(`Encryption salt= must be ${SALT_LENGTH} bytes, not ${salt.length}`);
  }
  let rs = DEFAULT_AESGCM_RECORD_SIZE;
  const rsValue = encryption.get('rs');
  if (rsValue !== undefined) {
    rs = /^\d{1,10}$/.test(rsValue) ? Number(rsValue) : Number.NaN;
    if (!(rs >= 3 && rs <= 0xffff_ffff)) {
      throw new EceError(`Encryption rs= must be an integer of at least 3, not ${JSON.stringify(rsValue)}`);
    }
  }
  // Several keys may be listed; keyid links the salt to its dh (draft-ietf-httpbis-encryption-encoding-03 3.1).
  const keys = parseParameters(headers.cryptoKey).filter((entry) => entry.has('dh'));
  const keyid = encryption.get('keyid');
  const entry = (keyid === undefined ? undefined : keys.find((k) => k.get('keyid') === keyid)) ?? keys[0];
  if (entry === undefined) throw new EceError('the Crypto-Key header lacks dh=');
  const dh = decodeBase64(entry.get('dh')!, 'Crypto-Key dh=');
  validatePublicKey(dh, 'Crypto-Key dh=');
  return { salt, rs, dh };
}

/**
 * `a=1;b="2", c=3` -> [{a: '1', b: '2'}, {c: '3'}]: entries split on commas, parameters on
 * semicolons, names lower-cased, quotes removed, the first of a repeated name kept, anything
 * that is not name=value skipped.
 */
function parseParameters(header: string): Map<string, string>[] {
  const entries: Map<string, string>[] = [];
  for (const entry of header.split(',')) {
    const params = new Map<string, string>();
    for (const part of entry.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim().toLowerCase();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (name !== '' && !params.has(name)) params.set(name, value);
    }
    if (params.size > 0) entries.push(params);
  }
  return entries;
}

/** base64url or base64, padded or not. */
function decodeBase64(value: string, what: string): Buffer {
  const unpadded = value.replace(/={1,2}$/, '');
  if (!/^[A-Za-z0-9_+/-]+$/.test(unpadded) || unpadded.length % 4 === 1) {
    throw new EceError(`${what} is not base64url`);
  }
  return Buffer.from(unpadded, 'base64url');
}
