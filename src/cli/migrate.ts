// `webpushd migrate --data-dir <dir> --store redis://…`: copies a SQLite data dir into Redis, so a
// deployment that grows into a cluster keeps every push URL and pending message URL valid: the
// token secrets, broadcast versions, receipt subscriptions, user agents with their subscriptions
// (key hashes) and stored messages (ids, order, topic, TTL and expiry, urgency, headers, receipt
// subscription), then the queued receipts, and the aggregates of aggregates.db (ids, owners,
// members and last use, so every aggregate URL stays valid). The database is held with an
// exclusive lock for the whole copy: a running `webpushd serve` on it is refused, and none can
// start meanwhile.
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { AGGREGATES_FILE, AGGREGATES_SCHEMA_VERSION } from '../aggregates/sqlite-aggregate-store.ts';
import { RedisAggregateStore } from '../aggregates/redis-aggregate-store.ts';
import { decodeMember } from '../aggregates/types.ts';
import { announceChange } from '../router/cluster-router.ts';
import { RedisStore } from '../store/redis-store.ts';
import { MESSAGE_COLUMNS, buf, toMessage, type MessageRow } from '../store/sqlite-store.ts';
import { migrate as upgradeSchema } from '../store/sqlite-schema.ts';
import type { ReceiptStatus } from '../store/types.ts';
import { DB_FILE } from '../server.ts';
import { SECRET_FILE, readSecrets } from '../tokens/secret-file.ts';
import { sameSecrets } from '../tokens/secret-store.ts';
import { resolveDataDir } from './data-dir.ts';

export interface MigrateOptions {
  dataDir: string;
  /** The Redis URL, as for `serve --store`. */
  store: string;
  /** Copy into a Redis that holds webpushd data already: what it holds stays, the rest is added. */
  merge: boolean;
}

export interface Copied {
  secrets: number;
  broadcasts: number;
  receiptSubscriptions: number;
  userAgents: number;
  /** User agents Redis held already (with --merge): left as they were. */
  userAgentsKept: number;
  subscriptions: number;
  messages: number;
  receipts: number;
  aggregates: number;
  /** Members of the copied aggregates. */
  aggregateMembers: number;
  /** Aggregates Redis held already (with --merge): left as they were. */
  aggregatesKept: number;
}

/** A refusal (data dir in use, Redis not empty, nothing to copy): exit 1 with its message. */
export class MigrateRefused extends Error {}

/** Opens the database for this process alone (SQLite's exclusive locking mode), or refuses: a server has it open. */
function openExclusive(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT');
  } catch (err) {
    db.close();
    if (/locked|busy/i.test((err as Error).message)) {
      throw new MigrateRefused(`${path} is in use (a running webpushd serve?): stop it first, then migrate`);
    }
    throw err;
  }
  // an older file is brought to the schema these queries read, as serve would
  upgradeSchema(db);
  return db;
}

/** Copies the data dir into Redis; `progress` hears a line per step. */
export async function migrateToRedis(o: MigrateOptions, progress: (line: string) => void = () => {}): Promise<Copied> {
  const dbPath = join(o.dataDir, DB_FILE);
  const secretPath = join(o.dataDir, SECRET_FILE);
  const hasDb = existsSync(dbPath);
  const hasSecrets = existsSync(secretPath);
  if (!hasDb && !hasSecrets) throw new MigrateRefused(`${o.dataDir} holds neither ${DB_FILE} nor ${SECRET_FILE}: nothing to copy`);
  const db = hasDb ? openExclusive(dbPath) : null;
  try {
    const store = await RedisStore.open({ url: o.store, maxStoredPerUserAgent: Number.MAX_SAFE_INTEGER });
    try {
      if (!o.merge && (await store.holdsData())) {
        throw new MigrateRefused('Redis holds webpushd data already: migrate into an empty one, or add --merge to keep what it holds and copy the rest');
      }
      const copied = await copy(db, hasSecrets ? readSecrets(o.dataDir) : [], store, o.merge, progress);
      const aggregatesPath = join(o.dataDir, AGGREGATES_FILE);
      // a data dir from before aggregates, or whose server never made one, has no file
      if (existsSync(aggregatesPath)) Object.assign(copied, await copyAggregates(aggregatesPath, store, o.merge, progress));
      // running nodes (with --merge) take the secrets and broadcast versions at once
      await announceChange(store, 'secrets');
      await announceChange(store, 'broadcasts');
      return copied;
    } finally {
      await store.close();
    }
  } finally {
    db?.close();
  }
}

