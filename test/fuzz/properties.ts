// The properties of the pure protocol code, as plain predicates over one input each: the CI
// fuzz tests run them with a fixed seed and few cases, bench/fuzz.ts with many.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { PushError } from '../../src/common/push-error.ts';
import { ProtocolViolation, parseClientMessage, type ClientMessage } from '../../src/connect/protocol.ts';
import { checkBody, parseEncoding, parsePushHeaders } from '../../src/endpoint/push-headers.ts';
import { URGENCIES } from '../../src/store/types.ts';
import { parseLinks, resourceToken, targetsOf } from '../../src/rfc8030/links.ts';
import { parsePrefer, prefersNoWait, prefersRespondAsync } from '../../src/rfc8030/prefer.ts';
import { parseVapidAuthorization } from '../../src/vapid/authorization.ts';
import { VapidVerifier, publicKeyHash } from '../../src/vapid/verify.ts';
import type { Pipeline } from '../../src/core/pipeline.ts';
import { PushEndpoint } from '../../src/endpoint/push-endpoint.ts';
import type { AnyRequest, AnyResponse } from '../../src/http/listener.ts';
import { parseReceiptRequest } from '../../src/rfc8030/receipt-request.ts';
import { Capabilities } from '../../src/tokens/capabilities.ts';
import { Sealer } from '../../src/tokens/sealer.ts';
import { AUDIENCE, KEY_A, NOW, signedTokens, type SignedToken, type VapidCase } from './arbitraries.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TYPES = new Set(['hello', 'register', 'unregister', 'ack', 'nack', 'broadcast_subscribe', 'ping']);

function isChid(chid: Buffer, channelID: unknown): void {
  assert.ok(Buffer.isBuffer(chid) && chid.length === 16, 'chid is 16 bytes');
  if (typeof channelID === 'string') assert.equal(chid.toString('hex'), channelID.replaceAll('-', ''));
}

/** parseClientMessage: throws only ProtocolViolation; what it accepts is well-formed. */
export function clientMessageProperty(text: string): void {
  let m: ClientMessage;
  try {
    m = parseClientMessage(text);
  } catch (err) {
    assert.ok(err instanceof ProtocolViolation, `threw ${String(err)}, not a ProtocolViolation`);
    assert.ok(err.message.length > 0, 'a violation says what was wrong');
    return;
  }
  const input = JSON.parse(text) as Record<string, unknown>;
  assert.ok(TYPES.has(m.messageType), `messageType ${m.messageType}`);
  if (m.messageType !== 'ping' || input.messageType !== undefined) {
    assert.equal(m.messageType, String(input.messageType).toLowerCase(), 'the messageType asked for');
  } else {
    assert.deepEqual(input, {}, 'only {} is a ping without messageType');
  }
  switch (m.messageType) {
    case 'hello':
    case 'broadcast_subscribe':
      assert.ok(typeof m.broadcasts === 'object' && m.broadcasts !== null && !Array.isArray(m.broadcasts));
      for (const v of Object.values(m.broadcasts)) assert.equal(typeof v, 'string', 'broadcast versions are strings');
      break;
    case 'register':
      assert.match(m.channelID, UUID);
      isChid(m.chid, m.channelID);
      assert.ok(m.key === undefined || typeof m.key === 'string');
      break;
    case 'unregister':
      assert.match(m.channelID, UUID);
      isChid(m.chid, m.channelID);
      assert.ok(m.code === undefined || Number.isInteger(m.code));
      break;
    case 'ack': {
      const updates = input.updates as Record<string, unknown>[];
      assert.equal(m.updates.length, updates.length, 'every update is kept');
      m.updates.forEach((u, i) => {
        isChid(u.chid, updates[i]!.channelID);
        assert.ok(typeof u.version === 'string' && u.version.length > 0 && u.version.length <= 200);
        assert.ok(u.code === undefined || Number.isInteger(u.code));
      });
      break;
    }
    case 'nack':
      assert.ok(typeof m.version === 'string' && m.version.length > 0 && m.version.length <= 200);
      assert.ok(m.code === undefined || Number.isInteger(m.code));
      break;
    case 'ping':
      break;
  }
}

/** Asserts `fn` returns, or throws a PushError of `status` with one of `errnos`; returns what it returned. */
export function onlyPushErrors<T>(fn: () => T, status: number, errnos: readonly number[]): T | PushError {
  try {
    return fn();
  } catch (err) {
    assert.ok(err instanceof PushError, `threw ${String(err)}, not a PushError`);
    assert.equal(err.status, status, `status of "${err.message}"`);
    assert.ok(errnos.includes(err.errno), `errno ${err.errno} of "${err.message}" is not one of ${errnos.join(', ')}`);
    assert.ok(err.message.length > 0);
    return err;
  }
}

const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;

