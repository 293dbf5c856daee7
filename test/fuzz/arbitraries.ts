// Arbitraries shaped like the real inputs of webpushd's doors: valid values and mutations of
// them (wrong types, cut or doubled parts, case, whitespace, multibyte and huge strings), not
// only random strings. Shared by the CI fuzz tests (test/fuzz/*.test.ts) and the long run
// (bench/fuzz.ts).
import { createECDH, createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { p256Jwk } from '../../src/common/p256.ts';

// ---------------------------------------------------------------------------------------------
// Strings

/** Characters a header value may hold on the wire (what node:http lets a client send). */
const HEADER_CHARS = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
  { weight: 1, arbitrary: fc.constant(0x09) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
).map((c) => String.fromCharCode(c));

/** A random header value of bytes node:http can send (printable ASCII, tab, Latin-1). */
export const headerNoise = fc.string({ unit: HEADER_CHARS, maxLength: 40 });

/** Strings that have broken parsers before: multibyte, lone surrogates, prototype names, long runs. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', '\udfff', 'null', '__proto__', 'constructor', 'toString', '\u2028', 'Ω≈ç√'),
  fc
    .tuple(fc.constantFrom('€', '𝄞', '💩', 'é', 'a', '"', '\\', '\u0000', '\ud800'), fc.integer({ min: 1, max: 200 }))
    .map(([c, n]) => c.repeat(n)),
);

/** Strings around and beyond the 64 KiB frame limit, mostly multibyte. */
export const hugeString: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom('€', 'a', '💩', 'é'), fc.integer({ min: 16_000, max: 70_000 }))
  .map(([c, n]) => c.repeat(Math.ceil(n / Buffer.byteLength(c))));

/** Any JSON value, or an odd string. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  nastyString,
  fc.constantFrom(null, true, 0, -1, 1.5, 1e308, [], {}, [1], { a: 1 }, '', '0'),
);

// ---------------------------------------------------------------------------------------------
// Generic mutations

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export type StringEdit =
  | { op: 'replace'; at: number; with: string }
  | { op: 'delete'; at: number; count: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'truncate'; at: number }
  | { op: 'double' }
  | { op: 'case' }
  | { op: 'pad'; left: string; right: string };

/** Edits of a string at positions given as fractions of its length (so they shrink well). */
export const stringEdit: fc.Arbitrary<StringEdit> = fc.oneof(
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), with: fc.oneof(fc.constantFrom(...B64URL, '.', '=', '+', '/', ' ', '"', ',', ';', '€'), nastyString) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom('.', '=', ',', ';', ' ', '"', 'A', '\t'), headerNoise) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.constant({ op: 'double' as const }),
  fc.constant({ op: 'case' as const }),
  fc.record({ op: fc.constant('pad' as const), left: fc.constantFrom('', ' ', '\t', '  '), right: fc.constantFrom('', ' ', '\t', '=', '==') }),
);

export function applyEdit(s: string, e: StringEdit): string {
  const at = (n: number) => (s.length === 0 ? 0 : n % (s.length + 1));
  switch (e.op) {
    case 'replace': {
      const i = s.length === 0 ? 0 : e.at % s.length;
      return s.slice(0, i) + e.with + s.slice(i + 1);
    }
    case 'delete':
      return s.slice(0, at(e.at)) + s.slice(at(e.at) + e.count);
    case 'insert':
      return s.slice(0, at(e.at)) + e.text + s.slice(at(e.at));
    case 'truncate':
      return s.slice(0, at(e.at));
    case 'double':
      return s + s;
    case 'case':
      return s === s.toLowerCase() ? s.toUpperCase() : s.toLowerCase();
    case 'pad':
      return e.left + s + e.right;
  }
}

/** `base` itself (half the time) or 1 to 3 edits of it. */
export function mutated(base: fc.Arbitrary<string>, maxEdits = 3): fc.Arbitrary<string> {
  return fc.oneof(
    base,
    fc.tuple(base, fc.array(stringEdit, { minLength: 1, maxLength: maxEdits })).map(([s, edits]) => edits.reduce(applyEdit, s)),
  );
}

/** Keeps only characters node:http lets a client put in a header value. */
export function headerSafe(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += ch.length === 1 && (c === 9 || (c >= 0x20 && c <= 0x7e) || (c >= 0x80 && c <= 0xff)) ? ch : '?';
  }
  return out;
}

const b64u = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');
const bytesOf = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b));

// ---------------------------------------------------------------------------------------------
// P-256 keys (deterministic, so a seed replays the same inputs)

export interface FuzzKeys {
  publicKey: string;
  privateKey: string;
  key: KeyObject;
}

function fixedKeys(label: string): FuzzKeys {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(createHash('sha256').update(`webpushd fuzz ${label}`).digest());
  const point = ecdh.getPublicKey();
  const privateKey = ecdh.getPrivateKey().toString('base64url');
  const key = createPrivateKey({ key: { ...p256Jwk(point), d: privateKey }, format: 'jwk' });
  return { publicKey: point.toString('base64url'), privateKey, key };
}

export const KEY_A = fixedKeys('A');
export const KEY_B = fixedKeys('B');

