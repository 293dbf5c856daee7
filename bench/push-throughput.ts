// End-to-end benchmark of webpushd against a minimal in-memory relay (bench/baseline-relay.ts).
//
//   node_modules/.bin/node bench/push-throughput.ts [options]      (also: npm run bench -- [options])
//     --connections N        user agents receiving the load (1000)
//     --messages M           messages per load round (50000)
//     --idle-connections K   idle user agents for the memory phase, 0 skips it (20000; capped
//                            by the open-file limit of the server process)
//     --sync full|normal|both  webpushd's --sync mode(s) to measure (full)
//     --store sqlite|redis|both  webpushd's store: its SQLite file (in each --sync mode), and/or
//                            a redis-server of its own (appendonly, appendfsync always; also
//                            reports Redis function calls per acknowledged message) (sqlite)
//     --clients C --streams S  h2load -c (50, adjusted so every endpoint gets M/N) and -m (4)
//     --probe-rate P         latency probe messages per second (20)
//     --probe-seconds T      length of the no-load latency measurement (10)
//     --warmup W             messages sent before measuring (5000)
//     --repeat R             load rounds per server, medians reported (3)
//     --idle-per-process n   idle user agents per load process (5000)
//     --skip-baseline --skip-webpushd   measure one side only
//     --cpu-prof             profile the server processes (saved under bench/profiles/, summarized)
//     --json FILE            also write every figure as JSON
//     --webpushd-main FILE   run another checkout's src/cli/main.ts (default: this tree's)
//     --server-node-flags F  Node.js flags for both servers, e.g. --max-semi-space-size=2: with a
//                            young generation that cannot grow, the memory phase counts what the
//                            connections hold rather than how far the semi-spaces grew meanwhile
//
// Every party is a process of its own: the server under test (webpushd, or the baseline), the
// user agents (bench/ua-swarm.ts), the latency probe (bench/probe.ts) and the application server
// (h2load --h1). Phases, for the baseline and then for webpushd in each sync mode:
//   1. connect N user agents (hello + register), collect their push endpoints;
//   2. warm up with W messages;
//   3. latency with no other load: the probe posts P messages/s to its own user agent for T s;
//   4. throughput, repeated R times (medians reported): h2load posts M messages spread over the
//      N endpoints while the probe keeps posting; accepted/s from h2load's per-request log
//      (201s / h2load's wall time), delivered-and-acknowledged/s from the user agents
//      (M / first-to-last ack), latency under load from the probe, the server's event-loop
//      delay (p99 and max of monitorEventLoopDelay, read from its /metrics: webpushd's admin
//      listener, the relay's own) over the round, and the server's CPU time per message (all its
//      threads: the figure least moved by other load on the machine);
// and then, once per target, on a fresh server process:
//   5. memory per idle connection: RSS (and the heap after a forced GC, via bench/mem-report.ts)
//      before and after K more idle user agents (hello + one register each).
// All child processes and temp dirs are removed at the end, also on failure or Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import {
  aes128gcmBody,
  helpIfAsked,
  integerOptions,
  log,
  median,
  openFds,
  openFileLimit,
  procCpuSeconds,
  procStatusKb,
  sleep,
  summarize,
  systemCpu,
  table,
  type LatencySummary,
} from './common.ts';
import { formatProfileSummary, summarizeProfile } from './cpuprofile-summary.ts';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.ts';
import { Helper, cleanup, cleanupOnSignals, exited, freePort, healthy, tempDir, terminate, track } from './processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN_DEFAULT = join(ROOT, 'src/cli/main.ts');
const RELAY = join(ROOT, 'bench/baseline-relay.ts');
const SWARM = join(ROOT, 'bench/ua-swarm.ts');
const PROBE = join(ROOT, 'bench/probe.ts');
const MEM_REPORT = pathToFileURL(join(ROOT, 'bench/mem-report.ts')).href;

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '50000' },
    'idle-connections': { type: 'string', default: '20000' },
    sync: { type: 'string', default: 'full' },
    store: { type: 'string', default: 'sqlite' },
    clients: { type: 'string', default: '50' },
    streams: { type: 'string', default: '4' },
    'probe-rate': { type: 'string', default: '20' },
    'probe-seconds': { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5000' },
    repeat: { type: 'string', default: '3' },
    'idle-per-process': { type: 'string', default: '5000' },
    'skip-baseline': { type: 'boolean', default: false },
    'skip-webpushd': { type: 'boolean', default: false },
    'cpu-prof': { type: 'boolean', default: false },
    json: { type: 'string' },
    'webpushd-main': { type: 'string' },
    'server-node-flags': { type: 'string', default: '' },
    help: { type: 'boolean', default: false },
  },
});

