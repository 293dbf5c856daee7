// A cluster of `webpushd serve` processes on one Redis, as users run it: each node its own data
// dir and port, the same token secret in every data dir (so every node seals and opens the same
// URLs). A node can be killed -9 and started again on its port and data dir.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SECRET_FILE } from '../../src/tokens/secret-file.ts';
import { startServerProcess, type ServerProcess } from './server-process.ts';

export interface Cluster {
  /** The running process of each node (replaced by restart). */
  readonly nodes: ServerProcess[];
  /** kill -9 of node i, then the same node again (port, data dir, secret). */
  restart(i: number): Promise<ServerProcess>;
  /** Starts node i again after a kill9 of its own. */
  start(i: number): Promise<ServerProcess>;
  /** SIGTERM every node and remove the data dirs. */
  stop(): Promise<void>;
}

/** The same path on another node. */
export const on = (node: ServerProcess, url: string): string => `${node.url}${new URL(url).pathname}`;

/** The node's WebSocket URL. */
export const wsUrl = (node: ServerProcess): string => `${node.url.replace('http', 'ws')}/`;

export async function startCluster(storeUrl: string, count = 3, args: string[] = []): Promise<Cluster> {
  const first = await startServerProcess({ args: ['--store', storeUrl, ...args] });
  const nodes = [first];
  const dirs = [first.dataDir];
  for (let i = 1; i < count; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'webpushd-node-'));
    copyFileSync(join(first.dataDir, SECRET_FILE), join(dir, SECRET_FILE));
    dirs.push(dir);
    nodes.push(await startServerProcess({ dataDir: dir, args: ['--store', storeUrl, ...args] }));
  }
  const start = async (i: number) => {
    nodes[i] = await startServerProcess({ dataDir: dirs[i]!, port: nodes[i]!.port, args: ['--store', storeUrl, ...args] });
    return nodes[i]!;
  };
  return {
    nodes,
    start,
    async restart(i) {
      await nodes[i]!.kill9();
      return start(i);
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    },
  };
}