/** A P-256 key as a `k=`/`key` value: the right one, other ones, and broken ones. */
export const vapidKeyText: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(KEY_A.publicKey, KEY_B.publicKey) },
  { weight: 1, arbitrary: fc.constantFrom(`${KEY_A.publicKey}=`, Buffer.from(KEY_A.publicKey, 'base64url').toString('base64')) },
  {
    weight: 3,
    arbitrary: mutated(fc.constantFrom(KEY_A.publicKey, KEY_B.publicKey), 2),
  },
  {
    weight: 1,
    // compressed, wrong prefix, wrong length, off the curve
    arbitrary: fc.oneof(
      bytesOf(32, 32).map((x) => b64u(Buffer.concat([Buffer.of(2), x]))),
      bytesOf(64, 64).map((xy) => b64u(Buffer.concat([Buffer.of(4), xy]))),
      bytesOf(0, 80).map(b64u),
    ),
  },
);

// ---------------------------------------------------------------------------------------------
// WebSocket client messages (docs/PROTOCOL.md)

const hex32 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('hex'));
export const channelId = fc.uuid();
const broadcastsValue = fc.dictionary(fc.oneof(fc.constantFrom('remote-settings/monitor_changes', 'x'), fc.string({ maxLength: 10 })), fc.string({ maxLength: 12 }), { maxKeys: 3 });
const version = fc.oneof(fc.nat().map((n) => n.toString(36)), fc.constantFrom('e-0-1', 'e1', '0'), fc.string({ minLength: 1, maxLength: 20 }));
const ackCode = fc.constantFrom(100, 101, 102, 0, 999);
const messageTypeName = (name: string) => fc.oneof({ weight: 5, arbitrary: fc.constant(name) }, { weight: 1, arbitrary: fc.mixedCase(fc.constant(name)) });

type Frame = Record<string, unknown>;

/** A well-formed client frame of every messageType. */
export const validClientFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record(
    { messageType: messageTypeName('hello'), uaid: fc.oneof(hex32, fc.uuid(), fc.constant('')), broadcasts: broadcastsValue, use_webpush: fc.constant(true) },
    { requiredKeys: ['messageType'] },
  ),
  fc.record({ messageType: messageTypeName('register'), channelID: channelId, key: vapidKeyText }, { requiredKeys: ['messageType', 'channelID'] }),
  fc.record({ messageType: messageTypeName('unregister'), channelID: channelId, code: fc.integer({ min: 0, max: 300 }) }, { requiredKeys: ['messageType', 'channelID'] }),
  fc.record({
    messageType: messageTypeName('ack'),
    updates: fc.array(fc.record({ channelID: channelId, version, code: ackCode }, { requiredKeys: ['channelID', 'version'] }), { maxLength: 4 }),
  }),
  fc.record({ messageType: messageTypeName('nack'), version, code: fc.integer({ min: 0, max: 400 }) }, { requiredKeys: ['messageType', 'version'] }),
  fc.record({ messageType: messageTypeName('broadcast_subscribe'), broadcasts: broadcastsValue }),
  fc.constantFrom<Frame>({}, { messageType: 'ping' }),
);

type FrameEdit =
  | { op: 'set'; field: string; value: unknown }
  | { op: 'delete'; field: string }
  | { op: 'messageType'; value: unknown }
  | { op: 'nested'; value: unknown };

const FIELDS = ['messageType', 'uaid', 'channelID', 'key', 'code', 'version', 'updates', 'broadcasts', 'use_webpush', 'status', '__proto__'];

const frameEdit: fc.Arbitrary<FrameEdit> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), field: fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 8 })), value: fc.oneof(wrongValue, hugeString.map((s) => s.slice(0, 300))) }),
  fc.record({ op: fc.constant('delete' as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({
    op: fc.constant('messageType' as const),
    value: fc.oneof(
      fc.constantFrom('€'.repeat(41), '€'.repeat(60), '💩'.repeat(40), 'HELLO', 'Register', 'notification', 'broadcast', 'hello ', ''),
      nastyString,
      wrongValue,
    ),
  }),
  fc.record({ op: fc.constant('nested' as const), value: fc.oneof(wrongValue, fc.array(wrongValue, { maxLength: 3 })) }),
);

function applyFrameEdit(frame: Frame, e: FrameEdit): Frame {
  const out: Frame = { ...frame };
  switch (e.op) {
    case 'set':
      Object.defineProperty(out, e.field, { value: e.value, enumerable: true, configurable: true, writable: true });
      return out;
    case 'delete':
      delete out[e.field];
      return out;
    case 'messageType':
      out.messageType = e.value;
      return out;
    case 'nested': {
      // wrong types inside arrays and objects: updates entries, broadcasts values
      if (Array.isArray(out.updates)) out.updates = [...(out.updates as unknown[]), e.value];
      else if (typeof out.broadcasts === 'object' && out.broadcasts !== null) out.broadcasts = { ...(out.broadcasts as Frame), k: e.value };
      else out.updates = [e.value];
      return out;
    }
  }
}

/** A client frame as a JS value: valid, or a valid one with fields of wrong types, missing or extra. */
export const clientFrameValue: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 2, arbitrary: validClientFrame },
  { weight: 5, arbitrary: fc.tuple(validClientFrame, fc.array(frameEdit, { minLength: 1, maxLength: 3 })).map(([f, edits]) => edits.reduce(applyFrameEdit, f)) },
);

