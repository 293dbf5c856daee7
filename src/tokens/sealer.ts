// Authenticated encryption (AES-256-GCM) of small binary payloads into URL-safe tokens.
// A random nonce per token makes two tokens for the same ids unlinkable; the tag makes them
// unforgeable. Several keys may be held so old tokens still open after a key is added.
import { createCipheriv, createDecipheriv, createHash, createHmac, createSecretKey, hkdfSync, randomFillSync, type KeyObject } from 'node:crypto';

const NONCE = 12;
const TAG = 16;

interface TokenKey {
  id: number;
  /** A KeyObject: a raw Buffer key costs a key import on every cipher (3x slower per token). */
  key: KeyObject;
  /** Derives the nonce of deterministic tokens from their payload (a synthetic IV). */
  nonceKey: KeyObject;
}

/** Nonces come from a pool refilled in one call, not a random-number call per token. */
class NoncePool {
  readonly #pool = Buffer.allocUnsafe(NONCE * 512);
  #offset = this.#pool.length;

  take(): Buffer {
    if (this.#offset === this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const nonce = this.#pool.subarray(this.#offset, this.#offset + NONCE);
    this.#offset += NONCE;
    return nonce;
  }
}

export class Sealer {
  #keys: TokenKey[];
  readonly #nonces = new NoncePool();

  /** `secrets[0]` seals; every secret opens. */
  constructor(secrets: readonly Buffer[]) {
    this.#keys = tokenKeys(secrets);
  }

  /** Replaces the secrets (a reload after rotation): tokens of dropped secrets stop opening. */
  setSecrets(secrets: readonly Buffer[]): void {
    this.#keys = tokenKeys(secrets);
  }

  seal(plain: Buffer): string {
    return this.#seal(plain, this.#nonces.take());
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
  }));
}
