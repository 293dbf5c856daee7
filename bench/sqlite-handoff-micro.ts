// Micro-benchmark of the SQLite store's handoff to its writer thread (src/store/sqlite-batch.ts):
// a typical batch (saves with ~4 kB bodies, as many deletes) posted to a worker that decodes it
// and answers with its results, as the store and its writer do, without SQLite.
//
//   node_modules/.bin/node bench/sqlite-handoff-micro.ts [--saves 100] [--body 4096] [--rounds 3000]
//
// Per round trip it reports the main thread's CPU time (the encode, postMessage, and the decode
// of the answer: process.threadCpuUsage), the time spent inside postMessage alone, and the wall
// time; for the batch laid out in one transferred buffer ("binary") and for the arrays of
// objects cloned both ways the store sent before ("cloned"), alternating, and for an empty message.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { runBatch, decodeResults, encodeBatch, SAVE, DELETE_MESSAGE, type BatchOp } from '../src/store/sqlite-batch.ts';
import type { BatchMessage, MessageToSave, SavedOrNot } from '../src/store/sqlite-worker.ts';
import type { NewMessage } from '../src/store/types.ts';

type Mode = 'binary' | 'cloned' | 'empty';

/** The writer's side without SQLite: the results a real batch gets. */
const fakeWriter = {
  saveMessage: (now: number, m: MessageToSave): SavedOrNot => ({ ok: true, id: now, expiresAt: m.createdAt + m.ttl * 1000, replacedId: null }),
  deleteMessage: () => true,
  touchUserAgent: () => {},
  deleteReceipt: () => {},
};

if (!isMainThread) {
  parentPort!.on('message', (msg: { mode: Mode; batch: unknown }) => {
    if (msg.mode === 'binary') {
      const b = msg.batch as BatchMessage;
      const results = runBatch(b, fakeWriter as never, () => undefined);
      parentPort!.postMessage({ kind: 'commit', ms: 1, results, receipts: [] }, [results.bytes]);
    } else if (msg.mode === 'cloned') {
      const b = msg.batch as { now: number; ops: [string, unknown[]][] };
      const results = b.ops.map(([name, args]) =>
        name === 'saveMessage' ? fakeWriter.saveMessage(b.now, args[0] as MessageToSave) : fakeWriter.deleteMessage(),
      );
      parentPort!.postMessage({ kind: 'commit', ms: 1, results, receipts: [] });
    } else {
      parentPort!.postMessage(null);
    }
  });
} else {
  const { values } = parseArgs({
    options: { saves: { type: 'string', default: '100' }, body: { type: 'string', default: '4096' }, rounds: { type: 'string', default: '3000' } },
  });
  const saves = Number(values.saves);
  const rounds = Number(values.rounds);
  // ids share one pool buffer, as the server's do (src/common/random-pool.ts)
  const pool = randomBytes(32 * saves);
  const messages: NewMessage[] = Array.from({ length: saves }, (_, i) => ({
    uaid: pool.subarray(32 * i, 32 * i + 16),
    chid: pool.subarray(32 * i + 16, 32 * i + 32),
    ttl: 60,
    topic: null,
    urgency: 'normal',
    headers: { encoding: 'aes128gcm' },
    body: randomBytes(Number(values.body)),
    createdAt: Date.now(),
  }));
  const latin1 = (b: Buffer) => b.toString('latin1');
  const copy = (b: Uint8Array) => (b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));
  const worker = new Worker(new URL(import.meta.url));
  let answered: (() => void) | null = null;
  worker.on('message', (reply: { results: unknown } | null) => {
    if (reply && !Array.isArray(reply.results)) decodeResults(reply.results as BatchMessage);
    answered!();
  });
  let inPost = 0;
  const roundTrip = (mode: Mode) =>
    new Promise<void>((resolve) => {
      answered = resolve;
      const now = Date.now();
      if (mode === 'binary') {
        const ops: BatchOp[] = [];
        for (const m of messages) ops.push([SAVE, m, undefined], [DELETE_MESSAGE, m.uaid, m.chid, 1]);
        const batch: BatchMessage = { now, ...encodeBatch(ops) };
        const t = performance.now();
        worker.postMessage({ mode, batch }, [batch.bytes]);
        inPost += performance.now() - t;
      } else if (mode === 'cloned') {
        const ops: [string, unknown[]][] = [];
        for (const m of messages) {
          const toSave = { ...m, uaid: latin1(m.uaid), chid: latin1(m.chid), body: copy(m.body) };
          ops.push(['saveMessage', [toSave, null, false]], ['deleteMessage', [latin1(m.uaid), latin1(m.chid), 1]]);
        }
        const t = performance.now();
        worker.postMessage({ mode, batch: { now, ops } });
        inPost += performance.now() - t;
      } else {
        const t = performance.now();
        worker.postMessage({ mode, batch: null });
        inPost += performance.now() - t;
      }
    });
  const measure = async (mode: Mode) => {
    inPost = 0;
    const cpu = process.threadCpuUsage();
    const started = performance.now();
    for (let i = 0; i < rounds; i++) await roundTrip(mode);
    const wall = performance.now() - started;
    const used = process.threadCpuUsage(cpu);
    return { mode, cpuUs: (used.user + used.system) / rounds, postUs: (1000 * inPost) / rounds, wallUs: (1000 * wall) / rounds };
  };
  const modes: Mode[] = ['binary', 'cloned', 'empty'];
  for (const m of modes) await measure(m); // warm-up
  const runs: Record<Mode, { cpuUs: number; postUs: number; wallUs: number }[]> = { binary: [], cloned: [], empty: [] };
  for (let i = 0; i < 3; i++) for (const m of modes) runs[m].push(await measure(m));
  const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`batch: ${saves} saves with ${values.body}-byte bodies and ${saves} deletes; ${rounds} round trips x 3, medians (µs per round trip)`);
  console.log('mode      main CPU   in postMessage   wall');
  for (const m of modes) {
    const r = runs[m];
    const f = (k: 'cpuUs' | 'postUs' | 'wallUs') => med(r.map((x) => x[k])).toFixed(1).padStart(9);
    console.log(`${m.padEnd(8)} ${f('cpuUs')}   ${f('postUs')}      ${f('wallUs')}`);
  }
  await worker.terminate();
}
