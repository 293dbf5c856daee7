// Validation of an application server's push request (RFC 8030 5, RFC 8291, autopush's rules).
// Pure: headers and body in, a typed request or a PushError out.
import type { IncomingHttpHeaders } from 'node:http';
import { Errno, PushError } from '../common/push-error.ts';
import { URGENCIES, type EncodingHeaders, type Urgency } from '../store/types.ts';

export interface PushHeaders {
  ttl: number;
  topic: string | null;
  urgency: Urgency;
}

const DIGITS = /^\d+$/;
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;

const bad = (errno: number, message: string) => new PushError(400, errno, message);

function one(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function parseTtl(value: string | undefined, maxTtl: number): number {
  if (value === undefined) throw bad(Errno.missingTtl, 'Missing TTL header');
  const v = value.trim();
  if (!DIGITS.test(v)) throw bad(Errno.invalidTtl, 'TTL must be a non-negative integer number of seconds');
  // RFC 8030 5.2: the service may keep less than asked, and says so in the TTL it answers
  return v.length > 10 ? maxTtl : Math.min(Number(v), maxTtl);
}

export function parseTopic(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (!TOPIC.test(value)) throw bad(Errno.invalidTopic, 'Topic must be 1 to 32 characters of A-Z a-z 0-9 - _');
  return value;
}

export function parseUrgency(value: string | undefined): Urgency {
  if (value === undefined) return 'normal';
  const v = value.trim().toLowerCase();
  if (!(URGENCIES as readonly string[]).includes(v)) {
    throw bad(Errno.invalidUrgency, 'Urgency must be one of very-low, low, normal, high');
  }
  return v as Urgency;
}

/** Splits `a=1;b="2", c=3` into name -> value (first occurrence wins), unquoted. */
export function headerParams(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

function decodedLength(b64: string | undefined): number {
  return b64 === undefined || !/^[A-Za-z0-9_\-+/]+=*$/.test(b64) ? -1 : Buffer.from(b64, 'base64url').length;
}

/** Legacy VAPID puts the sender's key in Crypto-Key; it is not for the user agent. */
function withoutVapidKey(cryptoKey: string): string {
  return cryptoKey
    .split(',')
    .map((entry) =>
      entry
        .split(';')
        .filter((param) => !/^\s*p256ecdsa\s*=/i.test(param))
        .join(';')
        .trim(),
    )
    .filter((entry) => entry !== '')
    .join(', ');
}

/**
 * The longest Encryption and Crypto-Key headers taken, in bytes. They are stored with the message
 * and forwarded: what a valid one needs, with room (`keyid="p256dh";salt="…";rs=4096` is some 50
 * bytes; `keyid="p256dh";dh="…";p256ecdsa="…"` with padding some 210).
 */
export const MAX_ENCRYPTION_HEADER = 128;
export const MAX_CRYPTO_KEY_HEADER = 320;

/**
 * Encryption and Crypto-Key bytes a message may have on top of a body of --max-message-size: what
 * a valid aesgcm salt and dh take in any spelling (some 160 bytes), so that a 4096-byte body with
 * them is accepted (RFC 8030 7.2). Header bytes past this take from the body's room.
 */
export const ENCRYPTION_HEADERS_ALLOWANCE = 192;

/** The bytes of a message's headers that are stored and forwarded with it (they count with the body). */
export function storedHeaderBytes(encoding: EncodingHeaders | null): number {
  return Buffer.byteLength(encoding?.encryption ?? '') + Buffer.byteLength(encoding?.cryptoKey ?? '');
}

/** The encoding headers of a non-empty body (an empty one needs none, and they are ignored). */
export function parseEncoding(headers: IncomingHttpHeaders): EncodingHeaders | null {
  const ce = one(headers, 'content-encoding');
  if (ce === undefined) return null;
  const encoding = ce.trim().toLowerCase();
  const encryption = one(headers, 'encryption');
  const cryptoKey = one(headers, 'crypto-key');
  if (encryption !== undefined && Buffer.byteLength(encryption) > MAX_ENCRYPTION_HEADER) {
    throw bad(Errno.invalidEncryption, `Encryption header longer than ${MAX_ENCRYPTION_HEADER} bytes`);
  }
  if (cryptoKey !== undefined && Buffer.byteLength(cryptoKey) > MAX_CRYPTO_KEY_HEADER) {
    throw bad(Errno.invalidEncryption, `Crypto-Key header longer than ${MAX_CRYPTO_KEY_HEADER} bytes`);
  }
  if (encoding === 'aes128gcm') {
    // the salt and sender key travel in the body's header: separate ones would be ignored silently
    if (encryption !== undefined && headerParams(encryption).has('salt')) {
      throw bad(Errno.invalidEncryption, 'aes128gcm takes no Encryption salt: the salt is in the body');
    }
    if (cryptoKey !== undefined && headerParams(cryptoKey).has('dh')) {
      throw bad(Errno.invalidEncryption, 'aes128gcm takes no Crypto-Key dh: the key is in the body');
    }
    return { encoding };
  }
  if (encoding === 'aesgcm') {
    if (encryption === undefined || decodedLength(headerParams(encryption).get('salt')) !== 16) {
      throw bad(Errno.invalidEncryption, 'aesgcm needs an Encryption header with a 16-byte salt');
    }
    if (cryptoKey === undefined || decodedLength(headerParams(cryptoKey).get('dh')) !== 65) {
      throw bad(Errno.invalidEncryption, 'aesgcm needs a Crypto-Key header with a 65-byte dh key');
    }
    return { encoding, encryption, cryptoKey: withoutVapidKey(cryptoKey) };
  }
  throw bad(Errno.invalidEncryption, 'Content-Encoding must be aes128gcm or aesgcm');
}

export function parsePushHeaders(headers: IncomingHttpHeaders, maxTtl: number): PushHeaders {
  return {
    ttl: parseTtl(one(headers, 'ttl'), maxTtl),
    topic: parseTopic(one(headers, 'topic')),
    urgency: parseUrgency(one(headers, 'urgency')),
  };
}

const AES128GCM_HEADER = 21; // salt(16) rs(4) idlen(1)
const TAG = 16;

/** Structural checks of an encrypted body; the service never decrypts. */
export function checkBody(body: Buffer, encoding: EncodingHeaders | null): void {
  if (body.length === 0) return;
  if (!encoding) throw bad(Errno.invalidEncryption, 'A message body needs a Content-Encoding (aes128gcm or aesgcm)');
  if (encoding.encoding === 'aesgcm') {
    if (body.length < TAG + 2) throw bad(Errno.invalidEncryption, 'aesgcm body is shorter than one record');
    return;
  }
  if (body.length < AES128GCM_HEADER) throw bad(Errno.invalidEncryption, 'aes128gcm body is shorter than its header');
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const records = body.length - AES128GCM_HEADER - idlen;
  // RFC 8291 4: keyid is the sender's 65-byte uncompressed P-256 key, and one record only
  if (idlen !== 65 || body[AES128GCM_HEADER] !== 0x04) {
    throw bad(Errno.invalidEncryption, 'aes128gcm keyid must be the 65-byte uncompressed sender public key');
  }
  if (rs < 18) throw bad(Errno.invalidEncryption, 'aes128gcm record size must be at least 18');
  if (records < TAG + 1) throw bad(Errno.invalidEncryption, 'aes128gcm body holds no complete record');
  if (records > rs) throw bad(Errno.invalidEncryption, 'aes128gcm push messages must be a single record');
}
