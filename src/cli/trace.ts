// `--trace`: what a command sent and received, as JSON lines on stderr ({"trace": event, …}).
// Capability URLs, VAPID tokens, keys and uaids are bearer secrets or personal: they are cut to
// their first characters unless `--trace-secrets`, so a trace can be pasted into a bug report.
import { Option, type Command } from 'commander';
import type { Trace, TraceEvent } from '../sdk/trace.ts';

/** Characters of a secret kept when shortened: enough to tell two apart in one trace. */
const KEEP = 8;
/** Path segments before a capability token in this service's URLs (and RFC 8030 ones alike). */
const CAPABILITY = /(\/(?:wpush\/v[12]|m|r|s|a|set|subscription|push|receipt-subscription)\/)([A-Za-z0-9_=-]{16,})/g;
/** Fields whose whole value is a secret (headers by their lower-case name, WebSocket frame members). */
const SECRET_FIELDS = new Set(['uaid', 'p256dh', 'auth', 'privatekey', 'key', 'data', 'authorization', 'crypto-key', 'encryption']);
/** Inside Authorization and Crypto-Key: `t=`, `k=`, `dh=`, `p256ecdsa=`, `salt=` values; `WebPush <jwt>`. */
const PARAMETER = /\b(t|k|dh|p256ecdsa|salt|keyid)=([A-Za-z0-9_=.+/-]{12,})/g;

export function shorten(value: string): string {
  return value.length <= KEEP + 1 ? value : `${value.slice(0, KEEP)}…`;
}

function redactString(value: string): string {
  return value.replace(CAPABILITY, (_, prefix: string, token: string) => `${prefix}${shorten(token)}`);
}

function redactSecretField(value: string): string {
  const parameters = value.replace(PARAMETER, (_, name: string, v: string) => `${name}=${shorten(v)}`);
  if (parameters !== value) return parameters;
  // `WebPush <jwt>` (legacy aesgcm form) and bare values (uaid, keys, payloads)
  return value.replace(/^(WebPush |vapid )?(.*)$/s, (_, scheme: string | undefined, rest: string) => `${scheme ?? ''}${shorten(rest)}`);
}

/** A copy of `value` with its secrets shortened. */
export function redact(value: unknown, field = ''): unknown {
  if (typeof value === 'string') return SECRET_FIELDS.has(field.toLowerCase()) ? redactSecretField(value) : redactString(value);
  if (Array.isArray(value)) return value.map((v) => redact(v, field));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}

/** A trace that writes one JSON line per event to `out` (stderr), shortened unless `secrets`. */
export function tracePrinter(secrets: boolean, out: NodeJS.WritableStream = process.stderr): Trace {
  return (e: TraceEvent) => {
    const { event, ...fields } = e;
    out.write(`${JSON.stringify({ trace: event, ...(secrets ? fields : (redact(fields) as object)) })}\n`);
  };
}

/** Adds `--trace` and `--trace-secrets` to a command. */
export function traceOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--trace', 'print what goes over the wire as JSON lines on stderr (header blocks, pushes, frames, TLS)'))
    .addOption(new Option('--trace-secrets', 'with --trace: print capability URLs, keys and tokens whole (not shortened)').implies({ trace: true }));
}

/** The trace a command's options ask for, or undefined. */
export function traceOf(o: { trace?: boolean; traceSecrets?: boolean }): Trace | undefined {
  return o.trace ? tracePrinter(o.traceSecrets === true) : undefined;
}
