// Waiting on an event instead of sleeping: a test waits until what it needs has happened, with a
// bound generous enough for a slow machine, and fails naming what never happened.

/** Polls `check` until it holds; after `ms` throws naming `what` (by default the check's source). */
export async function until(check: () => boolean | Promise<boolean>, what = String(check), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `p`, or an error naming `what` after `ms`. */
export function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
