// What each abuse test (test/integration/abuse-*.test.ts) asserts besides the attacker's refusal
// (docs/SECURITY.md): the server process lives, its memory stays under a stated bound, and a
// well-behaved client on another connection keeps its service (/health, a push round trip).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { aes128gcmBody, markerOf } from './bodies.ts';
import type { ServerProcess } from './server-process.ts';
import { TestUserAgent } from './ua-client.ts';
import { within } from './wait.ts';

/**
 * The environment of a server process whose RSS an attack is measured by: V8's young generation
 * bounded, so the growth is what the attack makes the server hold, not how far the semi-spaces
 * grew meanwhile (by default they grow to ~100 MB under any load and stay resident).
 */
export const BOUNDED_YOUNG_GENERATION = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-semi-space-size=8`.trim() };

/** Resident memory of a process, in bytes (Linux /proc). */
export function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, `no VmRSS for process ${pid}`);
  return Number(m[1]) * 1024;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * This process's JS heap in use after a full collection, in bytes: what an in-process server
 * keeps. (Its RSS also holds the allocator's high-water mark of buffers long freed.)
 */
export function heapAfterGc(): number {
  gc();
  return process.memoryUsage().heapUsed;
}

/** Throws, with the end of its output, when the server process has exited. */
export function assertAlive(server: ServerProcess): void {
  assert.ok(server.proc.exitCode === null && server.proc.signalCode === null, `webpushd exited:\n${server.output().slice(-4000)}`);
}

/** A WebSocket user agent subscribed on its own connection, and an application server sending to it. */
export interface Bystander {
  /** /health answers 200 and a push reaches the user agent, each within a few seconds. */
  check(what: string): Promise<void>;
  close(): Promise<void>;
}

const SERVICE_MS = 5_000;

export async function bystander(url: string): Promise<Bystander> {
  const ua = await TestUserAgent.connect(`${url.replace(/^http/, 'ws')}/`);
  await ua.hello();
  const channelID = randomUUID();
  const endpoint = String((await ua.register(channelID)).pushEndpoint);
  let n = 0;
  return {
    async check(what) {
      const health = await within(fetch(`${url}/health`), `${what}: /health`, SERVICE_MS);
      assert.equal(health.status, 200, `${what}: /health`);
      await health.arrayBuffer();
      const marker = `bystander-${++n}`;
      const sent = await within(
        fetch(endpoint, { method: 'POST', headers: { ttl: '60', 'content-encoding': 'aes128gcm' }, body: aes128gcmBody(marker) }),
        `${what}: a push to the bystander`,
        SERVICE_MS,
      );
      assert.equal(sent.status, 201, `${what}: a push to the bystander: ${await sent.text()}`);
      const frame = await ua.next('notification', SERVICE_MS);
      assert.equal(markerOf(Buffer.from(String(frame.data), 'base64url')), marker, `${what}: the bystander's message`);
      ua.ack(channelID, String(frame.version));
    },
    async close() {
      await ua.close();
    },
  };
}

/**
 * Runs `attack(end)` for `ms` while every bystander is checked over and over (a user agent's
 * pace, under the per-subscription rate limit); then the server must be alive and each bystander
 * served once more. Returns the server's peak RSS growth during the attack.
 */
export async function underAttack(
  server: ServerProcess,
  name: string,
  bystanders: Bystander[],
  ms: number,
  attack: (end: number) => Promise<void>,
): Promise<number> {
  const before = rssOf(server.proc.pid!);
  const end = Date.now() + ms;
  let peak = before;
  const sampling = setInterval(() => (peak = Math.max(peak, rssOf(server.proc.pid!))), 100);
  try {
    const attacking = attack(end);
    while (Date.now() < end) {
      for (const b of bystanders) await b.check(`during ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await attacking;
  } finally {
    clearInterval(sampling);
  }
  assertAlive(server);
  for (const b of bystanders) await b.check(`after ${name}`);
  return peak - before;
}

