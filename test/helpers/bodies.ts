// Message bodies the push endpoint accepts without real encryption: a structurally valid
// aes128gcm body (salt, rs 4096, idlen 65, a sender key, one record) whose record ends with a
// readable marker, so a test can tell messages apart after delivery.
import { randomBytes } from 'node:crypto';

const HEADER = 21 + 65;

/** `recordSize`: the header's rs; raise it for a marker longer than one 4096-byte record holds. */
export function aes128gcmBody(marker = 'payload', recordSize = 4096): Buffer {
  const rs = Buffer.alloc(4);
  rs.writeUInt32BE(recordSize);
  return Buffer.concat([randomBytes(16), rs, Buffer.of(65), Buffer.of(0x04), randomBytes(64), Buffer.from(marker.padEnd(17, '.'))]);
}

/** The marker of a body made by aes128gcmBody. */
export function markerOf(body: Buffer): string {
  return body.subarray(HEADER).toString().replace(/\.+$/, '');
}
