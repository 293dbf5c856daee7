// Cluster benchmark: webpushd on Redis next to one SQLite node and the in-memory relay
// (bench/baseline-relay.ts), all measured in the same run on this machine.
//
//   node_modules/.bin/node bench/cluster-throughput.ts [options]
//     --connections N       user agents receiving the load (1000)
//     --messages M          messages per load round (20000)
//     --repeat R            load rounds per target, medians reported (3)
//     --warmup W            messages sent before measuring (2000)
//     --fsync LIST          Redis appendfsync modes to measure: always, everysec, no (a comma list), or
//                           both (always,everysec: the default); no shows what the AOF fsync costs
//     --rate X              the fixed rate of the latency phase, messages/s (2000)
//     --rate-seconds T      its length (10)
//     --probe-rate P        latency probe messages per second, in every phase (20)
//     --targets LIST        some of relay,sqlite,redis,cross (all); ratios need relay and sqlite
//     --idle-connections K  idle user agents of the memory phase (a Redis node, then a SQLite
//                           node), 0 skips it (5000)
//     --clients C --streams S  h2load -c (50) and -m (4) of the load rounds
//     --cpu-prof            profile the webpushd processes (saved under bench/profiles/, summarized)
//     --json FILE           also write every figure as JSON
//
// Targets, each on fresh processes: the relay; webpushd on SQLite (--sync full); per fsync mode,
// one webpushd node on a private redis-server (appendonly yes) and two nodes on one such Redis
// with every message crossing nodes (user agents and probe on node 1, h2load posting to node 2).
// Per target:
//   1. connect N user agents (bench/ua-swarm.ts: hello + register, acknowledging every message)
//      and the latency probe (bench/probe.ts), warm up with W messages;
//   2. R load rounds: h2load --h1 posts M messages over the N endpoints as fast as it can while
//      the probe posts P/s: delivered+acked msg/s (M / first-to-last ack) and the probe's
//      POST->delivery p50/p99 under that load;
//   3. a fixed rate: h2load posts X msg/s (50 clients, --rps X/50) for T s while the probe
//      posts P/s: POST->delivery p50/p99 at that rate (cross-node on the two-node target);
// then, on a fresh Redis node (and a SQLite node for comparison): memory per idle connection
// (node RSS and JS heap, and Redis used_memory per user agent) and Redis used_memory per stored
// message, 186-byte bodies: the idle user agents gone, one message posted to each (small
// per-user-agent keys, which Redis packs), then DEEP more to each of K/DEEP of them (large ones:
// hash tables and skip lists).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.ts';
import { aes128gcmBody, helpIfAsked, integerOptions, log, median, procCpuSeconds, procStatusKb, sleep, summarize, table, type LatencySummary } from './common.ts';
import { formatProfileSummary, summarizeProfile } from './cpuprofile-summary.ts';
import { Helper, cleanup, cleanupOnSignals, exited, freePort, healthy, tempDir, terminate, track } from './processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const RELAY = join(ROOT, 'bench/baseline-relay.ts');
const SWARM = join(ROOT, 'bench/ua-swarm.ts');
const PROBE = join(ROOT, 'bench/probe.ts');
const MEM_REPORT = pathToFileURL(join(ROOT, 'bench/mem-report.ts')).href;

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string', default: '1000' },
    messages: { type: 'string', default: '20000' },
    repeat: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2000' },
    fsync: { type: 'string', default: 'both' },
    rate: { type: 'string', default: '2000' },
    'rate-seconds': { type: 'string', default: '10' },
    'probe-rate': { type: 'string', default: '20' },
    'idle-connections': { type: 'string', default: '5000' },
    targets: { type: 'string', default: 'relay,sqlite,redis,cross' },
    clients: { type: 'string', default: '50' },
    streams: { type: 'string', default: '4' },
    'cpu-prof': { type: 'boolean', default: false },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