/** The text of a client frame: JSON of a frame, cut or edited JSON, other JSON values, noise. */
export const clientFrameText: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: clientFrameValue.map((f) => JSON.stringify(f)) },
  { weight: 2, arbitrary: fc.tuple(clientFrameValue.map((f) => JSON.stringify(f)), fc.array(stringEdit, { minLength: 1, maxLength: 2 })).map(([t, edits]) => edits.reduce(applyEdit, t)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null') },
  { weight: 1, arbitrary: fc.oneof(nastyString, fc.constantFrom('', '{', '[]', 'null', '{"messageType":', '{}{}', '{"messageType":"hello"}x')) },
  { weight: 1, arbitrary: fc.oneof(fc.constantFrom('hello', '€', '"', 'a'), nastyString).map((s) => JSON.stringify({ messageType: s.repeat(Math.ceil(45 / Math.max(1, s.length))) })) },
);

// ---------------------------------------------------------------------------------------------
// WebSocket frames on the wire (RFC 6455 5.2), self-delimiting: every frame the server reads
// ends where the next begins, so a sentinel after them always gets an answer or a close.

export type WireFrame =
  | { kind: 'frame'; fin: boolean; rsv: number; opcode: number; masked: boolean; length: 'min' | '16' | '64'; payload: Buffer }
  /** A header announcing more than 64 KiB, without the payload: the server must refuse it at once. */
  | { kind: 'oversize'; opcode: number; declared: bigint };

const textFrame = (payload: Buffer): WireFrame & { kind: 'frame' } => ({ kind: 'frame', fin: true, rsv: 0, opcode: 1, masked: true, length: 'min', payload });

export const wireFrame: fc.Arbitrary<WireFrame> = fc.oneof(
  { weight: 12, arbitrary: clientFrameText.map((t) => textFrame(Buffer.from(t))) },
  // valid frames between the broken ones, so that cases get past the first frame
  { weight: 10, arbitrary: validClientFrame.map((f) => textFrame(Buffer.from(JSON.stringify(f)))) },
  { weight: 1, arbitrary: hugeString.map((s) => textFrame(Buffer.from(JSON.stringify({ messageType: 'register', channelID: s })))) },
  { weight: 1, arbitrary: fc.oneof(bytesOf(0, 40), clientFrameText.map((t) => Buffer.from(t))).map((payload): WireFrame => ({ ...textFrame(payload), opcode: 2 })) },
  // text that is not UTF-8
  { weight: 1, arbitrary: bytesOf(0, 30).map((b) => textFrame(Buffer.concat([Buffer.from('{"messageType":"'), b, Buffer.of(0xff, 0xfe), Buffer.from('"}')]))) },
  // control frames: ping and pong with a payload, close with a code and a reason
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('frame' as const),
      fin: fc.boolean(),
      rsv: fc.constant(0),
      opcode: fc.constantFrom(8, 9, 10),
      masked: fc.constant(true),
      length: fc.constant('min' as const),
      payload: fc.oneof(
        bytesOf(0, 130),
        fc.tuple(fc.constantFrom(1000, 1001, 1002, 1005, 1006, 999, 3000, 4774, 5000), fc.string({ maxLength: 40 })).map(([code, reason]) => {
          const b = Buffer.alloc(2);
          b.writeUInt16BE(code);
          return Buffer.concat([b, Buffer.from(reason)]);
        }),
      ),
    }),
  },
  // header bits: FIN, RSV, opcodes (reserved ones too), no mask, non-minimal lengths
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('frame' as const),
      fin: fc.boolean(),
      rsv: fc.integer({ min: 0, max: 7 }),
      opcode: fc.integer({ min: 0, max: 15 }),
      masked: fc.boolean(),
      length: fc.constantFrom('min' as const, '16' as const, '64' as const),
      payload: fc.oneof(bytesOf(0, 20), clientFrameText.map((t) => Buffer.from(t.slice(0, 200)))),
    }),
  },
  // a message in fragments: a text frame without FIN (a continuation follows in the sequence or not)
  { weight: 1, arbitrary: clientFrameText.map((t): WireFrame => ({ ...textFrame(Buffer.from(t)), fin: false })) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((t): WireFrame => ({ ...textFrame(Buffer.from(t)), opcode: 0 })) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('oversize' as const),
      opcode: fc.constantFrom(1, 2),
      declared: fc.oneof(fc.bigInt({ min: 65_537n, max: 1n << 40n }), fc.constantFrom(1n << 53n, 1n << 63n, (1n << 64n) - 1n)),
    }),
  },
);

export interface WebSocketCase {
  /** Sent first: a valid hello (so the frames after it meet an identified connection). */
  hello: boolean;
  /** The subprotocol offered. */
  protocol: string | null;
  frames: WireFrame[];
}

/** A frame for failure reports: its header fields and the start of its payload as text. */
export function describeFrame(f: WireFrame): string {
  if (f.kind === 'oversize') return `oversize(opcode ${f.opcode}, ${f.declared} bytes announced)`;
  const text = f.payload.toString();
  const shown = text.length > 120 ? `${JSON.stringify(text.slice(0, 120))}… (${f.payload.length} bytes)` : JSON.stringify(text);
  return `frame(fin ${f.fin}, rsv ${f.rsv}, opcode ${f.opcode}, masked ${f.masked}, length ${f.length}, ${shown})`;
}

export const webSocketCase: fc.Arbitrary<WebSocketCase> = fc
  .record({
    hello: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    protocol: fc.constantFrom('push-notification', null, 'other', 'push-notification, chat'),
    frames: fc.array(wireFrame, { minLength: 1, maxLength: 6 }),
  })
  .map((c) =>
    Object.assign(c, {
      [fc.toStringMethod]: () => `{hello: ${c.hello}, protocol: ${JSON.stringify(c.protocol)}, frames: [${c.frames.map(describeFrame).join(', ')}]}`,
    }),
  );

// ---------------------------------------------------------------------------------------------
// Push request headers and bodies (docs/ERRORS.md)

export type Headers = Record<string, string | string[]>;

