// Builds the effective Config: flag > environment (WEBPUSHD_<NAME>) > config file > default.
// Every value given is validated, a losing one too; the first problem becomes a ConfigError naming
// the key and source.
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { DEFAULTS, type Config } from '../config.ts';
import { OPTIONS, expectation, fileSchema, fromString, valueSchema, type OptionSpec } from './schema.ts';

export const ENV_PREFIX = 'WEBPUSHD_';
export const CONFIG_ENV = `${ENV_PREFIX}CONFIG`;

/**
 * A bad configuration: `message` is one line naming the option as its source spells it, e.g.
 * `port: expected ... (from webpushd.json)`, `--port: ... (from the command line)`,
 * `WEBPUSHD_PORT: ... (from the environment)`.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export type Source = 'default' | 'file' | 'env' | 'flag';

export interface LoadInput {
  /** Raw flag values by Config key (repeatable flags as arrays). */
  flags?: Partial<Record<keyof Config, string | string[]>>;
  /** The environment; only WEBPUSHD_* variables are read. */
  env?: Record<string, string | undefined>;
  /** Config file path from --config (wins over WEBPUSHD_CONFIG). */
  configFile?: string;
  /** Reads the config file (tests substitute it). */
  readFile?: (path: string) => string;
}

export interface Loaded {
  config: Config;
  sources: Record<keyof Config, Source>;
  configFile: string | undefined;
}

function toConfigValue(spec: OptionSpec, value: unknown): unknown {
  if (spec.kind.type === 'broadcasts') return new Map(Object.entries((value ?? {}) as Record<string, string>));
  return value;
}

/** A flag or variable value, named as the user wrote it: `--port: ... (from the command line)`. */
function check(spec: OptionSpec, value: unknown, name: string, from: string): unknown {
  const r = (valueSchema(spec) as z.ZodType).safeParse(value);
  if (!r.success) throw new ConfigError(`${name}: ${expectation(spec.kind)} (from ${from})`);
  return r.data;
}

/** The file's options, validated (unknown keys and bad values name the key). */
export function parseConfigFile(path: string, text: string): Partial<Record<keyof Config, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${path}: expected a JSON object of options`);
  const r = fileSchema.safeParse(json);
  if (r.success) return r.data as Partial<Record<keyof Config, unknown>>;
  const issue = r.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') throw new ConfigError(`${issue.keys[0]}: unknown option (from ${path})`);
  const key = String(issue.path[0]);
  const spec = OPTIONS.find((o) => o.key === key)!;
  throw new ConfigError(`${key}: ${expectation(spec.kind)} (from ${path})`);
}

export function loadConfig(input: LoadInput = {}): Loaded {
  const env = input.env ?? {};
  const flags = input.flags ?? {};
  const configFile = input.configFile ?? (env[CONFIG_ENV] || undefined);
  let file: Partial<Record<keyof Config, unknown>> = {};
  if (configFile !== undefined) {
    let text: string;
    try {
      text = (input.readFile ?? ((p) => readFileSync(p, 'utf8')))(configFile);
    } catch (err) {
      throw new ConfigError(`${configFile}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    file = parseConfigFile(configFile, text);
  }

  const config: Record<string, unknown> = { ...DEFAULTS, broadcasts: new Map(DEFAULTS.broadcasts) };
  const sources = Object.fromEntries(OPTIONS.map((o) => [o.key, 'default'])) as Record<keyof Config, Source>;
  for (const spec of OPTIONS) {
    const flag = flags[spec.key];
    const envName = ENV_PREFIX + spec.env;
    const envValue = env[envName];
    const fromFlag = flag === undefined ? undefined : check(spec, fromString(spec, flag), `--${spec.flag}`, 'the command line');
    const envGiven = envValue !== undefined && envValue !== '';
    // checked even when the flag wins: a bad variable waits to bite the day the flag is dropped
    const fromEnv = envGiven ? check(spec, fromString(spec, envValue), envName, 'the environment') : undefined;
    let value: unknown;
    if (flag !== undefined) {
      value = fromFlag;
      sources[spec.key] = 'flag';
    } else if (envGiven) {
      value = fromEnv;
      sources[spec.key] = 'env';
    } else if (spec.key in file) {
      value = file[spec.key] ?? undefined;
      sources[spec.key] = 'file';
    } else {
      continue;
    }
    config[spec.key] = toConfigValue(spec, value);
  }

  const result = config as unknown as Config;
  if (Boolean(result.tlsCert) !== Boolean(result.tlsKey)) {
    const missing = result.tlsCert ? 'tlsKey' : 'tlsCert';
    throw new ConfigError(`${missing}: tlsCert and tlsKey go together (--tls-cert and --tls-key)`);
  }
  return { config: result, sources, configFile };
}

const MASK = '********';

/** The effective configuration as plain JSON, secrets masked (OptionSpec.secret). */
export function configToJson(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const spec of OPTIONS) {
    const value = config[spec.key];
    if (spec.secret && value !== undefined) out[spec.key] = MASK;
    else if (value instanceof Map) out[spec.key] = Object.fromEntries(value);
    else out[spec.key] = value ?? null;
  }
  return out;
}
