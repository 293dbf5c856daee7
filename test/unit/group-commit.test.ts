// GroupCommit (src/store/group-commit.ts): one batch out at a time, no batch larger than
// MAX_BATCH however many writes queued while the one before was committed, and EARLY_BATCH writes
// of one task sent without waiting for the end of the event-loop turn.
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

test('with no batch out, EARLY_BATCH writes go at the end of the task that queued them; fewer wait for the end of the turn', async () => {
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
  const many = Array.from({ length: EARLY_BATCH + 8 }, (_, i) => tx.run<number>(i));
  await null;
  assert.deepEqual([sent.length, sent[1]!.length, immediateRan], [2, EARLY_BATCH + 8, false], 'the whole task\'s writes, before the turn ends');
  assert.deepEqual(await Promise.all(many), Array.from({ length: EARLY_BATCH + 8 }, (_, i) => i));
  await tx.idle();
});
