// VAPID (RFC 8292) for the SDK: validates vapidDetails once per key pair and reuses one
// VapidSigner per key pair, so a token is signed once per push-service origin, not per message.
import { VapidSigner, generateVapidKeys } from '../vapid/sign.ts';
import { WebPushValidationError } from './errors.ts';
import { decodeBase64Url } from './subscription.ts';
import type { PushContentEncoding, VapidDetails } from './types.ts';

/** Tokens live 12 hours, as web-push's (RFC 8292 allows at most 24). */
const TOKEN_TTL_SECONDS = 12 * 60 * 60;
/** Signers kept (least recently used dropped first): one per VAPID key pair in use. */
const MAX_SIGNERS = 64;

/** A new VAPID key pair, base64url: `{ publicKey, privateKey }` (web-push's name). */
export function generateVAPIDKeys(): { publicKey: string; privateKey: string } {
  return generateVapidKeys();
}

const invalid = (field: string, message: string) => new WebPushValidationError(`vapidDetails.${field}`, message);

function checkSubject(subject: unknown): void {
  if (!subject) throw invalid('subject', 'No subject set in vapidDetails.subject.');
  if (typeof subject !== 'string') {
    throw invalid('subject', `The subject value must be a string containing an https: URL or mailto: address. ${String(subject)}`);
  }
  let url: URL;
  try {
    url = new URL(subject);
  } catch {
    throw invalid('subject', `Vapid subject is not a valid URL. ${subject}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'mailto:') {
    throw invalid('subject', `Vapid subject is not an https: or mailto: URL. ${subject}`);
  }
}

function checkKey(field: 'publicKey' | 'privateKey', value: unknown, length: number): Buffer {
  if (!value) throw invalid(field, field === 'publicKey' ? 'No key set vapidDetails.publicKey' : 'No key set in vapidDetails.privateKey');
  const name = field === 'publicKey' ? 'public' : 'private';
  if (typeof value !== 'string') throw invalid(field, `Vapid ${name} key must be a URL safe Base 64 encoded string.`);
  const bytes = decodeBase64Url(value);
  if (!bytes) throw invalid(field, `Vapid ${name} key must be a URL safe Base 64 (without "=")`);
  if (bytes.length !== length) throw invalid(field, `Vapid ${name} key should be ${length} bytes long when decoded.`);
  return bytes;
}

function createSigner(details: VapidDetails): VapidSigner {
  // web-push's checks and messages first, then VapidSigner's own (point on the curve, the
  // private key belongs to the public key, ...).
  checkSubject(details.subject);
  const publicKey = checkKey('publicKey', details.publicKey, 65);
  const privateKey = checkKey('privateKey', details.privateKey, 32);
  try {
    return new VapidSigner(
      {
        subject: details.subject,
        publicKey: publicKey.toString('base64url'),
        privateKey: privateKey.toString('base64url'),
      },
      { ttlSeconds: TOKEN_TTL_SECONDS },
    );
  } catch (err) {
    const message = (err as Error).message;
    const field = /publicKey/.test(message) ? 'publicKey' : /privateKey/.test(message) ? 'privateKey' : 'subject';
    throw invalid(field, message);
  }
}

const signers = new Map<string, VapidSigner>();

function signerFor(details: VapidDetails): VapidSigner {
  const key = `${details.subject}\n${details.publicKey}\n${details.privateKey}`;
  let signer = signers.get(key);
  if (signer) {
    // most recently used last
    signers.delete(key);
  } else {
    signer = createSigner(details);
    if (signers.size >= MAX_SIGNERS) signers.delete(signers.keys().next().value!);
  }
  signers.set(key, signer);
  return signer;
}

/**
 * The VAPID headers for a request to `endpoint`: `Authorization: vapid t=..., k=...` for
 * aes128gcm; for aesgcm the legacy form web-push sends, `Authorization: WebPush <t>` and a
 * `p256ecdsa=<k>` parameter for Crypto-Key.
 */
export function vapidHeaders(
  details: VapidDetails,
  endpoint: string,
  encoding: PushContentEncoding,
): { authorization: string; p256ecdsa?: string } {
  const { token, publicKey } = signerFor(details).token(endpoint);
  if (encoding === 'aesgcm') return { authorization: `WebPush ${token}`, p256ecdsa: `p256ecdsa=${publicKey}` };
  return { authorization: `vapid t=${token}, k=${publicKey}` };
}
