// The composition root: builds store, router, pipeline and both doors from one Config.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { RedisAggregateStore } from './aggregates/redis-aggregate-store.ts';
import { AGGREGATES_FILE, SqliteAggregateStore } from './aggregates/sqlite-aggregate-store.ts';
import type { AggregateStore } from './aggregates/types.ts';
import { DeadlineWheel } from './common/deadline-wheel.ts';
import { publicUrlOf, type Config } from './config.ts';
import { BroadcastPoller } from './connect/broadcast-poller.ts';
import { BroadcastTable, type Versions } from './connect/broadcasts.ts';
import { Close } from './connect/protocol.ts';
import type { Session } from './connect/session.ts';
import { UserAgentServer } from './connect/ws-server.ts';
import { Pipeline } from './core/pipeline.ts';
import { AggregateEndpoint } from './endpoint/aggregate-endpoint.ts';
import { PushEndpoint } from './endpoint/push-endpoint.ts';
import { createRequestListener } from './http/app.ts';
import { listen, remoteAddressOf, type AnyRequest, type ListenerLimits } from './http/listener.ts';
import { ClientAddresses } from './limits/client-address.ts';
import { ConnectionLimiter } from './limits/connection-limiter.ts';
import { RateLimiter } from './limits/rate-limiter.ts';
import { TokenBuckets } from './limits/token-bucket.ts';
import { startAdminServer, type AdminServer } from './observability/admin-server.ts';
import { redacting } from './observability/logging.ts';
import { Metrics } from './observability/metrics.ts';
import { StoreStats } from './observability/store-stats.ts';
import { Rfc8030Resources } from './rfc8030/resources.ts';
import { ClusterRouter, announceChange, type Changed } from './router/cluster-router.ts';
import { LocalRouter, type Router } from './router/router.ts';
import { preparePrivateDir, tightenIfPresent } from './store/data-dir.ts';
import { DiskQuota } from './store/disk-quota.ts';
import { RedisStore } from './store/redis-store.ts';
import { SqliteStore } from './store/sqlite-store.ts';
import type { Store, SweepResult } from './store/types.ts';
import { Capabilities } from './tokens/capabilities.ts';
import { Sealer } from './tokens/sealer.ts';
import { loadOrCreateAdminToken } from './tokens/admin-token.ts';
import { readSecrets } from './tokens/secret-file.ts';
import { sameSecrets, startingSecrets, storedSecrets } from './tokens/secret-store.ts';
import { VapidVerifier } from './vapid/verify.ts';
import { createDemo } from './web/demo.ts';
import { createHome } from './web/home.ts';

export const DB_FILE = 'webpushd.db';
const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;
/** Idle user agents one sweep deletes at most (one bounded group commit). */
const IDLE_USER_AGENTS_PER_SWEEP = 1000;
/** Idle aggregates one sweep deletes at most. */
const IDLE_AGGREGATES_PER_SWEEP = 1000;

export interface ServerSweepResult extends SweepResult {
  /** Idle user agents deleted (not seen for `userAgentExpiryDays`). */
  userAgents: number;
}

