// The writer thread's handoff (src/store/sqlite-batch.ts): a batch laid out in one buffer is
// read back as the same writes, in order, with the rare (cloned) ones in their places; the
// results come back in order; the ids' and bodies' own buffers are copied, never moved.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLONED,
  DELETE_MESSAGE,
  DELETE_RECEIPT,
  SAVE,
  TOUCH,
  decodeResults,
  encodeBatch,
  runBatch,
  type BatchOp,
} from '../../src/store/sqlite-batch.ts';
import type { MessageToSave, SavedOrNot, Writer } from '../../src/store/sqlite-worker.ts';
import type { NewMessage } from '../../src/store/types.ts';

const NOW = 1_700_000_000_123;

test('every write crosses as it was queued, in order, and every result comes back to its place', () => {
  // ids as the server has them: views into one shared pool buffer
  const pool = Buffer.from(Array.from({ length: 64 }, (_, i) => i * 3));
  const [uaid, chid, other, receipt] = [0, 16, 32, 48].map((o) => pool.subarray(o, o + 16)) as [Buffer, Buffer, Buffer, Buffer];
  const full: NewMessage = {
    uaid,
    chid,
    ttl: 2_419_200,
    topic: 'tópico',
    urgency: 'high',
    headers: { encoding: 'aesgcm', encryption: 'salt=é', cryptoKey: 'dh=x' },
    body: Buffer.from('a body of bytes \u0000\u00ff'),
    createdAt: NOW - 5,
  };
  const bare: NewMessage = { uaid, chid: other, ttl: 1, topic: null, urgency: 'very-low', headers: null, body: Buffer.alloc(0), createdAt: NOW };
  const ops: BatchOp[] = [
    [SAVE, full, { id: receipt, create: true }],
    [DELETE_MESSAGE, uaid, chid, 2 ** 40 + 7],
    [CLONED, 'putSubscription', [uaid.toString('latin1'), chid.toString('latin1'), null]],
    [SAVE, bare, undefined],
    [TOUCH, other],
    [SAVE, { ...bare, headers: { encoding: 'aes128gcm' } }, { id: receipt, create: false }],
    [DELETE_RECEIPT, 42],
    [CLONED, 'probe', []],
    [DELETE_MESSAGE, other, chid, 3],
  ];
  const calls: unknown[][] = [];
  const saved: SavedOrNot[] = [
    { ok: true, id: 9, expiresAt: NOW + 1000, replacedId: 4 },
    { ok: false, reason: 'too-many-stored' },
    { ok: true, id: 10, expiresAt: NOW + 2000, replacedId: null },
  ];
  const writer = {
    saveMessage: (now: number, m: MessageToSave, r: string | null, create: boolean) => (calls.push(['save', now, m, r, create]), saved.shift()!),
    deleteMessage: (now: number, u: string, c: string, id: number) => (calls.push(['delete', now, u, c, id]), id === 3),
    touchUserAgent: (now: number, u: string) => void calls.push(['touch', now, u]),
    deleteReceipt: (now: number, seq: number) => void calls.push(['deleteReceipt', now, seq]),
  } as unknown as Writer;

  const encoded = encodeBatch(ops);
  assert.notEqual(encoded.bytes, pool.buffer, 'the batch has a buffer of its own');
  const results = runBatch({ now: NOW, ...encoded }, writer, (name, args) => (calls.push(['cloned', NOW, name, args]), name === 'probe' ? undefined : true));

  const latin1 = (b: Buffer) => b.toString('latin1');
  const asSaved = (m: NewMessage) => ({ ...m, uaid: latin1(m.uaid), chid: latin1(m.chid), body: new Uint8Array(m.body) });
  const plain = (c: unknown[]) => c.map((x) => (x && typeof x === 'object' && 'body' in x ? { ...x, body: new Uint8Array((x as MessageToSave).body) } : x));
  assert.deepEqual(calls.map(plain), [
    ['save', NOW, asSaved(full), latin1(receipt), true],
    ['delete', NOW, latin1(uaid), latin1(chid), 2 ** 40 + 7],
    ['cloned', NOW, 'putSubscription', [latin1(uaid), latin1(chid), null]],
    ['save', NOW, asSaved(bare), null, false],
    ['touch', NOW, latin1(other)],
    ['save', NOW, asSaved({ ...bare, headers: { encoding: 'aes128gcm' } }), latin1(receipt), false],
    ['deleteReceipt', NOW, 42],
    ['cloned', NOW, 'probe', []],
    ['delete', NOW, latin1(other), latin1(chid), 3],
  ]);
  assert.deepEqual(decodeResults(results), [
    { ok: true, id: 9, expiresAt: NOW + 1000, replacedId: 4 },
    false,
    true,
    { ok: false, reason: 'too-many-stored' },
    undefined,
    { ok: true, id: 10, expiresAt: NOW + 2000, replacedId: null },
    undefined,
    undefined,
    true,
  ]);
  assert.equal(pool.byteLength, 64, 'the pool is intact');
});

test('an empty batch has no results; every refusal comes back as it was given', () => {
  assert.deepEqual(decodeResults(runBatch({ now: NOW, ...encodeBatch([]) }, {} as Writer, () => undefined)), []);
  const reasons = ['no-subscription', 'too-many-stored', 'no-receipt-subscription'] as const;
  const m: NewMessage = { uaid: Buffer.alloc(16), chid: Buffer.alloc(16, 1), ttl: 60, topic: null, urgency: 'normal', headers: null, body: Buffer.alloc(0), createdAt: NOW };
  const queue = [...reasons];
  const writer = { saveMessage: () => ({ ok: false, reason: queue.shift() }) } as unknown as Writer;
  const results = runBatch({ now: NOW, ...encodeBatch(reasons.map(() => [SAVE, m, undefined])) }, writer, () => undefined);
  assert.deepEqual(
    decodeResults(results),
    reasons.map((reason) => ({ ok: false, reason })),
  );
});
