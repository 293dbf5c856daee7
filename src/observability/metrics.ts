// The Prometheus metrics of one server instance (see docs/OPERATIONS.md). Each server owns its
// registry: several servers in one process (tests) never share or clash. Hot-path updates are
// plain counter increments and histogram observations on children bound once at construction.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Where a message was handed to a user agent. */
export type Transport = 'websocket' | 'http2';

type Child = { inc(value?: number): void };

/** Live numbers read at scrape time (never kept up to date on the hot path). */
export interface MetricSources {
  websocketConnections(): number;
  http2Monitors(): number;
  /** Messages in the store (SQLite: counted up to a bound); null when unknown (not reported). */
  storedMessages(): number | null | Promise<number | null>;
  /** Live aggregates; absent when the server has none. */
  aggregates?(): Promise<number>;
}

/** What a fan-out did for one member (src/endpoint/aggregate-endpoint.ts). */
export type FanoutResult = 'stored' | 'gone' | 'refused';

export class Metrics {
  readonly registry = new Registry();
  readonly #accepted: Counter;
  readonly #stored: Counter;
  readonly #rejected: Record<RejectReason, Child>;
  readonly #delivered: Record<Transport, Child>;
  readonly #acknowledged: Counter;
  readonly #expired: Counter;
  readonly #userAgentsExpired: Counter;
  readonly #latency: Histogram;
  readonly #commitSeconds: Histogram;
  readonly #commitWrites: Histogram;
  readonly #responses: Counter<'code'>;
  readonly #limited: Record<LimitKind, Child>;
  readonly #byCode = new Map<number, Child>();
  readonly #fanoutMessages: Record<FanoutResult, Child>;
  readonly #fanoutsInProgress: Gauge;
  #sources: MetricSources | null = null;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.#accepted = new Counter({
      name: 'webpushd_messages_accepted_total',
      help: 'Messages accepted from application servers (stored, or TTL 0 handed on or dropped)',
      registers,
    });
    this.#stored = new Counter({
      name: 'webpushd_messages_stored_total',
      help: 'Accepted messages written to the store (TTL > 0)',
      registers,
    });
    this.#rejected = labelledCounter(registers, 'webpushd_messages_rejected_total', 'Sends refused by the pipeline, by reason', 'reason', {
      'no-subscription': 'no_subscription',
      'too-many-stored': 'too_many_stored',
      'no-receipt-subscription': 'no_receipt_subscription',
      'store-full': 'store_full',
    });
    this.#delivered = labelledCounter(
      registers,
      'webpushd_messages_delivered_total',
      'Messages sent to a user agent (redeliveries after a reconnect count again), by transport',
      'transport',
      { websocket: 'websocket', http2: 'http2' },
    );
    this.#limited = labelledCounter(registers, 'webpushd_limited_total', 'Requests and connections refused by a protection limit, by limit', 'limit', {
      'subscription-rate': 'subscription_rate',
      'address-rate': 'address_rate',
      'address-connections': 'address_connections',
      'register-rate': 'register_rate',
      'channels': 'channels',
      'slow-reader': 'slow_reader',
    });
    this.#acknowledged = new Counter({
      name: 'webpushd_messages_acknowledged_total',
      help: 'Stored messages removed by an acknowledgement (WebSocket ack, or DELETE on the message URL)',
      registers,
    });
    this.#expired = new Counter({
      name: 'webpushd_messages_expired_total',
      help: 'Stored messages removed unacknowledged because their TTL ran out',
      registers,
    });
    this.#userAgentsExpired = new Counter({
      name: 'webpushd_user_agents_expired_total',
      help: 'User agents deleted (with their subscriptions and messages) after not being seen for the user-agent expiry',
      registers,
    });
    this.#latency = new Histogram({
      name: 'webpushd_delivery_latency_seconds',
      help: 'Time from accepting a message to sending it to a user agent',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300, 3600, 86400],
      registers,
    });
    this.#commitSeconds = new Histogram({
      name: 'webpushd_store_commit_seconds',
      help: 'Duration of one store commit (a group of writes, with its fsync)',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#commitWrites = new Histogram({
      name: 'webpushd_store_commit_writes',
      help: 'Writes grouped into one store commit',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    });
    this.#responses = new Counter({
      name: 'webpushd_http_responses_total',
      help: 'HTTP responses sent on the public port, by status code',
      labelNames: ['code'],
      registers,
    });
    this.#fanoutMessages = labelledCounter(registers, 'webpushd_fanout_messages_total', 'Messages of sends to aggregates, one per member, by result', 'result', {
      stored: 'stored',
      gone: 'gone',
      refused: 'refused',
    });
    this.#fanoutsInProgress = new Gauge({ name: 'webpushd_fanouts_in_progress', help: 'Sends to aggregates being written now', registers });
    const sources = () => this.#sources;
    new Gauge({
      name: 'webpushd_connections',
      help: 'Open user-agent connections: WebSocket sessions, HTTP/2 monitors (RFC 8030 GETs held open)',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = sources();
        this.set({ kind: 'websocket' }, s ? s.websocketConnections() : 0);
        this.set({ kind: 'http2_monitor' }, s ? s.http2Monitors() : 0);
      },
    });
    new Gauge({
      name: 'webpushd_messages_stored',
      help: `Messages in the store now (SQLite: counted up to ${STORED_COUNT_LIMIT}, the value saturates there)`,
      registers,
      async collect() {
        const n = (await sources()?.storedMessages()) ?? null;
        if (n !== null) this.set(n);
      },
    });
    new Gauge({
      name: 'webpushd_aggregates',
      help: 'Live aggregates (one send, many subscriptions) in the store',
      registers,
      async collect() {
        const aggregates = sources()?.aggregates;
        if (aggregates) this.set(await aggregates());
      },
    });
  }

  fanoutStarted(): void {
    this.#fanoutsInProgress.inc();
  }

  fanoutEnded(): void {
    this.#fanoutsInProgress.dec();
  }

  fanoutMessages(result: FanoutResult, n: number): void {
    if (n > 0) this.#fanoutMessages[result].inc(n);
  }

  /** Wires the scrape-time gauges to the server's parts (once they exist). */
  setSources(sources: MetricSources): void {
    this.#sources = sources;
  }

  accepted(stored: boolean): void {
    this.#accepted.inc();
    if (stored) this.#stored.inc();
  }

  rejected(reason: RejectReason): void {
    this.#rejected[reason].inc();
  }

  /** A message went out to a user agent; `createdAt`: when it was accepted (ms since epoch). */
  delivered(transport: Transport, createdAt: number): void {
    this.#delivered[transport].inc();
    this.#latency.observe(Math.max(0, Date.now() - createdAt) / 1000);
  }

  /** A request or connection refused by a protection limit (429, or a refused connection). */
  limited(limit: LimitKind): void {
    this.#limited[limit].inc();
  }

  acknowledged(): void {
    this.#acknowledged.inc();
  }

  expired(n: number): void {
    if (n > 0) this.#expired.inc(n);
  }

  userAgentsExpired(n: number): void {
    if (n > 0) this.#userAgentsExpired.inc(n);
  }

  /** SqliteStoreOptions.onCommit: each commit of the writer thread. */
  readonly commit = (ms: number, writes: number): void => {
    this.#commitSeconds.observe(ms / 1000);
    this.#commitWrites.observe(writes);
  };

  response(code: number): void {
    let child = this.#byCode.get(code);
    if (!child) {
      child = this.#responses.labels(String(code));
      this.#byCode.set(code, child);
    }
    child.inc();
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * A counter with one label whose values are known: its children bound once (the hot path
 * increments them without a label lookup), each starting at 0 (rate() needs a first sample).
 */
function labelledCounter<K extends string>(
  registers: Registry[],
  name: string,
  help: string,
  label: string,
  values: Record<K, string>,
): Record<K, Child> {
  const counter = new Counter({ name, help, labelNames: [label], registers });
  const children = {} as Record<K, Child>;
  for (const [key, value] of Object.entries(values) as [K, string][]) {
    children[key] = counter.labels(value);
    children[key].inc(0);
  }
  return children;
}

/** `slow-reader`: a live delivery held back (stored) or a TTL 0 one dropped for a user agent that does not read. */
export type LimitKind = 'subscription-rate' | 'address-rate' | 'address-connections' | 'register-rate' | 'channels' | 'slow-reader';

export type RejectReason = 'no-subscription' | 'too-many-stored' | 'no-receipt-subscription' | 'store-full';

/** The stored-messages gauge counts at most this many rows per scrape. */
export const STORED_COUNT_LIMIT = 100_000;
