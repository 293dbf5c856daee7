// Process and temp-dir bookkeeping shared by the benchmarks: everything a benchmark starts is
// stopped, and every temp dir removed, when it ends or is interrupted.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, type Reply } from './common.ts';

export { freePort } from '../test/helpers/net.ts';

const children = new Set<ChildProcess>();
const tempDirs: string[] = [];
let cleaningUp: Promise<void> | null = null;

export function track<T extends ChildProcess>(proc: T): T {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

export function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

export async function terminate(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGTERM');
  const done = exited(proc);
  if (await Promise.race([done.then(() => true), sleep(graceMs).then(() => false)])) return;
  proc.kill('SIGKILL');
  await done;
}

export function cleanup(): Promise<void> {
  cleaningUp ??= (async () => {
    await Promise.all([...children].map((c) => terminate(c, 3000)));
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  })();
  return cleaningUp;
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** GET /health answers 200. */
export function healthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.setTimeout(1000, () => req.destroy());
  });
}

/** Stops everything on SIGINT, SIGTERM and SIGHUP. */
export function cleanupOnSignals(): void {
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process started by the benchmark`);
      void cleanup().finally(() => process.exit(130));
    });
  }
}

/** A helper forked with an IPC channel (bench/ua-swarm.ts, bench/probe.ts, …): request/reply. */
export class Helper {
  readonly proc: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;

  constructor(script: string) {
    this.proc = track(fork(script, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.proc.on('message', (raw) => {
      const r = raw as Reply;
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (r.ok) p.resolve(r.body);
      else p.reject(new Error(`${script}: ${r.error}`));
    });
    this.proc.once('exit', (code, signal) => {
      for (const p of this.#pending.values()) p.reject(new Error(`${script} exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  request<T>(body: Record<string, unknown>): Promise<T> {
    const id = ++this.#next;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ id, body });
    });
  }

  async close(): Promise<void> {
    if (this.proc.connected) {
      await Promise.race([this.request({ type: 'close' }).catch(() => {}), sleep(5000)]);
      this.proc.disconnect();
    }
    await Promise.race([exited(this.proc), sleep(3000)]);
    await terminate(this.proc, 1000);
  }
}
