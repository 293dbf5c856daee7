/** Application-server side of VAPID (RFC 8292): key generation and ES256 token signing. */

import { createECDH, createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { VapidError, decodeVapidPublicKey } from './verify.ts';
import { p256Jwk } from '../common/p256.ts';

type VapidKeys = {
  /** base64url raw 65-byte uncompressed P-256 point */
  publicKey: string;
  /** base64url raw 32-byte private scalar */
  privateKey: string;
};

// Serialized once: every token carries the same header.
const HEADER = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'ES256' })).toString('base64url');

export function generateVapidKeys(): VapidKeys {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { d, x, y } = privateKey.export({ format: 'jwk' });
  if (d === undefined || x === undefined || y === undefined) throw new Error('P-256 JWK export lacks d, x or y');
  const point = Buffer.concat([Buffer.of(4), Buffer.from(x, 'base64url'), Buffer.from(y, 'base64url')]);
  return { publicKey: point.toString('base64url'), privateKey: d };
}

/** The caller must pass a matching key pair: a mismatch yields tokens that fail verification. */
export function signVapidToken(claims: { aud: string; exp: number; sub?: string }, keys: VapidKeys): string {
  return signClaims(claims, privateKeyFor(keys));
}

/** The last imported key, so repeated calls with the same pair skip the JWK import (~40 us). */
let lastKey: { publicKey: string; privateKey: string; key: KeyObject } | undefined;

function privateKeyFor(keys: VapidKeys): KeyObject {
  if (lastKey !== undefined && lastKey.publicKey === keys.publicKey && lastKey.privateKey === keys.privateKey) {
    return lastKey.key;
  }
  const key = importPrivateKey(decodeVapidPublicKey(keys.publicKey), keys.privateKey.replace(/=+$/, ''));
  lastKey = { publicKey: keys.publicKey, privateKey: keys.privateKey, key };
  return key;
}

function importPrivateKey(point: Buffer, d: string): KeyObject {
  return createPrivateKey({ key: { ...p256Jwk(point), d }, format: 'jwk' });
}

function signClaims(claims: { aud: string; exp: number; sub?: string }, key: KeyObject): string {
  const signed = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' });
  return `${signed}.${signature.toString('base64url')}`;
}

export function vapidAuthorization(token: string, publicKey: string): string {
  return `vapid t=${token}, k=${publicKey}`;
}