/** push-headers.ts: only 400 with errno 111/113/114/115 (headers) or 110 (encoding, body). */
export function pushHeadersProperty(headers: IncomingHttpHeaders, body: Buffer, maxTtl: number): void {
  const parsed = onlyPushErrors(() => parsePushHeaders(headers, maxTtl), 400, [111, 113, 114, 115]);
  if (!(parsed instanceof PushError)) {
    assert.ok(Number.isInteger(parsed.ttl) && parsed.ttl >= 0 && parsed.ttl <= maxTtl, `ttl ${parsed.ttl}`);
    assert.ok(parsed.topic === null || TOPIC.test(parsed.topic), `topic ${parsed.topic}`);
    assert.ok((URGENCIES as readonly string[]).includes(parsed.urgency), `urgency ${parsed.urgency}`);
    if (headers.ttl === undefined) assert.fail('accepted without TTL');
  } else if (headers.ttl === undefined) {
    assert.equal(parsed.errno, 111, 'a missing TTL is errno 111');
  }
  const encoding = body.length > 0 ? onlyPushErrors(() => parseEncoding(headers), 400, [110]) : null;
  if (encoding instanceof PushError) return;
  if (encoding) {
    assert.ok(encoding.encoding === 'aes128gcm' || encoding.encoding === 'aesgcm');
    if (encoding.cryptoKey !== undefined) assert.doesNotMatch(encoding.cryptoKey, /p256ecdsa/i, 'the VAPID key is not for the user agent');
  }
  onlyPushErrors(() => checkBody(body, encoding), 400, [110]);
}

/** parseVapidAuthorization never throws; null only without an Authorization header. */
export function vapidAuthorizationProperty(authorization: string | undefined, cryptoKey: string | undefined): void {
  const creds = parseVapidAuthorization(authorization, cryptoKey);
  if (authorization === undefined) return assert.equal(creds, null);
  assert.notEqual(creds, null, 'an Authorization header is never "no credentials"');
  if (creds !== null && !('error' in creds)) {
    assert.ok(creds.token.length > 0 && creds.publicKey.length > 0);
    assert.doesNotMatch(creds.publicKey, /=$/, 'padding is dropped from the key');
  }
}

/** Prefer: never throws; names lower-cased, trimmed, non-empty; the helpers agree with the map. */
export function preferProperty(value: string | string[] | undefined): void {
  const prefs = parsePrefer(value);
  for (const name of prefs.keys()) {
    assert.ok(name.length > 0 && name === name.trim().toLowerCase(), `name ${JSON.stringify(name)}`);
    assert.ok(!name.includes(',') && !name.includes(';') && !name.includes('='), `name ${JSON.stringify(name)}`);
  }
  assert.equal(prefersRespondAsync(value), prefs.has('respond-async'));
  assert.equal(prefersNoWait(value), prefs.get('wait') === '0');
}

/** Link: never throws; null or links whose relation types are lower-case, non-empty words. */
export function linkProperty(value: string | string[] | undefined): void {
  const links = parseLinks(value);
  if (value === undefined) assert.deepEqual(links, []);
  if (links === null) return;
  for (const link of links) {
    assert.equal(typeof link.uri, 'string');
    for (const rel of link.rels) assert.ok(rel.length > 0 && rel === rel.toLowerCase() && !/[ \t]/.test(rel), `rel ${JSON.stringify(rel)}`);
    const token = resourceToken(link.uri, 'r');
    if (token !== null) assert.match(token, /^[A-Za-z0-9_-]+$/);
  }
  for (const rel of ['urn:ietf:params:push:receipt', 'urn:ietf:params:push:set']) {
    const targets = targetsOf(links, rel);
    assert.equal(new Set(targets).size, targets.length, 'targets are distinct');
  }
}

// ---------------------------------------------------------------------------------------------
// VAPID through the push endpoint, in process (the real PushEndpoint, a stub pipeline)

export interface VapidEndpointFixture {
  /** Runs one push with these headers to the open (v1) or the restricted-to-KEY_A (v2) subscription. */
  push(headers: IncomingHttpHeaders, restricted: boolean): Promise<{ status: number } | PushError>;
  pool: readonly SignedToken[];
}

