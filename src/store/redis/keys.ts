// The Redis store's key layout (docs/ARCHITECTURE.md, "The Redis store"). Every key of a user
// agent carries the hash tag {u:<uaid hex>}, so all of them are in one hash slot and one function
// can change them atomically, on one Redis or on a Redis Cluster. Work that spans user agents
// (expiry sweeps, idle user agents, leftover receipts) reads indexes kept per slot: their keys
// carry a tag chosen to hash to that same slot, so a user agent's function updates its slot's
// indexes atomically too. Receipt subscriptions live in the slot their id's first bytes name.

/** Hash slots of Redis Cluster (CRC16 of the tag, modulo). */
export const SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1;
    table[i] = c & 0xffff;
  }
  return table;
})();

/** CRC16/XMODEM, the checksum Redis Cluster hashes keys with. */
function crc16(s: string): number {
  let crc = 0;
  for (let i = 0; i < s.length; i++) crc = ((crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ s.charCodeAt(i)) & 0xff]!) & 0xffff;
  return crc;
}

/** The slot of a key whose hash tag is `tag` (ASCII). */
export function slotOfTag(tag: string): number {
  return crc16(tag) % SLOTS;
}

/** The slot of `key`, as Redis Cluster hashes it: its hash tag's (the text between its first `{` and the next `}`), or the whole key's. */
export function slotOfKey(key: string): number {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return slotOfTag(close > open + 1 ? key.slice(open + 1, close) : key);
}

/** For each slot, a short tag that hashes to it (the same on every node: found in order). */
let slotTags: string[] | null = null;

/** A hash tag (with its braces) whose keys are in `slot`. */
export function slotTag(slot: number): string {
  if (!slotTags) {
    const tags = new Array<string>(SLOTS);
    let found = 0;
    for (let n = 0; found < SLOTS; n++) {
      const tag = `s:${n.toString(36)}`;
      const s = slotOfTag(tag);
      if (tags[s] === undefined) {
        tags[s] = `{${tag}}`;
        found++;
      }
    }
    slotTags = tags;
  }
  return slotTags[slot]!;
}

/** The keys of one user agent, in the order its functions take them (functions.lua). */
/** A user agent's hash tag, also the key of its hash (created, seen, id): userAgentKeys[0]. */
export const userAgentKey = (uaid: Buffer): string => `{u:${uaid.toString('hex')}}`;
/** Its subscriptions: userAgentKeys[1], for the commands that need no other key. */
export const subscriptionsKey = (uaid: Buffer): string => `${userAgentKey(uaid)}:s`;
/** The node holding its connection, and the epoch: userAgentKeys[12]. */
export const holderKey = (uaid: Buffer): string => `${userAgentKey(uaid)}:n`;

export function userAgentKeys(uaid: Buffer): string[] {
  const tag = userAgentKey(uaid);
  const indexTag = slotTag(slotOfTag(tag.slice(1, -1)));
  return [
    tag, // hash: created, seen, id (the last message id)
    `${tag}:s`, // hash: chid -> "<created ms>:<key hash>"
    `${tag}:c`, // hash: chid -> stored messages of that subscription
    `${tag}:q`, // sorted set: message ids, by id (the delivery order)
    `${tag}:x`, // sorted set: message ids, by expiry
    `${tag}:t`, // hash: chid + topic -> message id
    `${tag}:m`, // hash: message id -> record (./record.ts)
    `${tag}:o`, // hash: message id -> receipt not yet moved to its receipt subscription
    ...slotIndexKeys(indexTag),
    `${tag}:g`, // string, for a day after the user agent was deleted: its last message id
    `${tag}:n`, // hash: node (holding its connection now), epoch (counts its connections)
    slotStoredKey(indexTag),
  ];
}

/** The slot's count of stored messages (the stored-messages gauge sums them). */
export function slotStoredKey(tag: string): string {
  return `${tag}:stored`;
}

/** The slot's user-agent indexes: last seen, earliest expiry, user agents with an outbox. */
export function slotIndexKeys(tag: string): string[] {
  return [`${tag}:seen`, `${tag}:exp`, `${tag}:out`];
}

/** The slot of a user agent. */
export function userAgentSlot(uaid: Buffer): number {
  return slotOfTag(`u:${uaid.toString('hex')}`);
}

/** The outbox of a user agent and its slot's outbox index (outbox_moved). */
export function outboxKeys(uaid: Buffer): string[] {
  const keys = userAgentKeys(uaid);
  return [keys[7]!, keys[10]!];
}

/** The slot a receipt subscription (16 random bytes) lives in. */
export function receiptSlot(id: Buffer): number {
  return id.readUInt16BE(0) % SLOTS;
}

/** The keys of a slot's receipt subscriptions and receipts, in the order the receipt functions take them. */
export function receiptKeys(slot: number): string[] {
  const tag = slotTag(slot);
  return [
    `${tag}:rs`, // sorted set: receipt subscription id, by expiry
    `${tag}:rn`, // counter: the slot's last receipt number
    `${tag}:rr`, // hash: seq -> receipt record
    `${tag}:rq`, // sorted set (by member): <subscription id><seq, 16 digits>
    `${tag}:re`, // sorted set: seq, by expiry
    `${tag}:rd`, // sorted set: <uaid><message id> of receipts queued, until they expire
  ];
}

/** The slot a receipt's seq names (queue_receipts in functions.lua). */
export function slotOfSeq(seq: number): number {
  return seq % SLOTS;
}

/**
 * Global keys: the slots that hold indexes (sweeps read those), broadcast versions, the write
 * probe, the token secrets (a list, newest first), the sweep lease (one node sweeps at a time).
 */
export const GLOBAL = { slots: '{g}:slots', broadcasts: '{g}:broadcasts', probe: '{g}:probe', secrets: '{g}:secrets', sweep: '{g}:sweep' } as const;

/** A node's sharded pub/sub channel of hints (functions.lua: save_message names it the same way). */
export const hintChannel = (node: string): string => `{n:${node}}:hints`;

/** A node's liveness key: set while it runs (renewed), so others know its records of connections hold. */
export const aliveKey = (node: string): string => `{n:${node}}:alive`;
