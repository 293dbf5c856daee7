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
  for (const proc of running) proc.kill('SIGKILL');
});

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
}

export async function startServerProcess(opts: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'webpushd-test-'));
  const port = opts.port ?? (await freePort());
  const scheme = opts.scheme ?? 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const proc = spawn(
    process.execPath,
    [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, ...(opts.args ?? [])],
    { env: { ...process.env, LOG_LEVEL: 'info', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  running.add(proc);
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      running.delete(proc);
      resolve();
    }),
  );

  const deadline = Date.now() + 10_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`webpushd exited early (${proc.exitCode}):\n${out}`);
    if (out.includes('"listening"')) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`webpushd did not start within 10 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const stopWith = async (signal: NodeJS.Signals) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
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
