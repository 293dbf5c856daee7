// A cluster of `webpushd serve` processes on one Redis, as users run it: each node its own data
// dir and port; the token secrets are the store's (kept in Redis), so every node seals and opens
// the same URLs. A node can be killed -9 and started again on its port and data dir.
import { rmSync } from 'node:fs';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export interface Cluster {
  /** The running process of each node (replaced by start and restart). */
  readonly nodes: ServerProcess[];
  /** kill -9 of node i, then the same node again (port, data dir). */
  restart(i: number): Promise<ServerProcess>;
  /** Starts node i again after a kill9 of its own. */
  start(i: number): Promise<ServerProcess>;
  /** SIGTERM every node and remove the data dirs. */
  stop(): Promise<void>;
}

/** The same path on another node (a process, or an in-process test server). */
export const on = (node: { url: string }, url: string): string => `${node.url}${new URL(url).pathname}`;

/** The node's WebSocket URL. */
export const wsUrl = (node: ServerProcess): string => `${node.url.replace('http', 'ws')}/`;

export async function startCluster(storeUrl: string, count = 3, args: string[] = []): Promise<Cluster> {
  const nodes: ServerProcess[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
  };
  try {
    // one after the other: the first creates the token secret in Redis, the others read it
    for (let i = 0; i < count; i++) nodes.push(await startServerProcess({ args: ['--store', storeUrl, ...args] }));
  } catch (err) {
    await stop();
    throw err;
  }
  const start = async (i: number) => {
    const old = nodes[i]!;
    nodes[i] = await startServerProcess({ dataDir: old.dataDir, port: old.port, args: ['--store', storeUrl, ...args] });
    return nodes[i]!;
  };
  return {
    nodes,
    start,
    async restart(i) {
      await nodes[i]!.kill9();
      return start(i);
    },
    stop,
  };
}
