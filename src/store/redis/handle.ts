// What every part of the Redis store shares: the connection, the function library (loaded at
// start, after a reconnection, and again when a Redis lacks it), and the way failures are
// reported (StoreUnavailable) and tracked for readiness. The parts (user-agents.ts, messages.ts,
// receipts.ts, sweeps.ts, routing.ts, cluster-state.ts, secrets.ts, broadcasts.ts, import.ts)
// talk to Redis only through it.
import { readFileSync } from 'node:fs';
import { ErrorReply } from 'redis';
import { StoreUnavailable } from '../errors.ts';
import { openConnection, type RedisConnection, type Reply } from './connection.ts';
import { redisError } from './errors.ts';
import { GLOBAL } from './keys.ts';
import { isClusterUrl, where } from './url.ts';

export interface RedisHandleOptions {
  /** redis://[[user]:password@]host[:port][/db], rediss://…, or a Redis Cluster's seed nodes: redis-cluster://[[user]:password@]host:port[,host:port…] (rediss-cluster://…) */
  url: string;
  /** One Redis: connections to it, commands spread by slot (default 4; a Redis Cluster: one per primary). */
  connections?: number;
  /** How long a command waits for its reply before it fails as unavailable (default 5000 ms). */
  commandTimeoutMs?: number;
  now?: () => number;
  /** Writes started failing (the error), or succeed again after failing (null). */
  onWritable?: (failure: Error | null) => void;
}

/** Connections to one Redis unless told (see RedisHandleOptions.connections). */
const DEFAULT_CONNECTIONS = 4;
const LIBRARY = readFileSync(new URL('./functions.lua', import.meta.url), 'utf8');
/** The functions' names carry the library's version (functions.lua). */
const PREFIX = 'wp1_';

export class RedisHandle {
  readonly now: () => number;
  /** A Redis Cluster (else one Redis). */
  readonly cluster: boolean;
  readonly #redis: RedisConnection;
  readonly #where: string;
  readonly #onWritable: (failure: Error | null) => void;
  #running = false;
  /** Why the last write failed, until one succeeds again. */
  #writeFailure: Error | null = null;
  /** Slots known to be in GLOBAL.slots (the sweeps read the indexes of those). */
  readonly #registered = new Set<number>();

  constructor(opts: RedisHandleOptions) {
    this.#where = where(opts.url);
    this.cluster = isClusterUrl(opts.url);
    this.now = opts.now ?? Date.now;
    this.#onWritable = opts.onWritable ?? (() => {});
    this.#redis = openConnection({
      url: opts.url,
      connections: opts.connections ?? DEFAULT_CONNECTIONS,
      timeoutMs: opts.commandTimeoutMs ?? 5000,
      reconnect: () => this.#running,
      // the client reports each failed reconnection: the store says once that it is failing
      onError: (err) => {
        if (this.#running) this.failing(redisError(err));
      },
      // a Redis that came back may be a new one (a failover, a flushed one): it gets the library
      onReady: (node) => {
        if (this.#running) node(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY]).catch((err: unknown) => this.failing(redisError(err)));
      },
    });
  }

  /** Connects and loads the functions; rejects (StoreUnavailable) when Redis cannot be reached. */
  async start(): Promise<void> {
    try {
      await this.#redis.connect();
      await this.#loadLibrary();
    } catch (err) {
      this.#redis.destroy();
      throw new StoreUnavailable(`cannot use Redis at ${this.#where}: ${(err as Error).message}`, { cause: err });
    }
    this.#running = true;
  }

  /** On every primary: each runs the functions of the slots it holds. */
  async #loadLibrary(): Promise<void> {
    await this.#redis.everyPrimary(['FUNCTION', 'LOAD', 'REPLACE', LIBRARY]);
  }

  failing(err: unknown): void {
    const first = this.#writeFailure === null;
    this.#writeFailure = err instanceof Error ? err : new Error(String(err));
    if (first) this.#onWritable(this.#writeFailure);
  }

  async fcall(name: string, keys: readonly string[], args: readonly (string | Buffer)[], readOnly = false): Promise<Reply> {
    const command = [readOnly ? 'FCALL_RO' : 'FCALL', PREFIX + name, String(keys.length), ...keys, ...args];
    try {
      return await this.#redis.send(keys[0]!, readOnly, command);
    } catch (err) {
      // a Redis without the library (flushed, or a primary that never had it): load it, once
      if (!(err instanceof ErrorReply && err.message.startsWith('ERR Function not found'))) throw err;
      await this.#loadLibrary();
      return await this.#redis.send(keys[0]!, readOnly, command);
    }
  }

  /** One command; `args[1]` is its key (or sharded channel), which names the node it goes to. */
  command(args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.send(args[1]!, args);
  }

  /** One command on the node holding `key`. */
  send(key: string | Buffer, args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.#redis.send(key, false, args);
  }

  /** A write, with failures reported the way the Store seam does (StoreUnavailable) and tracked for readiness. */
  async write<T>(write: () => Promise<T>): Promise<T> {
    let value: T;
    try {
      value = await write();
    } catch (raw) {
      const err = redisError(raw);
      if (err instanceof StoreUnavailable) this.failing(err);
      throw err;
    }
    if (this.#writeFailure) {
      this.#writeFailure = null;
      this.#onWritable(null);
    }
    return value;
  }

  async read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      throw redisError(err);
    }
  }

  /** Adds `slot` to the slots the sweeps visit before its first index entry can be written. */
  async register(slot: number): Promise<void> {
    if (this.#registered.has(slot)) return;
    await this.command(['SADD', GLOBAL.slots, String(slot)]);
    this.#registered.add(slot);
  }

  async slots(): Promise<number[]> {
    return ((await this.command(['SMEMBERS', GLOBAL.slots])) as Buffer[]).map(Number);
  }

  /** Listens on sharded pub/sub channels (RedisConnection.subscribe), its failures tracked as a write's. */
  subscribe(channels: string[], onMessage: (message: Buffer) => void, onResubscribed: () => void): Promise<() => Promise<void>> {
    return this.#redis.subscribe(channels, onMessage, onResubscribed, (err) => this.failing(redisError(err)));
  }

  /**
   * null while the store reads and writes; else why not. A cheap read while writes succeed;
   * while they fail, a write of the probe key, so recovery is seen without other traffic.
   */
  async unavailable(): Promise<string | null> {
    if (this.#writeFailure) {
      try {
        await this.write(() => this.command(['SET', GLOBAL.probe, String(this.now())]));
      } catch (err) {
        return `store cannot write: ${(err as Error).message}`;
      }
    }
    try {
      await this.read(() => this.command(['EXISTS', GLOBAL.probe]));
      return null;
    } catch (err) {
      return `store unreachable: ${(err as Error).message}`;
    }
  }

  async close(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    await this.#redis.close();
  }
}
