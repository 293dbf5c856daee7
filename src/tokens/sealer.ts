// Authenticated encryption (AES-256-GCM) of small binary payloads into URL-safe tokens.
// A random nonce per token makes two tokens for the same ids unlinkable; the tag makes them
// unforgeable. Several keys may be held so old tokens still open after a key is added.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { RandomPool } from '../common/random-pool.ts';

const NONCE = 12;
const TAG = 16;
/** Tokens kept opened by openRepeated by default (--push-token-cache): ~0.4 kB each, 4 MB. */
export const OPENED_CACHE_SIZE = 10_000;

interface TokenKey {
  id: number;
  /** A KeyObject: a raw Buffer key costs a key import on every cipher (3x slower per token). */
  key: KeyObject;
  /** Derives the nonce of deterministic tokens from their payload (a synthetic IV). */
  nonceKey: KeyObject;
  /** Names the key (8 bytes) without revealing it: what was sealed under it can say so. */
  tag: Buffer;
}

export class Sealer {
  #keys: TokenKey[];
  /** Nonces come from a pool, not a random-number call per token. */
  readonly #nonces = new RandomPool(NONCE * 512);

  /**
   * Tokens opened lately (push tokens: a sender posts to one again and again), by the exact
   * token, least recently used first. Only tokens that opened are kept, so a forged one is never
   * here, and the secrets' reload empties it.
   */
  readonly #opened = new Map<string, Buffer>();
  readonly #openedMax: number;

  /** `secrets[0]` seals; every secret opens. `openedCacheSize`: see openRepeated. */
  constructor(secrets: readonly Buffer[], openedCacheSize = OPENED_CACHE_SIZE) {
    this.#keys = tokenKeys(secrets);
    this.#openedMax = openedCacheSize;
  }

  /** Replaces the secrets (a reload after rotation): tokens of dropped secrets stop opening. */
  setSecrets(secrets: readonly Buffer[]): void {
    this.#keys = tokenKeys(secrets);
    this.#opened.clear();
  }

  /** The tag of the key that seals now (it changes when a new secret comes first). */
  get sealingKeyTag(): Buffer {
    return this.#keys[0]!.tag;
  }

  seal(plain: Buffer): string {
    return this.#seal(plain, this.#nonces.take(NONCE));
  }

  /**
   * The same payload always gives the same token (the nonce is a MAC of the payload), for
   * resources that must keep one URL, such as a message named both in a 201 Location and in
   * the PUSH_PROMISE and receipts for it. Different payloads still give unlinkable tokens.
   */
  sealDeterministic(plain: Buffer): string {
    return this.#seal(plain, createHmac('sha256', this.#keys[0]!.nonceKey).update(plain).digest().subarray(0, NONCE));
  }

  #seal(plain: Buffer, nonce: Buffer): string {
    const { id, key } = this.#keys[0]!;
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    const out = Buffer.allocUnsafe(1 + NONCE + plain.length + TAG);
    out[0] = id;
    nonce.copy(out, 1);
    cipher.update(plain).copy(out, 1 + NONCE);
    cipher.final();
    cipher.getAuthTag().copy(out, 1 + NONCE + plain.length);
    return out.toString('base64url');
  }

  /**
   * As open, for a token that comes again and again: it is opened once while it stays among the
   * last `openedCacheSize` used. The payload returned is shared: read it, never change it.
   */
  openRepeated(token: string): Buffer | null {
    const cached = this.#opened.get(token);
    if (cached) {
      // to the end: the first key is the one least recently used
      this.#opened.delete(token);
      this.#opened.set(token, cached);
      return cached;
    }
    const plain = this.open(token);
    if (plain && this.#openedMax > 0) {
      if (this.#opened.size >= this.#openedMax) this.#opened.delete(this.#opened.keys().next().value!);
      this.#opened.set(token, plain);
    }
    return plain;
  }

  /** The payload, or null for anything not sealed by one of our keys. */
  open(token: string): Buffer | null {
    const raw = Buffer.from(token, 'base64url');
    if (raw.length < 1 + NONCE + TAG || raw.toString('base64url') !== token) return null;
    for (const { id, key } of this.#keys) {
      if (id !== raw[0]) continue;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(1, 1 + NONCE));
        decipher.setAuthTag(raw.subarray(raw.length - TAG));
        const plain = decipher.update(raw.subarray(1 + NONCE, raw.length - TAG));
        decipher.final();
        return plain;
      } catch {
        // wrong key with a colliding id, or a forged token: try the next key
      }
    }
    return null;
  }
}

function tokenKeys(secrets: readonly Buffer[]): TokenKey[] {
  if (secrets.length === 0) throw new Error('at least one token secret is required');
  return secrets.map((secret) => ({
    id: createHash('sha256').update(secret).digest()[0]!,
    key: createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'webpushd capability token', 32))),
    nonceKey: createSecretKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'webpushd token nonce', 32))),
    tag: Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'webpushd key tag', 8)),
  }));
}
