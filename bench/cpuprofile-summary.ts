// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by area
// (webpushd's src/ files, ws, pino, node internals, GC, ...).
//
//   node bench/cpuprofile-summary.ts <file.cpuprofile> [--top 30]
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byFunction: { name: string; ms: number; pct: number }[];
  byArea: { area: string; ms: number; pct: number }[];
}

function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'idle';
  if (fn === '(program)') return 'native (program: syscalls, libuv, sqlite, ...)';
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  const src = /\/src\/(.+)$/.exec(url);
  if (src && !url.includes('node_modules')) return `webpushd src/${src[1]}`;
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return `dependency ${mod[1]}`;
  if (url.startsWith('node:')) return `node ${url.replace(/^node:internal\//, 'internal/').split('/').slice(0, 2).join('/')}`;
  return url;
}

export function summarizeProfile(path: string, top = 25): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fnMs = new Map<string, number>();
  const areaMs = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const ms = us / 1000;
    total += ms;
    if (functionName === '(idle)') {
      idle += ms;
      continue;
    }
    const file = url.replace(/^file:\/\/.*?\/(src|node_modules|bench)\//, '$1/');
    const name = `${functionName || '(anonymous)'} ${file ? `${file}:${lineNumber + 1}` : ''}`.trim();
    fnMs.set(name, (fnMs.get(name) ?? 0) + ms);
    const area = areaOf(url, functionName);
    areaMs.set(area, (areaMs.get(area) ?? 0) + ms);
  }
  const busy = total - idle;
  const rank = (m: Map<string, number>) =>
    [...m].sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms, pct: (100 * ms) / busy }));
  return {
    totalMs: total,
    idleMs: idle,
    byFunction: rank(fnMs).slice(0, top),
    byArea: rank(areaMs)
      .slice(0, top)
      .map(({ name, ms, pct }) => ({ area: name, ms, pct })),
  };
}

export function formatProfileSummary(s: ProfileSummary): string {
  const lines = [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s, busy ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s (percentages are of busy time)`,
    '',
    'self time by area:',
    ...s.byArea.map((a) => `  ${a.pct.toFixed(1).padStart(5)}%  ${a.ms.toFixed(0).padStart(7)} ms  ${a.area}`),
    '',
    'self time by function:',
    ...s.byFunction.map((f) => `  ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.name}`),
  ];
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '30' } } });
  if (positionals.length === 0) {
    console.error('usage: node bench/cpuprofile-summary.ts <file.cpuprofile> [--top N]');
    process.exit(2);
  }
  for (const file of positionals) {
    console.log(`== ${file}`);
    console.log(formatProfileSummary(summarizeProfile(file, Number(values.top))));
  }
}
