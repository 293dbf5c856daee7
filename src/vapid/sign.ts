/** Application-server side of VAPID (RFC 8292): key generation and ES256 token signing. */

import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { decodeVapidPublicKey } from './verify.ts';

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
  const point = decodeVapidPublicKey(keys.publicKey);
  const jwk = {
    kty: 'EC',
    crv: 'P-256',
    d: keys.privateKey.replace(/=+$/, ''),
    x: point.subarray(1, 33).toString('base64url'),
    y: point.subarray(33).toString('base64url'),
  };
  const key = createPrivateKey({ key: jwk, format: 'jwk' });
  const signed = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' });
  return `${signed}.${signature.toString('base64url')}`;
}

export function vapidAuthorization(token: string, publicKey: string): string {
  return `vapid t=${token}, k=${publicKey}`;
}
