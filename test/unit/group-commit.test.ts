// GroupCommit (src/store/group-commit.ts): one batch out at a time, no batch larger than
// MAX_BATCH however many writes queued while the one before was committed, and a burst of
// EARLY_BATCH writes sent without waiting for the end of the event-loop turn.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EARLY_BATCH, GroupCommit, MAX_BATCH } from '../../src/store/group-commit.ts';

test('writes queued during a slow commit go out in batches of at most MAX_BATCH, each answered with its own result', async () => {
  const batches: number[] = [];
  // the writer: answers each batch a little later, its results being the ops themselves
  const tx: GroupCommit<number> = new GroupCommit<number>((ops) => {
    batches.push(ops.length);
    setTimeout(() => tx.committed(ops), 5);
  });
  const first = tx.run<number>(-1);
  // a commit is out: all of these wait for it
  await new Promise((r) => setImmediate(r));
  const n = 2 * MAX_BATCH + 5;
  const results = await Promise.all([first, ...Array.from({ length: n }, (_, i) => tx.run<number>(i))]);
  assert.deepEqual(batches, [1, MAX_BATCH, MAX_BATCH, 5]);
  assert.deepEqual(results, [-1, ...Array.from({ length: n }, (_, i) => i)]);
  await tx.idle();
});

test('with no batch out, a burst of EARLY_BATCH writes goes when it ends; fewer, or as many one by one, wait for the end of the turn', async () => {
  const sent: number[][] = [];
  const tx: GroupCommit<number> = new GroupCommit<number>((ops) => {
    sent.push(ops);
    setImmediate(() => tx.committed(ops));
  });
  const few = Array.from({ length: EARLY_BATCH - 1 }, (_, i) => tx.run<number>(i));
  await null;
  assert.equal(sent.length, 0, 'the turn is not over');
  await Promise.all(few);
  assert.equal(sent.length, 1);

  let immediateRan = false;
  setImmediate(() => (immediateRan = true));
  const burst = Array.from({ length: EARLY_BATCH + 8 }, (_, i) => tx.run<number>(i));
  await null;
  assert.deepEqual([sent.length, sent[1]!.length, immediateRan], [2, EARLY_BATCH + 8, false], 'the whole burst, before the turn ends');
  assert.deepEqual(await Promise.all(burst), Array.from({ length: EARLY_BATCH + 8 }, (_, i) => i));

  const oneByOne: Promise<number>[] = [];
  for (let i = 0; i < EARLY_BATCH; i++) {
    oneByOne.push(tx.run<number>(i));
    await null;
  }
  assert.equal(sent.length, 2, 'writes of separate continuations wait for the turn');
  await Promise.all(oneByOne);
  assert.deepEqual(sent.map((b) => b.length), [EARLY_BATCH - 1, EARLY_BATCH + 8, EARLY_BATCH]);
  await tx.idle();
});
