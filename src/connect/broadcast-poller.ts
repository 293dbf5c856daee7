// Polls a megaphone-style HTTP API for broadcast versions, as autopush deployments do: GET the
// URL with the token as Authorization, expect {"broadcasts": {"<id>": "<version>"}}, apply what
// changed. A failed poll is logged (once per run of failures) and the table in use stays.
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Versions } from './broadcasts.ts';

const Reply = z.object({ broadcasts: z.record(z.string().min(1).max(200), z.string().max(200)) });

/** Megaphone's table is small; a larger answer is refused rather than read. */
const MAX_REPLY_BYTES = 1024 * 1024;

export interface BroadcastPollerOptions {
  url: string;
  /** Sent as `Authorization`: as given when it names a scheme ("Bearer …"), else as a Bearer token. */
  token: string | undefined;
  intervalMs: number;
  /** Applies the versions read (persist, then tell the user agents). */
  apply(versions: Versions): Promise<unknown>;
  log: Logger;
}

export class BroadcastPoller {
  readonly #o: BroadcastPollerOptions;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #running: Promise<void> | null = null;

  constructor(o: BroadcastPollerOptions) {
    this.#o = o;
  }

  start(): void {
    this.#timer = setInterval(() => void this.poll(), this.#o.intervalMs);
    this.#timer.unref();
    void this.poll();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** One poll (never two at once); resolves when it is done, never rejects. */
  poll(): Promise<void> {
    this.#running ??= this.#pollOnce().finally(() => (this.#running = null));
    return this.#running;
  }

  async #pollOnce(): Promise<void> {
    const { url, token, intervalMs, apply, log } = this.#o;
    try {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (token) headers.authorization = /\s/.test(token) ? token : `Bearer ${token}`;
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(Math.min(intervalMs, 10_000)) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      if (Number(res.headers.get('content-length') ?? 0) > MAX_REPLY_BYTES) throw new Error('the answer is too large');
      const text = await res.text();
      if (text.length > MAX_REPLY_BYTES) throw new Error('the answer is too large');
      const reply = Reply.safeParse(JSON.parse(text));
      if (!reply.success) throw new Error('the answer is not {"broadcasts": {id: version}}');
      await apply(reply.data.broadcasts);
      if (this.#failing) log.info('broadcast poll works again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) log.warn({ err: (err as Error).message }, 'broadcast poll failed: the versions in use stay');
      this.#failing = true;
    }
  }
}
