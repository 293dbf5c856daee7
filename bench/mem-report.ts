// Preloaded into a server process by the benchmark's memory phase only
// (`node --expose-gc --import ./bench/mem-report.ts ...`): on SIGUSR2 it forces a full GC and
// writes process.memoryUsage() before and after it, and VmRSS, as JSON to $BENCH_MEM_FILE.
// The server itself is not changed; this is the "second measurement" of its heap.
// With $BENCH_HEAP_SNAPSHOT set, each report also writes a heap snapshot to <that>-<n>.heapsnapshot.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8';

const file = process.env.BENCH_MEM_FILE;

function vmRssKb(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

let snapshots = 0;

if (file) {
  process.on('SIGUSR2', () => {
    const gc = (globalThis as { gc?: (opts?: unknown) => void }).gc;
    const before = process.memoryUsage();
    const rssBeforeKb = vmRssKb();
    gc?.();
    gc?.();
    const after = process.memoryUsage();
    const heap = getHeapStatistics();
    if (process.env.BENCH_HEAP_SNAPSHOT) writeHeapSnapshot(`${process.env.BENCH_HEAP_SNAPSHOT}-${++snapshots}.heapsnapshot`);
    writeFileSync(
      `${file}.tmp`,
      JSON.stringify({ gc: Boolean(gc), rssBeforeKb, rssAfterKb: vmRssKb(), before, after, mallocedKb: heap.malloced_memory / 1024 }),
    );
    renameSync(`${file}.tmp`, file);
  });
}
