// The handoff between the event loop and the SQLite writer thread (./sqlite-worker.ts): a
// batch of writes, and its results, each cross as one ArrayBuffer written here and transferred
// (moved, not copied) with postMessage: cloning arrays of objects both ways cost the event loop
// twice the CPU or more per batch (bench/sqlite-handoff-micro.ts). The frequent writes (saves,
// acks, touches, receipt deletes) are laid out by hand, bodies copied once; the rare ones
// (subscriptions, sweeps, broadcasts, the probe) are still cloned beside the buffer, which
// marks their places.
import { URGENCIES, type EncodingHeaders, type NewMessage, type ReceiptTarget, type Urgency } from './types.ts';
import type { BatchMessage, Id, MessageToSave, SavedOrNot, WriteName, Writer as BatchWriter } from './sqlite-worker.ts';

export const CLONED = 0;
export const SAVE = 1;
export const DELETE_MESSAGE = 2;
export const TOUCH = 3;
export const DELETE_RECEIPT = 4;

/** A write as the event loop queues it: ids and bodies as they are (read, never moved). */
export type BatchOp =
  | [typeof SAVE, NewMessage, ReceiptTarget | undefined]
  | [typeof DELETE_MESSAGE, Buffer, Buffer, number]
  | [typeof TOUCH, Buffer]
  | [typeof DELETE_RECEIPT, number]
  | [typeof CLONED, WriteName, unknown[]];

/** What crosses: the buffer (transferred) and the rare writes, or their results, cloned in order. */
export interface Encoded {
  bytes: ArrayBuffer;
  cloned: unknown[];
}

// save flags: which optional fields follow
const TOPIC = 1;
const ENCODING = 2;
const ENCRYPTION = 4;
const CRYPTO_KEY = 8;
const RECEIPT = 16;
const CREATE_RECEIPT = 32;

// result tags
const R_VOID = 0;
const R_FALSE = 1;
const R_TRUE = 2;
const R_SAVED = 3;
const R_CLONED = 4;
const REFUSALS = ['no-subscription', 'too-many-stored', 'no-receipt-subscription'] as const;
const R_REFUSED = 5; // + the index in REFUSALS

/** The most bytes a result takes: a tag and three numbers. */
const RESULT_MAX = 25;

// a length (u32) and its bytes; a string's UTF-8 is at most 3 bytes per UTF-16 unit
const bytesMax = (b: Uint8Array): number => 4 + b.byteLength;
const stringMax = (s: string): number => 4 + 3 * s.length;

function saveMax(m: NewMessage, receipt: ReceiptTarget | undefined): number {
  let n = 2 + bytesMax(m.uaid) + bytesMax(m.chid) + 16 + bytesMax(m.body);
  if (m.topic !== null) n += stringMax(m.topic);
  const h = m.headers;
  if (h) {
    n += stringMax(h.encoding);
    if (h.encryption !== undefined) n += stringMax(h.encryption);
    if (h.cryptoKey !== undefined) n += stringMax(h.cryptoKey);
  }
  if (receipt) n += bytesMax(receipt.id);
  return n;
}

/** A position in a buffer, read or written through a DataView (numbers) or a Buffer (bytes). */
class Cursor {
  readonly b: Buffer;
  readonly v: DataView;
  o = 0;
  constructor(ab: ArrayBuffer) {
    this.b = Buffer.from(ab);
    this.v = new DataView(ab);
  }
}

class Writer extends Cursor {
  u8(n: number): void {
    this.v.setUint8(this.o++, n);
  }
  f64(n: number): void {
    this.v.setFloat64(this.o, n, true);
    this.o += 8;
  }
  bytes(b: Uint8Array): void {
    this.v.setUint32(this.o, b.byteLength, true);
    this.b.set(b, this.o + 4);
    this.o += 4 + b.byteLength;
  }
  string(s: string): void {
    const n = this.b.write(s, this.o + 4, 'utf8');
    this.v.setUint32(this.o, n, true);
    this.o += 4 + n;
  }
}

class Reader extends Cursor {
  u8(): number {
    return this.v.getUint8(this.o++);
  }
  u32(): number {
    const n = this.v.getUint32(this.o, true);
    this.o += 4;
    return n;
  }
  f64(): number {
    const n = this.v.getFloat64(this.o, true);
    this.o += 8;
    return n;
  }
  /** A view into the batch's own buffer (SQLite copies what it binds). */
  bytes(): Uint8Array {
    const n = this.u32();
    const start = this.o;
    this.o += n;
    return this.b.subarray(start, this.o);
  }
  id(): Id {
    const n = this.u32();
    const start = this.o;
    this.o += n;
    return this.b.toString('latin1', start, this.o);
  }
  string(): string {
    const n = this.u32();
    const start = this.o;
    this.o += n;
    return this.b.toString('utf8', start, this.o);
  }
}