export const ttlValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(fc.integer({ min: 0, max: 86_400 }), fc.nat()).map(String) },
  {
    weight: 3,
    arbitrary: mutated(fc.constantFrom('0', '60', '2592000', '99999999999', '00060'), 2),
  },
  { weight: 1, arbitrary: fc.constantFrom('-1', '1.5', '1e3', '0x10', '', ' ', ' 60 ', '+5', '٣', '6 0', 'Infinity', 'NaN', '9'.repeat(40)) },
  { weight: 1, arbitrary: headerNoise },
);

const VALID_TOPIC = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/);
export const topicValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: VALID_TOPIC },
  { weight: 3, arbitrary: mutated(VALID_TOPIC, 2) },
  { weight: 1, arbitrary: fc.constantFrom('', 'a'.repeat(33), 'a b', 'topic!', 'é', 'a,b') },
);

const URGENCY_WORDS = ['very-low', 'low', 'normal', 'high'];
export const urgencyValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...URGENCY_WORDS) },
  { weight: 3, arbitrary: mutated(fc.constantFrom(...URGENCY_WORDS), 2) },
  { weight: 1, arbitrary: fc.constantFrom('very low', 'verylow', 'urgent', '', 'high, low', 'HIGH') },
);

export const contentEncodingValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('aes128gcm', 'aesgcm') },
  { weight: 2, arbitrary: mutated(fc.constantFrom('aes128gcm', 'aesgcm'), 2) },
  { weight: 1, arbitrary: fc.constantFrom('gzip', 'aesgcm128', 'aes128gcm, aesgcm', 'identity', '') },
);

const b64Bytes = (n: number) => bytesOf(n, n).map(b64u);
const paramValue = (sizes: number[]) =>
  fc.oneof(
    fc.constantFrom(...sizes).chain(b64Bytes),
    fc.constantFrom(...sizes).chain((n) => bytesOf(n, n).map((b) => b.toString('base64'))),
    fc.constantFrom(...sizes).chain(b64Bytes).map((v) => `"${v}"`),
  );

export const encryptionValue: fc.Arbitrary<string> = mutated(
  fc.oneof(
    paramValue([16, 16, 15, 17, 0]).map((s) => `salt=${s}`),
    fc.tuple(paramValue([16]), fc.constantFrom('rs=4096', 'keyid=p256dh', 'rs=0', '')).map(([s, extra]) => `salt=${s}${extra ? `;${extra}` : ''}`),
    fc.tuple(paramValue([16]), paramValue([16])).map(([a, b]) => `salt=${a}, salt=${b}`),
    fc.constantFrom('rs=4096', 'salt', 'salt=', ';;', '='),
  ),
  2,
);

const dhPoint = bytesOf(64, 64).map((xy) => b64u(Buffer.concat([Buffer.of(4), xy])));
export const cryptoKeyValue: fc.Arbitrary<string> = mutated(
  fc.oneof(
    dhPoint.map((d) => `dh=${d}`),
    fc.tuple(dhPoint, vapidKeyText).map(([d, k]) => `dh=${d};p256ecdsa=${k}`),
    fc.tuple(dhPoint, vapidKeyText).map(([d, k]) => `keyid=p256dh;dh=${d}, p256ecdsa=${k}`),
    vapidKeyText.map((k) => `p256ecdsa=${k}`),
    paramValue([65, 64, 33, 0]).map((s) => `dh=${s}`),
    fc.constantFrom('dh', 'dh=', ';', 'p256ecdsa=', ','),
  ),
  2,
);

export interface BodySpec {
  bytes: Buffer;
}

