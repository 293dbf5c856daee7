// The long fuzz run: the properties of test/fuzz (same arbitraries, same checks) with many more
// cases, for a deeper session than CI's few seconds. Not a benchmark: it measures nothing.
//
//   node_modules/.bin/node bench/fuzz.ts --runs 100000 --seed 42
//   node_modules/.bin/node bench/fuzz.ts --runs 20000 --only WebSocket
//   node_modules/.bin/node bench/fuzz.ts --only 'push requests' --seed 42 --path 1234:5   # replay a failure
//
// --runs N        cases per property (default 10000); --live-runs M for the live doors (default N)
// --seed S        fast-check seed (default: a random one, printed)
// --only TEXT     only the properties whose name contains TEXT (case-insensitive); repeatable
// --pure, --live  only the in-process properties, or only the live doors (a webpushd child process each)
// --path P        replay one failing case (with the seed and --only of its report)
// Exit code 0 when every property held, 1 otherwise.
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { LIVE, PURE } from '../test/fuzz/suites.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10000' },
    'live-runs': { type: 'string' },
    seed: { type: 'string' },
    only: { type: 'string', multiple: true },
    pure: { type: 'boolean', default: false },
    live: { type: 'boolean', default: false },
    path: { type: 'string' },
  },
});

function count(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
}

const runs = count('runs', values.runs);
const liveRuns = values['live-runs'] === undefined ? runs : count('live-runs', values['live-runs']);
const seed = values.seed === undefined ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(values.seed);
if (!Number.isInteger(seed)) {
  console.error(`--seed must be an integer, not ${JSON.stringify(values.seed)}`);
  process.exit(2);
}
const only = (values.only ?? []).map((o) => o.toLowerCase());
const chosen = (name: string) => only.length === 0 || only.some((o) => name.toLowerCase().includes(o));
const wantPure = values.pure || !values.live;
const wantLive = values.live || !values.pure;
const replay = values.path === undefined ? {} : { path: values.path };

interface Result {
  name: string;
  cases: number;
  seconds: number;
  failure?: string;
  detail?: unknown;
}

const results: Result[] = [];
const started = Date.now();
console.log(JSON.stringify({ seed, runs, liveRuns, only }));

function report(r: Result): void {
  results.push(r);
  console.log(`${r.failure ? 'FAIL' : 'ok  '} ${r.name}: ${r.cases} cases in ${r.seconds.toFixed(1)} s${r.detail ? ` ${JSON.stringify(r.detail)}` : ''}`);
  if (r.failure) console.log(r.failure.replace(/^/gm, '     '));
}

if (wantPure) {
  for (const suite of PURE.filter((s) => chosen(s.name))) {
    const t0 = Date.now();
    const details = await fc.check(suite.property(), { seed, numRuns: runs, ...replay });
    const seconds = (Date.now() - t0) / 1000;
    report({
      name: suite.name,
      cases: details.numRuns,
      seconds,
      ...(details.failed ? { failure: fc.defaultReportMessage(details) ?? 'failed' } : {}),
    });
  }
}

if (wantLive) {
  for (const suite of LIVE.filter((s) => chosen(s.name))) {
    const t0 = Date.now();
    try {
      const run = await suite.run({ seed, numRuns: liveRuns, endOnFailure: true, ...replay });
      report({ name: suite.name, cases: run.cases, seconds: (Date.now() - t0) / 1000, detail: { canaryChecks: run.canaryChecks, ...run.stats } });
    } catch (err) {
      report({ name: suite.name, cases: (err as { casesRun?: number }).casesRun ?? 0, seconds: (Date.now() - t0) / 1000, failure: err instanceof Error ? `${err.message}${err.cause ? `\n${String(err.cause)}` : ''}` : String(err) });
    }
  }
}

const failed = results.filter((r) => r.failure);
console.log(
  JSON.stringify({
    seed,
    properties: results.length,
    cases: results.reduce((n, r) => n + r.cases, 0),
    failed: failed.map((r) => r.name),
    seconds: (Date.now() - started) / 1000,
  }),
);
process.exitCode = failed.length > 0 ? 1 : 0;
