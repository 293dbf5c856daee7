// The Redis the store talks to: one server (redis://, rediss://) or a Redis Cluster given by seed
// nodes (redis-cluster://, rediss-cluster://), behind one small interface. A command goes to the
// node of its key's hash slot (every key the store names carries a hash tag, so a function's keys
// are on one node); the function library is loaded on every primary; hints use sharded pub/sub.
import { createClient, createCluster, RESP_TYPES, TimeoutError } from 'redis';
import { slotOfKey } from './keys.ts';
import { isClusterUrl, parseClusterUrl, where, type ClusterTarget } from './url.ts';

export type Reply = Buffer | number | null | Reply[];
type Args = readonly (string | Buffer)[];

export interface ConnectionOptions {
  url: string;
  /** One server: connections commands are spread over, by their key's slot (a cluster has one per primary). */
  connections: number;
  /** Connect and command timeout. */
  timeoutMs: number;
  /** Whether to reconnect after a lost connection (false: closing). */
  reconnect: () => boolean;
  /** A connection failed (reported on every failed reconnection attempt). */
  onError: (err: unknown) => void;
  /** A connection to a node is ready again: it may be a new node (failover) or a flushed one. */
  onReady: (node: (args: Args) => Promise<Reply>) => void;
}

export interface RedisConnection {
  connect(): Promise<void>;
  /** `args` on the node holding `key`. */
  send(key: string | Buffer, readOnly: boolean, args: Args): Promise<Reply>;
  /** `args` on every primary (one server: that one). */
  everyPrimary(args: Args): Promise<void>;
  /**
   * Listens on sharded pub/sub channels over connections of their own; `onResubscribed` after
   * one of them came back (messages sent meanwhile were lost). Resolves with the way to stop.
   */
  subscribe(channels: string[], onMessage: (message: Buffer) => void, onResubscribed: () => void, onError: (err: unknown) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /** Drops the connections at once (a failed start). */
  destroy(): void;
}

// timeout 0: none of the client's own (it applies a default one otherwise); deadline() below keeps it
const commandOptions = { timeout: 0, typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.MAP]: Array } };

/** Parts of the timeout the deadline's timer steps by: a command fails after 1 to 1 + 1/STEPS times it. */
const STEPS = 4;

/**
 * The command timeout, for every command of a connection by one timer, instead of the client's
 * `timeout` option (a timer and an abort signal per command, and only until the command is
 * written: a Redis that stopped answering never fails one written to it). A command unanswered
 * after the timeout fails with TimeoutError (StoreUnavailable, 503); its late reply is dropped.
 */
function deadline(timeoutMs: number) {
  // the commands waiting, by the step they were sent in
  const steps = Array.from({ length: STEPS + 2 }, () => new Set<(err: Error) => void>());
  let step = 0;
  const timer = setInterval(() => {
    step++;
    // those sent STEPS + 1 steps ago: a whole timeout at least
    const due = steps[(step + 1) % steps.length]!;
    for (const fail of due) fail(new TimeoutError(`no reply from Redis within ${timeoutMs} ms`));
    due.clear();
  }, timeoutMs / STEPS).unref();
  return {
    track<T>(reply: Promise<T>): Promise<T> {
      const waiting = steps[step % steps.length]!;
      return new Promise<T>((resolve, reject) => {
        waiting.add(reject);
        reply.then(
          (value) => {
            waiting.delete(reject);
            resolve(value);
          },
          (err: unknown) => {
            waiting.delete(reject);
            reject(err as Error);
          },
        );
      });
    },
    stop: () => clearInterval(timer),
  };
}

function socketOptions(o: ConnectionOptions) {
  return {
    connectTimeout: o.timeoutMs,
    // the first connection fails the start; once running, it retries for ever
    reconnectStrategy: (retries: number, cause: Error) => (o.reconnect() ? Math.min(50 * 2 ** retries, 2000) : cause),
  };
}

export function openConnection(o: ConnectionOptions): RedisConnection {
  const cluster = isClusterUrl(o.url) ? parseClusterUrl(o.url) : null;
  if (isClusterUrl(o.url) && !cluster) throw new Error(`not a Redis Cluster URL: ${where(o.url)}`);
  return cluster ? clusterConnection(o, cluster) : singleConnection(o);
}

/**
 * One server over several connections: with `appendfsync always` Redis answers after the fsync
 * of each event-loop turn, and reads a bounded part of each connection's commands per turn, so
 * one connection would bound the writes per fsync. A command goes to the connection of its key's
 * slot: every command of one user agent (one hash tag) keeps its order, as on a cluster.
 */
