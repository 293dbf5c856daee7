// One send to an aggregate of N connected user agents: the time from the POST to its answer and
// to the last delivery, and the latency of other traffic meanwhile, in the same run.
//
//   node_modules/.bin/node bench/fanout.ts [--members 10000] [--rounds 3] [--per-process 5000]
//                                          [--sync full|normal] [--chunk 100] [--chunks-in-flight 2] [--probe-rate 50] [--store redis://…]
//                                          [--webpushd-main <checkout>/src/cli/main.ts]
//
// webpushd runs as its own process; the members are WebSocket user agents of one subscription
// each, in forked swarms (bench/ua-swarm.ts, which acknowledge every notification); the latency
// probe (bench/probe.ts) is one more user agent with an application server posting numbered
// messages to it at --probe-rate, timed from POST to arrival. The probe first runs alone (the
// latency with nothing else going on), then through each round: an empty message (a tickle) to
// every member, from just before the POST to the last member's acknowledgement. --webpushd-main
// runs another checkout's server (with this one's swarms and probe), to compare two trees in turn.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { vapidHeaders, generateVAPIDKeys } from '../src/sdk/vapid.ts';
import { median, sleep, summarize, type LatencySummary } from './common.ts';
import { Helper, cleanup, cleanupOnSignals, freePort, healthy, tempDir, terminate, track } from './processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const SWARM = join(ROOT, 'bench/ua-swarm.ts');
const PROBE = join(ROOT, 'bench/probe.ts');

const { values: argv } = parseArgs({
  options: {
    members: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '3' },
    'per-process': { type: 'string', default: '5000' },
    sync: { type: 'string', default: 'full' },
    chunk: { type: 'string', default: '100' },
    'chunks-in-flight': { type: 'string', default: '2' },
    'probe-rate': { type: 'string', default: '50' },
    store: { type: 'string' },
    'webpushd-main': { type: 'string', default: MAIN },
  },
});
const N = Number(argv.members);
const ROUNDS = Number(argv.rounds);
const PER_PROCESS = Number(argv['per-process']);
const PROBE_RATE = Number(argv['probe-rate']);
cleanupOnSignals();

const vapid = { subject: 'mailto:bench@example.org', ...generateVAPIDKeys() };
const signed = (url: string, extra: Record<string, string> = {}) => ({ authorization: vapidHeaders(vapid, url, 'aes128gcm').authorization, ...extra });

interface ProbeResult {
  samples: number[];
  lost: number;
  statusErrors: number;
}

async function startServer(): Promise<{ url: string; wsUrl: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const dataDir = tempDir('webpushd-bench-fanout-');
  const args = [argv['webpushd-main'], 'serve', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn',
    '--max-connections-per-address', '0', '--aggregate-max-members', String(N), '--aggregate-chunk', argv.chunk, '--aggregate-chunks-in-flight', argv['chunks-in-flight'],
    ...(argv.store ? ['--store', argv.store] : ['--sync', argv.sync])];
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }));
  const deadline = Date.now() + 15_000;
  while (!(await healthy(port))) {
    if (Date.now() > deadline) throw new Error('webpushd did not start');
    await sleep(50);
  }
  return { url: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/`, stop: () => terminate(proc, 15_000) };
}

const round1 = (s: LatencySummary) => ({ n: s.n, p50: Math.round(s.p50 * 10) / 10, p99: Math.round(s.p99 * 10) / 10, max: Math.round(s.max * 10) / 10 });

const server = await startServer();
const swarms = Array.from({ length: Math.ceil(N / PER_PROCESS) }, () => new Helper(SWARM));
const probe = new Helper(PROBE);
try {
  const endpoints: string[] = [];
  let left = N;
  for (const s of swarms) {
    const count = Math.min(PER_PROCESS, left);
    left -= count;
    const r = await s.request<{ endpoints: string[]; ms: number }>({ type: 'connect', url: server.wsUrl, count, concurrency: 200, returnEndpoints: true });
    endpoints.push(...r.endpoints);
    console.error(`${r.endpoints.length} user agents connected and subscribed in ${r.ms} ms`);
  }
  await probe.request({ type: 'connect', url: server.wsUrl });

  const createUrl = `${server.url}/aggregate`;
  const created = await fetch(createUrl, { method: 'POST', headers: signed(createUrl, { 'content-type': 'application/json' }), body: JSON.stringify({ members: Object.fromEntries(endpoints.map((e) => [e, true])) }) });
  if (created.status !== 201) throw new Error(`create answered ${created.status} ${await created.text()}`);
  const aggregate = created.headers.get('location')!;
  console.error(`aggregate of ${((await created.json()) as { members: number }).members} members created`);

  await probe.request({ type: 'start', rate: PROBE_RATE });
  await sleep(3000);
  const idle = await probe.request<ProbeResult>({ type: 'stop', drainMs: 2000 });

  const rounds: { answerMs: number; lastDeliveryMs: number; stored: number; probe: LatencySummary; probeLost: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await probe.request({ type: 'start', rate: PROBE_RATE });
    await sleep(500);
    const expecting = swarms.map((s, i) => s.request<{ acked: number; lastAckAt: number; timedOut: boolean }>({ type: 'expect', total: Math.min(PER_PROCESS, N - i * PER_PROCESS), timeoutMs: 60_000 }));
    // the swarms open their counting windows on receipt of `expect`
    await sleep(100);
    const t0 = Date.now();
    const res = await fetch(aggregate, { method: 'POST', headers: signed(aggregate, { ttl: '60' }) });
    const answerMs = Date.now() - t0;
    const body = (await res.json()) as { stored: number; gone: number; refused: number };
    if (res.status !== 202 || body.stored !== N) throw new Error(`round ${round}: ${res.status} ${JSON.stringify({ ...body, members: undefined })}`);
    const acks = await Promise.all(expecting);
    const acked = acks.reduce((n, a) => n + a.acked, 0);
    if (acked !== N) throw new Error(`round ${round}: only ${acked} of ${N} members got the message`);
    const lastDeliveryMs = Math.max(...acks.map((a) => a.lastAckAt)) - t0;
    await sleep(500);
    const during = await probe.request<ProbeResult>({ type: 'stop', drainMs: 2000 });
    rounds.push({ answerMs, lastDeliveryMs, stored: body.stored, probe: summarize(during.samples), probeLost: during.lost + during.statusErrors });
    console.error(`round ${round}: 202 after ${answerMs} ms, last of ${N} delivered after ${lastDeliveryMs} ms; probe p50 ${summarize(during.samples).p50.toFixed(1)} ms, p99 ${summarize(during.samples).p99.toFixed(1)} ms, max ${summarize(during.samples).max.toFixed(1)} ms`);
    await sleep(1500);
  }
  console.log(
    JSON.stringify({
      members: N,
      store: argv.store ? 'redis' : `sqlite sync=${argv.sync}`,
      chunk: Number(argv.chunk),
      chunksInFlight: Number(argv['chunks-in-flight']),
      medianAnswerMs: median(rounds.map((r) => r.answerMs)),
      medianLastDeliveryMs: median(rounds.map((r) => r.lastDeliveryMs)),
      probeIdle: round1(summarize(idle.samples)),
      probeDuring: rounds.map((r) => round1(r.probe)),
      probeLost: rounds.reduce((n, r) => n + r.probeLost, idle.lost + idle.statusErrors),
      rounds: rounds.map((r) => ({ answerMs: r.answerMs, lastDeliveryMs: r.lastDeliveryMs })),
    }),
  );
} finally {
  await Promise.all([...swarms.map((s) => s.close()), probe.close()]);
  await server.stop();
  await cleanup();
}