helpIfAsked(argv.help, import.meta.url);
const int = integerOptions(argv);
const N = int('connections', 1);
const M = int('messages', 1);
const REPEAT = int('repeat', 1);
const WARMUP = int('warmup');
const RATE = int('rate', 10);
const RATE_SECONDS = int('rate-seconds', 1);
const PROBE_RATE = int('probe-rate', 1);
const K = int('idle-connections');
const CLIENTS = int('clients', 1);
const STREAMS = int('streams', 1);
const FSYNCS = argv.fsync === 'both' ? ['always', 'everysec'] : argv.fsync!.split(',');
if (!FSYNCS.every((f) => ['always', 'everysec', 'no'].includes(f))) throw new Error('--fsync: always, everysec, no (a comma list) or both');
const TARGETS = new Set(argv.targets!.split(','));
if (![...TARGETS].every((t) => ['relay', 'sqlite', 'redis', 'cross'].includes(t))) throw new Error('--targets: relay, sqlite, redis, cross');
/** Clients of the fixed-rate phase: each sends one request at a time, so a slow answer must not hold the rate down. */
const RATE_CLIENTS = 50;
const WARM_CONNECTIONS = 100;
/** Messages per user agent of the memory phase's deep queues (over Redis's listpack limit of 128). */
const DEEP = 500;

cleanupOnSignals();

// ---- processes ----

interface Node {
  proc: ChildProcess;
  port: number;
  origin: string;
  profDir: string | null;
}