async function copy(db: DatabaseSync | null, secrets: Buffer[], store: RedisStore, merge: boolean, progress: (line: string) => void): Promise<Copied> {
  const copied: Copied = {
    secrets: 0,
    broadcasts: 0,
    receiptSubscriptions: 0,
    userAgents: 0,
    userAgentsKept: 0,
    subscriptions: 0,
    messages: 0,
    receipts: 0,
    aggregates: 0,
    aggregateMembers: 0,
    aggregatesKept: 0,
  };
  // first: a node started meanwhile then seals with them, instead of making new ones
  if (secrets.length > 0) {
    if (merge) copied.secrets = await store.addTokenSecrets(secrets);
    else {
      const held = await store.initTokenSecrets(secrets);
      if (!sameSecrets(held, secrets)) {
        throw new MigrateRefused('Redis got token secrets of its own meanwhile (a node started on it?): stop the nodes, then migrate with --merge');
      }
      copied.secrets = secrets.length;
    }
    progress(`token secrets: ${copied.secrets}`);
  }
  if (!db) return copied;

  const versions = Object.fromEntries((db.prepare('SELECT id, version FROM broadcasts').all() as { id: string; version: string }[]).map((r) => [r.id, r.version]));
  if (merge) copied.broadcasts = await store.addBroadcasts(versions);
  else {
    await store.putBroadcasts(versions);
    copied.broadcasts = Object.keys(versions).length;
  }
  progress(`broadcast versions: ${copied.broadcasts}`);

  // before the messages that report to them
  for (const r of db.prepare('SELECT id, expires_at FROM receipt_subscriptions').iterate() as Iterable<{ id: Uint8Array; expires_at: number }>) {
    await store.importReceiptSubscription(buf(r.id), r.expires_at);
    copied.receiptSubscriptions++;
  }
  progress(`receipt subscriptions: ${copied.receiptSubscriptions}`);

  // SQLite's ids are one sequence for all user agents: each copied user agent goes on after the
  // last one ever given, so a message URL of a deleted message never names a new one
  const { last } = db.prepare("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'messages'), 0), coalesce((SELECT max(id) FROM messages), 0)) AS last").get() as {
    last: number;
  };
  const subscriptions = db.prepare('SELECT chid, key_hash, created_at FROM subscriptions WHERE uaid = ? ORDER BY created_at, chid');
  const messages = db.prepare(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE uaid = ? ORDER BY id`,
  );
  for (const ua of db.prepare('SELECT uaid, created_at, seen_at FROM user_agents ORDER BY uaid').iterate() as Iterable<{
    uaid: Uint8Array;
    created_at: number;
    seen_at: number;
  }>) {
    const uaid = buf(ua.uaid);
    const subs = (subscriptions.all(uaid) as { chid: Uint8Array; key_hash: Uint8Array | null; created_at: number }[]).map((s) => ({
      chid: buf(s.chid),
      keyHash: s.key_hash && buf(s.key_hash),
      createdAt: s.created_at,
    }));
    const stored = (messages.all(uaid) as unknown as MessageRow[]).map(toMessage);
    if (await store.importUserAgent({ uaid, createdAt: ua.created_at, seenAt: ua.seen_at, lastId: last, subscriptions: subs, messages: stored })) {
      copied.userAgents++;
      copied.subscriptions += subs.length;
      copied.messages += stored.length;
    } else copied.userAgentsKept++;
  }
  progress(`user agents: ${copied.userAgents} (${copied.subscriptions} subscriptions, ${copied.messages} stored messages)${merge ? `, ${copied.userAgentsKept} Redis held already` : ''}`);

  const receipts = db.prepare('SELECT sub, uaid, chid, message_id, status, expires_at FROM receipts ORDER BY seq').iterate() as Iterable<{
    sub: Uint8Array;
    uaid: Uint8Array;
    chid: Uint8Array;
    message_id: number;
    status: number;
    expires_at: number;
  }>;
  for (const r of receipts) {
    const receipt = { subscription: buf(r.sub), uaid: buf(r.uaid), chid: buf(r.chid), messageId: r.message_id, status: r.status as ReceiptStatus, expiresAt: r.expires_at };
    if (await store.importReceipt(receipt)) copied.receipts++;
  }
  progress(`queued receipts: ${copied.receipts}`);
  return copied;
}

/**
 * Copies every aggregate of aggregates.db as it is, one at a time with its members. Reading is
 * enough: no server runs on the data dir while its database is held (above).
 */
async function copyAggregates(path: string, store: RedisStore, merge: boolean, progress: (line: string) => void): Promise<Pick<Copied, 'aggregates' | 'aggregateMembers' | 'aggregatesKept'>> {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const { user_version: version } = db.prepare('PRAGMA user_version').get() as { user_version: number };
    // 0: created, never given its tables
    if (version === 0) return { aggregates: 0, aggregateMembers: 0, aggregatesKept: 0 };
    if (version > AGGREGATES_SCHEMA_VERSION) throw new MigrateRefused(`${path} has schema version ${version}, newer than this webpushd knows (${AGGREGATES_SCHEMA_VERSION})`);
    // the caps and expiry are the serving nodes': an import checks none
    const aggregates = new RedisAggregateStore(store, { maxMembers: Number.MAX_SAFE_INTEGER, maxPerOwner: Number.MAX_SAFE_INTEGER, idleMs: Number.MAX_SAFE_INTEGER });
    const members = db.prepare('SELECT member FROM members WHERE aggregate = ? ORDER BY member_id');
    const n = { aggregates: 0, aggregateMembers: 0, aggregatesKept: 0 };
    for (const a of db.prepare('SELECT id, owner, used_at FROM aggregates ORDER BY id').iterate() as Iterable<{ id: Uint8Array; owner: Uint8Array; used_at: number }>) {
      const id = buf(a.id);
      const list = (members.all(id) as { member: Uint8Array }[]).map((m) => decodeMember(buf(m.member)));
      if (await aggregates.importAggregate({ id, owner: buf(a.owner), usedAt: a.used_at }, list)) {
        n.aggregates++;
        n.aggregateMembers += list.length;
      } else n.aggregatesKept++;
    }
    progress(`aggregates: ${n.aggregates} (${n.aggregateMembers} members)${merge ? `, ${n.aggregatesKept} Redis held already` : ''}`);
    return n;
  } finally {
    db.close();
  }
}

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('Copy a SQLite data dir (secrets, broadcasts, subscriptions, stored messages, receipts, aggregates) into Redis, keeping every push URL valid; stop the server first')
    .addOption(new Option('--data-dir <dir>', 'the data dir to copy (default: as for serve)').env('WEBPUSHD_DATA_DIR'))
    .addOption(new Option('--store <url>', 'the Redis to copy into: redis://…, rediss://…, redis-cluster://…').env('WEBPUSHD_STORE').makeOptionMandatory())
    .option('--merge', 'copy into a Redis that holds webpushd data already (what it holds stays; a repeated run copies what is missing)', false)
    .action(async (o: { dataDir?: string; store: string; merge: boolean }) => {
      const dataDir = resolveDataDir(o.dataDir || undefined);
      try {
        const copied = await migrateToRedis({ dataDir, store: o.store, merge: o.merge }, (line) => process.stdout.write(`${line}\n`));
        process.stdout.write(`copied ${dataDir} into Redis: ${JSON.stringify(copied)}\n`);
      } catch (err) {
        process.stderr.write(`error: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
