// Every option of `webpushd serve`: its Config key (also the config-file key), flag,
// environment variable, validation and help. docs/CONFIGURATION.md documents the same table.
import { z } from 'zod';
import type { Config } from '../config.ts';
import { isAddressOrRange } from '../limits/client-address.ts';
import { parseClusterUrl } from '../store/redis/url.ts';

export type OptionKind =
  | { type: 'string' }
  | { type: 'int'; min: number; max: number }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'url' }
  | { type: 'broadcasts' }
  | { type: 'addresses' }
  | { type: 'hosts' }
  | { type: 'store' };

export interface OptionSpec {
  /** The Config field, and the key in the config file. */
  key: keyof Config;
  /** Long flag without the dashes, e.g. `max-stored`. */
  flag: string;
  /** Environment variable without the WEBPUSHD_ prefix. */
  env: string;
  /** Placeholder shown in --help. */
  arg: string;
  help: string;
  kind: OptionKind;
  /** Optional: no value (undefined) is allowed. */
  optional?: boolean;
  /** A secret: `--print-config` shows it masked. */
  secret?: boolean;
}

const MAX = Number.MAX_SAFE_INTEGER;
const int = (min: number, max = MAX): OptionKind => ({ type: 'int', min, max });
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export const OPTIONS: readonly OptionSpec[] = [
  { key: 'host', flag: 'host', env: 'HOST', arg: 'address', help: 'address to listen on', kind: { type: 'string' } },
  { key: 'port', flag: 'port', env: 'PORT', arg: 'port', help: 'port to listen on (0 = any free port)', kind: int(0, 65535) },
  { key: 'reusePort', flag: 'reuse-port', env: 'REUSE_PORT', arg: 'on|off', help: 'on: other nodes on this machine may listen on the same port (SO_REUSEPORT; Linux), the kernel spreads connections over them', kind: { type: 'enum', values: ['on', 'off'] } },
  { key: 'dataDir', flag: 'data-dir', env: 'DATA_DIR', arg: 'dir', help: 'holds the SQLite database and the token secret', kind: { type: 'string' } },
  { key: 'store', flag: 'store', env: 'STORE', arg: 'url', help: 'keep subscriptions and messages in Redis 7+: redis://[:password@]host[:port][/db], rediss://…, or a Redis Cluster by seed nodes: redis-cluster://[:password@]host:port[,host:port…] (rediss-cluster://…) (default: SQLite in the data dir)', kind: { type: 'store' }, optional: true, secret: true },
  { key: 'secrets', flag: 'secrets', env: 'SECRETS', arg: 'store|file', help: 'with --store: where the token secrets live, in the store (shared by every node) or in the data dir\'s secret.key (the same file on every node)', kind: { type: 'enum', values: ['store', 'file'] } },
  { key: 'clusterRefreshIntervalMs', flag: 'cluster-refresh-interval-ms', env: 'CLUSTER_REFRESH_INTERVAL_MS', arg: 'ms', help: 'with --store: how often each node re-reads the token secrets and broadcast versions (a change is announced at once; this bounds a lost announcement)', kind: int(100, 3_600_000) },
  { key: 'clusterRecheckIntervalMs', flag: 'cluster-recheck-interval-ms', env: 'CLUSTER_RECHECK_INTERVAL_MS', arg: 'ms', help: 'with --store: how often each node checks in Redis whether its connected user agents have messages it was not told about (a lost hint delays a message by this at most; one read per connection)', kind: int(100, 3_600_000) },
  { key: 'storeConnections', flag: 'store-connections', env: 'STORE_CONNECTIONS', arg: 'n', help: 'with --store redis://: connections to Redis, each user agent\'s commands on one of them (Redis reads a bounded part of each connection per fsync; a Redis Cluster: one per primary)', kind: int(1, 64) },
  { key: 'publicUrl', flag: 'public-url', env: 'PUBLIC_URL', arg: 'url', help: 'base of the URLs handed out (default: from host and port)', kind: { type: 'url' }, optional: true },
  { key: 'tlsCert', flag: 'tls-cert', env: 'TLS_CERT', arg: 'file', help: 'PEM certificate: serve HTTPS and WSS', kind: { type: 'string' }, optional: true },
  { key: 'tlsKey', flag: 'tls-key', env: 'TLS_KEY', arg: 'file', help: 'PEM private key for --tls-cert', kind: { type: 'string' }, optional: true },
  { key: 'maxStoredPerUserAgent', flag: 'max-stored', env: 'MAX_STORED', arg: 'n', help: 'messages stored per user agent before sends get 429', kind: int(1) },
  { key: 'maxStoredPerSubscription', flag: 'max-stored-per-subscription', env: 'MAX_STORED_PER_SUBSCRIPTION', arg: 'n', help: 'messages stored per subscription before sends to it get 429', kind: int(1) },
  { key: 'maxChannelsPerUserAgent', flag: 'max-channels', env: 'MAX_CHANNELS', arg: 'n', help: 'subscriptions one user agent may hold', kind: int(1) },
  { key: 'rateLimitRegister', flag: 'rate-limit-register', env: 'RATE_LIMIT_REGISTER', arg: 'per-second', help: 'new subscriptions (register, POST /subscribe) per second from one client address (0 = no limit)', kind: int(0) },
  { key: 'rateLimitRegisterBurst', flag: 'rate-limit-register-burst', env: 'RATE_LIMIT_REGISTER_BURST', arg: 'n', help: 'new subscriptions from one address allowed at once after idling', kind: int(1) },
  { key: 'minFreeDiskMib', flag: 'min-free-disk', env: 'MIN_FREE_DISK', arg: 'MiB', help: 'refuse messages (507) while the data dir has less free space than this', kind: int(0) },
  { key: 'maxStoreMib', flag: 'max-store-size', env: 'MAX_STORE_SIZE', arg: 'MiB', help: 'refuse messages (507) while the database is larger than this (0 = no quota)', kind: int(0) },
  { key: 'maxBufferedBytes', flag: 'max-buffered-bytes', env: 'MAX_BUFFERED_BYTES', arg: 'bytes', help: 'bytes a WebSocket user agent may leave unread before live delivery pauses', kind: int(16 * 1024, 64 * 1024 * 1024) },
  { key: 'maxPendingFrames', flag: 'max-pending-frames', env: 'MAX_PENDING_FRAMES', arg: 'n', help: 'frames of one WebSocket connection waiting to be handled before it is no longer read', kind: int(1, 10_000) },
  { key: 'broadcastUrl', flag: 'broadcast-url', env: 'BROADCAST_URL', arg: 'url', help: 'a megaphone-style API polled for broadcast versions', kind: { type: 'url' }, optional: true },
  { key: 'broadcastToken', flag: 'broadcast-token', env: 'BROADCAST_TOKEN', arg: 'token', help: 'Authorization for --broadcast-url (a bearer token)', kind: { type: 'string' }, optional: true, secret: true },
  { key: 'broadcastPollIntervalMs', flag: 'broadcast-poll-interval-ms', env: 'BROADCAST_POLL_INTERVAL_MS', arg: 'ms', help: 'how often --broadcast-url is polled', kind: int(1000, 86_400_000) },
  { key: 'maxMessageBytes', flag: 'max-message-size', env: 'MAX_MESSAGE_SIZE', arg: 'bytes', help: 'largest message body accepted (at least 4096)', kind: int(4096) },
  { key: 'maxTtl', flag: 'max-ttl', env: 'MAX_TTL', arg: 'seconds', help: 'longest TTL kept', kind: int(1) },
  { key: 'sync', flag: 'sync', env: 'SYNC', arg: 'mode', help: 'full: fsync every commit; normal: survive process crashes only', kind: { type: 'enum', values: ['full', 'normal'] } },
  { key: 'storeCountCache', flag: 'store-count-cache', env: 'STORE_COUNT_CACHE', arg: 'n', help: 'user agents whose stored-message counts SQLite keeps in memory, so a send is checked against the caps without a count query (0 = none)', kind: int(0) },
  { key: 'pushTokenCache', flag: 'push-token-cache', env: 'PUSH_TOKEN_CACHE', arg: 'n', help: 'push tokens kept opened, the last used, so a sender posting to one push URL again and again does not decrypt it each time (0 = none)', kind: int(0, 1_000_000) },
  { key: 'vapidCache', flag: 'vapid-cache', env: 'VAPID_CACHE', arg: 'n', help: 'verified VAPID signatures kept until they expire, so a sender reusing one is not verified again', kind: int(1, 1_000_000) },
  { key: 'broadcasts', flag: 'broadcast', env: 'BROADCAST', arg: 'id=version', help: 'a broadcast version announced to user agents (repeatable; the variable takes a comma-separated list)', kind: { type: 'broadcasts' } },
  { key: 'handshakeTimeoutMs', flag: 'handshake-timeout-ms', env: 'HANDSHAKE_TIMEOUT_MS', arg: 'ms', help: 'time a WebSocket client has to send its hello', kind: int(100, 3_600_000) },
  { key: 'pingIntervalMs', flag: 'ping-interval-ms', env: 'PING_INTERVAL_MS', arg: 'ms', help: 'idle time before the server pings a WebSocket client', kind: int(1000, 86_400_000) },
  { key: 'pongTimeoutMs', flag: 'pong-timeout-ms', env: 'PONG_TIMEOUT_MS', arg: 'ms', help: 'time to answer a server ping before the connection is closed', kind: int(100, 3_600_000) },
  { key: 'minClientPingIntervalMs', flag: 'min-client-ping-interval-ms', env: 'MIN_CLIENT_PING_INTERVAL_MS', arg: 'ms', help: 'client pings closer together than this are refused', kind: int(0, 86_400_000) },
  { key: 'deliveryBatch', flag: 'delivery-batch', env: 'DELIVERY_BATCH', arg: 'n', help: 'stored messages sent per batch to a user agent', kind: int(1, 10_000) },
  { key: 'sweepIntervalMs', flag: 'sweep-interval-ms', env: 'SWEEP_INTERVAL_MS', arg: 'ms', help: 'how often expired messages are swept', kind: int(100, 86_400_000) },
  { key: 'logLevel', flag: 'log-level', env: 'LOG_LEVEL', arg: 'level', help: LOG_LEVELS.join(', '), kind: { type: 'enum', values: LOG_LEVELS } },
  { key: 'adminHost', flag: 'admin-host', env: 'ADMIN_HOST', arg: 'address', help: 'address of the admin listener (metrics, health)', kind: { type: 'string' } },
  { key: 'adminPort', flag: 'admin-port', env: 'ADMIN_PORT', arg: 'port', help: 'port of the admin listener (default: not served; 0 = any free port)', kind: int(0, 65535), optional: true },
  { key: 'adminHosts', flag: 'admin-hosts', env: 'ADMIN_HOSTS', arg: 'names', help: 'host names the admin listener answers to besides IP addresses and localhost (comma-separated)', kind: { type: 'hosts' } },
  { key: 'adminToken', flag: 'admin-token', env: 'ADMIN_TOKEN', arg: 'token', help: 'bearer token the admin listener\'s /metrics and /api/stats require', kind: { type: 'string' }, optional: true, secret: true },
  { key: 'rateLimitSubscription', flag: 'rate-limit-subscription', env: 'RATE_LIMIT_SUBSCRIPTION', arg: 'per-second', help: 'messages per second to one subscription before 429 (0 = no limit)', kind: int(0) },
  { key: 'rateLimitSubscriptionBurst', flag: 'rate-limit-subscription-burst', env: 'RATE_LIMIT_SUBSCRIPTION_BURST', arg: 'n', help: 'messages to one subscription allowed at once after idling', kind: int(1) },
  { key: 'rateLimitAddress', flag: 'rate-limit-address', env: 'RATE_LIMIT_ADDRESS', arg: 'per-second', help: 'sends and subscribes per second from one client address before 429 (0 = no limit)', kind: int(0) },
  { key: 'rateLimitAddressBurst', flag: 'rate-limit-address-burst', env: 'RATE_LIMIT_ADDRESS_BURST', arg: 'n', help: 'requests from one address allowed at once after idling', kind: int(1) },
  { key: 'maxConnectionsPerAddress', flag: 'max-connections-per-address', env: 'MAX_CONNECTIONS_PER_ADDRESS', arg: 'n', help: 'open WebSocket connections and HTTP/2 sessions per client address (0 = no limit)', kind: int(0) },
  { key: 'loopbackLimits', flag: 'loopback-limits', env: 'LOOPBACK_LIMITS', arg: 'mode', help: 'exempt: per-address limits skip 127.0.0.0/8 and ::1; limited: they apply', kind: { type: 'enum', values: ['exempt', 'limited'] } },
  { key: 'trustedProxies', flag: 'trusted-proxies', env: 'TRUSTED_PROXIES', arg: 'addresses', help: 'reverse proxies (IPs or CIDR ranges, comma-separated) whose X-Forwarded-For names the client for the per-address limits', kind: { type: 'addresses' } },
  { key: 'ipv6LimitPrefix', flag: 'ipv6-limit-prefix', env: 'IPV6_LIMIT_PREFIX', arg: 'bits', help: 'IPv6 clients in one prefix of this length share the per-address limits (128 = each address alone)', kind: int(16, 128) },
  { key: 'maxHeaderBytes', flag: 'max-header-size', env: 'MAX_HEADER_SIZE', arg: 'bytes', help: 'largest request head (HTTP/1.1: 431 beyond it) or HTTP/2 header list', kind: int(1024, 1024 * 1024) },
  { key: 'headersTimeoutMs', flag: 'headers-timeout-ms', env: 'HEADERS_TIMEOUT_MS', arg: 'ms', help: 'time to receive a request head (slow clients are cut)', kind: int(100, 3_600_000) },
  { key: 'requestTimeoutMs', flag: 'request-timeout-ms', env: 'REQUEST_TIMEOUT_MS', arg: 'ms', help: 'time to receive a whole HTTP/1.1 request', kind: int(100, 3_600_000) },
  { key: 'keepAliveTimeoutMs', flag: 'keep-alive-timeout-ms', env: 'KEEP_ALIVE_TIMEOUT_MS', arg: 'ms', help: 'idle HTTP/1.1 keep-alive connections are closed after this', kind: int(100, 3_600_000) },
  { key: 'http2IdleTimeoutMs', flag: 'http2-idle-timeout-ms', env: 'HTTP2_IDLE_TIMEOUT_MS', arg: 'ms', help: 'HTTP/2 sessions with no open stream (no monitor) are closed after this', kind: int(100, 86_400_000) },
  { key: 'http2MaxSessionMemory', flag: 'http2-max-session-memory', env: 'HTTP2_MAX_SESSION_MEMORY', arg: 'MiB', help: 'memory one HTTP/2 session may buffer before new streams are refused', kind: int(1, 1024) },
  { key: 'http2MaxConcurrentStreams', flag: 'http2-max-concurrent-streams', env: 'HTTP2_MAX_CONCURRENT_STREAMS', arg: 'n', help: 'streams (requests, monitors) a client may open at once on one HTTP/2 session; more are refused', kind: int(1, 10_000) },
  { key: 'http2MaxPendingPushes', flag: 'http2-max-pending-pushes', env: 'HTTP2_MAX_PENDING_PUSHES', arg: 'n', help: 'server pushes one HTTP/2 session may have that its client has not taken, before its monitors stop pushing', kind: int(1, 10_000) },
  { key: 'tlsHandshakeTimeoutMs', flag: 'tls-handshake-timeout-ms', env: 'TLS_HANDSHAKE_TIMEOUT_MS', arg: 'ms', help: 'time to complete the TLS handshake', kind: int(100, 3_600_000) },
  { key: 'shutdownTimeoutMs', flag: 'shutdown-timeout-ms', env: 'SHUTDOWN_TIMEOUT_MS', arg: 'ms', help: 'on SIGTERM: time in-flight requests and closing connections get before they are cut', kind: int(0, 3_600_000) },
  { key: 'userAgentExpiryDays', flag: 'user-agent-expiry-days', env: 'USER_AGENT_EXPIRY_DAYS', arg: 'days', help: 'user agents not connected for this long are deleted with their subscriptions (0 = never)', kind: int(0, 36_500) },
  { key: 'demo', flag: 'demo', env: 'DEMO', arg: 'on|off', help: 'on: serve the /demo page and its demo application server on the public port', kind: { type: 'enum', values: ['on', 'off'] } },
  { key: 'requireVapid', flag: 'require-vapid', env: 'REQUIRE_VAPID', arg: 'on|off', help: 'on: refuse every push without valid VAPID (401), not only those to restricted subscriptions', kind: { type: 'enum', values: ['on', 'off'] } },
  { key: 'aggregateMaxMembers', flag: 'aggregate-max-members', env: 'AGGREGATE_MAX_MEMBERS', arg: 'n', help: 'members one aggregate may hold (a change past it is refused, 409)', kind: int(1, 1_000_000) },
  { key: 'aggregateMaxPerKey', flag: 'aggregate-max-per-key', env: 'AGGREGATE_MAX_PER_KEY', arg: 'n', help: 'aggregates one VAPID key may hold (one more is refused, 429)', kind: int(1) },
  { key: 'aggregateFanoutRate', flag: 'aggregate-fanout-rate', env: 'AGGREGATE_FANOUT_RATE', arg: 'per-second', help: 'sends to aggregates per second per VAPID key before 429 (0 = no limit); messages per second per key are at most this times --aggregate-max-members', kind: int(0) },
  { key: 'aggregateFanoutBurst', flag: 'aggregate-fanout-burst', env: 'AGGREGATE_FANOUT_BURST', arg: 'n', help: 'sends to aggregates of one VAPID key allowed at once after idling', kind: int(1) },
  { key: 'aggregateExpirySeconds', flag: 'aggregate-expiry-seconds', env: 'AGGREGATE_EXPIRY_SECONDS', arg: 'seconds', help: 'an aggregate neither changed nor sent to for this long is deleted', kind: int(1) },
  { key: 'aggregateMaxBodyBytes', flag: 'aggregate-max-body', env: 'AGGREGATE_MAX_BODY', arg: 'bytes', help: 'largest body of an aggregate request: member list, merge patch, batch of messages (413 beyond)', kind: int(4096) },
  { key: 'aggregateChunk', flag: 'aggregate-chunk', env: 'AGGREGATE_CHUNK', arg: 'n', help: 'members a fan-out writes per event-loop turn (other requests are served between chunks)', kind: int(1, 100_000) },
  { key: 'aggregateChunksInFlight', flag: 'aggregate-chunks-in-flight', env: 'AGGREGATE_CHUNKS_IN_FLIGHT', arg: 'n', help: 'chunks of one fan-out waiting for their commit at once (more: faster fan-outs, more messages held in memory)', kind: int(1, 1000) },
];

