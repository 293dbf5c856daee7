// A redis-server of the test's own, on a free loopback port with its own data dir and an AOF
// fsynced on every write (never the machine's shared 127.0.0.1:6379, which keeps nothing on
// disk). Tests that need it skip where redis-server is missing, and fail under CI.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';
import { skipUnlessInstalled } from './required-tool.ts';

const installed = spawnSync('redis-server', ['--version']).status === 0;

/** The `skip` option of a test or suite that needs redis-server. */
export const skipWithoutRedis = (): false | string =>
  skipUnlessInstalled(installed, 'redis-server is not installed (apt-get install redis-server)');

// A test process that dies must not leave servers behind.
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

export interface RedisServer {
  readonly port: number;
  readonly dir: string;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Everything it logged so far. */
  output(): string;
  /** SIGKILL (nothing flushed beyond what its AOF already holds) and wait for the exit. */
  kill9(): Promise<void>;
  /** Starts again on the same port and data dir (after kill9 or stop): it loads its AOF. */
  restart(): Promise<void>;
  /** SIGTERM, wait, and remove the data dir. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** More `--name value` settings, e.g. ['--maxmemory', '2mb']. */
  args?: string[];
}

/** Resolves once the server answers PING on `port`; rejects after `ms`. */
async function waitForPing(port: number, proc: ChildProcess, output: () => string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`redis-server exited early:\n${output()}`);
    if (await pong(port)) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within ${ms} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether PING is answered PONG (not LOADING, not refused). */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) socket.end();
    });
    socket.once('close', () => resolve(reply.startsWith('+PONG')));
    socket.once('error', () => resolve(false));
  });
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'webpushd-redis-'));
  let out = '';
  let proc: ChildProcess;
  let exited: Promise<void>;
  const launch = async () => {
    proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', ...(opts.args ?? [])],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    running.add(proc);
    // a server a test forgot to stop must not keep the test process alive (the exit hook kills it)
    proc.unref();
    for (const pipe of [proc.stdout, proc.stderr]) (pipe as unknown as Socket | null)?.unref();
    const p = proc;
    exited = new Promise((resolve) => p.once('exit', () => resolve(void running.delete(p))));
    await waitForPing(port, proc, () => out);
  };
  const signal = async (sig: NodeJS.Signals) => {
    // waited for: its exit must keep the test process alive until then
    proc.ref();
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(sig);
    await exited;
  };
  await launch();
  return {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    output: () => out,
    kill9: () => signal('SIGKILL'),
    restart: launch,
    async stop() {
      await signal('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisClusterServers {
  /** Its primaries, in the order their slots run (each a RedisServer of its own). */
  readonly nodes: readonly RedisServer[];
  /** redis-cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3 (the `--store` form of seed nodes) */
  readonly url: string;
  /** Stops every node and removes their data dirs. */
  stop(): Promise<void>;
}

/** `redis-cli` and its arguments on `port`; its output (it exits 0 on error replies too). */
function redisCli(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.once('error', reject);
    proc.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`redis-cli ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

/**
 * A Redis Cluster of `primaries` primaries and no replicas (`redis-cli --cluster create`), each
 * node on a free port with its own data dir and AOF; resolves once every node says
 * `cluster_state:ok`.
 */
export async function startRedisCluster(primaries = 3, opts: RedisServerOptions = {}): Promise<RedisClusterServers> {
  const nodes = await Promise.all(
    Array.from({ length: primaries }, () =>
      startRedisServer({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', ...(opts.args ?? [])] }),
    ),
  );
  const stop = async () => void (await Promise.all(nodes.map((n) => n.stop())));
  try {
    await redisCli(['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    const deadline = Date.now() + 10_000;
    for (const node of nodes) {
      while (!(await redisCli(['-p', String(node.port), 'CLUSTER', 'INFO'])).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok within 10 s:\n${node.output()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, url: `redis-cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`, stop };
}