async function startNode(args: string[], o: { memFile?: string } = {}): Promise<Node> {
  const port = await freePort();
  const nodeArgs: string[] = [];
  if (o.memFile) nodeArgs.push('--expose-gc', '--import', MEM_REPORT);
  const profDir = argv['cpu-prof'] && args[0] === MAIN ? tempDir('webpushd-bench-prof-') : null;
  if (profDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`);
  const env: NodeJS.ProcessEnv = { ...process.env, ...(o.memFile ? { BENCH_MEM_FILE: o.memFile } : {}) };
  const proc = track(spawn(process.execPath, [...nodeArgs, ...args, '--host', '127.0.0.1', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'], env }));
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const deadline = Date.now() + 20_000;
  while (!(await healthy(port))) {
    if (proc.exitCode !== null) throw new Error(`${args[0]} exited early (${proc.exitCode}):\n${out}`);
    if (Date.now() > deadline) throw new Error(`${args[0]} did not answer /health within 20 s:\n${out}`);
    await sleep(50);
  }
  return { proc, port, origin: `http://127.0.0.1:${port}`, profDir };
}

const webpushd = (store: string[]) => [MAIN, 'serve', '--data-dir', tempDir('webpushd-bench-data-'), '--log-level', 'warn', ...store];

/** A private redis-server (its own port and dir; appendonly yes) fsyncing `fsync`. */
const startRedis = (fsync: string) => startRedisServer({ args: ['--appendfsync', fsync] });

/** Commands Redis executed so far (INFO commandstats, every command summed; this INFO included). */
function redisCalls(redis: RedisServer): number {
  const r = spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { encoding: 'utf8' });
  return [...r.stdout.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

function redisInfo(redis: RedisServer, field: string): number {
  const r = spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'memory'], { encoding: 'utf8' });
  const m = new RegExp(`^${field}:(\\d+)`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : Number.NaN;
}

async function stopNode(node: Node, label: string): Promise<string | null> {
  await terminate(node.proc, 15_000);
  if (!node.profDir) return null;
  const file = readdirSync(node.profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) return null;
  const keepDir = join(ROOT, 'bench/profiles');
  mkdirSync(keepDir, { recursive: true });
  const kept = join(keepDir, `cluster-${label.replace(/\W+/g, '-')}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
  writeFileSync(kept, readFileSync(join(node.profDir, file)));
  console.log(`\nCPU profile of ${label} (whole process life): ${kept}\n${formatProfileSummary(summarizeProfile(kept, 25))}\n`);
  return kept;
}

// ---- h2load, the application server ----

let bodyFile = '';

interface H2Result {
  seconds: number;
  status: Record<string, number>;
  command: string;
}

/** h2load --h1 posting `messages` over `endpoints` (shuffled); `rps`: per client, a fixed rate. */
async function h2load(endpoints: readonly string[], messages: number, work: string, o: { clients: number; streams: number; rps?: number }): Promise<H2Result> {
  const uris = [...endpoints];
  for (let i = uris.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [uris[i], uris[j]] = [uris[j]!, uris[i]!];
  }
  const urisFile = join(work, 'uris.txt');
  writeFileSync(urisFile, `${uris.join('\n')}\n`);
  const args = ['--h1', '-n', String(messages), '-c', String(o.clients), '-m', String(o.streams), '-t', '1', '-i', urisFile, '-d', bodyFile, '-H', 'TTL: 60', '-H', 'Content-Encoding: aes128gcm'];
  if (o.rps) args.push(`--rps=${o.rps}`);
  const proc = track(spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  proc.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
  await exited(proc);
  if (proc.exitCode !== 0) throw new Error(`h2load failed (${proc.exitCode ?? proc.signalCode}):\n${stdout}`);
  const fin = /finished in ([\d.]+)(s|ms|us),/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (!fin || !codes) throw new Error(`cannot read h2load's output:\n${stdout}`);
  return {
    seconds: Number(fin[1]) / (fin[2] === 's' ? 1 : fin[2] === 'ms' ? 1e3 : 1e6),
    status: { '2xx': Number(codes[1]), '4xx': Number(codes[3]), '5xx': Number(codes[4]) },
    command: `h2load ${args.map((a) => (/[\s:]/.test(a) ? `'${a}'` : a)).join(' ').replace(/\S*uris\.txt/, '<uris.txt>').replace(/\S*body\.bin/, '<body.bin>')}`,
  };
}

// ---- phases ----

interface AckWindow {
  acked: number;
  duplicates: number;
  firstAckAt: number;
  lastAckAt: number;
  timedOut: boolean;
}

interface ProbeResult {
  samples: number[];
  lost: number;
  statusErrors: number;
}

interface Round {
  ackedPerSec: number;
  acked: number;
  duplicates: number;
  latency: LatencySummary;
  h2: H2Result;
  serverCpuPct: number;
  /** CPU time of the nodes and Redis per message (ms): less moved by other load than the rates. */
  cpuMsPerMessage: number;
  /** Commands Redis executed per message, those run inside functions included (NaN without Redis). */
  redisCommandsPerMessage: number;
}

interface TargetResult {
  label: string;
  rounds: Round[];
  fixedRate: { latency: LatencySummary; acked: number; sent: number; seconds: number; h2: H2Result; probeLost: number };
  /** Commands the nodes sent Redis per message, by name (FCALL by function), from MONITOR; null without Redis. */
  commands: Record<string, number> | null;
  problems: string[];
  profiles: string[];
}

interface Target {
  kind: 'relay' | 'sqlite' | 'redis' | 'cross';
  label: string;
  /** Starts the processes: user agents connect to `connectTo`, the application server posts to `postTo`. */
  start(): Promise<{ connectTo: Node; postTo: Node; pids: number[]; redis?: RedisServer; stop(): Promise<string[]> }>;
}


async function measure(target: Target, work: string): Promise<TargetResult> {
  const run = await target.start();
  const swarm = new Helper(SWARM);
  const probe = new Helper(PROBE);
  const problems: string[] = [];
  const profiles: string[] = [];
  const wsUrl = `ws://127.0.0.1:${run.connectTo.port}/`;
  try {
    const conn = await swarm.request<{ endpoints: string[] }>({ type: 'connect', url: wsUrl, count: N, concurrency: 100, returnEndpoints: true });
    const endpoints = conn.endpoints.map((e) => `${run.postTo.origin}${new URL(e).pathname}`);
    await probe.request({ type: 'connect', url: wsUrl, postTo: run.postTo.origin });
    log(`${target.label}: ${N} user agents on ${run.connectTo.origin}, posts to ${run.postTo.origin}`);
    if (WARMUP > 0) {
      const warm = swarm.request<AckWindow>({ type: 'expect', total: WARMUP, timeoutMs: 120_000 });
      await h2load(endpoints, WARMUP, work, { clients: Math.min(CLIENTS, WARMUP), streams: STREAMS });
      await warm;
    }
    const cpu = () => run.pids.reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
    const rounds: Round[] = [];
    for (let round = 1; round <= REPEAT; round++) {
      const acks = swarm.request<AckWindow>({ type: 'expect', total: M, timeoutMs: 10 * 60_000 });
      const cpu0 = cpu();
      const calls0 = run.redis ? redisCalls(run.redis) : Number.NaN;
      const t0 = Date.now();
      await probe.request({ type: 'start', rate: PROBE_RATE });
      const h2 = await h2load(endpoints, M, work, { clients: CLIENTS, streams: STREAMS });
      const late = setTimeout(() => void swarm.request({ type: 'finish' }).catch(() => {}), 60_000);
      const a = await acks;
      clearTimeout(late);
      const cpuSeconds = cpu() - cpu0;
      const serverCpuPct = (100 * cpuSeconds) / ((Date.now() - t0) / 1000);
      // the probe's messages are in the count too (20/s: well under 1%)
      const redisCommandsPerMessage = run.redis ? (redisCalls(run.redis) - calls0 - 1) / M : Number.NaN;
      const p = await probe.request<ProbeResult>({ type: 'stop', drainMs: 5000 });
      const r: Round = {
        ackedPerSec: a.acked / ((a.lastAckAt - a.firstAckAt) / 1000),
        acked: a.acked,
        duplicates: a.duplicates,
        latency: summarize(p.samples),
        h2,
        serverCpuPct,
        cpuMsPerMessage: (1000 * cpuSeconds) / M,
        redisCommandsPerMessage,
      };
      rounds.push(r);
      if (h2.status['2xx'] !== M) problems.push(`round ${round}: statuses ${JSON.stringify(h2.status)}`);
      if (a.acked !== M) problems.push(`round ${round}: ${a.acked}/${M} acknowledged`);
      if (p.lost + p.statusErrors > 0) problems.push(`round ${round}: probe lost ${p.lost}, errors ${p.statusErrors}`);
      log(
        `${target.label}: round ${round}/${REPEAT}: ${r.ackedPerSec.toFixed(0)} delivered+acked/s, ` +
          `POST->delivery p50 ${r.latency.p50.toFixed(1)} ms p99 ${r.latency.p99.toFixed(1)} ms, server CPU ${serverCpuPct.toFixed(0)}%, ` +
          `${r.cpuMsPerMessage.toFixed(3)} CPU ms/msg, Redis executed ${r.redisCommandsPerMessage.toFixed(2)} commands/msg`,
      );
      await sleep(1000);
    }
    // the fixed rate: h2load's --rps is per client
    const total = RATE * RATE_SECONDS;
    const acks = swarm.request<AckWindow>({ type: 'expect', total, timeoutMs: (RATE_SECONDS + 60) * 1000 });
    await probe.request({ type: 'start', rate: PROBE_RATE });
    const h2 = await h2load(endpoints, total, work, { clients: RATE_CLIENTS, streams: 1, rps: RATE / RATE_CLIENTS });
    const a = await acks;
    const p = await probe.request<ProbeResult>({ type: 'stop', drainMs: 5000 });
    const fixedRate = { latency: summarize(p.samples), acked: a.acked, sent: total, seconds: h2.seconds, h2, probeLost: p.lost + p.statusErrors };
    if (a.acked !== total) problems.push(`fixed rate: ${a.acked}/${total} acknowledged`);
    log(
      `${target.label}: at ${(total / h2.seconds).toFixed(0)} msg/s: POST->delivery p50 ${fixedRate.latency.p50.toFixed(2)} ms ` +
        `p99 ${fixedRate.latency.p99.toFixed(2)} ms (${fixedRate.latency.n} samples)`,
    );
    const commands = run.redis ? await commandsPerMessage(run.redis, endpoints, swarm, work) : null;
    if (commands) log(`${target.label}: Redis commands per message: ${formatCommands(commands)}`);
    return { label: target.label, rounds, fixedRate, commands, problems, profiles };
  } finally {
    await Promise.all([swarm.close(), probe.close()]);
    profiles.push(...(await run.stop()));
  }
}

/** Messages of the MONITOR phase (after the others: MONITOR slows Redis down). */
const MONITORED = 1000;
/** What the recheck of every held connection sends (every --cluster-recheck-interval-ms): not counted per message. */
const RECHECK = new Set(['HGET id', 'HGET epoch', 'SET']);

/**
 * The commands the nodes send Redis per message, by name: MONITOR (redis-cli) while MONITORED
 * messages are posted at 1,000/s and acknowledged. What a function runs inside Redis is not
 * counted (MONITOR shows it as "lua"): these are the round trips. Nor is the periodic recheck of
 * the connections held (RECHECK), when it falls in the window.
 */
async function commandsPerMessage(redis: RedisServer, endpoints: readonly string[], swarm: Helper, work: string): Promise<Record<string, number>> {
  const monitor = track(spawn('redis-cli', ['-p', String(redis.port), 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] }));
  const counts: Record<string, number> = {};
  let rest = '';
  monitor.stdout!.on('data', (d: Buffer) => {
    const lines = (rest + d.toString('latin1')).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      // 1733270000.123456 [0 127.0.0.1:5000] "FCALL" "wp1_save_message" ... (a function's own: [0 lua])
      const m = /^\S+ \[\d+ (\S+)\] "([^"]+)"(?: "([^"]*)")?(?: "([^"]*)")?/.exec(line);
      if (!m || m[1] === 'lua') continue;
      const name = m[2]!.toUpperCase();
      // FCALL by function; HGET by field: `id` and `epoch` are the periodic recheck's, not a message's
      const key = name.startsWith('FCALL') ? `${name} ${m[3]}` : name === 'HGET' ? `HGET ${m[4]}` : name;
      if (RECHECK.has(key)) continue;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  });
  await sleep(300);
  const acks = swarm.request<AckWindow>({ type: 'expect', total: MONITORED, timeoutMs: 60_000 });
  await h2load(endpoints, MONITORED, work, { clients: 10, streams: 1, rps: 100 });
  await acks;
  await sleep(300);
  await terminate(monitor);
  return Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, n / MONITORED]));
}