/** What a value of this kind must look like, for error messages. */
export function expectation(kind: OptionKind): string {
  switch (kind.type) {
    case 'string':
      return 'expected a non-empty string';
    case 'int':
      return kind.max === MAX ? `expected an integer of at least ${kind.min}` : `expected an integer from ${kind.min} to ${kind.max}`;
    case 'enum':
      return `expected one of ${kind.values.join(', ')}`;
    case 'url':
      return 'expected an http or https URL';
    case 'broadcasts':
      return 'expected ID=VERSION pairs (in the file: an object of ID to VERSION strings)';
    case 'addresses':
      return 'expected IP addresses or CIDR ranges (10.0.0.0/8, ::1), comma-separated (in the file: an array of strings)';
    case 'hosts':
      return 'expected host names (admin.example.org), comma-separated (in the file: an array of strings)';
    case 'store':
      return 'expected a redis:// or rediss:// URL (redis://[:password@]host[:port][/db]) or a Redis Cluster\'s seed nodes (redis-cluster://[:password@]host:port[,host:port…], rediss-cluster://…)';
  }
}

const broadcastId = z.string().min(1);
/** A DNS name as a Host header carries it, without a port. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** The zod schema of a typed value (from the config file, or after converting a string). */
export function valueSchema(spec: OptionSpec): z.ZodType {
  const k = spec.kind;
  let s: z.ZodType;
  switch (k.type) {
    case 'string':
      s = z.string().min(1);
      break;
    case 'int':
      s = z.number().int().min(k.min).max(k.max);
      break;
    case 'enum':
      s = z.enum(k.values as [string, ...string[]]);
      break;
    case 'url':
      s = z.url({ protocol: /^https?$/ });
      break;
    case 'broadcasts':
      s = z.record(broadcastId, z.string());
      break;
    case 'addresses':
      s = z.array(z.string().refine(isAddressOrRange));
      break;
    case 'hosts':
      s = z.array(z.string().regex(HOST_NAME));
      break;
    case 'store':
      s = z.union([z.url({ protocol: /^rediss?$/ }), z.string().refine((v) => parseClusterUrl(v) !== null)]);
      break;
  }
  return spec.optional ? s.optional() : s;
}