function singleConnection(o: ConnectionOptions): RedisConnection {
  const clients = Array.from({ length: o.connections }, () => {
    const client = createClient({
      url: o.url,
      // while disconnected a command fails at once (503) instead of waiting in a queue
      disableOfflineQueue: true,
      socket: socketOptions(o),
      commandOptions,
    });
    client.on('error', o.onError);
    client.on('ready', () => o.onReady((args) => client.sendCommand<Reply>(args)));
    return client;
  });
  const clientOf = (key: string | Buffer) => clients[slotOfKey(key.toString('latin1')) % clients.length]!;
  const replies = deadline(o.timeoutMs);
  return {
    async connect() {
      await Promise.all(clients.map((c) => c.connect()));
    },
    send: (key, _readOnly, args) => replies.track(clientOf(key).sendCommand<Reply>(args)),
    async everyPrimary(args) {
      await replies.track(clients[0]!.sendCommand(args));
    },
    async subscribe(channels, onMessage, onResubscribed, onError) {
      const sub = clients[0]!.duplicate({ commandOptions: {} });
      let ready = false;
      sub.on('error', onError);
      sub.on('ready', () => {
        if (ready) onResubscribed();
      });
      await sub.connect();
      // as Buffers: a message's hint carries its record (binary)
      await sub.sSubscribe(channels, (message: Buffer) => onMessage(message), true);
      ready = true;
      return async () => {
        ready = false;
        if (sub.isReady) await sub.close();
        else sub.destroy();
      };
    },
    async close() {
      replies.stop();
      await Promise.all(
        clients.map(async (client) => {
          if (client.isReady) await client.close();
          else if (client.isOpen) client.destroy();
        }),
      );
    },
    destroy: () => {
      replies.stop();
      for (const client of clients) if (client.isOpen) client.destroy();
    },
  };
}

function clusterConnection(o: ConnectionOptions, target: ClusterTarget): RedisConnection {
  const options = {
    rootNodes: target.nodes.map((socket) => ({ socket })),
    // what every node's connection uses, found or given
    defaults: {
      ...(target.username ? { username: target.username } : {}),
      ...(target.password ? { password: target.password } : {}),
      disableOfflineQueue: true,
      socket: { ...socketOptions(o), ...(target.tls ? { tls: true as const } : {}) },
    },
    // replicas lag behind: reading one could miss a message its primary acknowledged
    useReplicas: false,
    commandOptions,
  };
  const cluster = createCluster(options);
  const replies = deadline(o.timeoutMs);
  const primaryAt = async (host: string, port: number) => {
    const node = cluster.masters.find((m) => m.host === host && m.port === port);
    return node ? cluster.nodeClient(node) : null;
  };
  cluster.on('error', o.onError);
  cluster.on('node-error', o.onError);
  cluster.on('node-ready', ({ host, port }: { host: string; port: number }) => {
    primaryAt(host, port)
      .then((client) => client && o.onReady((args) => client.sendCommand<Reply>(args)))
      .catch(o.onError);
  });
  return {
    async connect() {
      await cluster.connect();
    },
    send: (key, readOnly, args) => replies.track(cluster.sendCommand<Reply>(key, readOnly, [...args])),
    async everyPrimary(args) {
      await Promise.all(cluster.masters.map(async (m) => replies.track((await cluster.nodeClient(m)).sendCommand(args))));
    },
    async subscribe(channels, onMessage, onResubscribed, onError) {
      // only the pub/sub connections (of the primaries holding the channels), not one to every node
      const sub = cluster.duplicate({ minimizeConnections: true, commandOptions: {} });
      let ready = false;
      sub.on('error', onError);
      sub.on('node-error', onError);
      sub.on('node-ready', () => {
        if (ready) onResubscribed();
      });
      await sub.connect();
      // one SSUBSCRIBE per channel: channels of different slots may be on different primaries
      for (const channel of channels) await sub.sSubscribe(channel, (message: Buffer) => onMessage(message), true);
      ready = true;
      return async () => {
        ready = false;
        if (sub.isReady) await sub.close();
        else sub.destroy();
      };
    },
    async close() {
      replies.stop();
      if (cluster.isReady) await cluster.close();
      else if (cluster.isOpen) cluster.destroy();
    },
    destroy: () => {
      replies.stop();
      cluster.destroy();
    },
  };
}
