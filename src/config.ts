// The validated configuration everything is built from (see docs/CONFIGURATION.md). Each field
// has a flag, a WEBPUSHD_* variable and a config-file key in src/config/schema.ts; src/config/load.ts
// merges them (flag > env > file > DEFAULTS).

export interface Config {
  host: string;
  port: number;
  /** 'on': several processes listen on the same port, the kernel spreads connections over them (SO_REUSEPORT). */
  reusePort: 'on' | 'off';
  /** Holds the SQLite database and the token secret. */
  dataDir: string;
  /** Where subscriptions and messages are kept: a redis:// or rediss:// URL; undefined: SQLite in the data dir. */
  store: string | undefined;
  /** With a Redis store: 'store' keeps the token secrets in Redis (every node shares them), 'file' in each node's data dir. */
  secrets: 'store' | 'file';
  /** With a Redis store: how often each node re-reads the token secrets and broadcast versions (the bound on a lost change hint). */
  clusterRefreshIntervalMs: number;
  /** With a Redis store: how often each node checks its connections for messages whose hint was lost (the bound on that delay). */
  clusterRecheckIntervalMs: number;
  /** With one Redis (redis://): connections to it, commands spread over them by hash slot. */
  storeConnections: number;
  /** Base of the URLs handed out; default from host, port and TLS. */
  publicUrl: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  /** Stored messages per user agent before sends to it get 429. */
  maxStoredPerUserAgent: number;
  /** Stored messages per subscription before sends to it get 429 (one site cannot fill a user agent's share). */
  maxStoredPerSubscription: number;
  /** Subscriptions (channels) one user agent may hold; one more is refused. */
  maxChannelsPerUserAgent: number;
  /** New subscriptions (WebSocket register, POST /subscribe) per second per client address; 0: no limit. */
  rateLimitRegister: number;
  rateLimitRegisterBurst: number;
  /** Messages are refused (507) while the data dir's file system has less free than this many MiB. */
  minFreeDiskMib: number;
  /** Messages are refused (507) while the database is larger than this many MiB; 0: no quota. */
  maxStoreMib: number;
  /** Bytes written to one WebSocket user agent and not yet taken by it before live delivery pauses. */
  maxBufferedBytes: number;
  /** Frames of one WebSocket connection waiting to be handled before the server stops reading it. */
  maxPendingFrames: number;
  /** A megaphone-style API polled for broadcast versions ({"broadcasts": {id: version}}). */
  broadcastUrl: string | undefined;
  /** Its Authorization (a bearer token, or a whole header value with its scheme). */
  broadcastToken: string | undefined;
  broadcastPollIntervalMs: number;
  maxMessageBytes: number;
  /** Longer TTLs are kept at this many seconds (and the 201 says so). */
  maxTtl: number;
  sync: 'full' | 'normal';
  /** User agents whose stored-message counts the SQLite writer keeps in memory (0: a count query per save). */
  storeCountCache: number;
  pushTokenCache: number;
  vapidCache: number;
  broadcasts: Map<string, string>;
  handshakeTimeoutMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  minClientPingIntervalMs: number;
  deliveryBatch: number;
  sweepIntervalMs: number;
  logLevel: string;
  /** Where /metrics and the dashboard listen; never on the public port. undefined: not served. */
  adminHost: string;
  adminPort: number | undefined;
  /** Host names the admin listener answers to besides IP addresses and localhost (DNS rebinding). */
  adminHosts: string[];
  /** When set, the admin listener's /metrics and /api/stats need it as a bearer token. */
  adminToken: string | undefined;
  /** Messages per second per subscription (POST /wpush/…); 0: no limit. */
  rateLimitSubscription: number;
  rateLimitSubscriptionBurst: number;
  /** Requests per second per client address (POST /wpush/…, POST /subscribe); 0: no limit. */
  rateLimitAddress: number;
  rateLimitAddressBurst: number;
  /** Open WebSocket connections plus HTTP/2 sessions per client address; 0: no limit. */
  maxConnectionsPerAddress: number;
  /** 'exempt': the per-address limits do not apply to 127.0.0.0/8 and ::1. */
  loopbackLimits: 'exempt' | 'limited';
  /** Reverse proxies (IPs, CIDR ranges) whose X-Forwarded-For names the client for the per-address limits. */
  trustedProxies: string[];
  /** IPv6 clients are keyed by this prefix for the per-address limits (one /64 is one client). */
  ipv6LimitPrefix: number;
  /** HTTP/1.1 request head (max-header-size) and HTTP/2 header list limit. */
  maxHeaderBytes: number;
  /** HTTP/1.1: time to receive a complete request head (slow-header clients are cut); also the time a new connection has to send its first byte. */
  headersTimeoutMs: number;
  /** HTTP/1.1: time to receive a complete request. */
  requestTimeoutMs: number;
  /** HTTP/1.1: idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** HTTP/2: a session without open streams (no monitor, no request) is closed after this. */
  http2IdleTimeoutMs: number;
  /** HTTP/2: memory (MiB) a session may buffer before new streams are refused. */
  http2MaxSessionMemory: number;
  /** HTTP/2: streams (requests, monitors) a client may have open on one session (SETTINGS_MAX_CONCURRENT_STREAMS). */
  http2MaxConcurrentStreams: number;
  /** HTTP/2: server pushes of one session not yet taken by the client before its monitors stop pushing. */
  http2MaxPendingPushes: number;
  /** TLS: time for a client to complete the TLS handshake. */
  tlsHandshakeTimeoutMs: number;
  /** Shutdown: how long in-flight requests and closing connections may take before they are cut. */
  shutdownTimeoutMs: number;
  /** A user agent not seen (connected) for this many days is deleted with its subscriptions; 0: never. */
  userAgentExpiryDays: number;
  /** 'on': the /demo page and demo application server on the public port. */
  demo: 'on' | 'off';
  /** 'on': every push without valid VAPID is refused (401), not only pushes to restricted subscriptions. */
  requireVapid: 'on' | 'off';
  /** Members one aggregate may hold. */
  aggregateMaxMembers: number;
  /** Aggregates one VAPID key may hold. */
  aggregateMaxPerKey: number;
  /** Fan-outs (sends to an aggregate) per second per VAPID key; 0: no limit. */
  aggregateFanoutRate: number;
  aggregateFanoutBurst: number;
  /** An aggregate neither changed nor sent to for this many seconds is deleted. */
  aggregateExpirySeconds: number;
  /** Largest body of an aggregate request (member document, merge patch, batch). */
  aggregateMaxBodyBytes: number;
  /** Members a fan-out writes per event-loop turn. */
  aggregateChunk: number;
  /** Chunks of one fan-out waiting for their commit at once. */
  aggregateChunksInFlight: number;
}

