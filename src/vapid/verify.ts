/** VAPID (RFC 8292) token verification: ES256 JWTs checked with node:crypto only. */

import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { VapidCredentials } from './authorization.ts';
import { p256Jwk, p256PointProblem } from '../common/p256.ts';

export type VapidClaims = { aud: string; exp: number; sub?: string };

export class VapidError extends Error {
  /** Human-readable cause, safe to show to the application server. */
  readonly reason: string;

  constructor(reason: string) {
    super(`invalid VAPID credentials: ${reason}`);
    this.name = 'VapidError';
    this.reason = reason;
  }
}

/** RFC 8292 4.2: a token may not be valid for more than 24 hours. */
const MAX_TOKEN_LIFETIME = 86_400;

/**
 * The longest JWT accepted, in characters: some 7 times what application-server libraries send
 * (~300), room for a long `sub`. Its claims are cached per verified token: this bounds the cache.
 */
export const MAX_TOKEN_LENGTH = 2048;

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** base64url (with or without `=` padding) -> validated 65-byte uncompressed P-256 point. */
export function decodeVapidPublicKey(key: string): Buffer {
  const unpadded = key.replace(/=+$/, '');
  if (!BASE64URL.test(unpadded)) throw new VapidError('k is not base64url');
  const point = Buffer.from(unpadded, 'base64url');
  // Checked here rather than left to the key import so that publicKeyHash needs no KeyObject.
  switch (p256PointProblem(point)) {
    case undefined:
      return point;
    case 'compressed':
      throw new VapidError('k is a compressed point; VAPID needs the 65-byte uncompressed form');
    case 'length':
      throw new VapidError(`k must be a 65-byte P-256 point, not ${point.length} bytes`);
    case 'prefix':
      throw new VapidError('k does not start with 0x04 (uncompressed point)');
    case 'off-curve':
      throw new VapidError('k is not a point on the P-256 curve');
  }
}

/** Binds a restricted subscription to its key without storing the key itself. */
export function publicKeyHash(publicKey: string): Buffer {
  return createHash('sha256').update(decodeVapidPublicKey(publicKey)).digest().subarray(0, 16);
}

function importPublicKey(publicKey: string): KeyObject {
  return createPublicKey({ key: p256Jwk(decodeVapidPublicKey(publicKey)), format: 'jwk' });
}

export function verifyVapidToken(creds: VapidCredentials, expectedAudience: string, nowSeconds: number): VapidClaims {
  return verifyToken(creds.token, importPublicKey(creds.publicKey), expectedAudience, nowSeconds);
}

function verifyToken(token: string, key: KeyObject, expectedAudience: string, now: number): VapidClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw new VapidError(`t is longer than ${MAX_TOKEN_LENGTH} characters`);
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => BASE64URL.test(part))) {
    throw new VapidError('t is not a JWT of three base64url parts');
  }
  const [header, payload, signature] = parts as [string, string, string];
  const alg = decodeJsonObject(header, 'header').alg;
  if (alg !== 'ES256') throw new VapidError(`JWT alg must be ES256, not ${show(alg)}`);
  const claims = decodeJsonObject(payload, 'claims set');
  const rawSignature = Buffer.from(signature, 'base64url');
  if (rawSignature.length !== 64) {
    throw new VapidError(`JWT signature must be 64 bytes, not ${rawSignature.length}`);
  }
  const signed = Buffer.from(`${header}.${payload}`, 'ascii');
  if (!verifySignature('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, rawSignature)) {
    throw new VapidError('JWT signature does not verify with k');
  }
  // Claims are only trusted once the signature holds.
  return checkClaims(claims, expectedAudience, now);
}

function decodeJsonObject(part: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new VapidError(`JWT ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VapidError(`JWT ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function checkClaims(claims: Record<string, unknown>, expectedAudience: string, now: number): VapidClaims {
  const { aud, exp, sub } = claims;
  if (typeof aud !== 'string') throw new VapidError('JWT aud is missing or not a string');
  if (stripSlash(aud) !== stripSlash(expectedAudience)) {
    throw new VapidError(`JWT aud ${show(aud)} is not ${show(expectedAudience)}`);
  }
  if (typeof exp !== 'number') throw new VapidError('JWT exp is missing or not a number');
  if (exp <= now) throw new VapidError(`JWT expired (exp ${exp}, now ${Math.floor(now)})`);
  if (exp > now + MAX_TOKEN_LIFETIME) {
    throw new VapidError(`JWT exp ${exp} is more than 24 hours after now (${Math.floor(now)})`);
  }
  if (sub !== undefined && typeof sub !== 'string') throw new VapidError('JWT sub is not a string');
  return sub === undefined ? { aud, exp } : { aud, exp, sub };
}

function stripSlash(origin: string): string {
  return origin.endsWith('/') ? origin.slice(0, -1) : origin;
}

/** Untrusted values in reasons: quoted and cut short. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

type VapidVerifierOptions = {
  audience: string;
  /** Verified (token, key) pairs kept (--vapid-cache); default 10000. */
  maxEntries?: number;
  /** Current time in seconds; default Date.now() / 1000. */
  now?: () => number;
};

/**
 * Verifies VAPID credentials for one push-service origin. Application servers reuse a token
 * for many sends (RFC 8292 5), so a verified pair is remembered until its exp and a repeat
 * costs a hash and one Map lookup instead of an ECDSA verification. The pair is keyed by its
 * SHA-256, not kept itself: an entry costs its claims, not the token's length again.
 */
export class VapidVerifier {
  readonly #audience: string;
  readonly #maxEntries: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #verified = new Map<string, VapidClaims>();
  /** Imported keys, so each new token of a known app server skips the JWK import. */
  readonly #keys = new Map<string, KeyObject>();

  constructor(options: VapidVerifierOptions) {
    this.#audience = options.audience;
    this.#maxEntries = Math.max(1, options.maxEntries ?? 10_000);
    this.#maxKeys = Math.min(this.#maxEntries, 1_000);
    this.#now = options.now ?? (() => Date.now() / 1000);
  }

  /** Number of cached verified pairs. */
  get size(): number {
    return this.#verified.size;
  }

  verify(creds: VapidCredentials): VapidClaims {
    const now = this.#now();
    const cacheKey = createHash('sha256').update(creds.token).update(' ').update(creds.publicKey).digest('base64');
    const cached = this.#verified.get(cacheKey);
    if (cached !== undefined) {
      if (cached.exp > now) return cached;
      this.#verified.delete(cacheKey);
    }
    const claims = Object.freeze(verifyToken(creds.token, this.#keyFor(creds.publicKey), this.#audience, now));
    remember(this.#verified, cacheKey, claims, this.#maxEntries);
    return claims;
  }

  #keyFor(publicKey: string): KeyObject {
    let key = this.#keys.get(publicKey);
    if (key === undefined) {
      key = importPublicKey(publicKey);
      remember(this.#keys, publicKey, key, this.#maxKeys);
    }
    return key;
  }
}

/** Bounded insert: evicts the oldest entry (Map keeps insertion order) when full. */
function remember<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}