const formatCommands = (c: Record<string, number>) =>
  `${Object.values(c).reduce((a, b) => a + b, 0).toFixed(2)} (${Object.entries(c)
    .filter(([, n]) => n >= 0.01)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n.toFixed(2)}`)
    .join(', ')})`;

interface IdleResult {
  fsync: string | null;
  connections: number;
  nodeRssPerConnKb: number;
  nodeGcRssPerConnKb: number;
  nodeHeapPerConnKb: number;
  redisBytesPerUserAgent: number;
  storedMessages: number;
  redisBytesPerMessage: number;
  deepMessages: number;
  redisBytesPerDeepMessage: number;
}

interface MemReport {
  rssAfterKb: number;
  after: NodeJS.MemoryUsage;
}

async function memReport(proc: ChildProcess, memFile: string): Promise<MemReport> {
  rmSync(memFile, { force: true });
  proc.kill('SIGUSR2');
  const deadline = Date.now() + 30_000;
  while (!existsSync(memFile)) {
    if (Date.now() > deadline) throw new Error('no memory report within 30 s');
    await sleep(50);
  }
  return JSON.parse(readFileSync(memFile, 'utf8')) as MemReport;
}

/** `fsync` null: the same on a SQLite node, for comparison (no Redis figures). */
async function idleMemory(fsync: string | null, work: string): Promise<IdleResult> {
  const redis = fsync ? await startRedis(fsync) : null;
  const memFile = join(work, 'mem.json');
  // the deep queues: no per-subscription cap or rate limit in the way
  const node = await startNode(
    webpushd([...(redis ? ['--store', redis.url] : []), '--max-stored-per-subscription', String(2 * DEEP), '--rate-limit-subscription', '0']),
    { memFile },
  );
  const used = () => (redis ? redisInfo(redis, 'used_memory') : Number.NaN);
  const swarms: Helper[] = [];
  try {
    const warm = new Helper(SWARM);
    swarms.push(warm);
    await warm.request({ type: 'connect', url: `ws://127.0.0.1:${node.port}/`, count: WARM_CONNECTIONS, concurrency: 20 });
    await sleep(2000);
    const rss0 = procStatusKb(node.proc.pid!, 'VmRSS');
    const gc0 = await memReport(node.proc, memFile);
    const redis0 = used();
    const idle = new Helper(SWARM);
    swarms.push(idle);
    const conn = await idle.request<{ endpoints: string[] }>({ type: 'connect', url: `ws://127.0.0.1:${node.port}/`, count: K, concurrency: 100, returnEndpoints: true });
    await sleep(3000);
    const rss1 = procStatusKb(node.proc.pid!, 'VmRSS');
    const gc1 = await memReport(node.proc, memFile);
    const redis1 = used();
    // the idle user agents leave; one message stored for each
    await idle.request({ type: 'close' });
    await sleep(1000);
    const redis2 = used();
    const h2 = await h2load(conn.endpoints, K, work, { clients: 10, streams: 4 });
    const redis3 = used();
    const deepEndpoints = conn.endpoints.slice(0, Math.max(1, Math.floor(K / DEEP)));
    const deep = await h2load(deepEndpoints, deepEndpoints.length * (DEEP - 1), work, { clients: Math.min(10, deepEndpoints.length), streams: 4 });
    const redis4 = used();
    const r: IdleResult = {
      fsync,
      connections: K,
      nodeRssPerConnKb: (rss1 - rss0) / K,
      nodeGcRssPerConnKb: (gc1.rssAfterKb - gc0.rssAfterKb) / K,
      nodeHeapPerConnKb: (gc1.after.heapUsed - gc0.after.heapUsed) / 1024 / K,
      redisBytesPerUserAgent: (redis1 - redis0) / K,
      storedMessages: h2.status['2xx']!,
      redisBytesPerMessage: (redis3 - redis2) / h2.status['2xx']!,
      deepMessages: deep.status['2xx']!,
      // the first message of each of these user agents is counted above
      redisBytesPerDeepMessage: (redis4 - redis3) / deep.status['2xx']!,
    };
    log(
      `idle (${fsync ? `Redis, appendfsync ${fsync}` : 'SQLite'}): ${K} connections: node RSS ${r.nodeRssPerConnKb.toFixed(2)} kB each (after GC ${r.nodeGcRssPerConnKb.toFixed(2)}), ` +
        `Redis ${r.redisBytesPerUserAgent.toFixed(0)} B per user agent; ${r.storedMessages} stored: ${r.redisBytesPerMessage.toFixed(0)} B each; ` +
        `${r.deepMessages} more in ${deepEndpoints.length} deep queues: ${r.redisBytesPerDeepMessage.toFixed(0)} B each`,
    );
    return r;
  } finally {
    await Promise.all(swarms.map((s) => s.close()));
    await terminate(node.proc, 15_000);
    await redis?.stop();
  }
}

