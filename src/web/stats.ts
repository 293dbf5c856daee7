// Live numbers for the dashboard, read from a server's Metrics (its Prometheus registry): totals
// now, and a once-a-second history of the message counters (the last HISTORY_SECONDS) from which
// rates and the messages-per-second chart are drawn.
import type { Metrics } from '../observability/metrics.ts';

export const HISTORY_SECONDS = 120;

const COUNTERS = {
  accepted: 'webpushd_messages_accepted_total',
  stored: 'webpushd_messages_stored_total',
  delivered: 'webpushd_messages_delivered_total',
  acknowledged: 'webpushd_messages_acknowledged_total',
  expired: 'webpushd_messages_expired_total',
  rejected: 'webpushd_messages_rejected_total',
  limited: 'webpushd_limited_total',
} as const;
type CounterName = keyof typeof COUNTERS;
export type Totals = Record<CounterName, number>;

export interface Sample extends Totals {
  /** ms since epoch */
  t: number;
}

export interface Stats {
  time: number;
  uptimeSeconds: number;
  connections: Record<string, number>;
  storedNow: number | null;
  /** Sends to aggregates being written now, and the live aggregates (null: not reported). */
  fanoutsInProgress: number;
  aggregates: number | null;
  messages: Totals;
  /** per second, over the last HISTORY_SECONDS seconds (or since start) */
  rates: { accepted: number; delivered: number; acknowledged: number };
  responses: Record<string, number>;
  /** messages per second, one point per second, oldest first */
  history: Array<{ t: number; accepted: number; delivered: number }>;
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number | undefined>;
}

async function values(metrics: Metrics, name: string): Promise<MetricValue[]> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return [];
  const got = (await metric.get()) as { values: MetricValue[] };
  return got.values;
}

async function sum(metrics: Metrics, name: string): Promise<number> {
  return (await values(metrics, name)).reduce((n, v) => n + v.value, 0);
}

async function totals(metrics: Metrics): Promise<Totals> {
  const out = {} as Totals;
  for (const [key, name] of Object.entries(COUNTERS) as Array<[CounterName, string]>) out[key] = await sum(metrics, name);
  return out;
}

export class StatsSampler {
  readonly #metrics: Metrics;
  readonly #samples: Sample[] = [];
  readonly #started = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(metrics: Metrics) {
    this.#metrics = metrics;
  }

  /** Samples once a second (the timer does not keep the process alive). */
  start(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), 1000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async sample(): Promise<void> {
    this.#samples.push({ t: Date.now(), ...(await totals(this.#metrics)) });
    if (this.#samples.length > HISTORY_SECONDS + 1) this.#samples.shift();
  }

  async stats(): Promise<Stats> {
    const m = this.#metrics;
    const now: Sample = { t: Date.now(), ...(await totals(m)) };
    const connections: Record<string, number> = {};
    for (const v of await values(m, 'webpushd_connections')) connections[String(v.labels.kind)] = v.value;
    const responses: Record<string, number> = {};
    for (const v of await values(m, 'webpushd_http_responses_total')) responses[String(v.labels.code)] = v.value;
    const stored = await values(m, 'webpushd_messages_stored');
    const fanouts = await values(m, 'webpushd_fanouts_in_progress');
    const aggregates = await values(m, 'webpushd_aggregates');
    const history: Stats['history'] = [];
    for (let i = 1; i < this.#samples.length; i++) {
      const a = this.#samples[i - 1]!;
      const b = this.#samples[i]!;
      const secs = Math.max(0.001, (b.t - a.t) / 1000);
      history.push({ t: b.t, accepted: (b.accepted - a.accepted) / secs, delivered: (b.delivered - a.delivered) / secs });
    }
    const first = this.#samples[0] ?? now;
    const span = Math.max(1, (now.t - first.t) / 1000);
    const rate = (k: CounterName) => Math.max(0, (now[k] - first[k]) / span);
    const { t: _t, ...messages } = now;
    return {
      time: now.t,
      uptimeSeconds: Math.round((now.t - this.#started) / 1000),
      connections,
      storedNow: stored[0]?.value ?? null,
      fanoutsInProgress: fanouts[0]?.value ?? 0,
      aggregates: aggregates[0]?.value ?? null,
      messages,
      rates: { accepted: rate('accepted'), delivered: rate('delivered'), acknowledged: rate('acknowledged') },
      responses,
      history,
    };
  }
}
