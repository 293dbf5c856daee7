// How long telling N connected user agents of one broadcast change takes, webpushd against the
// baseline relay in the same run (the least a megaphone can do: one frame to each listener).
//
//   node_modules/.bin/node bench/broadcast-fanout.ts [--connections 10000] [--rounds 5] [--per-process 5000]
//
// Each target runs as its own process; the user agents live in forked swarms
// (bench/broadcast-swarm.ts), each saying hello with the broadcast id. A round sets a new
// version (webpushd: PUT /broadcasts/<id> on the admin listener; the relay: PUT on its port)
// and measures from just before the request to the last user agent hearing it.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { median, sleep } from './common.ts';
import { Helper, cleanup, cleanupOnSignals, freePort, healthy, tempDir, terminate, track } from './processes.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const RELAY = join(ROOT, 'bench/baseline-relay.ts');
const SWARM = join(ROOT, 'bench/broadcast-swarm.ts');
const ID = 'remote-settings/monitor_changes';

const { values: argv } = parseArgs({
  options: {
    connections: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    'per-process': { type: 'string', default: '5000' },
  },
});
const N = Number(argv.connections);
const ROUNDS = Number(argv.rounds);
const PER_PROCESS = Number(argv['per-process']);
cleanupOnSignals();

interface Target {
  label: string;
  wsUrl: string;
  set(version: string): Promise<void>;
  stop(): Promise<void>;
}

async function start(kind: 'relay' | 'webpushd'): Promise<Target> {
  const port = await freePort();
  const adminPort = await freePort();
  const dataDir = tempDir('webpushd-bench-broadcast-');
  const args =
    kind === 'relay'
      ? [RELAY, '--host', '127.0.0.1', '--port', String(port)]
      : [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--admin-port', String(adminPort), '--data-dir', dataDir,
          '--log-level', 'warn', '--sync', 'normal', '--broadcast', `${ID}=v0`, '--max-connections-per-address', '0'];
  const proc = track(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }));
  const deadline = Date.now() + 15_000;
  while (!(await healthy(port))) {
    if (Date.now() > deadline) throw new Error(`${kind} did not start`);
    await sleep(50);
  }
  const base = kind === 'relay' ? `http://127.0.0.1:${port}` : `http://127.0.0.1:${adminPort}`;
  const { readAdminToken } = await import('../src/tokens/admin-token.ts');
  const headers: Record<string, string> = kind === 'relay' ? {} : { authorization: `Bearer ${readAdminToken(dataDir)}`, 'content-type': 'text/plain' };
  return {
    label: kind === 'relay' ? 'baseline relay' : 'webpushd',
    wsUrl: `ws://127.0.0.1:${port}/`,
    async set(version) {
      const res = await fetch(`${base}/broadcasts/${encodeURIComponent(ID)}`, { method: 'PUT', headers, body: version });
      if (!res.ok) throw new Error(`${kind}: PUT answered ${res.status} ${await res.text()}`);
    },
    stop: () => terminate(proc, 10_000),
  };
}


async function measure(kind: 'relay' | 'webpushd'): Promise<number[]> {
  const target = await start(kind);
  const swarms = Array.from({ length: Math.ceil(N / PER_PROCESS) }, () => new Helper(SWARM));
  try {
    let left = N;
    for (const s of swarms) {
      const count = Math.min(PER_PROCESS, left);
      left -= count;
      const r = await s.request<{ connected: number; ms: number }>({ type: 'connect', url: target.wsUrl, count, id: ID });
      console.error(`${target.label}: ${r.connected} user agents connected in ${r.ms} ms`);
    }
    const times: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const version = `v${round}`;
      await Promise.all(swarms.map((s) => s.request({ type: 'arm', version })));
      const t0 = Date.now();
      await target.set(version);
      const results = await Promise.all(swarms.map((s) => s.request<{ heard: number; last: number }>({ type: 'result', timeoutMs: 30_000 })));
      const heard = results.reduce((n, r) => n + r.heard, 0);
      if (heard !== N) throw new Error(`${target.label}: round ${round}: only ${heard} of ${N} heard ${version}`);
      const ms = Math.max(...results.map((r) => r.last)) - t0;
      times.push(ms);
      console.error(`${target.label}: round ${round}: all ${N} told in ${ms} ms`);
      await sleep(500);
    }
    return times;
  } finally {
    await Promise.all(swarms.map((s) => s.close()));
    await target.stop();
  }
}

try {
  const relay = await measure('relay');
  const webpushd = await measure('webpushd');
  const result = { connections: N, rounds: ROUNDS, relayMedianMs: median(relay), webpushdMedianMs: median(webpushd), ratio: median(webpushd) / median(relay) };
  console.log(JSON.stringify(result));
} finally {
  await cleanup();
}