// ---- targets ----

function targets(): Target[] {
  const single = (kind: Target['kind'], label: string, args: () => Promise<{ args: string[]; redis?: RedisServer }>): Target => ({
    kind,
    label,
    async start() {
      const { args: a, redis } = await args();
      const node = await startNode(a);
      return {
        connectTo: node,
        postTo: node,
        pids: [node.proc.pid!, ...(redis ? [redisPid(redis)] : [])],
        ...(redis ? { redis } : {}),
        async stop() {
          const prof = await stopNode(node, label);
          await redis?.stop();
          return prof ? [prof] : [];
        },
      };
    },
  });
  const list: Target[] = [
    single('relay', 'relay', async () => ({ args: [RELAY] })),
    single('sqlite', 'SQLite node', async () => ({ args: webpushd(['--sync', 'full']) })),
  ];
  for (const fsync of FSYNCS) {
    const label = `2 Redis nodes, cross-node (${fsync})`;
    list.push(
      single('redis', `Redis node (${fsync})`, async () => {
        const redis = await startRedis(fsync);
        return { args: webpushd(['--store', redis.url]), redis };
      }),
      {
        kind: 'cross',
        label,
        async start() {
          const redis = await startRedis(fsync);
          const one = await startNode(webpushd(['--store', redis.url]));
          const two = await startNode(webpushd(['--store', redis.url]));
          return {
            connectTo: one,
            postTo: two,
            pids: [one.proc.pid!, two.proc.pid!, redisPid(redis)],
            redis,
            async stop() {
              const profs = [await stopNode(one, `${label} node 1`), await stopNode(two, `${label} node 2`)];
              await redis.stop();
              return profs.filter((p): p is string => p !== null);
            },
          };
        },
      },
    );
  }
  return list.filter((t) => TARGETS.has(t.kind));
}