/** An aes128gcm body (RFC 8188 header: salt, rs, idlen, keyid) with its fields varied. */
const aes128gcmBody = fc
  .record({
    salt: bytesOf(16, 16),
    rs: fc.oneof(fc.constantFrom(4096, 18, 17, 0, 0xffffffff), fc.integer({ min: 0, max: 5000 })),
    idlen: fc.oneof({ weight: 4, arbitrary: fc.constant(65) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    prefix: fc.oneof({ weight: 4, arbitrary: fc.constant(4) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
    key: bytesOf(64, 64),
    record: fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constantFrom(16, 17, 4096 - 86, 4096 - 85)),
  })
  .map(({ salt, rs, idlen, prefix, key, record }) => {
    const head = Buffer.alloc(21);
    salt.copy(head);
    head.writeUInt32BE(rs, 16);
    head[20] = idlen;
    return Buffer.concat([head, Buffer.of(prefix), key, Buffer.alloc(record, 0xab)]);
  });

export const pushBody: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 5, arbitrary: aes128gcmBody },
  { weight: 2, arbitrary: bytesOf(0, 100) },
  { weight: 1, arbitrary: aes128gcmBody.map((b) => b.subarray(0, Math.max(0, b.length - 70))) },
  // around --max-message-size (4096)
  { weight: 1, arbitrary: fc.integer({ min: 4090, max: 4200 }).map((n) => Buffer.alloc(n, 1)) },
);

// ---------------------------------------------------------------------------------------------
// VAPID (RFC 8292): tokens signed by fixed keys with claims and headers varied, then edited

export const AUDIENCE = 'https://push.example.net';
/** The clock of the in-process verifier; live tests sign against real time instead. */
export const NOW = 1_800_000_000;

function signJwt(header: unknown, claims: unknown, key: KeyObject): string {
  const signed = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${signed}.${sign('sha256', Buffer.from(signed), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

export interface SignedToken {
  token: string;
  /** The key that signed it (its k=). */
  signer: FuzzKeys;
  /** Claims and header a verifier must accept: aud, exp within 24 h, ES256. */
  acceptable: boolean;
}

const GOOD_HEADER = { typ: 'JWT', alg: 'ES256' };

/**
 * Tokens for `audience` at `now`: one good one per key, and ones with each claim or header
 * field wrong. Signed once; the arbitraries pick and edit them.
 */
export function signedTokens(audience: string, now: number): SignedToken[] {
  const claims = { aud: audience, exp: now + 3600, sub: 'mailto:fuzz@example.org' };
  const out: SignedToken[] = [];
  for (const signer of [KEY_A, KEY_B]) {
    out.push({ token: signJwt(GOOD_HEADER, claims, signer.key), signer, acceptable: true });
    out.push({ token: signJwt({ alg: 'ES256' }, { aud: `${audience}/`, exp: now + 86_000 }, signer.key), signer, acceptable: true });
    const wrong: [unknown, unknown][] = [
      [GOOD_HEADER, { ...claims, aud: 'https://other.example' }],
      [GOOD_HEADER, { ...claims, aud: undefined }],
      [GOOD_HEADER, { ...claims, aud: 42 }],
      [GOOD_HEADER, { ...claims, exp: now - 1 }],
      [GOOD_HEADER, { ...claims, exp: now }],
      [GOOD_HEADER, { ...claims, exp: now + 86_401 }],
      [GOOD_HEADER, { ...claims, exp: String(now + 60) }],
      [GOOD_HEADER, { ...claims, exp: undefined }],
      [GOOD_HEADER, { ...claims, sub: 7 }],
      [{ typ: 'JWT', alg: 'none' }, claims],
      [{ typ: 'JWT', alg: 'ES384' }, claims],
      [{ typ: 'JWT' }, claims],
      [[1, 2], claims],
      [GOOD_HEADER, [claims]],
      [GOOD_HEADER, 'claims'],
    ];
    for (const [header, c] of wrong) out.push({ token: signJwt(header, c, signer.key), signer, acceptable: false });
  }
  return out;
}

export type TokenEdit =
  | { op: 'string'; edit: StringEdit }
  | { op: 'part'; part: number; edit: StringEdit }
  | { op: 'swapSignature'; from: number }
  | { op: 'dropPart'; part: number }
  | { op: 'extraPart' };

const tokenEdit: fc.Arbitrary<TokenEdit> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ op: fc.constant('string' as const), edit: stringEdit }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('part' as const), part: fc.integer({ min: 0, max: 2 }), edit: stringEdit }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('swapSignature' as const), from: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dropPart' as const), part: fc.integer({ min: 0, max: 2 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: 'extraPart' as const }) },
);

export function applyTokenEdit(token: string, e: TokenEdit, pool: readonly SignedToken[]): string {
  const parts = token.split('.');
  switch (e.op) {
    case 'string':
      return applyEdit(token, e.edit);
    case 'part':
      parts[e.part % parts.length] = applyEdit(parts[e.part % parts.length] ?? '', e.edit);
      return parts.join('.');
    case 'swapSignature':
      parts[2] = pool[e.from % pool.length]!.token.split('.')[2]!;
      return parts.join('.');
    case 'dropPart':
      parts.splice(e.part % parts.length, 1);
      return parts.join('.');
    case 'extraPart':
      return `${token}.`;
  }
}

export interface VapidCase {
  authorization: string | undefined;
  cryptoKey: string | undefined;
  /** A good token, unedited, with its own key in a correct spelling: a verifier must accept it (signed by this key). */
  mustAccept: FuzzKeys | null;
}

/**
 * Authorization (and Crypto-Key) headers: `vapid t=…, k=…` and legacy `WebPush <jwt>` with
 * `Crypto-Key: p256ecdsa=…`, from a pool of signed tokens, edited and respelled.
 */
export function vapidCase(pool: readonly SignedToken[]): fc.Arbitrary<VapidCase> {
  const good = pool.flatMap((t, i) => (t.acceptable ? [i] : []));
  const token = fc.record({
    // half of them around a good token: most edits of a bad one are refused for two reasons
    index: fc.oneof(fc.constantFrom(...good), fc.nat({ max: pool.length - 1 })),
    edits: fc.oneof({ weight: 2, arbitrary: fc.constant<TokenEdit[]>([]) }, { weight: 3, arbitrary: fc.array(tokenEdit, { minLength: 1, maxLength: 2 }) }),
  });
  const key = fc.oneof(
    { weight: 3, arbitrary: fc.constant<string | null>(null) }, // the signer's own key
    { weight: 2, arbitrary: vapidKeyText },
  );
  return fc
    .record({
      token,
      key,
      form: fc.constantFrom('vapid', 'vapid-quoted', 'vapid-swapped', 'vapid-padded', 'webpush', 'webpush-dh', 'none', 'raw'),
      scheme: fc.oneof({ weight: 4, arbitrary: fc.constant<string | null>(null) }, { weight: 1, arbitrary: fc.constantFrom('Vapid', 'VAPID', 'WEBPUSH', 'Bearer', '', 'vapid\t') }),
      edit: fc.oneof({ weight: 4, arbitrary: fc.constant<StringEdit[]>([]) }, { weight: 1, arbitrary: fc.array(stringEdit, { minLength: 1, maxLength: 2 }) }),
      extra: fc.oneof({ weight: 4, arbitrary: fc.constant('') }, { weight: 1, arbitrary: fc.constantFrom(', t=x', ', k=', ',', ', x=1', ' t', ', T=abc') }),
      noise: headerNoise,
    })
    .map(({ token: t, key: k, form, scheme, edit, extra, noise }) => {
      const chosen = pool[t.index]!;
      const jwt = t.edits.reduce((s, e) => applyTokenEdit(s, e, pool), chosen.token);
      const kText = k ?? chosen.signer.publicKey;
      let authorization: string | undefined;
      let cryptoKey: string | undefined;
      const vapid = scheme ?? 'vapid';
      const webpush = scheme ?? 'WebPush';
      switch (form) {
        case 'vapid':
          authorization = `${vapid} t=${jwt}, k=${kText}${extra}`;
          break;
        case 'vapid-quoted':
          authorization = `${vapid} t="${jwt}", k="${kText}"${extra}`;
          break;
        case 'vapid-swapped':
          authorization = `${vapid} k=${kText},t=${jwt}${extra}`;
          break;
        case 'vapid-padded':
          authorization = `${vapid}   t = ${jwt} ,  k = ${kText}==${extra}`;
          break;
        case 'webpush':
          authorization = `${webpush} ${jwt}${extra}`;
          cryptoKey = `p256ecdsa=${kText}`;
          break;
        case 'webpush-dh':
          authorization = `${webpush} ${jwt}`;
          cryptoKey = `dh=BNoRDbb84JGm8g5Z5CFxurSqsXWJ11ItfXEWYVLE85Y7CYkDjXsIEc4aqxYaQ1G8BJF7GuJzcx3W5fUrGM7zQ1o;p256ecdsa=${kText}${extra}`;
          break;
        case 'none':
          authorization = undefined;
          break;
        case 'raw':
          authorization = noise;
          cryptoKey = `p256ecdsa=${kText}`;
          break;
      }
      const intact = chosen.acceptable && t.edits.length === 0 && k === null && scheme === null && edit.length === 0 && extra === '' && form !== 'none' && form !== 'raw';
      if (authorization !== undefined) authorization = headerSafe(edit.reduce(applyEdit, authorization));
      return { authorization, cryptoKey: cryptoKey === undefined ? undefined : headerSafe(cryptoKey), mustAccept: intact ? chosen.signer : null };
    });
}

// ---------------------------------------------------------------------------------------------
// Push requests (the headers the endpoint reads, any of them missing, doubled or edited)

export interface PushHeadersCase {
  headers: Headers;
}

const optional = <T>(a: fc.Arbitrary<T>, weight = 1) => fc.option(a, { nil: undefined, freq: weight });
const repeated = (a: fc.Arbitrary<string>) => fc.oneof({ weight: 6, arbitrary: a }, { weight: 1, arbitrary: fc.array(a, { minLength: 2, maxLength: 3 }) });

/** The headers of a push request; each may be missing; a few repeated (node joins or lists them). */
export function pushHeaders(vapid: fc.Arbitrary<VapidCase> | null, extra: fc.Arbitrary<Headers> = fc.constant({})): fc.Arbitrary<Headers> {
  return fc
    .record({
      ttl: optional(ttlValue, 8),
      urgency: optional(repeated(urgencyValue), 2),
      topic: optional(topicValue, 2),
      'content-encoding': optional(contentEncodingValue, 1),
      encryption: optional(encryptionValue, 2),
      vapid: vapid ?? fc.constant<VapidCase>({ authorization: undefined, cryptoKey: undefined, mustAccept: null }),
      cryptoKey: optional(cryptoKeyValue, 2),
      extra,
    })
    .map(({ vapid: v, cryptoKey, extra: more, ...rest }) => {
      const h: Headers = {};
      for (const [name, value] of Object.entries({ ...rest, ...more })) if (value !== undefined) h[name] = Array.isArray(value) ? value.map(headerSafe) : headerSafe(value);
      if (v.authorization !== undefined) h.authorization = v.authorization;
      const keys = [v.cryptoKey, cryptoKey].filter((k): k is string => k !== undefined);
      if (keys.length > 0) h['crypto-key'] = headerSafe(keys.join(', '));
      return h;
    });
}

// ---------------------------------------------------------------------------------------------
// RFC 8030 headers: Prefer (RFC 7240) and Link (RFC 8288)

export const preferValue: fc.Arbitrary<string> = mutated(
  fc
    .array(
      fc.oneof(
        fc.constantFrom('respond-async', 'wait=0', 'wait=10', 'wait="0"', 'return=minimal', 'handling=lenient', 'Respond-Async', 'wait = 0', 'respond-async; x=y'),
        fc.string({ maxLength: 10 }),
      ),
      { minLength: 1, maxLength: 3 },
    )
    .map((prefs) => prefs.join(', ')),
  2,
);

export const REL_PUSH = 'urn:ietf:params:push';
export const REL_SET = 'urn:ietf:params:push:set';
export const REL_RECEIPT = 'urn:ietf:params:push:receipt';

const relValue = fc.oneof(
  fc.constantFrom(REL_PUSH, REL_SET, REL_RECEIPT, `next ${REL_RECEIPT}`, REL_RECEIPT.toUpperCase(), 'next', ''),
  mutated(fc.constantFrom(REL_SET, REL_RECEIPT), 1),
);

/** One link-value around a target from `targets`, spelled many ways. */
function linkValue(targets: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return fc
    .record({
      uri: targets,
      rel: relValue,
      form: fc.constantFrom('quoted', 'bare', 'spaced', 'extra', 'upper', 'empty-param', 'title'),
    })
    .map(({ uri, rel, form }) => {
      switch (form) {
        case 'quoted':
          return `<${uri}>; rel="${rel}"`;
        case 'bare':
          return `<${uri}>;rel=${rel}`;
        case 'spaced':
          return ` < ${uri} > ;  rel = "${rel}" `;
        case 'extra':
          return `<${uri}>; anchor="x"; rel="${rel}"; rel="next"`;
        case 'upper':
          return `<${uri}>; REL="${rel}"`;
        case 'empty-param':
          return `<${uri}>;; rel="${rel}";`;
        case 'title':
          return `<${uri}>; title="a, b; \\"c\\""; rel="${rel}"`;
      }
    });
}

/** A Link header: one or several link-values about `targets` (real URLs and edits of them), edited. */
export function linkHeader(targets: fc.Arbitrary<string>): fc.Arbitrary<string | string[]> {
  const one = linkValue(fc.oneof({ weight: 3, arbitrary: targets }, { weight: 2, arbitrary: mutated(targets, 2) }, { weight: 1, arbitrary: fc.constantFrom('', '/r/', 'http://[', 'r/abc', '//x/r/abc') }));
  return fc.oneof(
    { weight: 5, arbitrary: mutated(fc.array(one, { minLength: 1, maxLength: 3 }).map((ls) => ls.join(', ')), 1) },
    { weight: 1, arbitrary: fc.array(one, { minLength: 2, maxLength: 3 }) },
    { weight: 1, arbitrary: headerNoise },
  );
}

// ---------------------------------------------------------------------------------------------
// Whole requests for the live doors

export type PathKind = 'push-v1' | 'push-v2' | 'push-v1-edited' | 'push-v2-edited' | 'version' | 'message' | 'subscribe' | 'resource' | 'random';

export interface PathCase {
  kind: PathKind;
  edits: StringEdit[];
  noise: string;
}

export const pathCase: fc.Arbitrary<PathCase> = fc.record({
  kind: fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom<PathKind>('push-v1', 'push-v2') },
    { weight: 3, arbitrary: fc.constantFrom<PathKind>('push-v1-edited', 'push-v2-edited') },
    { weight: 1, arbitrary: fc.constantFrom<PathKind>('version', 'message', 'subscribe', 'resource', 'random') },
  ),
  edits: fc.array(stringEdit, { minLength: 1, maxLength: 2 }),
  noise: fc.oneof(headerNoise, fc.constantFrom('v0', 'v3', 'V1', '', 'v1/x', '..')),
});

