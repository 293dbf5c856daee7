/**
 * P-256 keys for message encryption (RFC 8291): user-agent key generation, public-key
 * validation and ECDH for both sides. Pure: no I/O, node:crypto only.
 *
 * Sender side, measured on Node 24 (bench/crypto-micro.ts), per agreement:
 *   createECDH().generateKeys() + computeSecret(raw)                 ~92 us
 *   generateKeyPairSync + export raw-public + diffieHellman(KeyObjects)  ~66 us with the
 *     peer's KeyObject cached (18 + 12 + 36), ~96 us when it must be imported first
 * ECDH.computeSecret re-checks its own key pair (EC_KEY_check_key: more scalar
 * multiplications) on every call; diffieHellman on KeyObjects does not. So senders generate
 * KeyObject pairs and keep the imported user-agent keys in a small bounded cache: an
 * application server sends to the same subscriptions again and again. The sender's pairs come
 * from a pool filled on the thread pool (sender-keys.ts), leaving ~36 us on the caller's thread.
 */

import { createECDH, createPublicKey, diffieHellman, randomBytes } from 'node:crypto';
import { takeSenderKeyPair } from './sender-keys.ts';
import type { KeyObject } from 'node:crypto';
import { EceError } from './aes128gcm.ts';
import { P256_POINT_LENGTH, p256PointProblem } from '../common/p256.ts';

export { EceError };

const CURVE = 'prime256v1';
export const PUBLIC_KEY_LENGTH = P256_POINT_LENGTH;
export const PRIVATE_KEY_LENGTH = 32;
export const AUTH_SECRET_LENGTH = 16;

export interface UserAgentKeys {
  /** 65-byte uncompressed P-256 point */
  publicKey: Buffer;
  /** 32-byte private scalar */
  privateKey: Buffer;
  /** 16-byte authentication secret */
  auth: Buffer;
}

/** A fresh subscription key pair and auth secret (RFC 8291 2, 3.2). */
export function generateUserAgentKeys(): UserAgentKeys {
  const ecdh = createECDH(CURVE);
  const publicKey = ecdh.generateKeys();
  return { publicKey, privateKey: fixedLength(ecdh.getPrivateKey()), auth: randomBytes(AUTH_SECRET_LENGTH) };
}

/** ECDH.getPrivateKey drops leading zero bytes (1 key in 256): pad back to 32. */
function fixedLength(scalar: Buffer): Buffer {
  if (scalar.length === PRIVATE_KEY_LENGTH) return scalar;
  const padded = Buffer.alloc(PRIVATE_KEY_LENGTH);
  scalar.copy(padded, PRIVATE_KEY_LENGTH - scalar.length);
  return padded;
}

/**
 * Throws EceError unless `key` is a 65-byte uncompressed point on P-256. The point at
 * infinity has no such encoding. `what` names the key in the message.
 */
export function validatePublicKey(key: Buffer, what = 'public key'): void {
  if (!(key instanceof Uint8Array)) throw new EceError(`${what} must be a Buffer`);
  switch (p256PointProblem(key)) {
    case undefined:
      return;
    case 'compressed':
      throw new EceError(`${what} is a compressed point; the 65-byte uncompressed form is required`);
    case 'length':
      throw new EceError(`${what} must be a 65-byte uncompressed P-256 point, not ${key.length} bytes`);
    case 'prefix':
      throw new EceError(`${what} does not start with 0x04 (uncompressed point)`);
    case 'off-curve':
      throw new EceError(`${what} is not a point on the P-256 curve`);
  }
}

/** Up to 32 bytes: ECDH.getPrivateKey() drops leading zero bytes (1 key in 256 comes out shorter). */
function checkPrivateKey(key: Buffer, what: string): void {
  if (!(key instanceof Uint8Array)) throw new EceError(`${what} must be a Buffer`);
  if (key.length === 0 || key.length > PRIVATE_KEY_LENGTH) {
    throw new EceError(`${what} must be a P-256 scalar of at most ${PRIVATE_KEY_LENGTH} bytes, not ${key.length} bytes`);
  }
}

/** Imports a raw private key; returns the ECDH object and its public key. */
function importPrivateKey(privateKey: Buffer, what: string) {
  checkPrivateKey(privateKey, what);
  const ecdh = createECDH(CURVE);
  try {
    ecdh.setPrivateKey(privateKey);
  } catch (err) {
    throw new EceError(`${what} is not a valid P-256 private key (zero or not below the group order)`, {
      cause: err,
    });
  }
  return ecdh;
}

/** The 32-byte ECDH shared secret (the x coordinate) of `privateKey` and `peerPublic`. */
export function ecdh(privateKey: Buffer, peerPublic: Buffer): Buffer {
  validatePublicKey(peerPublic, 'peer public key');
  return computeSecret(importPrivateKey(privateKey, 'private key'), peerPublic);
}

function computeSecret(ecdh: ReturnType<typeof createECDH>, peerPublic: Buffer): Buffer {
  try {
    return ecdh.computeSecret(peerPublic);
  } catch (err) {
    throw new EceError('ECDH failed: the peer public key was rejected', { cause: err });
  }
}

export interface SenderAgreement {
  /** The sender's (application server's) 65-byte public key */
  publicKey: Buffer;
  /** 32-byte ECDH shared secret */
  sharedSecret: Buffer;
}

/**
 * Sender side of the key agreement with a user agent's public key: a fresh ephemeral key
 * pair per call (RFC 8291 3.1), or the given `senderPrivateKey` (tests, known answers).
 */
export function senderKeyAgreement(peerPublic: Buffer, senderPrivateKey?: Buffer): SenderAgreement {
  if (senderPrivateKey !== undefined) {
    validatePublicKey(peerPublic, 'user agent public key (p256dh)');
    const sender = importPrivateKey(senderPrivateKey, 'sender private key');
    return { publicKey: sender.getPublicKey(), sharedSecret: computeSecret(sender, peerPublic) };
  }
  const peer = peerKeyObject(peerPublic);
  const { privateKey, publicKey } = takeSenderKeyPair();
  return { publicKey, sharedSecret: diffieHellman({ privateKey, publicKey: peer }) };
}

/** Imported user-agent keys by their raw bytes (as latin1), oldest evicted first. */
const peerKeys = new Map<string, KeyObject>();
/** ~1 KB each (KeyObject + OpenSSL key), so at most a few MB. */
const MAX_PEER_KEYS = 4096;

/** A validated public key as a KeyObject; a cache hit is one Map lookup instead of ~30 us. */
function peerKeyObject(raw: Buffer): KeyObject {
  const id = Buffer.isBuffer(raw) && raw.length === PUBLIC_KEY_LENGTH ? raw.toString('latin1') : undefined;
  let key = id === undefined ? undefined : peerKeys.get(id);
  if (key !== undefined) return key;
  validatePublicKey(raw, 'user agent public key (p256dh)');
  try {
    key = createPublicKey({ key: raw, format: 'raw-public', asymmetricKeyType: 'ec', namedCurve: CURVE });
  } catch (err) {
    throw new EceError('user agent public key (p256dh) was rejected', { cause: err });
  }
  if (id !== undefined) {
    if (peerKeys.size >= MAX_PEER_KEYS) peerKeys.delete(peerKeys.keys().next().value!);
    peerKeys.set(id, key);
  }
  return key;
}