/** The redis-server's pid, for its CPU share (the helper does not expose its process). */
function redisPid(redis: RedisServer): number {
  const r = spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'server'], { encoding: 'utf8' });
  return Number(/^process_id:(\d+)/m.exec(r.stdout)?.[1] ?? Number.NaN);
}

// ---- report ----

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');


const med = (r: TargetResult | undefined, pick: (x: Round) => number) => (r ? median(r.rounds.map(pick)) : Number.NaN);

function report(results: TargetResult[], idle: IdleResult[]): string {
  const relay = results.find((r) => r.label === 'relay');
  const sqlite = results.find((r) => r.label === 'SQLite node');
  const rows = [
    [
      '',
      'delivered+acked/s',
      'x relay',
      'x SQLite',
      'p50 under load (ms)',
      'p99 under load (ms)',
      `rate reached, of ${RATE}/s`,
      'p50 at that rate (ms)',
      'p99 at that rate (ms)',
      'CPU of nodes + Redis (% of a core)',
      'CPU per message (ms)',
      'Redis commands per message: sent (executed)',
    ],
    ...results.map((r) => [
      r.label,
      f0(med(r, (x) => x.ackedPerSec)),
      f2(med(r, (x) => x.ackedPerSec) / med(relay, (x) => x.ackedPerSec)),
      f2(med(r, (x) => x.ackedPerSec) / med(sqlite, (x) => x.ackedPerSec)),
      f1(med(r, (x) => x.latency.p50)),
      f1(med(r, (x) => x.latency.p99)),
      f0(r.fixedRate.sent / r.fixedRate.seconds),
      f2(r.fixedRate.latency.p50),
      f2(r.fixedRate.latency.p99),
      f0(med(r, (x) => x.serverCpuPct)),
      f2(med(r, (x) => x.cpuMsPerMessage)),
      r.commands ? `${f2(Object.values(r.commands).reduce((a, b) => a + b, 0))} (${f1(med(r, (x) => x.redisCommandsPerMessage))})` : '—',
    ]),
  ];
  let out = table(rows);
  if (idle.length > 0) {
    out += `\n\n${table([
      [
        'idle connections',
        'connections',
        'node RSS per connection (kB)',
        'after forced GC (kB)',
        'JS heap per connection (kB)',
        'Redis per user agent (B)',
        'Redis per stored message, 1 per UA (B)',
        `Redis per stored message, ${DEEP} per UA (B)`,
      ],
      ...idle.map((i) => [
        i.fsync ? `Redis node (appendfsync ${i.fsync})` : 'SQLite node',
        f0(i.connections),
        f2(i.nodeRssPerConnKb),
        f2(i.nodeGcRssPerConnKb),
        f2(i.nodeHeapPerConnKb),
        f0(i.redisBytesPerUserAgent),
        f0(i.redisBytesPerMessage),
        f0(i.redisBytesPerDeepMessage),
      ]),
    ])}`;
  }
  return out;
}