/** Any character outside a request target's visible ASCII is percent-encoded. */
export function asPath(path: string): string {
  return path.toWellFormed().replace(/[^\x21-\x7e]|%/gu, (c) => encodeURIComponent(c));
}

export interface HttpPushCase {
  path: PathCase;
  method: string;
  headers: Headers;
  body: Buffer;
  chunked: boolean;
  /** The client goes away after half of the body (a fresh connection, destroyed). */
  abort: boolean;
}

/** A valid body with the headers it needs: empty, aes128gcm, or aesgcm with its salt and dh. */
const validEncoded: fc.Arbitrary<{ headers: Headers; body: Buffer }> = fc.oneof(
  fc.constant({ headers: {}, body: Buffer.alloc(0) }),
  fc.tuple(bytesOf(16, 16), bytesOf(64, 64), fc.integer({ min: 17, max: 3000 })).map(([salt, key, n]) => {
    const head = Buffer.alloc(21);
    salt.copy(head);
    head.writeUInt32BE(4096, 16);
    head[20] = 65;
    return { headers: { 'content-encoding': 'aes128gcm' }, body: Buffer.concat([head, Buffer.of(4), key, Buffer.alloc(n, 7)]) };
  }),
  fc.tuple(bytesOf(16, 16), dhPoint, fc.integer({ min: 18, max: 3000 }), fc.boolean()).map(([salt, dh, n, vapidKey]) => ({
    headers: {
      'content-encoding': 'aesgcm',
      encryption: `salt=${b64u(salt)}`,
      'crypto-key': `dh=${dh}${vapidKey ? `;p256ecdsa=${KEY_A.publicKey}` : ''}`,
    },
    body: Buffer.alloc(n, 9),
  })),
);