helpIfAsked(argv.help, import.meta.url);

const int = integerOptions(argv);
const N = int('connections', 1);
const M = int('messages', 1);
const K = int('idle-connections');
const CLIENTS = int('clients', 1);
const STREAMS = int('streams', 1);
const PROBE_RATE = int('probe-rate', 1);
const PROBE_SECONDS = int('probe-seconds', 1);
const WARMUP = int('warmup');
const REPEAT = int('repeat', 1);
const IDLE_PER_PROCESS = int('idle-per-process', 100);
const SYNCS: ('full' | 'normal')[] =
  argv.sync === 'both' ? ['full', 'normal'] : argv.sync === 'full' || argv.sync === 'normal' ? [argv.sync] : [];
if (SYNCS.length === 0) throw new Error('--sync must be full, normal or both');
if (!['sqlite', 'redis', 'both'].includes(argv.store!)) throw new Error('--store must be sqlite, redis or both');
const ON_SQLITE = argv.store !== 'redis';
const ON_REDIS = argv.store !== 'sqlite';
/** Connections kept open in the server before the "before" reading of the memory phase. */
const WARM_CONNECTIONS = 100;
/** The webpushd entry point: this tree's, or another checkout's (A/B comparisons of a change). */
const MAIN = argv['webpushd-main'] ?? MAIN_DEFAULT;
const SERVER_NODE_FLAGS = argv['server-node-flags'].split(' ').filter((f) => f !== '');

type Kind = 'webpushd' | 'baseline';

cleanupOnSignals();


// ---- servers under test ----

interface ServerHandle {
  kind: Kind;
  label: string;
  proc: ChildProcess;
  pid: number;
  port: number;
  wsUrl: string;
  /** Prometheus text with nodejs_eventloop_lag_p99_seconds and _max_seconds, reset by each read. */
  metricsUrl: string;
  dataDir: string | null;
  output(): string;
  stop(): Promise<void>;
}

interface StartOptions {
  sync?: 'full' | 'normal';
  /** The Redis to keep the store in (instead of the data dir's SQLite file). */
  redis?: RedisServer;
  memFile?: string;
  cpuProfDir?: string;
}

