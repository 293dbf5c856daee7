// Preloaded into a server process by the benchmark's memory phase only
// (`node --expose-gc --import ./bench/mem-report.ts ...`): on SIGUSR2 it forces a full GC and
// writes process.memoryUsage() before and after it, and VmRSS, as JSON to $BENCH_MEM_FILE.
// The server itself is not changed; this is the "second measurement" of its heap.
// With $BENCH_HEAP_SNAPSHOT set, each report also writes a heap snapshot to <that>-<n>.heapsnapshot.
// It also reports the committed size of each of this isolate's heap spaces and the process's RSS
// by kind of mapping, to tell what a connection holds from what the heap reserves as it grows.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';
import type { Worker } from 'node:worker_threads';

const file = process.env.BENCH_MEM_FILE;

function vmRssKb(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

/**
 * RSS (kB) by kind of mapping: `v8Pages` are the 256 KiB pages of the V8 heaps (every isolate:
 * the writer thread's too), `anon` other anonymous memory (malloc arenas of other threads,
 * large allocations), `brk` the main malloc heap, `files` mapped files.
 */
function rssByKindKb(): Record<string, number> {
  const kinds: Record<string, number> = { v8Pages: 0, anon: 0, brk: 0, files: 0 };
  let kind = 'files';
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const name = m[3]!;
      if (name === '[heap]') kind = 'brk';
      else if (name !== '' && !name.startsWith('[anon')) kind = 'files';
      else kind = Number.parseInt(m[2]!, 16) - Number.parseInt(m[1]!, 16) === 256 * 1024 ? 'v8Pages' : 'anon';
    } else if (line.startsWith('Rss:')) kinds[kind]! += Number(line.split(/\s+/)[1]);
  }
  return kinds;
}

let snapshots = 0;
/** The process's worker threads (webpushd's SQLite writer): their heaps are in the RSS too. */
const workers = new Set<Worker>();

if (file) {
  process.on('worker', (w: Worker) => {
    workers.add(w);
    w.once('exit', () => workers.delete(w));
  });
  process.on('SIGUSR2', () => void report());
}

async function report(): Promise<void> {
  const gc = (globalThis as { gc?: (opts?: unknown) => void }).gc;
  const before = process.memoryUsage();
  const rssBeforeKb = vmRssKb();
  gc?.();
  gc?.();
  const after = process.memoryUsage();
  const heap = getHeapStatistics();
  const spacesKb = Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, Math.round(sp.space_size / 1024)]));
  // not collected first: a worker's heap cannot be made to run a GC from here
  const workerHeaps = await Promise.all([...workers].map((w) => w.getHeapStatistics().catch(() => null)));
  const workersKb = workerHeaps.reduce(
    (sum, h) => ({ total: sum.total + (h?.total_heap_size ?? 0) / 1024, used: sum.used + (h?.used_heap_size ?? 0) / 1024 }),
    { total: 0, used: 0 },
  );
  if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}-${++snapshots}.heapsnapshot`);
  writeFileSync(
    `${file!}.tmp`,
    JSON.stringify({ gc: Boolean(gc), rssBeforeKb, rssAfterKb: vmRssKb(), before, after, mallocedKb: heap.malloced_memory / 1024, spacesKb, workersKb, rssByKindKb: rssByKindKb() }),
  );
  renameSync(`${file!}.tmp`, file!);
}