const HEADER_NAMES = ['ttl', 'urgency', 'topic', 'content-encoding', 'encryption', 'crypto-key', 'authorization', 'prefer', 'link'] as const;

/**
 * A request a good application server would send (valid TTL, Urgency, Topic, encoding and
 * VAPID for KEY_A), then 0 to 2 of its headers replaced by fuzzed values or dropped.
 */
export function nearValidPush(pool: readonly SignedToken[], receiptTargets: fc.Arbitrary<string>): fc.Arbitrary<{ headers: Headers; body: Buffer }> {
  const good = pool.filter((t) => t.acceptable && t.signer === KEY_A);
  const fuzzed: Record<(typeof HEADER_NAMES)[number], fc.Arbitrary<string | string[]>> = {
    ttl: ttlValue,
    urgency: urgencyValue,
    topic: topicValue,
    'content-encoding': contentEncodingValue,
    encryption: encryptionValue,
    'crypto-key': cryptoKeyValue,
    authorization: vapidCase(pool).map((c) => c.authorization ?? ''),
    prefer: preferValue,
    link: linkHeader(receiptTargets),
  };
  const change = fc.constantFrom(...HEADER_NAMES).chain((name) =>
    fc.record({ name: fc.constant(name), value: fc.option(fuzzed[name], { nil: undefined, freq: 4 }) }),
  );
  return fc
    .record({
      encoded: validEncoded,
      ttl: fc.oneof(fc.constantFrom('0', '60', '86400'), fc.nat({ max: 100_000 }).map(String)),
      urgency: fc.option(fc.constantFrom(...URGENCY_WORDS), { nil: undefined }),
      topic: fc.option(VALID_TOPIC, { nil: undefined, freq: 3 }),
      token: fc.constantFrom(...good),
      changes: fc.array(change, { maxLength: 2 }),
    })
    .map(({ encoded, ttl, urgency, topic, token, changes }) => {
      const headers: Headers = { ttl, ...encoded.headers, authorization: `vapid t=${token.token}, k=${KEY_A.publicKey}` };
      if (urgency) headers.urgency = urgency;
      if (topic) headers.topic = topic;
      for (const { name, value } of changes) {
        if (value === undefined) delete headers[name];
        else headers[name] = Array.isArray(value) ? value.map(headerSafe) : headerSafe(value);
      }
      return { headers, body: encoded.body };
    });
}