export interface WebPushServer {
  /** Base URL the service hands out (push and message URLs start with it). */
  readonly url: string;
  readonly port: number;
  /** The admin listener's base URL (/metrics, /health, /ready); undefined without `adminPort`. */
  readonly adminUrl: string | undefined;
  /** This start made the token secrets (a new set of push URLs). */
  readonly secretsCreated: boolean;
  /** This instance's Prometheus metrics (its own registry). */
  readonly metrics: Metrics;
  readonly router: Router;
  readonly store: Store;
  /** The broadcast versions in use. */
  broadcasts(): Versions;
  /**
   * Sets broadcast versions (new ids are added): stored, then every connected user agent that
   * subscribed to a changed id is told. Resolves with the changed ids.
   */
  setBroadcasts(versions: Versions): Promise<string[]>;
  /**
   * Removes what expired (messages, receipts, receipt subscriptions, user agents not seen for
   * `userAgentExpiryDays`), queues the 410 receipts of expired messages and tells open
   * monitors; runs every `sweepIntervalMs` by itself.
   */
  sweep(): Promise<ServerSweepResult>;
  /**
   * Reads again (SIGHUP) the data dir's secret file, after `webpushd secret rotate|retire` (its
   * first secret seals from now on, every one opens; secrets kept in Redis are read there, in the
   * background, a failure logged), and with TLS the certificate and key files
   * (a renewal; new connections use it). Each part that cannot be read or used is logged and
   * stays as it was. Returns whether every part was reloaded.
   */
  reload(): boolean;
  /**
   * Stops accepting, closes user-agent connections (WebSocket: close 1001; HTTP/2: GOAWAY, then
   * the open monitors' streams end), closes the admin listener, commits, closes the store.
   */
  close(): Promise<void>;
}

