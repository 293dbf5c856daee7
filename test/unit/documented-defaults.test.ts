// docs/CONFIGURATION.md against the code: each row of its options table (flag, variable, file
// key, default, range) and each default its prose repeats ("Protocol timers") is what
// `webpushd serve` uses when nothing is set. A default changed on one side only fails here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { publicUrlOf, type Config } from '../../src/config.ts';
import { loadConfig } from '../../src/config/load.ts';
import { OPTIONS } from '../../src/config/schema.ts';
import { DEFAULT_RECEIPT_TTL_MS } from '../../src/store/sqlite-store.ts';

const DOC = readFileSync(new URL('../../docs/CONFIGURATION.md', import.meta.url), 'utf8');
/** What the service runs with when no flag, variable or file sets anything. */
const USED = loadConfig({ env: {} }).config;

interface Row {
  flag: string;
  env: string;
  key: string;
  default: string;
  meaning: string;
}

/** The rows of the `## Options` table, cells unescaped (`\|`), one per flag. */
function optionRows(): Row[] {
  const section = DOC.slice(DOC.indexOf('\n## Options\n'), DOC.indexOf('\n### ', DOC.indexOf('\n## Options\n')));
  const rows: Row[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `--')) continue;
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim().replaceAll('\\|', '|'));
    assert.equal(cells.length, 5, line);
    const [flag, env, key, dflt, meaning] = cells as [string, string, string, string, string];
    rows.push({ flag: /^`--([a-z0-9-]+)/.exec(flag)![1]!, env, key, default: dflt, meaning });
  }
  return rows;
}

/** The first `code` span of a cell, or null. */
const code = (cell: string): string | null => /`([^`]*)`/.exec(cell)?.[1] ?? null;

/** A default as the table spells it: the value in a code span; unset and empty ones as "none" or "—". */
function documented(value: Config[keyof Config]): string | null {
  if (value === undefined || (value instanceof Map && value.size === 0) || (Array.isArray(value) && value.length === 0)) return null;
  return String(value);
}

test('every option of the code has a row, and every row an option', () => {
  const rows = optionRows().filter((r) => r.flag !== 'config' && r.flag !== 'print-config');
  assert.deepEqual(rows.map((r) => r.flag).sort(), OPTIONS.map((o) => o.flag).sort());
});

test('each row names the option\'s variable and file key, and the default the service uses', () => {
  const rows = new Map(optionRows().map((r) => [r.flag, r]));
  for (const spec of OPTIONS) {
    const what = `--${spec.flag}`;
    const row = rows.get(spec.flag);
    assert.ok(row, `${what}: no row in docs/CONFIGURATION.md`);
    assert.equal(row.env, `\`WEBPUSHD_${spec.env}\``, what);
    assert.equal(row.key, `\`${spec.key}\``, what);
    const used = USED[spec.key];
    if (spec.key === 'publicUrl') {
      // documented as a rule, not a value
      assert.equal(used, undefined);
      assert.equal(row.default, '`http(s)://<host>:<port>` (`localhost` for a wildcard host)');
      assert.equal(publicUrlOf(USED, USED.port), `http://localhost:${USED.port}`);
      continue;
    }
    const expected = documented(used);
    if (expected === null) assert.match(row.default, /^(none|—)( |$)/, `${what}: unset by default`);
    else assert.equal(code(row.default), expected, `${what}: default`);
    // a unit spelled out next to the number, e.g. `300000` (5 min)
    const unit = /\((\d+) (min|days)\)/.exec(row.default);
    if (unit) assert.equal(Number(expected), Number(unit[1]) * (unit[2] === 'min' ? 60_000 : 86_400), `${what}: ${row.default}`);
  }
});

test('the ranges a row states are the ones the code enforces', () => {
  const rows = new Map(optionRows().map((r) => [r.flag, r]));
  let stated = 0;
  for (const spec of OPTIONS) {
    const row = rows.get(spec.flag);
    assert.ok(row, `--${spec.flag}: no row in docs/CONFIGURATION.md`);
    const range = /^\((?:(\d+)–(\d+)|≥ (\d+))\)/.exec(row.meaning);
    if (!range) continue;
    stated++;
    assert.equal(spec.kind.type, 'int', spec.flag);
    if (spec.kind.type !== 'int') continue;
    const [min, max] = range[3] === undefined ? [Number(range[1]), Number(range[2])] : [Number(range[3]), Number.MAX_SAFE_INTEGER];
    assert.deepEqual([spec.kind.min, spec.kind.max], [min, max], `--${spec.flag}: ${range[0]}`);
  }
  assert.ok(stated >= 10, `only ${stated} ranges found: has the table's format changed?`);
});

test('the defaults "Protocol timers" repeats in prose are the ones the service uses', () => {
  const prose = DOC.slice(DOC.indexOf('\n## Protocol timers\n')).replace(/\s+/g, ' ');
  const s = 1000;
  const min = 60 * s;
  const claims: [RegExp, number, number][] = [
    [/handshake timeout (\d+) s\b/, s, USED.handshakeTimeoutMs],
    [/Ping every (\d+) min\b/, min, USED.pingIntervalMs],
    [/Pong expected within (\d+) s\b/, s, USED.pongTimeoutMs],
    [/client pings closer than (\d+) s\b/, s, USED.minClientPingIntervalMs],
    [/batches of (\d+)\b/, 1, USED.deliveryBatch],
    [/receipts are kept (\d+) hours\b/, 60 * min, DEFAULT_RECEIPT_TTL_MS],
  ];
  for (const [pattern, unit, used] of claims) {
    const m = pattern.exec(prose);
    assert.ok(m, `not in "Protocol timers": ${pattern}`);
    assert.equal(Number(m[1]) * unit, used, m[0]);
  }
  assert.match(prose, /swept every minute/);
  assert.equal(USED.sweepIntervalMs, min, 'swept every minute');
});

test('"User agents that never come back" states the expiry default', () => {
  assert.match(DOC.replace(/\s+/g, ' '), new RegExp(`\`--user-agent-expiry-days\` \\(default ${USED.userAgentExpiryDays}, `));
});
