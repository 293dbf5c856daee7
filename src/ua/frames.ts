// The client side of the WebSocket push protocol (Firefox/autopush, docs/PROTOCOL.md): building
// the frames a user agent sends and parsing what the push service sends. No I/O here.
import type { AckUpdate, EncodingHeaders, IncomingNotification } from './transport.ts';

export type ServerFrame =
  | { messageType: 'hello'; uaid: string; status: number; useWebpush: boolean }
  | { messageType: 'register'; channelID: string; status: number; pushEndpoint: string | undefined }
  | { messageType: 'unregister'; channelID: string; status: number }
  | { messageType: 'notification'; notification: IncomingNotification }
  | { messageType: 'broadcast'; broadcasts: Record<string, unknown> }
  | { messageType: 'ping' }
  | { messageType: 'other'; type: string };

/** A frame the client cannot make sense of. */
export class FrameError extends Error {
  override name = 'FrameError';
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function str(m: Json, field: string): string {
  const v = m[field];
  if (typeof v !== 'string' || v.length === 0) throw new FrameError(`${String(m.messageType)}: ${field} must be a non-empty string`);
  return v;
}

function status(m: Json): number {
  if (!Number.isInteger(m.status)) throw new FrameError(`${String(m.messageType)}: status must be an integer`);
  return m.status as number;
}

function notification(m: Json): IncomingNotification {
  const channelID = str(m, 'channelID').toLowerCase();
  const version = str(m, 'version');
  if (m.data === undefined || m.data === null || m.data === '') return { channelID, version, body: Buffer.alloc(0), headers: null };
  if (typeof m.data !== 'string' || !/^[A-Za-z0-9_\-+/]+=*$/.test(m.data)) {
    throw new FrameError('notification: data must be base64url');
  }
  const body = Buffer.from(m.data, 'base64url');
  const h = m.headers;
  if (!isObject(h) || typeof h.encoding !== 'string') return { channelID, version, body, headers: null };
  const headers: EncodingHeaders = { encoding: h.encoding };
  if (typeof h.encryption === 'string') headers.encryption = h.encryption;
  if (typeof h.crypto_key === 'string') headers.cryptoKey = h.crypto_key;
  return { channelID, version, body, headers };
}

/** Parses one text frame from the push service; throws FrameError when it is malformed. */
export function parseServerFrame(text: string): ServerFrame {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new FrameError('frame is not JSON');
  }
  if (!isObject(m)) throw new FrameError('frame is not a JSON object');
  if (m.messageType === undefined && Object.keys(m).length === 0) return { messageType: 'ping' };
  if (typeof m.messageType !== 'string') throw new FrameError('messageType must be a string');
  // Firefox matches message types case-insensitively.
  switch (m.messageType.toLowerCase()) {
    case 'hello':
      return { messageType: 'hello', uaid: str(m, 'uaid'), status: status(m), useWebpush: m.use_webpush === true };
    case 'register':
      return {
        messageType: 'register',
        channelID: str(m, 'channelID').toLowerCase(),
        status: status(m),
        pushEndpoint: typeof m.pushEndpoint === 'string' ? m.pushEndpoint : undefined,
      };
    case 'unregister':
      return { messageType: 'unregister', channelID: str(m, 'channelID').toLowerCase(), status: status(m) };
    case 'notification':
      return { messageType: 'notification', notification: notification(m) };
    case 'broadcast':
      return { messageType: 'broadcast', broadcasts: isObject(m.broadcasts) ? m.broadcasts : {} };
    case 'ping':
      return { messageType: 'ping' };
    default:
      return { messageType: 'other', type: m.messageType };
  }
}

export function helloFrame(uaid: string | null): string {
  return JSON.stringify({ messageType: 'hello', use_webpush: true, broadcasts: {}, ...(uaid ? { uaid } : {}) });
}

export function registerFrame(channelID: string, key: string | undefined): string {
  return JSON.stringify({ messageType: 'register', channelID, ...(key !== undefined ? { key } : {}) });
}

/** Code 200: the user unsubscribed. */
export function unregisterFrame(channelID: string, code = 200): string {
  return JSON.stringify({ messageType: 'unregister', channelID, code });
}

export function ackFrame(updates: AckUpdate[]): string {
  return JSON.stringify({
    messageType: 'ack',
    updates: updates.map(({ channelID, version, code }) => ({ channelID, version, code })),
  });
}

export function nackFrame(version: string, code: number): string {
  return JSON.stringify({ messageType: 'nack', version, code });
}
