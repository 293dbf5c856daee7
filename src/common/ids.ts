// Identifiers of the data model: a user agent (uaid, 16 random bytes shown as 32 hex digits)
// and a subscription (channelID, a UUID chosen by the user agent). Both travel as 16 bytes.
import { RandomPool } from './random-pool.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UAID = /^[0-9a-f]{32}$/i;

/** 512 uaids to a draw: less CPU per connection, and a kept uaid shares its draw's buffer. */
const uaids = new RandomPool(16 * 512);

export function newUaid(): Buffer {
  return uaids.take(16);
}

/** 32 hex digits, as Firefox expects it; a dashed UUID is accepted too (autopush issues both). */
export function parseUaid(value: unknown): Buffer | null {
  if (typeof value !== 'string') return null;
  const hex = value.length === 36 ? value.replaceAll('-', '') : value;
  return UAID.test(hex) ? Buffer.from(hex, 'hex') : null;
}

export function formatUaid(uaid: Buffer): string {
  return uaid.toString('hex');
}

/** Only the lower-case dashed form Firefox generates: anything else is a protocol error. */
export function parseChannelId(value: unknown): Buffer | null {
  if (typeof value !== 'string' || !UUID.test(value)) return null;
  return Buffer.from(value.replaceAll('-', ''), 'hex');
}

export function formatChannelId(chid: Buffer): string {
  const h = chid.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
