// Builds the push request (RFC 8030 headers, RFC 8291 encryption, RFC 8292 VAPID) without
// sending it: web-push's generateRequestDetails.
import { EceError, encryptMessage } from '../crypto/webpush.ts';
import { WebPushValidationError } from './errors.ts';
import { checkOptions, type CheckedOptions } from './options.ts';
import { RECEIPT_REL } from '../ua/link-header.ts';
import { checkPayload, checkSubscription } from './subscription.ts';
import type { PushSubscription, RequestDetails, RequestOptions } from './types.ts';
import { vapidHeaders } from './vapid.ts';

/** Validates everything, then encrypts and signs. Throws WebPushValidationError. */
export function buildRequest(
  subscription: unknown,
  payload: unknown,
  options: RequestOptions | undefined | null,
): { details: RequestDetails; options: CheckedOptions } {
  const plaintext = checkPayload(payload);
  const sub = checkSubscription(subscription, plaintext !== null);
  const o = checkOptions(options);

  const headers: Record<string, string> = { TTL: String(o.ttl) };
  let body: Buffer | null = null;
  let cryptoKey: string | undefined;
  if (plaintext !== null && sub.keys) {
    let encrypted: ReturnType<typeof encryptMessage>;
    try {
      encrypted = encryptMessage(plaintext, sub.keys, { encoding: o.encoding });
    } catch (err) {
      if (err instanceof EceError) throw new WebPushValidationError('subscription.keys', err.message);
      throw err;
    }
    body = encrypted.body;
    headers['Content-Length'] = String(body.length);
    headers['Content-Type'] = 'application/octet-stream';
    headers['Content-Encoding'] = o.encoding;
    if (o.encoding === 'aesgcm') {
      headers.Encryption = encrypted.encryption!;
      cryptoKey = encrypted.cryptoKey!;
    }
  } else {
    headers['Content-Length'] = '0';
  }
  if (o.vapid) {
    const vapid = vapidHeaders(o.vapid, sub.endpoint, o.encoding);
    headers.Authorization = vapid.authorization;
    if (vapid.p256ecdsa) cryptoKey = cryptoKey ? `${cryptoKey};${vapid.p256ecdsa}` : vapid.p256ecdsa;
  }
  if (cryptoKey) headers['Crypto-Key'] = cryptoKey;
  headers.Urgency = o.urgency;
  if (o.topic) headers.Topic = o.topic;
  // RFC 8030 5.1: respond-async asks for a receipt; the Link names the receipt subscription to reuse
  if (o.receipt) headers.Prefer = 'respond-async';
  if (typeof o.receipt === 'string') headers.Link = `<${o.receipt}>; rel="${RECEIPT_REL}"`;
  mergeHeaders(headers, o.headers);
  return { details: { method: 'POST', headers, body, endpoint: sub.endpoint }, options: o };
}

/** Extra headers replace computed ones of the same name, whatever their case. */
function mergeHeaders(headers: Record<string, string>, extra: Record<string, string>): void {
  for (const [name, value] of Object.entries(extra)) {
    const lower = name.toLowerCase();
    for (const existing of Object.keys(headers)) {
      if (existing.toLowerCase() === lower) delete headers[existing];
    }
    headers[name] = value;
  }
}

/**
 * The method, headers, body and endpoint of a push request, to send it yourself. Throws
 * WebPushValidationError for an invalid subscription, payload or option.
 */
export function generateRequestDetails(
  subscription: PushSubscription,
  payload?: string | Buffer | Uint8Array | null,
  options?: RequestOptions | null,
): RequestDetails {
  return buildRequest(subscription, payload, options).details;
}
