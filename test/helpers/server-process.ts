// Runs `webpushd serve` as a child process, the way users run it, for tests that need a real
// process boundary (restarts, kill -9, a browser that connects over the network).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

// A test process that dies must not leave servers behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) signal(proc, 'SIGKILL');
});

/** Started through a launcher (`command`): npx exits on SIGTERM without passing it on to the server. */
const launched = new WeakSet<ChildProcess>();

/** Signals the server; for a launcher, its whole process group. */
function signal(proc: ChildProcess, sig: NodeJS.Signals): void {
  if (launched.has(proc) && proc.pid !== undefined) process.kill(-proc.pid, sig);
  else proc.kill(sig);
}

export interface ServerProcess {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly proc: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (no chance to flush anything) and wait for exit. */
  kill9(): Promise<void>;
}

export interface ServerProcessOptions {
  dataDir?: string;
  port?: number;
  args?: string[];
  env?: Record<string, string>;
  /** https instead of http (then pass --tls-cert/--tls-key in args). */
  scheme?: 'http' | 'https';
  /**
   * The program and its first arguments instead of this checkout's CLI (e.g. an installed
   * `npx webpushd`): it leads a process group, which is signalled as a whole.
   */
  command?: string[];
  cwd?: string;
}

export async function startServerProcess(opts: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'webpushd-test-'));
  const port = opts.port ?? (await freePort());
  const scheme = opts.scheme ?? 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const [program, ...first] = opts.command ?? [process.execPath, MAIN];
  const proc = spawn(
    program!,
    [...first, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...(opts.args ?? [])],
    { cwd: opts.cwd, env: { ...process.env, LOG_LEVEL: 'info', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.command !== undefined },
  );
  if (opts.command) launched.add(proc);
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  running.add(proc);
  let gone = false;
  // a launcher's server holds the pipes until it exits itself: they close when the group is gone
  const exited = new Promise<void>((resolve) =>
    proc.once(opts.command ? 'close' : 'exit', () => {
      gone = true;
      running.delete(proc);
      resolve();
    }),
  );

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`webpushd exited early (${proc.exitCode}):\n${out}`);
    if (out.includes('"listening"')) break;
    if (Date.now() > deadline) {
      signal(proc, 'SIGKILL');
      throw new Error(`webpushd did not start within 10 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const stopWith = async (sig: NodeJS.Signals) => {
    if (!gone) signal(proc, sig);
    await exited;
  };
  return {
    url,
    port,
    dataDir,
    proc,
    output: () => out,
    stop: () => stopWith('SIGTERM'),
    kill9: () => stopWith('SIGKILL'),
  };
}
