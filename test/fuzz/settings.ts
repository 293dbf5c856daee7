// Seed and size of the fuzz runs. CI runs a fixed seed with small numbers of cases, so a
// failure replays exactly; FUZZ_SEED picks another seed, FUZZ_RUNS multiplies every run count
// (FUZZ_RUNS=10: ten times the cases). bench/fuzz.ts passes its own numbers instead.
import type { Parameters } from 'fast-check';

export const DEFAULT_SEED = 8030;

function envNumber(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${JSON.stringify(raw)}`);
  return n;
}

export function fuzzSeed(): number {
  const seed = envNumber('FUZZ_SEED');
  return seed === undefined ? DEFAULT_SEED : Math.trunc(seed);
}

/** `base` cases, times FUZZ_RUNS when set. */
export function fuzzRuns(base: number): number {
  return Math.max(1, Math.round(base * (envNumber('FUZZ_RUNS') ?? 1)));
}

/**
 * fast-check parameters for one property of the CI suite (the seed and path are printed on
 * failure). Live properties do not shrink: once a server has crashed every case fails, so
 * shrinking would only find the smallest input that meets a dead server.
 */
export function fuzzParameters<T>(base: number, o: { live?: boolean } = {}): Parameters<T> {
  return { seed: fuzzSeed(), numRuns: fuzzRuns(base), endOnFailure: o.live === true };
}
