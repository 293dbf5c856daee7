// The forms of --store for Redis: one server (redis://, rediss://, read by the client itself) or a
// Redis Cluster given by seed nodes (redis-cluster://, rediss-cluster://, read here). Apart from
// the client so that checking a configuration does not load it.

/** A Redis Cluster's seed nodes and the credentials every node shares. */
export interface ClusterTarget {
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
  nodes: { host: string; port: number }[];
}

const CLUSTER_URL = /^(rediss?)-cluster:\/\/(?:([^@/]*)@)?([^/@?#]+)\/?$/;

/** Whether `url` names a Redis Cluster (redis-cluster:// or rediss-cluster://). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?-cluster:/.test(url);
}

/**
 * redis-cluster://[[user]:password@]host:port[,host:port…] (rediss-cluster:// for TLS); null
 * when it is not one. There is no database number: a cluster has only database 0.
 */
export function parseClusterUrl(url: string): ClusterTarget | null {
  const m = CLUSTER_URL.exec(url);
  if (!m) return null;
  const [, scheme, auth, hosts] = m;
  const nodes: { host: string; port: number }[] = [];
  for (const hostPort of hosts!.split(',')) {
    const hp = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(hostPort);
    const port = Number(hp?.[2]);
    if (!hp || port < 1 || port > 65535) return null;
    nodes.push({ host: hp[1]!.replace(/^\[|\]$/g, ''), port });
  }
  const colon = auth?.indexOf(':') ?? -1;
  const decode = (s: string | undefined) => (s ? decodeURIComponent(s) : undefined);
  return {
    tls: scheme === 'rediss',
    username: decode(colon < 0 ? undefined : auth!.slice(0, colon)),
    password: decode(colon < 0 ? auth : auth!.slice(colon + 1)),
    nodes,
  };
}

/** The URL without its user and password, for messages and logs. */
export function where(url: string): string {
  if (isClusterUrl(url)) return url.replace(/^([a-z-]+:\/\/)[^@/]*@/, '$1');
  const u = new URL(url);
  u.password = '';
  u.username = '';
  return u.toString();
}