export function httpPushCase(pool: readonly SignedToken[], receiptTargets: fc.Arbitrary<string>): fc.Arbitrary<HttpPushCase> {
  const extra = fc
    .record(
      {
        prefer: preferValue.map(headerSafe),
        link: linkHeader(receiptTargets).map((l) => (Array.isArray(l) ? l.map(headerSafe) : headerSafe(l))),
        'content-type': fc.constantFrom('application/octet-stream', 'application/webpush-options+json', 'text/plain; charset=€'),
      },
      { requiredKeys: [] },
    )
    .map((h) => h as Headers);
  const request = fc.oneof(
    fc.record({ headers: pushHeaders(vapidCase(pool), fc.option(extra, { nil: undefined, freq: 3 }).map((h) => h ?? {})), body: pushBody }),
    nearValidPush(pool, receiptTargets),
  );
  return fc.record({
    path: pathCase,
    method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST') }, { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH') }),
    request,
    chunked: fc.boolean(),
    abort: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  }).map(({ request: r, ...rest }) => ({ ...rest, headers: r.headers, body: r.body }));
}

/** `abort`: a send cut mid-body by RST_STREAM; `hold`: a monitor without wait=0, cancelled at once. */
export type H2Kind = 'subscribe' | 'monitor' | 'delete' | 'send' | 'other' | 'abort' | 'hold';

export interface H2Case {
  kind: H2Kind;
  /** Which resource of the door's pool, and whether its token is edited (with path.edits). */
  pick: number;
  resource: 'subs' | 'sets' | 'pushes' | 'receipts' | 'messages';
  edited: boolean;
  path: PathCase;
  method: string;
  headers: Headers;
  body: Buffer;
}

const jsonBody = fc.oneof(
  { weight: 3, arbitrary: vapidKeyText.map((k) => JSON.stringify({ vapid: k })) },
  { weight: 1, arbitrary: mutated(vapidKeyText.map((k) => JSON.stringify({ vapid: k, other: 1 })), 2) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? '') },
  { weight: 1, arbitrary: fc.record({ vapid: wrongValue }).map((v) => JSON.stringify(v)) },
);

/** RFC 8030 requests over HTTP/2: subscribe (set Link, options body), monitors, deletes, sends with receipts. */
export function h2Case(pool: readonly SignedToken[], setTargets: fc.Arbitrary<string>, receiptTargets: fc.Arbitrary<string>): fc.Arbitrary<H2Case> {
  const subscribe = fc
    .record(
      {
        link: linkHeader(setTargets),
        'content-type': fc.oneof(
          fc.constantFrom('application/webpush-options+json', 'Application/WebPush-Options+JSON; charset=utf-8', 'application/json'),
          mutated(fc.constant('application/webpush-options+json'), 1),
        ),
      },
      { requiredKeys: [] },
    )
    .map((h) => h as Headers);
  const monitor = fc.record({ prefer: preferValue, urgency: urgencyValue }, { requiredKeys: [] }).map((h) => h as Headers);
  const receipts = fc.record({ prefer: preferValue, link: linkHeader(receiptTargets) }, { requiredKeys: [] }).map((h) => h as Headers);
  const headersFor: Record<H2Kind, fc.Arbitrary<Headers>> = {
    subscribe,
    monitor,
    delete: fc.constant({}),
    send: pushHeaders(vapidCase(pool), receipts),
    other: monitor,
    abort: fc.constant({}),
    hold: fc.record({ urgency: urgencyValue }, { requiredKeys: [] }).map((h) => h as Headers),
  };
  const sendRequest = fc.oneof(fc.record({ headers: headersFor.send, body: pushBody }), nearValidPush(pool, receiptTargets));
  const request = (kind: H2Kind): fc.Arbitrary<{ headers: Headers; body: Buffer }> =>
    kind === 'send' || kind === 'abort'
      ? sendRequest
      : fc.record({
          headers: headersFor[kind],
          body: kind === 'subscribe' ? fc.oneof(jsonBody.map((t) => Buffer.from(t)), fc.constant(Buffer.alloc(0))) : pushBody,
        });
  return fc.constantFrom<H2Kind>('subscribe', 'monitor', 'delete', 'send', 'send', 'other', 'abort', 'hold').chain((kind) =>
    fc
      .record({
        kind: fc.constant(kind),
        pick: fc.nat({ max: 15 }),
        resource: fc.constantFrom('subs' as const, 'sets' as const, 'pushes' as const, 'receipts' as const, 'messages' as const),
        edited: fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        path: pathCase,
        method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        request: request(kind),
      })
      .map(({ request: r, ...rest }) => ({ ...rest, headers: r.headers, body: r.body })),
  );
}
