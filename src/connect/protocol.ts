// The WebSocket push protocol spoken by Firefox (autopush's): pure parsing and validation of
// client frames and construction of server frames. No I/O here.
import { parseChannelId } from '../common/ids.ts';
import type { EncodingHeaders } from '../store/types.ts';

export type Broadcasts = Record<string, string>;

export interface AckUpdate {
  chid: Buffer;
  version: string;
  code: number | undefined;
}

export type ClientMessage =
  | { messageType: 'hello'; uaid: unknown; broadcasts: Broadcasts }
  | { messageType: 'register'; channelID: string; chid: Buffer; key: string | undefined }
  | { messageType: 'unregister'; channelID: string; chid: Buffer; code: number | undefined }
  | { messageType: 'ack'; updates: AckUpdate[] }
  | { messageType: 'nack'; version: string; code: number | undefined }
  | { messageType: 'broadcast_subscribe'; broadcasts: Broadcasts }
  | { messageType: 'ping' };

/** A frame that breaks the protocol: the connection is closed with 1002 and this reason. */
export class ProtocolViolation extends Error {}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An optional field: JSON `null` means absent, as autopush reads it (clients send `"key": null`). */
const optional = (value: unknown): unknown => (value === null ? undefined : value);

function optionalCode(m: Json): number | undefined {
  const code = optional(m.code);
  if (code === undefined) return undefined;
  if (!Number.isInteger(code)) throw new ProtocolViolation('code must be an integer');
  return code as number;
}

function channel(m: Json): { channelID: string; chid: Buffer } {
  const chid = parseChannelId(m.channelID);
  if (!chid) throw new ProtocolViolation('channelID must be a lower-case dashed UUID');
  return { channelID: m.channelID as string, chid };
}

function broadcasts(value: unknown): Broadcasts {
  if (optional(value) === undefined) return {};
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    throw new ProtocolViolation('broadcasts must map ids to version strings');
  }
  return value as Broadcasts;
}

function version(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new ProtocolViolation('version must be a non-empty string');
  }
  return value;
}

/** Parses one text frame; throws ProtocolViolation for anything malformed. */
export function parseClientMessage(text: string): ClientMessage {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new ProtocolViolation('frame is not JSON');
  }
  if (!isObject(m)) throw new ProtocolViolation('frame is not a JSON object');
  const type = m.messageType;
  if (type === undefined && Object.keys(m).length === 0) return { messageType: 'ping' };
  if (typeof type !== 'string') throw new ProtocolViolation('messageType must be a string');
  switch (type.toLowerCase()) {
    case 'hello':
      // channelIDs (the channels the client believes it has) is not needed: the store knows them
      if (optional(m.channelIDs) !== undefined && !Array.isArray(m.channelIDs)) throw new ProtocolViolation('channelIDs must be an array');
      return { messageType: 'hello', uaid: optional(m.uaid), broadcasts: broadcasts(m.broadcasts) };
    case 'register': {
      const key = optional(m.key);
      if (key !== undefined && typeof key !== 'string') throw new ProtocolViolation('key must be a string');
      return { messageType: 'register', ...channel(m), key: key as string | undefined };
    }
    case 'unregister':
      return { messageType: 'unregister', ...channel(m), code: optionalCode(m) };
    case 'ack': {
      if (!Array.isArray(m.updates)) throw new ProtocolViolation('ack needs an updates array');
      const updates = m.updates.map((u: unknown): AckUpdate => {
        if (!isObject(u)) throw new ProtocolViolation('ack updates must be objects');
        return { chid: channel(u).chid, version: version(u.version), code: optionalCode(u) };
      });
      return { messageType: 'ack', updates };
    }
    case 'nack':
      return { messageType: 'nack', version: version(m.version), code: optionalCode(m) };
    case 'broadcast_subscribe':
      return { messageType: 'broadcast_subscribe', broadcasts: broadcasts(m.broadcasts) };
    case 'ping':
      return { messageType: 'ping' };
    default:
      throw new ProtocolViolation(`unknown messageType ${JSON.stringify(type).slice(0, 40)}`);
  }
}

export function helloReply(uaid: string, broadcasts: Record<string, unknown>): string {
  return JSON.stringify({ messageType: 'hello', uaid, status: 200, use_webpush: true, broadcasts });
}

export function registerReply(channelID: string, status: number, pushEndpoint?: string): string {
  return JSON.stringify({ messageType: 'register', channelID, status, ...(pushEndpoint ? { pushEndpoint } : {}) });
}

export function unregisterReply(channelID: string, status: number): string {
  return JSON.stringify({ messageType: 'unregister', channelID, status });
}

export function broadcastMessage(broadcasts: Record<string, unknown>): string {
  return JSON.stringify({ messageType: 'broadcast', broadcasts });
}

export const PING_REPLY = '{}';

/** Firefox decodes header values with padding "reject": drop quotes and base64 padding. */
function stripParams(value: string): string {
  return value
    .split(/\s*([,;])\s*/)
    .map((part) => {
      if (part === ',' || part === ';') return part;
      const eq = part.indexOf('=');
      if (eq < 0) return part;
      return `${part.slice(0, eq)}=${part.slice(eq + 1).replace(/^"|"$/g, '').replace(/=+$/, '')}`;
    })
    .join('');
}

export function notificationMessage(
  channelID: string,
  version: string,
  body: Buffer,
  headers: EncodingHeaders | null,
): string {
  if (body.length === 0 || !headers) return JSON.stringify({ messageType: 'notification', channelID, version });
  const h: Record<string, string> = { encoding: headers.encoding };
  if (headers.encryption !== undefined) h.encryption = stripParams(headers.encryption);
  if (headers.cryptoKey !== undefined) h.crypto_key = stripParams(headers.cryptoKey);
  return JSON.stringify({ messageType: 'notification', channelID, version, data: body.toString('base64url'), headers: h });
}

/** A close frame's reason may hold at most this many bytes (RFC 6455 5.5: 125 minus the code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** `reason` cut to fit a close frame, at a character boundary (ws throws on a longer one). */
export function closeReason(reason: string): string {
  if (Buffer.byteLength(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let bytes = 0;
  let end = 0;
  for (const ch of reason) {
    const size = Buffer.byteLength(ch);
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break;
    bytes += size;
    end += ch.length;
  }
  return reason.slice(0, end);
}

/** Close codes (see docs/PROTOCOL.md). */
export const Close = {
  normal: 1000,
  /** Server shutting down: Firefox reconnects with its usual backoff. */
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  tooBig: 1009,
  serverError: 1011,
  /** The store cannot be read or written now: reconnect later. */
  tryAgainLater: 1013,
  /** Firefox does not reconnect at once after this one. */
  backoff: 4774,
} as const;
