// When and how long to wait before sending again: 429 and 5xx (except 501 and 505, which no
// retry changes) with exponential backoff and jitter, or the service's Retry-After.
import { setTimeout as delay } from 'node:timers/promises';

export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/** Retry-After (delay-seconds or an HTTP-date) in ms, or undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Backoff before retry number `retry` (0-based): base * 2^retry, between 50 % and 100 % of it. */
export function backoffDelay(retry: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const full = Math.min(capMs, baseMs * 2 ** retry);
  return Math.round(full / 2 + (random() * full) / 2);
}

export function defaultSleep(ms: number): Promise<void> {
  return delay(ms);
}