/** The config file: a JSON object of Config keys; unknown keys are errors; null unsets an optional one. */
export const fileSchema = z.strictObject(
  Object.fromEntries(OPTIONS.map((o) => [o.key, (o.optional ? valueSchema(o).nullable() : valueSchema(o)).optional()])),
);

/**
 * A flag or environment string to the value the schema checks; undefined when it cannot be
 * converted (then the error says what was expected).
 */
export function fromString(spec: OptionSpec, raw: string | string[]): unknown {
  const values = Array.isArray(raw) ? raw : [raw];
  const last = values.at(-1)!;
  switch (spec.kind.type) {
    case 'int':
      return /^\d+$/.test(last.trim()) ? Number(last.trim()) : last;
    case 'broadcasts': {
      const out: Record<string, string> = {};
      for (const pair of commaSeparated(values)) {
        const eq = pair.indexOf('=');
        if (eq <= 0) return undefined;
        out[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return out;
    }
    case 'addresses':
    case 'hosts':
      return commaSeparated(values);
    default:
      return last;
  }
}

/** The items of repeated flags or a variable, each possibly a comma-separated list. */
function commaSeparated(values: readonly string[]): string[] {
  return values
    .flatMap((v) => v.split(','))
    .map((item) => item.trim())
    .filter(Boolean);
}
