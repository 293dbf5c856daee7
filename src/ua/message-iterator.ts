// PushUserAgent.messages(): the 'message' events as an async iterator.
import type { EventEmitter } from 'node:events';
import type { PushUserAgentEvents } from './events.ts';
import type { PushMessage } from './message.ts';

/**
 * Iterates over `client`'s messages until it is closed (`closed()`). Each message counts as
 * handled when the loop asks for the next, or ends. The iterator adds a stop function to
 * `stops` while it runs: close() calls it.
 */
export function messageIterator(
  client: EventEmitter<PushUserAgentEvents>,
  closed: () => boolean,
  stops: Set<() => void>,
): AsyncIterableIterator<PushMessage> {
  let handled: (() => void) | null = null;
  let cancelWait: (() => void) | null = null;
  let done = false;
  const release = () => {
    const h = handled;
    handled = null;
    h?.();
  };
  const end = (): IteratorResult<PushMessage> => {
    done = true;
    release();
    cancelWait?.();
    cancelWait = null;
    stops.delete(stop);
    return { done: true, value: undefined };
  };
  const stop = () => void end();
  stops.add(stop);
  const iterator: AsyncIterableIterator<PushMessage> = {
    [Symbol.asyncIterator]: () => iterator,
    next: () => {
      release();
      if (done || closed()) return Promise.resolve(end());
      return new Promise<IteratorResult<PushMessage>>((resolve) => {
        // Listening only while the loop waits: the dispatcher holds messages meanwhile.
        const listener = (m: PushMessage) =>
          new Promise<void>((r) => {
            handled = r;
            cancelWait = null;
            resolve({ done: false, value: m });
          });
        cancelWait = () => {
          client.off('message', listener);
          resolve({ done: true, value: undefined });
        };
        client.once('message', listener);
      });
    },
    return: () => Promise.resolve(end()),
  };
  return iterator;
}