/** RFC 8292 4.2: at most 24 hours. */
const MAX_TOKEN_LIFETIME = 86_400;
const DEFAULT_TOKEN_LIFETIME = 12 * 3600;
const MAX_AUDIENCES = 1000;
/** scheme://authority of an http(s) URL: all that its origin depends on. */
const ORIGIN_PREFIX = /^https?:\/\/[^/?#\\]+/;

export type VapidDetails = {
  /** A `mailto:` address or an `https:` URL to contact the application server's operator */
  subject: string;
  /** base64url raw 65-byte uncompressed P-256 point */
  publicKey: string;
  /** base64url raw 32-byte private scalar */
  privateKey: string;
};

export type VapidSignerOptions = {
  /** Token lifetime in seconds: default 12 h, at most 24 h. */
  ttlSeconds?: number;
  /** Current time in seconds; default Date.now() / 1000. */
  now?: () => number;
};

export type VapidToken = { readonly token: string; readonly publicKey: string };

type CachedToken = { value: VapidToken; issuedAt: number; renewAt: number };

/**
 * Signs VAPID tokens for an application server and reuses each one per push-service origin
 * (RFC 8292 5 encourages reuse): a cached token costs a regex and a Map lookup, a new one an
 * ECDSA signature with the private key imported once, here.
 */
export class VapidSigner {
  readonly #subject: string;
  readonly #publicKey: string;
  readonly #key: KeyObject;
  readonly #ttl: number;
  readonly #now: () => number;
  /** By endpoint prefix (scheme://authority) or, for other spellings, by origin. */
  readonly #tokens = new Map<string, CachedToken>();

  constructor(details: VapidDetails, options: VapidSignerOptions = {}) {
    this.#subject = checkSubject(details.subject);
    const point = decodePublicKey(details.publicKey);
    this.#key = importCheckedPrivateKey(details.privateKey, point);
    this.#publicKey = point.toString('base64url');
    const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_LIFETIME;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TOKEN_LIFETIME) {
      throw new Error(`VAPID ttlSeconds must be an integer from 1 to ${MAX_TOKEN_LIFETIME} (24 h), not ${ttl}`);
    }
    this.#ttl = ttl;
    this.#now = options.now ?? (() => Date.now() / 1000);
  }

  /** A token for the origin of `endpoint` (aud), reused until less than a quarter of its lifetime remains. */
  token(endpoint: string): VapidToken {
    const now = this.#now();
    const prefix = ORIGIN_PREFIX.exec(endpoint);
    const cacheKey = prefix === null ? originOf(endpoint) : prefix[0];
    const cached = this.#tokens.get(cacheKey);
    // A clock that moved back past the issue time could make exp look more than 24 h away.
    if (cached !== undefined && now <= cached.renewAt && now >= cached.issuedAt) return cached.value;

    const issuedAt = Math.floor(now);
    const exp = issuedAt + this.#ttl;
    const aud = prefix === null ? cacheKey : originOf(endpoint);
    const token = signClaims({ aud, exp, sub: this.#subject }, this.#key);
    const entry = {
      value: Object.freeze({ token, publicKey: this.#publicKey }),
      issuedAt,
      renewAt: exp - this.#ttl / 4,
    };
    this.#tokens.delete(cacheKey);
    if (this.#tokens.size >= MAX_AUDIENCES) this.#tokens.delete(this.#tokens.keys().next().value!);
    this.#tokens.set(cacheKey, entry);
    return entry.value;
  }
}

function originOf(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new Error(`push endpoint is not a URL: ${JSON.stringify(endpoint)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`push endpoint must be an https: (or http:) URL, not ${JSON.stringify(endpoint)}`);
  }
  return url.origin;
}

/** As web-push: a mailto: address or an https: URL. */
function checkSubject(subject: unknown): string {
  if (typeof subject !== 'string' || subject === '') {
    throw new Error('VAPID subject is required: a mailto: address or an https: URL');
  }
  let url: URL | undefined;
  try {
    url = new URL(subject);
  } catch {
    url = undefined;
  }
  const valid =
    url !== undefined &&
    ((url.protocol === 'mailto:' && url.pathname !== '') || (url.protocol === 'https:' && url.hostname !== ''));
  if (!valid) {
    throw new Error(`VAPID subject must be a mailto: address or an https: URL, not ${JSON.stringify(subject)}`);
  }
  return subject;
}

function decodePublicKey(publicKey: unknown): Buffer {
  if (typeof publicKey !== 'string') throw new Error('VAPID publicKey must be a base64url string');
  try {
    return decodeVapidPublicKey(publicKey);
  } catch (err) {
    // Reasons read "k is ...", k being the Authorization parameter: name the field instead.
    if (err instanceof VapidError) throw new Error(`VAPID publicKey ${err.reason.replace(/^k /, '')}`, { cause: err });
    throw err;
  }
}

/** Checks the scalar is valid and belongs to `point` (createPrivateKey checks neither). */
function importCheckedPrivateKey(privateKey: unknown, point: Buffer): KeyObject {
  if (typeof privateKey !== 'string') throw new Error('VAPID privateKey must be a base64url string');
  const d = privateKey.replace(/=+$/, '');
  if (!/^[A-Za-z0-9_-]+$/.test(d)) throw new Error('VAPID privateKey is not base64url');
  const scalar = Buffer.from(d, 'base64url');
  if (scalar.length !== 32) {
    throw new Error(`VAPID privateKey must be a 32-byte P-256 scalar, not ${scalar.length} bytes`);
  }
  const ecdh = createECDH('prime256v1');
  try {
    ecdh.setPrivateKey(scalar);
  } catch (err) {
    throw new Error('VAPID privateKey is not a valid P-256 private key', { cause: err });
  }
  if (!ecdh.getPublicKey().equals(point)) throw new Error('VAPID publicKey does not match privateKey');
  return importPrivateKey(point, d);
}
