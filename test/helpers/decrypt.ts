// The subscriber's side of a Web Push message, checked independently of src/crypto: a fresh key
// pair and auth secret, and decryption with `http_ece` (an independent RFC 8188/8291 implementation).
import assert from 'node:assert/strict';
import { createECDH, randomBytes, type ECDH } from 'node:crypto';
import { createRequire } from 'node:module';

export type ContentEncoding = 'aes128gcm' | 'aesgcm';

interface EceDecryptParams {
  version: ContentEncoding;
  privateKey: ECDH;
  /** base64url */
  authSecret: string;
  /** aesgcm only, base64url */
  salt?: string;
  /** aesgcm only: the sender's public key, base64url */
  dh?: string;
}
// http_ece ships no type declarations
const ece = createRequire(import.meta.url)('http_ece') as { decrypt(body: Buffer, params: EceDecryptParams): Buffer };

export interface SubscriberKeys {
  /** The P-256 key pair; its public key is `keys.p256dh` */
  ecdh: ECDH;
  /** As a subscription carries them: base64url */
  keys: { p256dh: string; auth: string };
}

/** A fresh P-256 key pair and 16-byte auth secret, as a browser makes for a subscription. */
export function createSubscriberKeys(): SubscriberKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.generateKeys();
  return { ecdh, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } };
}

/** The 32-byte private scalar: ECDH.getPrivateKey drops leading zero bytes (1 key in 256). */
export function privateKeyOf(ecdh: ECDH): Buffer {
  return Buffer.from(ecdh.getPrivateKey('hex').padStart(64, '0'), 'hex');
}

/** The value of the parameter `name` in a header such as `Encryption: salt=…` or `Crypto-Key: dh=…;p256ecdsa=…`. */
function headerParam(header: unknown, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim().toLowerCase() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Decrypts a Web Push body with http_ece as the subscriber `ecdh` with the auth secret `auth`
 * (base64url). aesgcm takes the salt from the Encryption header and the sender's key from the
 * Crypto-Key header (asserted present); aes128gcm carries both in the body.
 */
export function decryptWithHttpEce(
  body: Buffer,
  encoding: ContentEncoding,
  ecdh: ECDH,
  auth: string,
  headers: { encryption?: unknown; cryptoKey?: unknown } = {},
): Buffer {
  const params: EceDecryptParams = { version: encoding, privateKey: ecdh, authSecret: auth };
  if (encoding === 'aesgcm') {
    params.salt = headerParam(headers.encryption, 'salt');
    params.dh = headerParam(headers.cryptoKey, 'dh');
    assert.ok(params.salt, `salt in ${String(headers.encryption)}`);
    assert.ok(params.dh, `dh in ${String(headers.cryptoKey)}`);
  }
  return ece.decrypt(body, params);
}
