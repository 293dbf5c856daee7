// Collects a PushUserAgent's messages; next() waits for the following one.
import type { PushUserAgent } from '../../src/index.ts';
import type { PushMessage } from '../../src/ua/message.ts';

export function inbox(client: PushUserAgent) {
  const received: PushMessage[] = [];
  let wake: (() => void) | null = null;
  client.on('message', (m) => {
    received.push(m);
    wake?.();
  });
  return {
    received,
    async next(ms = 5000): Promise<PushMessage> {
      const deadline = Date.now() + ms;
      while (received.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no message within ${ms} ms`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
      return received.shift()!;
    },
  };
}