export async function startServer(config: Config, baseLog: Logger = pino({ level: config.logLevel })): Promise<WebPushServer> {
  // whoever made the logger: capability URLs, payloads and credentials never reach a log line
  const log = redacting(baseLog);
  // on Redis the data dir holds only the token secret
  const dataDir = preparePrivateDir(config.dataDir, config.store ? [] : [DB_FILE, AGGREGATES_FILE]);
  for (const file of [DB_FILE, AGGREGATES_FILE]) for (const suffix of ['-wal', '-shm']) tightenIfPresent(join(config.dataDir, file + suffix));
  if (dataDir.groupOrWorldAccess) {
    log.warn({ dataDir: config.dataDir }, 'the data dir is open to other users (it holds credentials): chmod 700 it');
  }
  const metrics = new Metrics();
  const expireUserAgents = config.userAgentExpiryDays > 0;
  // when a user agent was last seen, for expiring the ones that never come back (on Redis, the
  // cluster router's claim and release of its connection record it in the same call)
  const onPresence = expireUserAgents
    ? (uaid: Buffer) => void store.touchUserAgent(uaid).catch((err: unknown) => log.error({ err }, 'recording a user agent as seen failed'))
    : undefined;
  const dbPath = join(config.dataDir, DB_FILE);
  const storeOptions = {
    maxStoredPerUserAgent: config.maxStoredPerUserAgent,
    maxStoredPerSubscription: config.maxStoredPerSubscription,
    maxChannelsPerUserAgent: config.maxChannelsPerUserAgent,
    onReceipts: (ids: Buffer[]) => router.receiptsQueued(ids),
    onWritable: (failure: Error | null) => {
      if (failure) log.error({ err: failure.message }, 'store writes failing: pushes and subscribes get 503, /ready reports not ready');
      else log.info('store writes succeed again');
    },
  };
  const redis = config.store ? await RedisStore.open({ url: config.store, connections: config.storeConnections, ...storeOptions }) : null;
  const store: Store = redis ?? new SqliteStore({ path: dbPath, synchronous: config.sync, countCacheSize: config.storeCountCache, onCommit: metrics.commit, ...storeOptions });
  const aggregateOptions = { maxMembers: config.aggregateMaxMembers, maxPerOwner: config.aggregateMaxPerKey, idleMs: config.aggregateExpirySeconds * 1000 };
  const aggregates: AggregateStore = redis
    ? new RedisAggregateStore(redis, aggregateOptions)
    : new SqliteAggregateStore({ path: join(config.dataDir, AGGREGATES_FILE), synchronous: config.sync, ...aggregateOptions });
  // on Redis (unless --secrets file) the token secrets are kept there, the same for every node
  const secretStore = config.secrets === 'store' ? redis : null;
  let starting: Awaited<ReturnType<typeof startingSecrets>>;
  try {
    starting = await startingSecrets(config.dataDir, secretStore);
  } catch (err) {
    await aggregates.close();
    await store.close();
    throw err;
  }
  if (starting.ignored > 0) {
    log.warn(
      { dataDir: config.dataDir, secrets: starting.ignored },
      'the data dir\'s secret.key holds token secrets Redis does not: URLs sealed by them answer 404 (copy them with webpushd migrate --merge if they are still in use)',
    );
  }
  let secretsInUse = starting.secrets;
  const sealer = new Sealer(secretsInUse, config.pushTokenCache);
  const capabilities = new Capabilities(sealer);
  // set once the broadcast table exists: a change announced before is read with the table
  let onChanged: (what: Changed) => void = () => {};
  // on Redis, the nodes sharing it hand each other hints for the user agents connected elsewhere
  const cluster = redis
    ? await ClusterRouter.start(redis, {
        batchSize: config.deliveryBatch,
        recheckIntervalMs: config.clusterRecheckIntervalMs,
        onError: (err) => log.warn({ err: (err as Error).message }, 'a hint to another node failed: its user agent gets the message from the store later'),
        onChanged: (what) => onChanged(what),
      })
    : null;
  const router: Router = cluster ?? new LocalRouter(onPresence);
  // the file's numbers and quota are SQLite's; a Redis holds its own (INFO, maxmemory)
  const stats = config.store ? null : new StoreStats(dbPath);
  const quota = config.store ? null : new DiskQuota({ dbPath, minFreeBytes: config.minFreeDiskMib * MIB, maxStoreBytes: config.maxStoreMib * MIB });
  const pipeline = new Pipeline(store, router, metrics, quota);
  // the store keeps what was set while running; the configured table is applied over it
  const broadcasts = new BroadcastTable(await store.broadcasts());
  // one change of the table at a time: a re-read of the store answered late never undoes a newer change
  let lastChange: Promise<unknown> = Promise.resolve();
  const serially = <T>(change: () => Promise<T>): Promise<T> => {
    const next = lastChange.then(change);
    lastChange = next.catch(() => {});
    return next;
  };
  const setBroadcasts = (versions: Versions): Promise<string[]> =>
    serially(async () => {
      const changes = broadcasts.changes(versions);
      if (Object.keys(changes).length === 0) return [];
      await store.putBroadcasts(changes);
      const changed = broadcasts.set(changes);
      log.info({ broadcasts: changes }, 'broadcast versions changed');
      // the other nodes read the store again and tell their own user agents
      if (redis) announceChange(redis, 'broadcasts').catch((err: unknown) => log.warn({ err: (err as Error).message }, 'announcing a broadcast change failed: other nodes see it at their next re-read'));
      return changed;
    });
  // Redis is the truth for what other nodes (and `webpushd secret`) change: read again on their
  // announcement, and every clusterRefreshIntervalMs in case one was lost
  const reread: Record<Changed, () => Promise<void>> = {
    broadcasts: () =>
      serially(async () => {
        const changed = broadcasts.set(Object.fromEntries(await store.broadcasts()));
        if (changed.length > 0) log.info({ broadcasts: changed }, 'broadcast versions changed on another node');
      }),
    secrets: async () => {
      if (!secretStore) return;
      const secrets = await storedSecrets(secretStore);
      if (sameSecrets(secrets, secretsInUse)) return;
      sealer.setSecrets(secrets);
      secretsInUse = secrets;
      log.info({ secrets: secrets.length }, 'token secrets changed in Redis: in use now');
    },
  };
  // one re-read of each kind at a time (a stalled Redis must not pile them up, nor an older read
  // apply after a newer one); an announcement during one makes one more after it
  const rereading = new Map<Changed, { again: boolean }>();
  onChanged = (what) => {
    const running = rereading.get(what);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false };
    rereading.set(what, state);
    void reread[what]()
      .catch((err: unknown) => log.warn({ err: (err as Error).message, what }, 'reading cluster-wide state again failed: the copy in use stays'))
      .finally(() => {
        rereading.delete(what);
        if (state.again) onChanged(what);
      });
  };
  const refresher = redis ? setInterval(() => (['secrets', 'broadcasts'] as const).forEach(onChanged), config.clusterRefreshIntervalMs) : null;
  refresher?.unref();
  await setBroadcasts(Object.fromEntries(config.broadcasts));
  const poller = config.broadcastUrl
    ? new BroadcastPoller({ url: config.broadcastUrl, token: config.broadcastToken, intervalMs: config.broadcastPollIntervalMs, apply: setBroadcasts, log })
    : null;

  const readTls = () => (config.tlsCert ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey!) } : undefined);
  const tls = readTls();
  // Handlers are bound once the listening port (and so the public URL) is known.
  let onRequest: Parameters<typeof listen>[1]['request'] = () => {};
  let onUpgrade: Parameters<typeof listen>[1]['upgrade'] = () => {};
  const connectionLimiter = new ConnectionLimiter(
    config.maxConnectionsPerAddress,
    config.loopbackLimits === 'exempt',
    () => metrics.limited('address-connections'),
    config.ipv6LimitPrefix,
  );
  const limits: ListenerLimits = {
    maxHeaderBytes: config.maxHeaderBytes,
    headersTimeoutMs: config.headersTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    http2IdleTimeoutMs: config.http2IdleTimeoutMs,
    http2MaxSessionMemory: config.http2MaxSessionMemory,
    http2MaxConcurrentStreams: config.http2MaxConcurrentStreams,
    tlsHandshakeTimeoutMs: config.tlsHandshakeTimeoutMs,
    connections: connectionLimiter,
    log,
  };
  const http = await listen(
    { host: config.host, port: config.port, reusePort: config.reusePort === 'on', limits, ...(tls ? { tls } : {}) },
    { request: (req, res) => onRequest(req, res), upgrade: (req, socket, head) => onUpgrade(req, socket, head) },
  );
  const port = http.port;
  const url = publicUrlOf(config, port);

  const rateLimiter = new RateLimiter({
    perSubscriptionRate: config.rateLimitSubscription,
    perSubscriptionBurst: config.rateLimitSubscriptionBurst,
    perAddressRate: config.rateLimitAddress,
    perAddressBurst: config.rateLimitAddressBurst,
    exemptLoopback: config.loopbackLimits === 'exempt',
    ipv6Prefix: config.ipv6LimitPrefix,
    onLimited: (limit) => metrics.limited(limit === 'address' ? 'address-rate' : 'subscription-rate'),
  });
  // new subscriptions per client address (WebSocket register, POST /subscribe): storage is not free
  const registrations = new RateLimiter({
    perSubscriptionRate: 0,
    perSubscriptionBurst: 1,
    perAddressRate: config.rateLimitRegister,
    perAddressBurst: config.rateLimitRegisterBurst,
    exemptLoopback: config.loopbackLimits === 'exempt',
    ipv6Prefix: config.ipv6LimitPrefix,
    onLimited: () => metrics.limited('register-rate'),
  });
  const endpoint = new PushEndpoint({
    rateLimiter,
    capabilities,
    pipeline,
    vapid: new VapidVerifier({ audience: new URL(url).origin, maxEntries: config.vapidCache }),
    publicUrl: url,
    maxBodyBytes: config.maxMessageBytes,
    maxTtl: config.maxTtl,
    requireVapid: config.requireVapid === 'on',
    log,
  });
  const aggregateEndpoint = new AggregateEndpoint({
    aggregates,
    subscriptions: store,
    capabilities,
    pipeline,
    vapid: new VapidVerifier({ audience: new URL(url).origin, maxEntries: config.vapidCache }),
    publicUrl: url,
    pushUrl: (target) => endpoint.pushUrl(target, true),
    maxMessageBytes: config.maxMessageBytes,
    maxTtl: config.maxTtl,
    maxBodyBytes: config.aggregateMaxBodyBytes,
    chunk: config.aggregateChunk,
    chunksInFlight: config.aggregateChunksInFlight,
    fanouts: new TokenBuckets({ rate: config.aggregateFanoutRate, burst: config.aggregateFanoutBurst }),
    rateLimiter,
    metrics,
    log,
  });
  // a proxy on this host that --trusted-proxies does not name makes every client one loopback address
  const clients = new ClientAddresses(config.trustedProxies, (peer) =>
    log.warn(
      { peer, loopbackLimits: config.loopbackLimits },
      config.loopbackLimits === 'exempt'
        ? 'X-Forwarded-For from a loopback peer not in --trusted-proxies: its clients count as that loopback address, exempt from every per-address limit; name the proxy in --trusted-proxies'
        : 'X-Forwarded-For from a loopback peer not in --trusted-proxies: all its clients share that one address\'s limits; name the proxy in --trusted-proxies',
    ),
  );
  const clientAddress = (req: AnyRequest) => clients.of(remoteAddressOf(req.socket), req.headers['x-forwarded-for']);
  const wheel = new DeadlineWheel<Session>({ onError: (err) => log.error({ err }, 'a connection deadline failed') });
  const userAgents = new UserAgentServer({
    store,
    pipeline,
    router,
    wheel,
    broadcasts,
    settings: {
      handshakeTimeoutMs: config.handshakeTimeoutMs,
      pingIntervalMs: config.pingIntervalMs,
      pongTimeoutMs: config.pongTimeoutMs,
      minClientPingIntervalMs: config.minClientPingIntervalMs,
      batchSize: config.deliveryBatch,
      maxBufferedBytes: config.maxBufferedBytes,
      maxPendingFrames: config.maxPendingFrames,
    },
    log,
    metrics,
    endpointUrl: (uaid, chid, keyHash) => endpoint.pushUrl({ uaid, chid, keyHash }),
    admitRegistration: (address) => registrations.addressWait(address) === 0,
  }, connectionLimiter, clientAddress);
  const rfc8030 = new Rfc8030Resources({
    store,
    pipeline,
    router,
    capabilities,
    publicUrl: url,
    pushUrl: (target) => endpoint.pushUrl(target, true),
    batchSize: config.deliveryBatch,
    maxPendingPushes: config.http2MaxPendingPushes,
    log,
    metrics,
  });
  onRequest = createRequestListener({
    endpoint,
    aggregates: aggregateEndpoint,
    rfc8030,
    log,
    metrics,
    limits: rateLimiter,
    registrations,
    clientAddress,
    maxHeaderBytes: config.maxHeaderBytes,
    ...(config.demo === 'on' ? { demo: createDemo({ publicUrl: url, dataDir: config.dataDir, log }) } : {}),
    home: createHome({ publicUrl: url, demo: config.demo === 'on' }),
  });
  onUpgrade = (req, socket, head) => userAgents.handleUpgrade(req, socket, head);

  const sweep = async (): Promise<ServerSweepResult> => {
    // nodes sharing a Redis sweep it one at a time (for an interval at most: one that died is replaced)
    const lease = redis ? await redis.takeLease('sweep', config.sweepIntervalMs) : undefined;
    if (lease === null) return { expired: [], receipts: 0, receiptSubscriptions: [], userAgents: 0 };
    try {
      return await sweepNow();
    } finally {
      // one that cannot be ended now (Redis down) expires
      await lease?.().catch(() => {});
    }
  };
  const sweepNow = async (): Promise<ServerSweepResult> => {
    const result = await pipeline.sweep();
    const userAgents = expireUserAgents
      ? await pipeline.expireIdleUserAgents(Date.now() - config.userAgentExpiryDays * DAY_MS, IDLE_USER_AGENTS_PER_SWEEP)
      : 0;
    const idleAggregates = await aggregates.expire(IDLE_AGGREGATES_PER_SWEEP);
    const { expired, receipts, receiptSubscriptions } = result;
    if (expired.length + receipts + receiptSubscriptions.length + userAgents + idleAggregates > 0) {
      log.info({ expired: expired.length, receipts, receiptSubscriptions: receiptSubscriptions.length, userAgents, aggregates: idleAggregates }, 'expired entries removed');
    }
    return { ...result, userAgents };
  };
  const sweeper = setInterval(() => {
    sweep().catch((err: unknown) => log.error({ err }, 'sweeping expired messages failed'));
  }, config.sweepIntervalMs);
  sweeper.unref();

  metrics.setSources({
    websocketConnections: () => userAgents.clients,
    http2Monitors: () => rfc8030.monitors,
    // each store counts its own: Redis per slot, SQLite from the file (stats is there when redis is not)
    storedMessages: () => (redis ?? stats!).storedMessages(),
    aggregates: () => aggregates.count(),
  });

  let closing = false;
  const ready = async (): Promise<string | null> => (closing ? 'shutting down' : store.unavailable());

  let admin: AdminServer | undefined;
  if (config.adminPort !== undefined) {
    try {
      admin = await startAdminServer({
        host: config.adminHost,
        port: config.adminPort,
        hosts: config.adminHosts,
        token: config.adminToken,
        broadcasts: { api: { all: () => broadcasts.all(), set: setBroadcasts }, token: config.adminToken ?? loadOrCreateAdminToken(config.dataDir) },
        metrics,
        ready,
        log,
      });
    } catch (err) {
      // e.g. the admin port is taken: undo what started, then fail the start
      clearInterval(sweeper);
      clearInterval(refresher ?? undefined);
      wheel.stop();
      const closed = http.close();
      http.closeIdleConnections();
      await closed;
      stats?.close();
      await cluster?.close();
      await aggregates.close();
      await store.close();
      throw err;
    }
    log.info({ admin: admin.url, listen: `${config.adminHost}:${admin.port}` }, 'admin listening (/metrics, /health, /ready, /dashboard)');
  }

  log.info({ url, listen: `${config.host}:${port}`, dataDir: config.dataDir }, 'listening');
  poller?.start();

  return {
    url,
    port,
    adminUrl: admin?.url,
    secretsCreated: starting.created,
    metrics,
    router,
    store,
    sweep,
    broadcasts: () => broadcasts.all(),
    setBroadcasts,
    reload() {
      let ok = true;
      if (secretStore) onChanged('secrets');
      else {
        try {
          const secrets = readSecrets(config.dataDir);
          sealer.setSecrets(secrets);
          log.info({ secrets: secrets.length }, 'token secrets reloaded');
        } catch (err) {
          ok = false;
          log.error({ err: (err as Error).message }, 'reloading token secrets failed: the secrets in use stay');
        }
      }
      if (!tls) return ok;
      try {
        http.setCertificate(readTls()!);
        log.info({ cert: config.tlsCert }, 'TLS certificate reloaded');
      } catch (err) {
        ok = false;
        log.error({ err: (err as Error).message }, 'reloading the TLS certificate failed: the certificate in use stays');
      }
      return ok;
    },
    async close() {
      closing = true;
      poller?.stop();
      clearInterval(sweeper);
      clearInterval(refresher ?? undefined);
      wheel.stop();
      const closed = http.close();
      rfc8030.close();
      // a client that never finishes its request or closing handshake cannot hold the shutdown
      const grace = setTimeout(() => {
        log.warn({ afterMs: config.shutdownTimeoutMs }, 'shutdown grace over: cutting the connections still open');
        userAgents.terminate();
        http.destroyConnections();
      }, config.shutdownTimeoutMs);
      const wsClosed = userAgents.close(Close.goingAway, 'server shutting down');
      http.closeIdleConnections();
      await Promise.all([wsClosed, closed]);
      clearTimeout(grace);
      await admin?.close();
      stats?.close();
      await cluster?.close();
      await aggregates.close();
      await store.close();
    },
  };
}
