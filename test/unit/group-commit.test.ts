// GroupCommit (src/store/group-commit.ts): one batch out at a time, and no batch larger than
// MAX_BATCH however many writes queued while the one before was committed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupCommit, MAX_BATCH } from '../../src/store/group-commit.ts';

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