export function vapidEndpointFixture(): VapidEndpointFixture {
  const capabilities = new Capabilities(new Sealer([randomBytes(32)]));
  const pipeline = { accept: async () => ({ outcome: 'stored', message: { id: 1 } }) } as unknown as Pipeline;
  const endpoint = new PushEndpoint({
    capabilities,
    pipeline,
    vapid: new VapidVerifier({ audience: AUDIENCE, now: () => NOW }),
    publicUrl: AUDIENCE,
    maxBodyBytes: 4096,
    maxTtl: 2_592_000,
    log: pino({ level: 'silent' }),
  });
  const uaid = randomBytes(16);
  const chid = randomBytes(16);
  const open = capabilities.pushToken({ uaid, chid, keyHash: null });
  const restricted = capabilities.pushToken({ uaid, chid, keyHash: publicKeyHash(KEY_A.publicKey) });
  return {
    pool: signedTokens(AUDIENCE, NOW),
    async push(headers, isRestricted) {
      const req = Object.assign(Readable.from([]), { headers, method: 'POST', url: '/' }) as unknown as AnyRequest;
      let status = 0;
      const res = { headersSent: false, writeHead: (s: number) => (status = s), setHeader: () => {}, end: () => {} } as unknown as AnyResponse;
      try {
        await endpoint.push(req, res, isRestricted ? 'v2' : 'v1', isRestricted ? restricted : open);
        return { status };
      } catch (err) {
        if (err instanceof PushError) return err;
        throw err;
      }
    },
  };
}

const pointOf = (key: string) => Buffer.from(key.replace(/=+$/, ''), 'base64url');

/**
 * Only 401/403 errno 109; 403 only on the restricted subscription; accepted only when the
 * token is one of the acceptable signed ones with its signature bytes unchanged and its
 * signer's key; a good unedited token with its key is accepted (403 on v2 for another key).
 */
export async function vapidEndpointProperty(f: VapidEndpointFixture, c: VapidCase, restricted: boolean): Promise<void> {
  const headers: IncomingHttpHeaders = { ttl: '60' };
  if (c.authorization !== undefined) headers.authorization = c.authorization;
  if (c.cryptoKey !== undefined) headers['crypto-key'] = c.cryptoKey;
  const result = await f.push(headers, restricted);
  if (result instanceof PushError) {
    assert.ok(result.status === 401 || (result.status === 403 && restricted), `status ${result.status}: ${result.message}`);
    assert.equal(result.errno, 109, result.message);
    if (c.mustAccept) {
      assert.ok(restricted && c.mustAccept !== KEY_A && result.status === 403, `a good token was refused: ${result.message}`);
    }
    return;
  }
  assert.equal(result.status, 201);
  if (c.authorization === undefined) return assert.ok(!restricted, 'a restricted subscription needs VAPID');
  const creds = parseVapidAuthorization(c.authorization, c.cryptoKey);
  assert.ok(creds !== null && !('error' in creds), 'accepted credentials parse');
  const [header, payload, signature] = creds.token.split('.') as [string, string, string];
  const signed = f.pool.filter((t) => t.acceptable && t.token.startsWith(`${header}.${payload}.`));
  assert.ok(signed.length > 0, `accepted a token that was not signed as it is: ${creds.token}`);
  const sigBytes = Buffer.from(signature, 'base64url');
  const original = signed.find((t) => sigBytes.equals(Buffer.from(t.token.split('.')[2]!, 'base64url')));
  assert.ok(original, `accepted a changed signature: ${creds.token}`);
  assert.ok(pointOf(creds.publicKey).equals(pointOf(original.signer.publicKey)), 'accepted with another key than the signer');
  if (restricted) assert.equal(original.signer, KEY_A, 'a restricted subscription accepts only its own key');
}

// ---------------------------------------------------------------------------------------------
// The receipt request of a push (RFC 8030 5.1)

export interface ReceiptFixture {
  capabilities: Capabilities;
  /** Receipt subscription URLs of this "service" with their ids. */
  receipts: { url: string; id: Buffer }[];
}

export function receiptFixture(): ReceiptFixture {
  const capabilities = new Capabilities(new Sealer([randomBytes(32)]));
  const receipts = [0, 1].map(() => {
    const id = randomBytes(16);
    return { url: `${AUDIENCE}/r/${capabilities.receiptsToken(id)}`, id };
  });
  return { capabilities, receipts };
}

/** parseReceiptRequest: only 400 errno 121; a named receipt subscription is one of ours, by id. */
export function receiptRequestProperty(f: ReceiptFixture, prefer: string | undefined, link: string | string[] | undefined): void {
  const headers: IncomingHttpHeaders = {};
  if (prefer !== undefined) headers.prefer = prefer;
  if (link !== undefined) headers.link = link as string;
  const r = onlyPushErrors(() => parseReceiptRequest(headers, f.capabilities), 400, [121]);
  if (r instanceof PushError) return;
  if (prefer === undefined && link === undefined) return assert.equal(r, null);
  if (r === null) {
    assert.ok(!prefersRespondAsync(prefer), 'respond-async asks for a receipt');
    return;
  }
  assert.equal(r.respondAsync, prefersRespondAsync(prefer));
  assert.equal(r.target.id.length, 16);
  if (!r.target.create) {
    assert.ok(f.receipts.some((x) => x.id.equals(r.target.id)), 'a named receipt subscription is one this service made');
  } else {
    assert.ok(r.respondAsync, 'a new receipt subscription only with respond-async');
  }
}