async function main(): Promise<void> {
  const work = tempDir('webpushd-cluster-bench-');
  bodyFile = join(work, 'body.bin');
  writeFileSync(bodyFile, aes128gcmBody(0));
  const command = `node_modules/.bin/node bench/cluster-throughput.ts ${process.argv.slice(2).join(' ')}`.trim();
  log(`${command}\n  node ${process.version}, ${cpus().length} CPUs, ${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}`);
  const results: TargetResult[] = [];
  for (const t of targets()) results.push(await measure(t, work));
  const idle: IdleResult[] = [];
  if (K > 0) idle.push(await idleMemory(FSYNCS[0]!, work), await idleMemory(null, work));
  const text = report(results, idle);
  const h2cmd = results[0]?.rounds[0]!.h2.command;
  const rateCmd = results[0]?.fixedRate.h2.command;
  console.log(`\n${command}\n(node ${process.version}, nproc ${cpus().length}; load: ${h2cmd}; fixed rate: ${rateCmd})\n\n${text}\n`);
  const sqlite = med(results.find((r) => r.label === 'SQLite node'), (x) => x.ackedPerSec);
  for (const r of results.filter((x) => x.label.startsWith('Redis node'))) {
    const ratio = med(r, (x) => x.ackedPerSec) / sqlite;
    console.log(`aim: ${r.label} >= 0.8x the SQLite node: ${ratio.toFixed(2)}x, ${ratio >= 0.8 ? 'met' : 'NOT met'}`);
  }
  for (const r of results.filter((x) => x.label.startsWith('2 Redis'))) {
    const p99 = r.fixedRate.latency.p99;
    const reached = r.fixedRate.sent / r.fixedRate.seconds;
    console.log(`aim: ${r.label} p99 < 10 ms at ${RATE} msg/s: ${p99.toFixed(2)} ms at ${reached.toFixed(0)} msg/s, ${p99 < 10 && reached >= 0.95 * RATE ? 'met' : 'NOT met'}`);
  }
  const problems = results.flatMap((r) => r.problems.map((p) => `${r.label}: ${p}`));
  if (problems.length > 0) {
    console.log(`\nCHECKS FAILED:\n  ${problems.join('\n  ')}`);
    process.exitCode = 1;
  } else console.log('checks: every push answered 201, every message delivered and acknowledged');
  if (argv.json) writeFileSync(argv.json, JSON.stringify({ command, node: process.version, date: new Date().toISOString(), results, idle, table: text }, (k, v: unknown) => (k === 'samples' ? undefined : v), 2));
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
