// The user agent's state file: the push service, the protocol, the uaid it gave us (WebSocket)
// and, per subscription, the endpoint (plus, over RFC 8030, the subscription and set URLs) and
// the private keys that decrypt its messages. JSON, written atomically (temporary file, fsync,
// rename) with mode 0600: it holds private keys (and, over RFC 8030, capability URLs).
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';

export interface StoredKeys {
  /** The user agent's public key (uncompressed P-256 point, 65 bytes), base64url. */
  p256dh: string;
  /** The 16-byte authentication secret, base64url. */
  auth: string;
  /** The private key (32 bytes), base64url. */
  privateKey: string;
}

export interface StoredSubscription {
  /** Names the subscription in this client (a random UUID; the WebSocket protocol's channel ID). */
  channelID: string;
  /** The push URL application servers send to (RFC 8030 `urn:ietf:params:push`). */
  endpoint: string;
  /** RFC 8030 only: the subscription resource (the 201's Location): GET receives, DELETE unsubscribes. */
  subscriptionUrl?: string;
  /** RFC 8030 only: the subscription set it belongs to (`urn:ietf:params:push:set`), when the service made one. */
  setUrl?: string;
  /** The VAPID key the subscription is restricted to, as given to subscribe(). */
  vapidKey?: string;
  keys: StoredKeys;
}

export type UaProtocol = 'websocket' | 'http2';

export interface UaState {
  /** The push service as given by the user (ws(s):// or http(s):// base URL). */
  server: string;
  /** How the client talks to the push service. Files without it (older ones) are 'websocket'. */
  protocol?: UaProtocol;
  /** WebSocket: null until the push service said hello for the first time. Always null over RFC 8030. */
  uaid: string | null;
  subscriptions: StoredSubscription[];
}

/** A state file that is missing, unreadable, corrupt or cannot be written. */
export class StateError extends Error {
  override name = 'StateError';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function base64urlBytes(value: unknown, bytes: number, what: string): string {
  if (typeof value !== 'string' || !BASE64URL.test(value) || Buffer.from(value, 'base64url').length !== bytes) {
    throw new Error(`${what} must be ${bytes} bytes in base64url`);
  }
  return value;
}

function optionalUrl(value: unknown, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !URL.canParse(value)) throw new Error(`${what} must be a URL`);
  return value;
}

function parseSubscription(value: unknown, i: number, protocol: UaProtocol): StoredSubscription {
  const at = `subscriptions[${i}]`;
  if (!isObject(value)) throw new Error(`${at} must be an object`);
  const { channelID, endpoint, vapidKey, keys } = value;
  if (typeof channelID !== 'string' || !UUID.test(channelID)) throw new Error(`${at}.channelID must be a lower-case UUID`);
  if (typeof endpoint !== 'string' || !URL.canParse(endpoint)) throw new Error(`${at}.endpoint must be a URL`);
  const subscriptionUrl = optionalUrl(value.subscriptionUrl, `${at}.subscriptionUrl`);
  const setUrl = optionalUrl(value.setUrl, `${at}.setUrl`);
  if (protocol === 'http2' && subscriptionUrl === undefined) throw new Error(`${at}.subscriptionUrl is required with protocol http2`);
  if (vapidKey !== undefined && typeof vapidKey !== 'string') throw new Error(`${at}.vapidKey must be a string`);
  if (!isObject(keys)) throw new Error(`${at}.keys must be an object`);
  return {
    channelID,
    endpoint,
    ...(subscriptionUrl !== undefined ? { subscriptionUrl } : {}),
    ...(setUrl !== undefined ? { setUrl } : {}),
    ...(vapidKey !== undefined ? { vapidKey } : {}),
    keys: {
      p256dh: base64urlBytes(keys.p256dh, 65, `${at}.keys.p256dh`),
      auth: base64urlBytes(keys.auth, 16, `${at}.keys.auth`),
      privateKey: base64urlBytes(keys.privateKey, 32, `${at}.keys.privateKey`),
    },
  };
}

/** Validates the content of a state file; `path` only names it in errors. */
export function parseState(text: string, path: string): UaState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new StateError(`state file ${path} is not valid JSON`);
  }
  try {
    if (!isObject(raw)) throw new Error('it must hold a JSON object');
    if (typeof raw.server !== 'string' || !URL.canParse(raw.server)) throw new Error('server must be a URL');
    if (raw.uaid !== undefined && raw.uaid !== null && (typeof raw.uaid !== 'string' || raw.uaid.length === 0)) {
      throw new Error('uaid must be a non-empty string or null');
    }
    if (raw.protocol !== undefined && raw.protocol !== 'websocket' && raw.protocol !== 'http2') {
      throw new Error('protocol must be "websocket" or "http2"');
    }
    const protocol = (raw.protocol as UaProtocol | undefined) ?? 'websocket';
    if (!Array.isArray(raw.subscriptions)) throw new Error('subscriptions must be an array');
    const subscriptions = raw.subscriptions.map((s, i) => parseSubscription(s, i, protocol));
    return {
      server: raw.server,
      ...(raw.protocol !== undefined ? { protocol } : {}),
      uaid: (raw.uaid as string | null | undefined) ?? null,
      subscriptions,
    };
  } catch (err) {
    throw new StateError(`state file ${path} is not a webpushd user-agent state: ${(err as Error).message}`);
  }
}

/** The state in `path`, or null when there is no such file. */
export function readState(path: string): UaState | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new StateError(`cannot read state file ${path}: ${(err as Error).message}`);
  }
  return parseState(text, path);
}

/** Replaces `path` atomically: a reader (or a crash) sees the old file or the new one, never a mix. */
export function writeState(path: string, state: UaState): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(state, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new StateError(`cannot write state file ${path}: ${(err as Error).message}`);
  }
}
