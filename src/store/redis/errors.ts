// Which Redis failures mean "cannot serve now" (the doors answer 503 / 1013, never 500): the
// connection is down or timed out, or Redis refuses for a while (full under `noeviction`,
// loading its AOF, a replica, a cluster without a primary for the slot).
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from 'redis';
import { StoreUnavailable } from '../errors.ts';

/** Error replies Redis gives while it cannot serve a command, by their first word. */
const REFUSALS = new Set(['OOM', 'LOADING', 'BUSY', 'READONLY', 'MASTERDOWN', 'CLUSTERDOWN', 'TRYAGAIN', 'NOREPLICAS', 'MISCONF']);

/** The client's own errors for a connection that is down, closed or too slow. */
const CONNECTION_ERRORS = [
  ClientClosedError,
  ClientOfflineError,
  SocketClosedUnexpectedlyError,
  ConnectionTimeoutError,
  SocketTimeoutError,
  TimeoutError,
  ReconnectStrategyError,
];

/** A Redis error as the Store seam reports it: StoreUnavailable when it is one of "cannot serve now". */
export function redisError(err: unknown): unknown {
  if (err instanceof StoreUnavailable) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ErrorReply) {
    return REFUSALS.has(message.split(' ', 1)[0]!) ? new StoreUnavailable(`redis: ${message}`, { cause: err }) : err;
  }
  const offline =
    CONNECTION_ERRORS.some((E) => err instanceof E) ||
    // the client's queue is full (commandsQueueMaxLength), or a socket error (ECONNREFUSED...)
    message === 'The queue is full' ||
    typeof (err as NodeJS.ErrnoException).code === 'string';
  return offline ? new StoreUnavailable(`redis: ${message}`, { cause: err }) : err;
}
