// A stored message as one Redis hash value. Its header is what the functions read
// (functions.lua: header): chid, urgency, topic and receipt subscription at fixed places; the
// rest only the reader decodes. One value per message, in one hash per user agent, instead of a
// key per message: every key a function touches is named in its call.
import { URGENCIES, type EncodingHeaders, type NewMessage, type StoredMessage, type Urgency } from '../types.ts';

const NO_TOPIC = 255;
const ABSENT = 0xffff;

function putString(parts: Buffer[], value: string | undefined): void {
  const len = Buffer.alloc(2);
  if (value === undefined) {
    len.writeUInt16BE(ABSENT);
    parts.push(len);
    return;
  }
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length >= ABSENT) throw new RangeError('header value too long to store');
  len.writeUInt16BE(bytes.length);
  parts.push(len, bytes);
}

export function encodeMessage(m: NewMessage, expiresAt: number, receipt: Buffer | undefined): Buffer {
  const topic = m.topic === null ? null : Buffer.from(m.topic, 'utf8');
  if (topic && topic.length >= NO_TOPIC) throw new RangeError('topic too long to store');
  const head = Buffer.alloc(19);
  m.chid.copy(head, 0);
  head[16] = URGENCIES.indexOf(m.urgency);
  head[17] = topic ? topic.length : NO_TOPIC;
  head[18] = receipt ? 1 : 0;
  const parts: Buffer[] = [head];
  if (receipt) parts.push(receipt);
  if (topic) parts.push(topic);
  const fixed = Buffer.alloc(21);
  fixed.writeUInt32BE(m.ttl, 0);
  fixed.writeDoubleBE(m.createdAt, 4);
  fixed.writeDoubleBE(expiresAt, 12);
  fixed[20] = m.headers ? 1 : 0;
  parts.push(fixed);
  if (m.headers) {
    putString(parts, m.headers.encoding);
    putString(parts, m.headers.encryption);
    putString(parts, m.headers.cryptoKey);
  }
  parts.push(m.body);
  return Buffer.concat(parts);
}

export function decodeMessage(uaid: Buffer, id: number, rec: Buffer): StoredMessage {
  let pos = 19;
  const topicLen = rec[17]!;
  let receipt: Buffer | undefined;
  if (rec[18] === 1) {
    receipt = rec.subarray(19, 35);
    pos = 35;
  }
  let topic: string | null = null;
  if (topicLen !== NO_TOPIC) {
    topic = rec.toString('utf8', pos, pos + topicLen);
    pos += topicLen;
  }
  const ttl = rec.readUInt32BE(pos);
  const createdAt = rec.readDoubleBE(pos + 4);
  const expiresAt = rec.readDoubleBE(pos + 12);
  const hasHeaders = rec[pos + 20] === 1;
  pos += 21;
  const getString = (): string | undefined => {
    const len = rec.readUInt16BE(pos);
    pos += 2;
    if (len === ABSENT) return undefined;
    pos += len;
    return rec.toString('utf8', pos - len, pos);
  };
  let headers: EncodingHeaders | null = null;
  if (hasHeaders) {
    headers = { encoding: getString()! };
    const encryption = getString();
    const cryptoKey = getString();
    if (encryption !== undefined) headers.encryption = encryption;
    if (cryptoKey !== undefined) headers.cryptoKey = cryptoKey;
  }
  const m: StoredMessage = {
    id,
    uaid,
    chid: rec.subarray(0, 16),
    ttl,
    topic,
    urgency: URGENCIES[rec[16]!] as Urgency,
    headers,
    body: rec.subarray(pos),
    createdAt,
    expiresAt,
  };
  if (receipt) m.receipt = receipt;
  return m;
}

/**
 * The hint of a stored message, as save_message publishes it (functions.lua) and the router when
 * it publishes it itself: "M", the uaid (16 bytes), the message id in decimal, a space, its record.
 * Other hints are JSON (they start with "{").
 */
export function encodeMessageHint(uaid: Buffer, id: number, rec: Buffer): Buffer {
  return Buffer.concat([MESSAGE_HINT, uaid, Buffer.from(`${id} `, 'latin1'), rec]);
}

export function decodeMessageHint(hint: Buffer): { uaid: Buffer; id: number; rec: Buffer } | null {
  if (hint[0] !== MESSAGE_HINT[0]) return null;
  const space = hint.indexOf(0x20, 17);
  return { uaid: hint.subarray(1, 17), id: Number(hint.toString('latin1', 17, space)), rec: hint.subarray(space + 1) };
}

const MESSAGE_HINT = Buffer.from('M');