/** Lays a batch out in a buffer of its own (ids and bodies are copied: they may share theirs). */
export function encodeBatch(ops: readonly BatchOp[]): Encoded {
  let size = 4;
  for (const op of ops) {
    switch (op[0]) {
      case SAVE:
        size += 1 + saveMax(op[1], op[2]);
        break;
      case DELETE_MESSAGE:
        size += 1 + bytesMax(op[1]) + bytesMax(op[2]) + 8;
        break;
      case TOUCH:
        size += 1 + bytesMax(op[1]);
        break;
      default:
        size += 9;
    }
  }
  const w = new Writer(new ArrayBuffer(size));
  const cloned: unknown[] = [];
  w.v.setUint32(0, ops.length, true);
  w.o = 4;
  for (const op of ops) {
    w.u8(op[0]);
    switch (op[0]) {
      case SAVE: {
        const [, m, receipt] = op;
        const h = m.headers;
        let flags = 0;
        if (m.topic !== null) flags |= TOPIC;
        if (h) {
          flags |= ENCODING;
          if (h.encryption !== undefined) flags |= ENCRYPTION;
          if (h.cryptoKey !== undefined) flags |= CRYPTO_KEY;
        }
        if (receipt) flags |= receipt.create ? RECEIPT | CREATE_RECEIPT : RECEIPT;
        w.u8(flags);
        w.u8(URGENCIES.indexOf(m.urgency));
        w.bytes(m.uaid);
        w.bytes(m.chid);
        w.f64(m.ttl);
        w.f64(m.createdAt);
        if (m.topic !== null) w.string(m.topic);
        if (h) {
          w.string(h.encoding);
          if (h.encryption !== undefined) w.string(h.encryption);
          if (h.cryptoKey !== undefined) w.string(h.cryptoKey);
        }
        if (receipt) w.bytes(receipt.id);
        w.bytes(m.body);
        break;
      }
      case DELETE_MESSAGE:
        w.bytes(op[1]);
        w.bytes(op[2]);
        w.f64(op[3]);
        break;
      case TOUCH:
        w.bytes(op[1]);
        break;
      case DELETE_RECEIPT:
        w.f64(op[1]);
        break;
      default:
        cloned.push([op[1], op[2]]);
    }
  }
  return { bytes: w.b.buffer as ArrayBuffer, cloned };
}

function readSave(r: Reader): [MessageToSave, Id | null, boolean] {
  const flags = r.u8();
  const urgency = URGENCIES[r.u8()] as Urgency;
  const uaid = r.id();
  const chid = r.id();
  const ttl = r.f64();
  const createdAt = r.f64();
  const topic = flags & TOPIC ? r.string() : null;
  let headers: EncodingHeaders | null = null;
  if (flags & ENCODING) {
    headers = { encoding: r.string() };
    if (flags & ENCRYPTION) headers.encryption = r.string();
    if (flags & CRYPTO_KEY) headers.cryptoKey = r.string();
  }
  const receipt = flags & RECEIPT ? r.id() : null;
  const body = r.bytes();
  return [{ uaid, chid, ttl, topic, urgency, headers, body, createdAt }, receipt, (flags & CREATE_RECEIPT) !== 0];
}

/**
 * The writer thread's side: runs the writes of a batch in order (the rare ones through `cloned`);
 * their results laid out for `decodeResults`.
 */
export function runBatch(batch: BatchMessage, t: BatchWriter, cloned: (name: WriteName, args: unknown[]) => unknown): Encoded {
  const now = batch.now;
  const r = new Reader(batch.bytes);
  const count = r.u32();
  const w = new Writer(new ArrayBuffer(4 + count * RESULT_MAX));
  const clonedResults: unknown[] = [];
  let nextCloned = 0;
  w.v.setUint32(0, count, true);
  w.o = 4;
  for (let i = 0; i < count; i++) {
    switch (r.u8()) {
      case SAVE: {
        const saved = t.saveMessage(now, ...readSave(r));
        if (saved.ok) {
          w.u8(R_SAVED);
          w.f64(saved.id);
          w.f64(saved.expiresAt);
          w.f64(saved.replacedId ?? -1);
        } else {
          w.u8(R_REFUSED + REFUSALS.indexOf(saved.reason));
        }
        break;
      }
      case DELETE_MESSAGE:
        w.u8(t.deleteMessage(now, r.id(), r.id(), r.f64()) ? R_TRUE : R_FALSE);
        break;
      case TOUCH:
        t.touchUserAgent(now, r.id());
        w.u8(R_VOID);
        break;
      case DELETE_RECEIPT:
        t.deleteReceipt(now, r.f64());
        w.u8(R_VOID);
        break;
      default: {
        const [name, args] = batch.cloned[nextCloned++] as [WriteName, unknown[]];
        clonedResults.push(cloned(name, args));
        w.u8(R_CLONED);
      }
    }
  }
  return { bytes: w.b.buffer as ArrayBuffer, cloned: clonedResults };
}

/** The results of a batch, in order, as the writes' promises resolve with them. */
export function decodeResults(results: Encoded): unknown[] {
  const r = new Reader(results.bytes);
  const count = r.u32();
  const out = new Array<unknown>(count);
  let nextCloned = 0;
  for (let i = 0; i < count; i++) {
    const tag = r.u8();
    switch (tag) {
      case R_VOID:
        out[i] = undefined;
        break;
      case R_FALSE:
        out[i] = false;
        break;
      case R_TRUE:
        out[i] = true;
        break;
      case R_SAVED: {
        const id = r.f64();
        const expiresAt = r.f64();
        const replaced = r.f64();
        out[i] = { ok: true, id, expiresAt, replacedId: replaced < 0 ? null : replaced } satisfies SavedOrNot;
        break;
      }
      case R_CLONED:
        out[i] = results.cloned[nextCloned++];
        break;
      default:
        out[i] = { ok: false, reason: REFUSALS[tag - R_REFUSED]! } satisfies SavedOrNot;
    }
  }
  return out;
}
