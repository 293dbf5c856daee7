// Ephemeral sender key pairs (RFC 8291: a fresh one per message), generated ahead on libuv's
// thread pool so the sending thread pays only for the key agreement: generating and exporting
// a P-256 key costs ~30 us of the ~85 us an encryption takes. Each pair is used once. When the
// pool is empty (a burst, or a loop that never yields) a pair is generated in line.
import { generateKeyPair, generateKeyPairSync, type KeyObject } from 'node:crypto';

export interface SenderKeyPair {
  privateKey: KeyObject;
  /** 65-byte uncompressed point */
  publicKey: Buffer;
}

const POOL_SIZE = 64;
const CURVE = 'P-256';
const pool: SenderKeyPair[] = [];
let pending = 0;

export function takeSenderKeyPair(): SenderKeyPair {
  const pair = pool.pop();
  if (pool.length + pending < POOL_SIZE / 2) refill();
  return pair ?? generateInline();
}

function generateInline(): SenderKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: CURVE });
  return { privateKey, publicKey: publicKey.export({ format: 'raw-public' }) };
}

// Node 24 exports the public key raw straight from the worker; its typings lack that format.
type RawPublicCallback = (err: Error | null, publicKey: Buffer, privateKey: KeyObject) => void;
const generateRaw = generateKeyPair as unknown as (type: 'ec', options: object, callback: RawPublicCallback) => void;
const RAW_OPTIONS = { namedCurve: CURVE, publicKeyEncoding: { format: 'raw-public' } };

function refill(): void {
  for (let n = POOL_SIZE - pool.length - pending; n > 0; n--) {
    pending++;
    generateRaw('ec', RAW_OPTIONS, (err, publicKey, privateKey) => {
      pending--;
      if (!err) pool.push({ privateKey, publicKey });
    });
  }
}
