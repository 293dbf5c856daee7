import { ECDH } from 'node:crypto';

/** True for a base64url (padding allowed) uncompressed P-256 public key, the form VAPID keys take. */
export function isVapidPublicKey(key: string): boolean {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(key)) return false;
  const raw = Buffer.from(key.replace(/=+$/, ''), 'base64url');
  if (raw.length !== 65 || raw[0] !== 4) return false;
  try {
    ECDH.convertKey(raw, 'prime256v1');
    return true;
  } catch {
    return false;
  }
}
