// Shared pieces of the benchmark: the message body, a small request/reply layer over the IPC
// channel of forked helpers, percentiles, medians, tables, options and /proc readings.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Offset of the ciphertext in an aes128gcm body: salt(16) rs(4) idlen(1) keyid(65). */
export const CIPHERTEXT_OFFSET = 16 + 4 + 1 + 65;

/**
 * A structurally valid aes128gcm push body (RFC 8188/8291): 16-byte salt, rs 4096, idlen 65,
 * a 65-byte keyid starting 0x04, then `ciphertextBytes` of (random) ciphertext. The first four
 * ciphertext bytes carry `seq` so the probe can match a notification to its POST.
 */
export function aes128gcmBody(seq = 0, ciphertextBytes = 100): Buffer {
  const body = Buffer.alloc(CIPHERTEXT_OFFSET + ciphertextBytes);
  randomBytes(16).copy(body, 0);
  body.writeUInt32BE(4096, 16);
  body[20] = 65;
  body[21] = 0x04;
  randomBytes(64).copy(body, 22);
  randomBytes(ciphertextBytes).copy(body, CIPHERTEXT_OFFSET);
  body.writeUInt32BE(seq >>> 0, CIPHERTEXT_OFFSET);
  return body;
}

export function seqOfBody(body: Buffer): number {
  return body.length >= CIPHERTEXT_OFFSET + 4 ? body.readUInt32BE(CIPHERTEXT_OFFSET) : -1;
}

// ---- IPC between the orchestrator and its forked helpers ----

export interface Envelope {
  id: number;
  body: Record<string, unknown>;
}

export interface Reply {
  id: number;
  ok: boolean;
  body?: unknown;
  error?: string;
}

/** In a forked helper: answers each request with the (awaited) result of `handle`. */
export function serveRequests(handle: (req: Record<string, unknown>) => Promise<unknown>): void {
  if (!process.send) throw new Error('this module runs as a helper forked by bench/push-throughput.ts');
  process.on('message', (raw) => {
    const { id, body } = raw as Envelope;
    handle(body).then(
      (result) => process.send!({ id, ok: true, body: result } satisfies Reply),
      (err: unknown) => process.send!({ id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) } satisfies Reply),
    );
  });
  // The orchestrator going away (even by SIGKILL) closes the channel: never outlive it.
  process.on('disconnect', () => process.exit(0));
}

// ---- statistics ----

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
}

// ---- /proc ----

/** A field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...), or NaN. */
export function procStatusKb(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU seconds used so far by a live process. */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

/** Machine-wide CPU jiffies from /proc/stat: busy (user..softirq), idle (+iowait), steal. */
export function systemCpu(): { busy: number; idle: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** The soft limit on open files of this process (children inherit it). */
export function openFileLimit(): number {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The median (of an even count: the mean of the middle two); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A Markdown table (the first row is the header; columns after the first right-aligned). */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

/** A progress line on stderr, with the time of day. */
export const log = (msg: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** With --help: prints the script's header comment (its usage) and exits. */
export function helpIfAsked(asked: boolean | undefined, scriptUrl: string): void {
  if (!asked) return;
  console.log(readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\nimport ')[0]!.replace(/^\/\/ ?/gm, ''));
  process.exit(0);
}

/** Reads parsed string options as integers of at least `min`, or stops naming the option. */
export function integerOptions<K extends string>(argv: Partial<Record<K, unknown>>): (name: K, min?: number) => number {
  return (name, min = 0) => {
    const n = Number(argv[name]);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
}