async function startServer(kind: Kind, o: StartOptions = {}): Promise<ServerHandle> {
  const port = await freePort();
  const nodeArgs = SERVER_NODE_FLAGS.slice();
  if (o.memFile) nodeArgs.push('--expose-gc', '--import', MEM_REPORT);
  if (o.cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`);
  let dataDir: string | null = null;
  let args: string[];
  let metricsUrl = `http://127.0.0.1:${port}/metrics`;
  if (kind === 'webpushd') {
    dataDir = tempDir('webpushd-bench-data-');
    const adminPort = await freePort();
    metricsUrl = `http://127.0.0.1:${adminPort}/metrics`;
    args = [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'];
    args.push('--admin-port', String(adminPort));
    if (o.redis) args.push('--store', o.redis.url);
    else args.push('--sync', o.sync ?? 'full');
  } else {
    args = [RELAY, '--host', '127.0.0.1', '--port', String(port)];
  }
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (o.memFile) env.BENCH_MEM_FILE = o.memFile;
  const proc = track(spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-20_000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const deadline = Date.now() + 15_000;
  while (!(await healthy(port))) {
    if (proc.exitCode !== null) throw new Error(`${kind} exited early (${proc.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`${kind} did not answer /health within 15 s:\n${out}`);
    await sleep(50);
  }
  return {
    kind,
    label: kind === 'webpushd' ? (o.redis ? 'webpushd redis' : `webpushd sync=${o.sync ?? 'full'}`) : 'baseline relay',
    proc,
    pid: proc.pid!,
    port,
    wsUrl: `ws://127.0.0.1:${port}/`,
    metricsUrl,
    dataDir,
    output: () => out,
    stop: () => terminate(proc, 15_000),
  };
}

/** Forces a GC in a server started with `memFile` and returns its memory figures. */
async function memReport(server: ServerHandle, memFile: string): Promise<MemReport> {
  rmSync(memFile, { force: true });
  server.proc.kill('SIGUSR2');
  const deadline = Date.now() + 30_000;
  while (!existsSync(memFile)) {
    if (Date.now() > deadline) throw new Error('no memory report from the server within 30 s');
    await sleep(50);
  }
  return JSON.parse(readFileSync(memFile, 'utf8')) as MemReport;
}

interface MemReport {
  gc: boolean;
  rssBeforeKb: number;
  rssAfterKb: number;
  before: NodeJS.MemoryUsage;
  after: NodeJS.MemoryUsage;
  mallocedKb: number;
  spacesKb: Record<string, number>;
  rssByKindKb: Record<string, number>;
  workersKb: Record<string, number>;
}

// ---- h2load, the application server ----

interface H2Result {
  seconds: number;
  total: number;
  status: Record<string, number>;
  created: number;
  failed: number;
  errored: number;
  acceptedPerSec: number;
  responseMs: LatencySummary;
  /** CPU seconds h2load used (last reading before it exited). */
  cpuSeconds: number;
  stdout: string;
  command: string;
}

let bodyFile = '';

/** Picks the h2load client count: when it divides the per-endpoint share, every client walks the
 * same (shuffled) endpoint list a whole number of times, so each endpoint gets exactly M/N. */
function planClients(messages: number, endpoints: number, wanted: number): number {
  if (messages % endpoints !== 0) return Math.min(wanted, messages);
  const perEndpoint = messages / endpoints;
  let best = 1;
  for (let c = 1; c <= perEndpoint; c++) {
    if (perEndpoint % c === 0 && Math.abs(c - wanted) < Math.abs(best - wanted)) best = c;
  }
  return best;
}

async function runH2load(endpoints: readonly string[], messages: number, dir: string, fixedClients?: number): Promise<H2Result> {
  const uris = [...endpoints];
  for (let i = uris.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [uris[i], uris[j]] = [uris[j]!, uris[i]!];
  }
  const urisFile = join(dir, 'uris.txt');
  const logFile = join(dir, 'h2load.log');
  writeFileSync(urisFile, `${uris.join('\n')}\n`);
  rmSync(logFile, { force: true });
  const clients = fixedClients ?? planClients(messages, endpoints.length, CLIENTS);
  const args = [
    '--h1',
    '-n', String(messages),
    '-c', String(clients),
    '-m', String(STREAMS),
    '-t', '1',
    '-i', urisFile,
    '-d', bodyFile,
    '-H', 'TTL: 60',
    '-H', 'Content-Encoding: aes128gcm',
    '--log-file', logFile,
  ];
  const proc = track(spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
  let cpuSeconds = 0;
  const poll = setInterval(() => {
    const s = procCpuSeconds(proc.pid!);
    if (Number.isFinite(s)) cpuSeconds = s;
  }, 50);
  await exited(proc);
  clearInterval(poll);
  if (proc.exitCode !== 0) throw new Error(`h2load failed (${proc.exitCode ?? proc.signalCode}):\n${stdout}`);
  const fin = /finished in ([\d.]+)(s|ms|us),/.exec(stdout);
  if (!fin) throw new Error(`cannot read h2load's output:\n${stdout}`);
  const seconds = Number(fin[1]) / (fin[2] === 's' ? 1 : fin[2] === 'ms' ? 1e3 : 1e6);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const status: Record<string, number> = {};
  const times: number[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line) continue;
    const [, code, us] = line.split('\t');
    status[code!] = (status[code!] ?? 0) + 1;
    times.push(Number(us) / 1000);
  }
  const created = status['201'] ?? 0;
  return {
    seconds,
    total: messages,
    status,
    created,
    failed: Number(req?.[5] ?? Number.NaN),
    errored: Number(req?.[6] ?? Number.NaN),
    acceptedPerSec: created / seconds,
    responseMs: summarize(times),
    cpuSeconds,
    stdout,
    command: `h2load ${args.map((a) => (/[\s:]/.test(a) ? `'${a}'` : a)).join(' ')}`,
  };
}

// ---- phases ----

interface AckWindow {
  total: number;
  acked: number;
  duplicates: number;
  firstAckAt: number;
  lastAckAt: number;
  perUaMin: number;
  perUaMax: number;
  closes: number;
  timedOut: boolean;
}

interface ProbeResult {
  samples: number[];
  responseTimes: number[];
  lost: number;
  statusErrors: number;
  lastError: string;
}

/** The sampling interval of both servers' event-loop delay monitor (prom-client's default precision, the relay's). */
const LOOP_SAMPLING_MS = 10;

/** The server's event-loop delay since the last read (the read resets it). */
async function loopDelay(server: ServerHandle): Promise<{ p99Ms: number; maxMs: number }> {
  const text = await (await fetch(server.metricsUrl)).text();
  const gauge = (name: string) => 1000 * Number(new RegExp(`^${name} ([\\d.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { p99Ms: gauge('nodejs_eventloop_lag_p99_seconds'), maxMs: gauge('nodejs_eventloop_lag_max_seconds') };
}

/** One load round: M messages through h2load while the probe keeps posting. */
interface Round {
  h2load: H2Result;
  acks: AckWindow;
  /** acked / (last ack - first ack), measured by the user agents. */
  ackedPerSec: number;
  /** acked / (last ack - start of h2load): the end-to-end rate an application would see. */
  endToEndPerSec: number;
  loadSamples: number[];
  loadProbe: { lost: number; errors: number };
  /** The server's event-loop delay over the round (ms). */
  loopDelay: { p99Ms: number; maxMs: number };
  /** CPU time of the server process (all its threads) over the round. */
  serverCpuSeconds: number;
  serverCpuPct: number;
  swarmCpuPct: number;
  h2loadCpuPct: number;
  /** Machine-wide busy CPU during the load window, in % of one core (2 cores = 200). */
  machineCpuPct: number;
  stealPct: number;
}

interface ThroughputResult {
  label: string;
  kind: Kind;
  sync: string | null;
  connectMs: number;
  rounds: Round[];
  idleLatency: LatencySummary;
  idleProbe: { lost: number; errors: number };
  /** Probe samples of all rounds together. */
  loadLatency: LatencySummary;
  storedAfter: number | null;
  /** On Redis: function calls (FCALL, FCALL_RO) over the load rounds, per acknowledged message. */
  redisCallsPerMessage: number | null;
  /** The CPU profiles kept, one per thread of the server. */
  profiles: string[];
}

/** The median of a per-round figure. */
const med = (r: ThroughputResult, pick: (x: Round) => number) => median(r.rounds.map(pick));

function countStored(dataDir: string): number | null {
  try {
    const db = new DatabaseSync(join(dataDir, 'webpushd.db'), { readOnly: true });
    const { n } = db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number };
    db.close();
    return n;
  } catch (err) {
    log(`could not count stored messages: ${(err as Error).message}`);
    return null;
  }
}

async function loadRound(server: ServerHandle, swarm: Helper, probe: Helper, endpoints: string[], work: string): Promise<Round> {
  const acksDone = swarm.request<AckWindow>({ type: 'expect', total: M, timeoutMs: 30 * 60_000 });
  const cpu0 = procCpuSeconds(server.pid);
  const swarmCpu0 = procCpuSeconds(swarm.proc.pid!);
  const sys0 = systemCpu();
  await loopDelay(server);
  const started = Date.now();
  await probe.request({ type: 'start', rate: PROBE_RATE });
  const h2 = await runH2load(endpoints, M, work);
  // Deliveries may trail the 201s: give them a minute after h2load, then take what arrived.
  const lateTimer = setTimeout(() => void swarm.request({ type: 'finish' }).catch(() => {}), 60_000);
  const acks = await acksDone;
  clearTimeout(lateTimer);
  const delay = await loopDelay(server);
  const elapsed = (Date.now() - started) / 1000;
  const serverCpuSeconds = procCpuSeconds(server.pid) - cpu0;
  const serverCpuPct = (100 * serverCpuSeconds) / elapsed;
  const swarmCpuPct = (100 * (procCpuSeconds(swarm.proc.pid!) - swarmCpu0)) / elapsed;
  const sys1 = systemCpu();
  const jiffies = sys1.busy + sys1.idle + sys1.steal - (sys0.busy + sys0.idle + sys0.steal);
  const cores = cpus().length;
  const load = await probe.request<ProbeResult>({ type: 'stop', drainMs: 5000 });
  return {
    h2load: h2,
    acks,
    ackedPerSec: acks.acked / ((acks.lastAckAt - acks.firstAckAt) / 1000),
    endToEndPerSec: acks.acked / ((acks.lastAckAt - started) / 1000),
    loadSamples: load.samples,
    loadProbe: { lost: load.lost, errors: load.statusErrors },
    loopDelay: delay,
    serverCpuSeconds,
    serverCpuPct,
    swarmCpuPct,
    h2loadCpuPct: (100 * h2.cpuSeconds) / elapsed,
    machineCpuPct: (100 * cores * (sys1.busy - sys0.busy)) / jiffies,
    stealPct: (100 * cores * (sys1.steal - sys0.steal)) / jiffies,
  };
}

/**
 * Function calls (FCALL, FCALL_RO) a Redis ran since it started, from INFO commandstats (which
 * also counts the commands a function runs: only the calls themselves are the store's requests).
 */
async function redisCalls(redis: RedisServer): Promise<number> {
  const stats = await new Promise<string>((resolve, reject) => {
    const cli = spawn('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.once('error', reject);
    cli.once('exit', () => resolve(out));
  });
  return [...stats.matchAll(/^cmdstat_fcall(?:_ro)?:calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** Messages stored now, by the server's own gauge (on Redis the store is not a file to count). */
async function storedByGauge(server: ServerHandle): Promise<number | null> {
  const n = /^webpushd_messages_stored (\d+)$/m.exec(await (await fetch(server.metricsUrl)).text())?.[1];
  return n === undefined ? null : Number(n);
}

async function runThroughput(kind: Kind, sync: 'full' | 'normal' | null, work: string, redis?: RedisServer): Promise<ThroughputResult> {
  const profDir = argv['cpu-prof'] ? tempDir('webpushd-bench-prof-') : undefined;
  const server = await startServer(kind, { ...(sync ? { sync } : {}), ...(redis ? { redis } : {}), ...(profDir ? { cpuProfDir: profDir } : {}) });
  log(`${server.label}: pid ${server.pid}, port ${server.port}`);
  const swarm = new Helper(SWARM);
  const probe = new Helper(PROBE);
  let result: ThroughputResult | undefined;
  try {
    const conn = await swarm.request<{ endpoints: string[]; ms: number; retried: number }>({
      type: 'connect',
      url: server.wsUrl,
      count: N,
      concurrency: 100,
      returnEndpoints: true,
    });
    log(`${server.label}: ${N} user agents connected and registered in ${conn.ms} ms (${conn.retried} retries)`);
    await probe.request({ type: 'connect', url: server.wsUrl });

    if (WARMUP > 0) {
      const warm = swarm.request<AckWindow>({ type: 'expect', total: WARMUP, timeoutMs: 120_000 });
      const h = await runH2load(conn.endpoints, WARMUP, work, Math.min(CLIENTS, WARMUP));
      const w = await warm;
      log(`${server.label}: warm-up ${WARMUP} messages, ${h.acceptedPerSec.toFixed(0)} accepted/s, ${w.acked} acked`);
      await sleep(1000);
    }

    await probe.request({ type: 'start', rate: PROBE_RATE });
    await sleep(PROBE_SECONDS * 1000);
    const idle = await probe.request<ProbeResult>({ type: 'stop', drainMs: 5000 });
    const idleLatency = summarize(idle.samples);
    log(`${server.label}: no-load latency p50 ${idleLatency.p50.toFixed(2)} ms, p99 ${idleLatency.p99.toFixed(2)} ms (${idleLatency.n} samples)`);

    const rounds: Round[] = [];
    const callsBefore = redis ? await redisCalls(redis) : 0;
    for (let round = 1; round <= REPEAT; round++) {
      rounds.push(await loadRound(server, swarm, probe, conn.endpoints, work));
      const r = rounds.at(-1)!;
      const l = summarize(r.loadSamples);
      log(
        `${server.label}: round ${round}/${REPEAT}: ${r.h2load.acceptedPerSec.toFixed(0)} accepted/s ${JSON.stringify(r.h2load.status)}; ` +
          `${r.acks.acked}/${M} acked${r.acks.timedOut ? ' (TIMED OUT)' : ''}, ${r.ackedPerSec.toFixed(0)}/s; ` +
          `latency under load p50 ${l.p50.toFixed(1)} ms p99 ${l.p99.toFixed(1)} ms; event-loop delay p99 ${r.loopDelay.p99Ms.toFixed(1)} ms; ` +
          `server CPU ${r.serverCpuPct.toFixed(0)}%`,
      );
      if (round < REPEAT) await sleep(1000);
    }
    const acked = rounds.reduce((sum, r) => sum + r.acks.acked, 0);
    // the probe's messages count too: a little more than the load's own
    const redisCallsPerMessage = redis ? ((await redisCalls(redis)) - callsBefore) / acked : null;
    if (redisCallsPerMessage !== null) log(`${server.label}: ${redisCallsPerMessage.toFixed(2)} Redis function calls per acknowledged message`);
    let storedAfter: number | null = null;
    if (server.dataDir) {
      await sleep(1000);
      storedAfter = redis ? await storedByGauge(server) : countStored(server.dataDir);
    }
    result = {
      label: server.label,
      kind,
      sync,
      connectMs: conn.ms,
      rounds,
      idleLatency,
      idleProbe: { lost: idle.lost, errors: idle.statusErrors },
      loadLatency: summarize(rounds.flatMap((r) => r.loadSamples)),
      storedAfter,
      redisCallsPerMessage,
      profiles: [],
    };
    return result;
  } finally {
    await Promise.all([swarm.close(), probe.close()]);
    await server.stop();
    if (profDir) {
      // one file per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, thread 0 the main one
      const files = readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile'));
      if (files.length === 0) log('no CPU profile was written');
      const keepDir = join(ROOT, 'bench/profiles');
      mkdirSync(keepDir, { recursive: true });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      for (const file of files) {
        const tid = Number(file.split('.').at(-3));
        const thread = tid === 0 ? 'main thread' : `worker thread ${tid}`;
        const kept = join(keepDir, `${kind}${sync ? `-sync-${sync}` : ''}-${stamp}${tid === 0 ? '' : `-thread-${tid}`}.cpuprofile`);
        writeFileSync(kept, readFileSync(join(profDir, file)));
        result?.profiles.push(kept);
        console.log(`\nCPU profile of ${server.label}, ${thread} (whole process life): ${kept}\n${formatProfileSummary(summarizeProfile(kept, 25))}\n`);
      }
    }
  }
}

interface IdleResult {
  label: string;
  kind: Kind;
  connections: number;
  connectSeconds: number;
  rssBeforeKb: number;
  rssAfterKb: number;
  rssPerConnKb: number;
  /** After a forced full GC before and after. */
  gcRssPerConnKb: number;
  heapPerConnKb: number;
  externalPerConnKb: number;
  gcBefore: MemReport;
  gcAfter: MemReport;
}

async function runIdle(kind: Kind, sync: 'full' | 'normal', work: string): Promise<IdleResult> {
  const memFile = join(work, `mem-${kind}.json`);
  const server = await startServer(kind, { sync, memFile });
  const swarms: Helper[] = [];
  try {
    const fdLimit = Math.min(openFileLimit(), limitOf(server.pid));
    const room = fdLimit - openFds(server.pid) - WARM_CONNECTIONS - 64;
    const k = Math.min(K, room);
    if (k < K) log(`${server.label}: open-file limit ${fdLimit} leaves room for ${k} idle connections, not ${K}`);
    const warm = new Helper(SWARM);
    swarms.push(warm);
    await warm.request({ type: 'connect', url: server.wsUrl, count: WARM_CONNECTIONS, concurrency: 20 });
    await sleep(3000);
    const rssBeforeKb = procStatusKb(server.pid, 'VmRSS');
    const gcBefore = await memReport(server, memFile);
    await sleep(1000);
    const procs = Math.ceil(k / IDLE_PER_PROCESS);
    const started = Date.now();
    await Promise.all(
      Array.from({ length: procs }, (_, i) => {
        const h = new Helper(SWARM);
        swarms.push(h);
        const count = Math.floor(k / procs) + (i < k % procs ? 1 : 0);
        return h.request({ type: 'connect', url: server.wsUrl, count, concurrency: Math.max(8, Math.floor(200 / procs)) });
      }),
    );
    const connectSeconds = (Date.now() - started) / 1000;
    log(`${server.label}: ${k} idle user agents connected in ${connectSeconds.toFixed(1)} s from ${procs} processes`);
    await sleep(5000);
    const rssAfterKb = procStatusKb(server.pid, 'VmRSS');
    const gcAfter = await memReport(server, memFile);
    const per = (a: number, b: number) => (a - b) / k;
    const r: IdleResult = {
      label: server.label,
      kind,
      connections: k,
      connectSeconds,
      rssBeforeKb,
      rssAfterKb,
      rssPerConnKb: per(rssAfterKb, rssBeforeKb),
      gcRssPerConnKb: per(gcAfter.rssAfterKb, gcBefore.rssAfterKb),
      heapPerConnKb: per(gcAfter.after.heapUsed, gcBefore.after.heapUsed) / 1024,
      externalPerConnKb: per(gcAfter.after.external, gcBefore.after.external) / 1024,
      gcBefore,
      gcAfter,
    };
    log(
      `${server.label}: RSS ${rssBeforeKb} -> ${rssAfterKb} kB: ${r.rssPerConnKb.toFixed(2)} kB/connection ` +
        `(after forced GC ${r.gcRssPerConnKb.toFixed(2)}; JS heap ${r.heapPerConnKb.toFixed(2)}, external ${r.externalPerConnKb.toFixed(2)})`,
    );
    // where the RSS went (per connection, after the forced GC): the main heap's spaces as committed, RSS by kind of mapping
    const perKb = (a: Record<string, number>, b: Record<string, number>) =>
      Object.entries(a)
        .map(([name, kb]) => `${name} ${((kb - (b[name] ?? 0)) / k).toFixed(2)}`)
        .join(', ');
    log(`${server.label}: committed kB/connection: ${perKb(gcAfter.spacesKb, gcBefore.spacesKb)}`);
    log(`${server.label}: RSS kB/connection by mapping: ${perKb(gcAfter.rssByKindKb, gcBefore.rssByKindKb)}; worker heaps ${perKb(gcAfter.workersKb, gcBefore.workersKb)}`);
    return r;
  } finally {
    await Promise.all(swarms.map((s) => s.close()));
    await server.stop();
  }
}

function limitOf(pid: number): number {
  const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
}

// ---- report ----

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? `${(a / b).toFixed(2)}x` : 'n/a');


function report(base: ThroughputResult | undefined, runs: ThroughputResult[], idle: IdleResult[]): string {
  const cols = [...(base ? [base] : []), ...runs];
  const header = ['', ...cols.map((c) => c.label)];
  for (const r of runs) if (base) header.push(`${r.label.replace('webpushd ', '')} / baseline`);
  const row = (name: string, pick: (r: ThroughputResult) => number, fmt: (n: number) => string) => {
    const out = [name, ...cols.map((c) => fmt(pick(c)))];
    for (const r of runs) if (base) out.push(ratio(pick(r), pick(base)));
    return out;
  };
  const text = (name: string, pick: (r: ThroughputResult) => string) => {
    const out = [name, ...cols.map(pick)];
    for (const _ of runs) if (base) out.push('');
    return out;
  };
  const range = (pick: (x: Round) => number) => (r: ThroughputResult) => {
    const xs = r.rounds.map(pick);
    return `${f0(Math.min(...xs))} - ${f0(Math.max(...xs))}`;
  };
  const statuses = (r: ThroughputResult) => {
    const all: Record<string, number> = {};
    for (const x of r.rounds) for (const [k, v] of Object.entries(x.h2load.status)) all[k] = (all[k] ?? 0) + v;
    return Object.entries(all).map(([k, v]) => `${v} x ${k}`).join(', ');
  };
  const n = cols[0]?.rounds.length ?? 0;
  const rows = [
    header,
    row(`accepted/s (201s / h2load time), median of ${n}`, (r) => med(r, (x) => x.h2load.acceptedPerSec), f0),
    text('  min - max', range((x) => x.h2load.acceptedPerSec)),
    text('h2load statuses, all rounds', statuses),
    row(`delivered+acked/s (first..last ack), median of ${n}`, (r) => med(r, (x) => x.ackedPerSec), f0),
    text('  min - max', range((x) => x.ackedPerSec)),
    row('end to end/s (h2load start..last ack), median', (r) => med(r, (x) => x.endToEndPerSec), f0),
    text('acked / sent, duplicates, all rounds', (r) => {
      const acked = r.rounds.reduce((a, x) => a + x.acks.acked, 0);
      const dup = r.rounds.reduce((a, x) => a + x.acks.duplicates, 0);
      return `${acked}/${r.rounds.length * M}, ${dup}`;
    }),
    row('POST->201 p50 under load (ms), median', (r) => med(r, (x) => x.h2load.responseMs.p50), f1),
    row('POST->201 p99 under load (ms), median', (r) => med(r, (x) => x.h2load.responseMs.p99), f1),
    row('POST->notification p50, no load (ms)', (r) => r.idleLatency.p50, f2),
    row('POST->notification p99, no load (ms)', (r) => r.idleLatency.p99, f2),
    row('POST->notification p50, under load (ms)', (r) => r.loadLatency.p50, f1),
    row('POST->notification p99, under load (ms)', (r) => r.loadLatency.p99, f1),
    text('probe samples no load / under load', (r) => `${r.idleLatency.n} / ${r.loadLatency.n}`),
    row('server event-loop delay p99 under load (ms), median', (r) => med(r, (x) => x.loopDelay.p99Ms), f1),
    row('server event-loop delay max under load (ms), median', (r) => med(r, (x) => x.loopDelay.maxMs), f1),
    // monitorEventLoopDelay records the interval between its 10 ms samples: an idle process reads ~10 ms
    row('server event-loop delay p99 beyond the 10 ms sampling (ms)', (r) => med(r, (x) => x.loopDelay.p99Ms) - LOOP_SAMPLING_MS, f1),
    row('server CPU during load (% of a core)', (r) => med(r, (x) => x.serverCpuPct), f0),
    // what a message costs, whatever else the machine runs: steadier than rates on a busy machine
    row('server CPU per delivered message (µs), median', (r) => med(r, (x) => (1e6 * x.serverCpuSeconds) / x.acks.acked), f0),
    row('UA process CPU during load (% of a core)', (r) => med(r, (x) => x.swarmCpuPct), f0),
    row('h2load CPU during load (% of a core)', (r) => med(r, (x) => x.h2loadCpuPct), f0),
    row(`machine CPU busy during load (% of ${cpus().length}00)`, (r) => med(r, (x) => x.machineCpuPct), f0),
    text('messages left in store', (r) => (r.storedAfter === null ? '-' : String(r.storedAfter))),
  ];
  let out = table(rows);
  if (idle.length > 0) {
    const ib = idle.find((i) => i.kind === 'baseline');
    const iw = idle.find((i) => i.kind === 'webpushd');
    const irows = [['idle connections', ...idle.map((i) => `${i.label} (${i.connections})`), ...(ib && iw ? ['ratio'] : [])]];
    const irow = (name: string, pick: (i: IdleResult) => number, fmt: (n: number) => string) => [
      name,
      ...idle.map((i) => fmt(pick(i))),
      ...(ib && iw ? [ratio(pick(iw), pick(ib))] : []),
    ];
    irows.push(
      irow('RSS before (MB)', (i) => i.rssBeforeKb / 1024, f1),
      irow('RSS after (MB)', (i) => i.rssAfterKb / 1024, f1),
      irow('RSS delta per connection (kB)', (i) => i.rssPerConnKb, f2),
      irow('RSS delta per connection after forced GC (kB)', (i) => i.gcRssPerConnKb, f2),
      irow('JS heap used per connection (kB)', (i) => i.heapPerConnKb, f2),
      irow('external (Buffers) per connection (kB)', (i) => i.externalPerConnKb, f2),
      irow('connect + hello + register rate (/s)', (i) => i.connections / i.connectSeconds, f0),
    );
    out += `\n\n${table(irows)}`;
  }
  return out;
}

// ---- main ----

async function main(): Promise<void> {
  const work = tempDir('webpushd-bench-');
  bodyFile = join(work, 'body.bin');
  writeFileSync(bodyFile, aes128gcmBody(0));
  const command = `node_modules/.bin/node bench/push-throughput.ts ${process.argv.slice(2).join(' ')}`.trim();
  log(`${command}\n  node ${process.version}, ${cpus().length} CPUs, open-file limit ${openFileLimit()}, body ${statSync(bodyFile).size} bytes`);

  const runs: ThroughputResult[] = [];
  let base: ThroughputResult | undefined;
  if (!argv['skip-baseline']) base = await runThroughput('baseline', null, work);
  if (!argv['skip-webpushd'] && ON_SQLITE) for (const sync of SYNCS) runs.push(await runThroughput('webpushd', sync, work));
  if (!argv['skip-webpushd'] && ON_REDIS) {
    const redis = await startRedisServer();
    try {
      runs.push(await runThroughput('webpushd', null, work, redis));
    } finally {
      await redis.stop();
    }
  }
  const idle: IdleResult[] = [];
  if (K > 0) {
    if (!argv['skip-webpushd']) idle.push(await runIdle('webpushd', SYNCS[0]!, work));
    if (!argv['skip-baseline']) idle.push(await runIdle('baseline', SYNCS[0]!, work));
  }

  const h2cmd = (runs[0] ?? base)?.rounds[0]?.h2load.command.replace(/\S*uris\.txt/, '<uris.txt>').replace(/\S*body\.bin/, '<body.bin>').replace(/\S*h2load\.log/, '<log>');
  const text = report(base, runs, idle);
  console.log(`\n${command}\n(node ${process.version}, nproc ${cpus().length}; h2load: ${h2cmd})\n\n${text}\n`);
  console.log(`aims: >= 10,000 delivered+acked/s; <= 10 kB per idle connection at 20,000 connections`);
  const problems: string[] = [];
  for (const r of [...(base ? [base] : []), ...runs]) {
    r.rounds.forEach((x, i) => {
      const other = Object.entries(x.h2load.status).filter(([code]) => code !== '201');
      if (other.length > 0 || x.h2load.created !== M) problems.push(`${r.label} round ${i + 1}: statuses ${JSON.stringify(x.h2load.status)}`);
      if (x.acks.acked !== M) problems.push(`${r.label} round ${i + 1}: ${x.acks.acked}/${M} acknowledged`);
      if (x.acks.duplicates > 0) problems.push(`${r.label} round ${i + 1}: ${x.acks.duplicates} duplicate notifications`);
    });
    if (r.storedAfter) problems.push(`${r.label}: ${r.storedAfter} messages still stored after every ack`);
    if (r.idleProbe.lost + r.idleProbe.errors > 0) problems.push(`${r.label}: probe lost ${r.idleProbe.lost}, errors ${r.idleProbe.errors} (no load)`);
    r.rounds.forEach((x, i) => {
      if (x.loadProbe.lost + x.loadProbe.errors > 0) problems.push(`${r.label} round ${i + 1}: probe lost ${x.loadProbe.lost}, errors ${x.loadProbe.errors}`);
    });
  }
  if (problems.length > 0) {
    console.log(`\nCHECKS FAILED:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else console.log('checks: every push answered 201, every message delivered and acknowledged once, none left stored');
  if (argv.json) {
    writeFileSync(
      argv.json,
      JSON.stringify({ command, node: process.version, nproc: cpus().length, date: new Date().toISOString(), h2load: h2cmd, base, runs, idle, table: text }, (k, v: unknown) =>
        k === 'stdout' || k === 'samples' || k === 'loadSamples' ? undefined : v,
      2),
    );
  }
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await cleanup();
}
process.exit();
