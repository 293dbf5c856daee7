// Where a node's token secrets live. On SQLite, and on Redis with `--secrets file`, in the data
// dir's secret.key (./secret-file.ts; every node of a cluster then needs the same file). On Redis
// by default, in Redis itself ({g}:secrets, newest first), so every node seals and opens the same
// URLs: the first node to start on an empty Redis creates them (atomically: nodes starting
// together end with one set), and `webpushd secret rotate|retire --store` changes them there.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RedisStore } from '../store/redis-store.ts';
import { SECRET_FILE, loadOrCreateSecrets, newSecretKey, readSecrets } from './secret-file.ts';

/**
 * The secrets a node starts with: from Redis when `redis` is given, else from the data dir's
 * file; `created`: this start made them (a new set of push URLs); `ignored`: secrets of the data
 * dir's file that Redis does not hold (URLs they sealed answer 404 here).
 */
export async function startingSecrets(dataDir: string, redis: RedisStore | null): Promise<{ secrets: Buffer[]; created: boolean; ignored: number }> {
  const file = join(dataDir, SECRET_FILE);
  if (!redis) {
    const created = !existsSync(file);
    return { secrets: loadOrCreateSecrets(dataDir), created, ignored: 0 };
  }
  const held = await redis.tokenSecrets();
  if (held.length > 0) {
    // a file left from before (or retired in Redis since): said, not refused
    const ignored = existsSync(file) ? readSecrets(dataDir).filter((s) => !held.some((h) => h.equals(s))).length : 0;
    return { secrets: held, created: false, ignored };
  }
  // new secrets here would make every URL sealed by that file 404
  if (existsSync(file)) {
    throw new Error(
      `${file} holds token secrets but Redis holds none: copy them with \`webpushd migrate --data-dir ${dataDir} --store <url>\` ` +
        '(push URLs sealed by them stay valid), or keep using the file with --secrets file; to start with new secrets, move the file away',
    );
  }
  const mine = newSecretKey();
  const secrets = await redis.initTokenSecrets([mine]);
  return { secrets, created: secrets[0]!.equals(mine), ignored: 0 };
}

/** The secrets Redis holds now (a re-read: none at all is an error, never new secrets). */
export async function storedSecrets(redis: RedisStore): Promise<Buffer[]> {
  const held = await redis.tokenSecrets();
  if (held.length === 0) throw new Error('Redis holds no token secrets (was it flushed?)');
  return held;
}

export const sameSecrets = (a: readonly Buffer[], b: readonly Buffer[]): boolean => a.length === b.length && a.every((s, i) => s.equals(b[i]!));
