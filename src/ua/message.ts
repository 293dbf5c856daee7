// From a notification as the push service delivered it to the message the application sees:
// decrypted with the subscription's keys (RFC 8291, aes128gcm or the legacy aesgcm).
import { isUtf8 } from 'node:buffer';
import { decryptMessage } from '../crypto/webpush.ts';
import type { StoredSubscription } from './state.ts';
import type { IncomingNotification } from './transport.ts';

export interface PushMessage {
  channelID: string;
  /** The subscription's push endpoint. */
  endpoint: string;
  /** Names the message at the push service (what is acknowledged). */
  version: string;
  /** The decrypted payload (empty when the message had none). */
  data: Buffer;
  /** The payload as text when it is valid UTF-8 (so '' for an empty message). */
  text?: string;
  /** True when the message carried no payload at all (a "tickle"), as opposed to an encrypted empty one. */
  empty: boolean;
  /** The Content-Encoding it was encrypted with (aes128gcm or aesgcm); undefined without payload. */
  encoding?: string;
}

/** A message that could not be decrypted: it is acknowledged with code 101. */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export function decodeNotification(n: IncomingNotification, subscription: StoredSubscription): PushMessage {
  const base = { channelID: n.channelID, endpoint: subscription.endpoint, version: n.version };
  if (n.body.length === 0) return { ...base, data: Buffer.alloc(0), text: '', empty: true };
  if (!n.headers) throw new DecryptionError('the message has a payload but no encoding headers');
  const keys = subscription.keys;
  let data: Buffer;
  try {
    data = decryptMessage(n.body, n.headers, {
      publicKey: Buffer.from(keys.p256dh, 'base64url'),
      privateKey: Buffer.from(keys.privateKey, 'base64url'),
      auth: Buffer.from(keys.auth, 'base64url'),
    });
  } catch (err) {
    throw new DecryptionError(`cannot decrypt the ${n.headers.encoding} message: ${(err as Error).message}`, { cause: err });
  }
  return { ...base, data, ...(isUtf8(data) ? { text: data.toString('utf8') } : {}), empty: false, encoding: n.headers.encoding };
}
