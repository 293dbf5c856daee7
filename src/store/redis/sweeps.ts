// What spans user agents, read from the indexes every registered slot keeps (keys.ts): the
// sweep of expired messages and receipts, the idle user agents, the count of stored messages.
import type { MessageRef, SweepResult } from '../types.ts';
import type { RedisHandle } from './handle.ts';
import { outboxKeys, receiptKeys, slotIndexKeys, slotStoredKey, slotTag, userAgentKeys } from './keys.ts';
import type { Receipts } from './receipts.ts';

/** User agents with expired messages one sweep visits per slot; messages per user agent. */
const SWEEP_USER_AGENTS = 1000;
const SWEEP_MESSAGES = 5000;

export class Sweeps {
  readonly #r: RedisHandle;
  readonly #receipts: Receipts;
  /** A count of stored messages under way: scrapes at once share it. */
  #storedCount: Promise<number | null> | null = null;

  constructor(r: RedisHandle, receipts: Receipts) {
    this.#r = r;
    this.#receipts = receipts;
  }

  /**
   * Visits every slot that holds indexes: expired messages of the user agents due (their 410
   * receipts queued), receipts a crash left in outboxes, expired receipts and receipt subscriptions.
   */
  async sweep(): Promise<SweepResult> {
    const now = String(this.#r.now());
    const slots = await this.#r.read(() => this.#r.slots());
    const expired: MessageRef[] = [];
    const result: SweepResult = { expired, receipts: 0, receiptSubscriptions: [] };
    await this.#r.write(() =>
      Promise.all(
        slots.map(async (slot) => {
          const [, expiryIndex, outboxIndex] = slotIndexKeys(slotTag(slot));
          const due = (await this.#r.command(['ZRANGE', expiryIndex!, '-inf', now, 'BYSCORE', 'LIMIT', '0', String(SWEEP_USER_AGENTS)])) as Buffer[];
          for (const uaid of due) {
            const [flat, out] = (await this.#r.fcall('sweep_user_agent', userAgentKeys(uaid), [uaid, now, String(SWEEP_MESSAGES)])) as [
              (number | Buffer)[],
              Buffer[],
            ];
            const refs: MessageRef[] = [];
            for (let i = 0; i < flat.length; i += 2) refs.push({ uaid, chid: flat[i + 1] as Buffer, id: flat[i] as number });
            expired.push(...refs.sort((a, b) => a.id - b.id));
            await this.#receipts.move(uaid, out);
          }
          for (const uaid of (await this.#r.command(['SMEMBERS', outboxIndex!])) as Buffer[]) {
            await this.#receipts.move(uaid, (await this.#r.command(['HGETALL', outboxKeys(uaid)[0]!])) as Buffer[]);
          }
          const [receipts, subs] = (await this.#r.fcall('sweep_receipts', receiptKeys(slot), [now, String(SWEEP_MESSAGES)])) as [number, Buffer[]];
          result.receipts += receipts;
          result.receiptSubscriptions.push(...subs);
        }),
      ),
    );
    return result;
  }

  idleUserAgents(seenBefore: number, limit: number): Promise<Buffer[]> {
    return this.#r.read(async () => {
      const slots = await this.#r.slots();
      const pages = await Promise.all(
        slots.map(
          (slot) =>
            this.#r.command(['ZRANGE', slotIndexKeys(slotTag(slot))[0]!, '-inf', `(${seenBefore}`, 'BYSCORE', 'LIMIT', '0', String(limit), 'WITHSCORES']) as Promise<
              [Buffer, number][]
            >,
        ),
      );
      return pages
        .flat()
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .map(([uaid]) => uaid);
    });
  }

  /**
   * Messages stored now (expired ones not yet swept included), or null when Redis cannot say:
   * the per-slot counts the functions keep with every write, summed (one GET per slot that
   * holds data, at most 16384, pipelined: a few ms of Redis time per scrape).
   */
  storedMessages(): Promise<number | null> {
    this.#storedCount ??= this.#r
      .read(async () => {
        const counts = await Promise.all((await this.#r.slots()).map((slot) => this.#r.command(['GET', slotStoredKey(slotTag(slot))])));
        return counts.reduce<number>((sum, n) => sum + Number((n as Buffer | null)?.toString() ?? 0), 0);
      })
      .catch(() => null)
      .finally(() => (this.#storedCount = null));
    return this.#storedCount;
  }
}
