// Validation of the subscription JSON (`PushSubscription.toJSON()`) and of the payload. The
// decoded keys are returned to the caller and never cached: they are per-subscription secrets.
import { WebPushValidationError } from './errors.ts';

export interface CheckedSubscription {
  endpoint: string;
  url: URL;
  /** Present when there is a payload to encrypt. */
  keys?: { p256dh: Buffer; auth: Buffer };
}

const BASE64 = /^[A-Za-z0-9_+/-]*$/;

/** base64url or base64, with or without `=` padding; null when it is neither. */
export function decodeBase64Url(value: string): Buffer | null {
  const unpadded = value.replace(/={1,2}$/, '');
  if (!BASE64.test(unpadded) || unpadded.length % 4 === 1) return null;
  return Buffer.from(unpadded, 'base64url');
}

/** The payload as bytes, or null for none (undefined, null or an empty string, as web-push). */
export function checkPayload(payload: unknown): Buffer | null {
  if (payload === undefined || payload === null || payload === '') return null;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (Buffer.isBuffer(payload)) return payload;
  if (payload instanceof Uint8Array) return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  throw new WebPushValidationError('payload', 'Payload must be either a string or a Node Buffer.');
}

export function checkSubscription(subscription: unknown, hasPayload: boolean): CheckedSubscription {
  const sub = subscription as { endpoint?: unknown; keys?: { p256dh?: unknown; auth?: unknown } } | null | undefined;
  if (!sub || typeof sub !== 'object' || !sub.endpoint) {
    throw new WebPushValidationError('subscription.endpoint', 'You must pass in a subscription with at least an endpoint.');
  }
  const endpoint = sub.endpoint;
  const invalidEndpoint = () =>
    new WebPushValidationError('subscription.endpoint', 'The subscription endpoint must be a string with a valid URL.');
  if (typeof endpoint !== 'string') throw invalidEndpoint();
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalidEndpoint();
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new WebPushValidationError('subscription.endpoint', 'The subscription endpoint must be an https: (or http:) URL.');
  }
  if (!hasPayload) return { endpoint, url };

  const keys = sub.keys;
  if (!keys || typeof keys !== 'object' || !keys.p256dh || !keys.auth) {
    throw new WebPushValidationError(
      'subscription.keys',
      "To send a message with a payload, the subscription must have 'auth' and 'p256dh' keys.",
    );
  }
  if (typeof keys.p256dh !== 'string') {
    throw new WebPushValidationError('subscription.keys.p256dh', 'The subscription p256dh value must be a string.');
  }
  const p256dh = decodeBase64Url(keys.p256dh);
  if (!p256dh || p256dh.length !== 65) {
    throw new WebPushValidationError('subscription.keys.p256dh', 'The subscription p256dh value should be 65 bytes long.');
  }
  if (typeof keys.auth !== 'string') {
    throw new WebPushValidationError('subscription.keys.auth', 'The subscription auth key must be a string.');
  }
  const auth = decodeBase64Url(keys.auth);
  if (!auth || auth.length < 16) {
    throw new WebPushValidationError('subscription.keys.auth', 'The subscription auth key should be at least 16 bytes long');
  }
  return { endpoint, url, keys: { p256dh, auth } };
}
