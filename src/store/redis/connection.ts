// The Redis the store talks to: one server (redis://, rediss://) or a Redis Cluster given by seed
// nodes (redis-cluster://, rediss-cluster://), behind one small interface. A command goes to the
// node of its key's hash slot (every key the store names carries a hash tag, so a function's keys
// are on one node); the function library is loaded on every primary; hints use sharded pub/sub.
import { createClient, createCluster, RESP_TYPES } from 'redis';
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
  subscribe(channels: string[], onMessage: (message: string) => void, onResubscribed: () => void, onError: (err: unknown) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
  /** Drops the connections at once (a failed start). */
  destroy(): void;
}

const commandOptions = (timeoutMs: number) => ({
  timeout: timeoutMs,
  typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer, [RESP_TYPES.MAP]: Array },
});

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
      commandOptions: commandOptions(o.timeoutMs),
    });
    client.on('error', o.onError);
    client.on('ready', () => o.onReady((args) => client.sendCommand<Reply>(args)));
    return client;
  });
  const clientOf = (key: string | Buffer) => clients[slotOfKey(key.toString('latin1')) % clients.length]!;
  return {
    async connect() {
      await Promise.all(clients.map((c) => c.connect()));
    },
    send: (key, _readOnly, args) => clientOf(key).sendCommand<Reply>(args),
    async everyPrimary(args) {
      await clients[0]!.sendCommand(args);
    },
    async subscribe(channels, onMessage, onResubscribed, onError) {
      const sub = clients[0]!.duplicate({ commandOptions: {} });
      let ready = false;
      sub.on('error', onError);
      sub.on('ready', () => {
        if (ready) onResubscribed();
      });
      await sub.connect();
      await sub.sSubscribe(channels, (message: string) => onMessage(message));
      ready = true;
      return async () => {
        ready = false;
        if (sub.isReady) await sub.close();
        else sub.destroy();
      };
    },
    async close() {
      await Promise.all(
        clients.map(async (client) => {
          if (client.isReady) await client.close();
          else if (client.isOpen) client.destroy();
        }),
      );
    },
    destroy: () => {
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
    commandOptions: commandOptions(o.timeoutMs),
  };
  const cluster = createCluster(options);
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
    send: (key, readOnly, args) => cluster.sendCommand<Reply>(key, readOnly, [...args]),
    async everyPrimary(args) {
      await Promise.all(cluster.masters.map(async (m) => (await cluster.nodeClient(m)).sendCommand(args)));
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
      for (const channel of channels) await sub.sSubscribe(channel, (message: string) => onMessage(message));
      ready = true;
      return async () => {
        ready = false;
        if (sub.isReady) await sub.close();
        else sub.destroy();
      };
    },
    async close() {
      if (cluster.isReady) await cluster.close();
      else if (cluster.isOpen) cluster.destroy();
    },
    destroy: () => cluster.destroy(),
  };
}