export const DEFAULTS: Config = {
  host: '0.0.0.0',
  port: 8080,
  reusePort: 'off',
  dataDir: './data',
  store: undefined,
  secrets: 'store',
  clusterRefreshIntervalMs: 10_000,
  clusterRecheckIntervalMs: 30_000,
  storeConnections: 4,
  publicUrl: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  maxStoredPerUserAgent: 1000,
  maxStoredPerSubscription: 100,
  maxChannelsPerUserAgent: 1000,
  rateLimitRegister: 10,
  rateLimitRegisterBurst: 100,
  minFreeDiskMib: 64,
  maxStoreMib: 0,
  maxBufferedBytes: 256 * 1024,
  maxPendingFrames: 16,
  broadcastUrl: undefined,
  broadcastToken: undefined,
  broadcastPollIntervalMs: 30_000,
  maxMessageBytes: 4096,
  maxTtl: 30 * 24 * 3600,
  sync: 'full',
  storeCountCache: 50_000,
  pushTokenCache: 10_000,
  vapidCache: 10_000,
  broadcasts: new Map(),
  handshakeTimeoutMs: 5_000,
  pingIntervalMs: 300_000,
  pongTimeoutMs: 10_000,
  minClientPingIntervalMs: 45_000,
  deliveryBatch: 100,
  sweepIntervalMs: 60_000,
  adminHost: '127.0.0.1',
  adminPort: undefined,
  adminHosts: [],
  adminToken: undefined,
  logLevel: 'info',
  rateLimitSubscription: 100,
  rateLimitSubscriptionBurst: 200,
  rateLimitAddress: 0,
  rateLimitAddressBurst: 1000,
  maxConnectionsPerAddress: 100,
  loopbackLimits: 'exempt',
  trustedProxies: [],
  ipv6LimitPrefix: 64,
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  http2IdleTimeoutMs: 120_000,
  http2MaxSessionMemory: 10,
  http2MaxConcurrentStreams: 100,
  http2MaxPendingPushes: 100,
  tlsHandshakeTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
  userAgentExpiryDays: 60,
  demo: 'on',
  requireVapid: 'off',
  aggregateMaxMembers: 10_000,
  aggregateMaxPerKey: 100,
  aggregateFanoutRate: 1,
  aggregateFanoutBurst: 10,
  aggregateExpirySeconds: 30 * 86_400,
  aggregateMaxBodyBytes: 16 * 1024 * 1024,
  aggregateChunk: 100,
  aggregateChunksInFlight: 2,
};

/** The public base URL: configured, or derived from the listening address. */
export function publicUrlOf(config: Config, port: number): string {
  if (config.publicUrl) return config.publicUrl.replace(/\/+$/, '');
  const scheme = config.tlsCert ? 'https' : 'http';
  const wildcard = config.host === '0.0.0.0' || config.host === '::' || config.host === '';
  const host = wildcard ? 'localhost' : config.host.includes(':') ? `[${config.host}]` : config.host;
  return `${scheme}://${host}:${port}`;
}
