// Aggregates on Redis, over the message store's connection (RedisStore.command). An aggregate's
// keys share the hash tag {a:<id hex>}, so each change is one script on one slot, atomic on one
// Redis and on a Redis Cluster; the indexes across aggregates (per owner, and one for expiry and
// the count) are sorted sets by last use, updated after it.
//
// | key | type | holds |
// | `{a:H}` | hash | `owner` (key hash), `used` (ms) |
// | `{a:H}:z` | sorted set | member ids, score 0: the listing order (ZRANGE BYLEX pages) |
// | `{a:H}:m` | hash | member id → uaid, chid, key hash |
// | `{o:K}` | sorted set | the owner's aggregate ids by last use (the per-owner cap) |
// | `{g}:aggregates` | sorted set | every aggregate id by last use (expiry, the gauge) |
import { randomBytes } from 'node:crypto';
import type { Reply } from '../store/redis/connection.ts';
import { decodeMember, distinct, encodeMember, memberId, type Aggregate, type AggregateStore, type AggregateStoreOptions, type ChangeResult, type CreateResult, type Member, type MemberPage } from './types.ts';

/** The part of RedisStore this store uses. */
export interface RedisCommands {
  command(key: string, args: readonly (string | Buffer)[]): Promise<Reply>;
}

const ALL = '{g}:aggregates';
const ownerKey = (owner: Buffer) => `{o:${owner.toString('hex')}}`;
const keysOf = (id: Buffer) => {
  const tag = `{a:${id.toString('hex')}}`;
  return [tag, `${tag}:z`, `${tag}:m`] as const;
};

/** KEYS owner index; ARGV live-since, now, max, id. 1: reserved, 0: the owner holds max live ones. */
const RESERVE = `
if redis.call('ZCOUNT', KEYS[1], ARGV[1], '+inf') >= tonumber(ARGV[3]) then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return 1`;

/**
 * KEYS aggregate, ids, members; ARGV live-since (or '' to create with owner ARGV[5]), now, max,
 * removals, owner, then the removed ids, then id and member pairs to add. The count after it and
 * the owner, or -1 (no live aggregate), -2 (over max: nothing changed).
 */
const CHANGE = `
if ARGV[1] ~= '' then
  local used = redis.call('HGET', KEYS[1], 'used')
  if not used or tonumber(used) < tonumber(ARGV[1]) then return {-1} end
else
  redis.call('HSET', KEYS[1], 'owner', ARGV[5])
end
local nrem = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[2])
for i = 6, 5 + nrem do
  if redis.call('ZSCORE', KEYS[2], ARGV[i]) then n = n - 1 end
end
for i = 6 + nrem, #ARGV, 2 do
  if not redis.call('ZSCORE', KEYS[2], ARGV[i]) then n = n + 1 end
end
if n > tonumber(ARGV[3]) then return {-2} end
for i = 6, 5 + nrem do
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
end
for i = 6 + nrem, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], 0, ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
redis.call('HSET', KEYS[1], 'used', ARGV[2])
return {n, redis.call('HGET', KEYS[1], 'owner')}`;

/** KEYS the aggregate's; ARGV live-since, now ('' : delete it). Its owner, or nil when not live. */
const USE = `
local a = redis.call('HMGET', KEYS[1], 'owner', 'used')
if not a[1] or tonumber(a[2]) < tonumber(ARGV[1]) then return nil end
if ARGV[2] == '' then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) else redis.call('HSET', KEYS[1], 'used', ARGV[2]) end
return a[1]`;

/** KEYS the aggregate's; ARGV live-since. Deletes it if idle; its owner then, else nil. */
const EXPIRE = `
local a = redis.call('HMGET', KEYS[1], 'owner', 'used')
if not a[1] or tonumber(a[2]) >= tonumber(ARGV[1]) then return nil end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return a[1]`;

/**
 * KEYS the aggregate's; ARGV last chunk ('1') or not, owner, used, then id and member pairs. Adds
 * the members unless the aggregate exists (0); the last chunk writes {a:H}, which makes it one.
 */
const IMPORT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 4, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], 0, ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
end
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'used', ARGV[3]) end
return 1`;

/** Members per IMPORT call: each call is one short script, however large the aggregate. */
const IMPORT_CHUNK = 1000;

export class RedisAggregateStore implements AggregateStore {
  readonly #r: RedisCommands;
  readonly #o: Required<AggregateStoreOptions>;

  constructor(redis: RedisCommands, o: AggregateStoreOptions) {
    this.#r = redis;
    this.#o = { now: Date.now, ...o };
  }

  #liveSince(): number {
    return this.#o.now() - this.#o.idleMs;
  }

  #eval(script: string, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<Reply> {
    return this.#r.command(keys[0]!, ['EVAL', script, String(keys.length), ...keys, ...args]);
  }

  /** Records a use (or a deletion: `now` null) of `id` in the indexes. */
  async #index(id: Buffer, owner: Buffer, now: number | null): Promise<void> {
    const args = (key: string) => (now === null ? ['ZREM', key, id] : ['ZADD', key, String(now), id]);
    await Promise.all([this.#r.command(ownerKey(owner), args(ownerKey(owner))), this.#r.command(ALL, args(ALL))]);
  }

  async #change(id: Buffer, add: readonly Member[], remove: readonly Member[], owner: Buffer | null): Promise<[number, Buffer?]> {
    const adding = distinct(add);
    const removing = [...distinct(remove).keys()].filter((k) => !adding.has(k));
    const now = this.#o.now();
    const args: (string | Buffer)[] = [owner ? '' : String(this.#liveSince()), String(now), String(this.#o.maxMembers), String(removing.length), owner ?? ''];
    for (const k of removing) args.push(Buffer.from(k, 'hex'));
    for (const [k, m] of adding) args.push(Buffer.from(k, 'hex'), encodeMember(m));
    return (await this.#eval(CHANGE, keysOf(id), args)) as [number, Buffer?];
  }

  async create(owner: Buffer, members: readonly Member[]): Promise<CreateResult> {
    if (distinct(members).size > this.#o.maxMembers) return { ok: false, reason: 'too-many-members' };
    const id = randomBytes(16);
    const now = this.#o.now();
    const reserved = await this.#eval(RESERVE, [ownerKey(owner)], [String(this.#liveSince()), String(now), String(this.#o.maxPerOwner), id]);
    if (reserved !== 1) return { ok: false, reason: 'too-many-aggregates' };
    await this.#change(id, members, [], owner);
    await this.#r.command(ALL, ['ZADD', ALL, String(now), id]);
    return { ok: true, id };
  }

  async get(id: Buffer): Promise<Aggregate | null> {
    const [a, z] = keysOf(id);
    const [fields, members] = (await Promise.all([this.#r.command(a, ['HMGET', a, 'owner', 'used']), this.#r.command(a, ['ZCARD', z])])) as [Buffer[], number];
    const [owner, used] = fields;
    if (!owner || !used || Number(used) < this.#liveSince()) return null;
    return { id, owner, members, usedAt: Number(used) };
  }

  async change(id: Buffer, add: readonly Member[], remove: readonly Member[]): Promise<ChangeResult> {
    const [n, owner] = await this.#change(id, add, remove, null);
    if (n === -1) return { ok: false, reason: 'no-aggregate' };
    if (n === -2) return { ok: false, reason: 'too-many-members' };
    await this.#index(id, owner!, this.#o.now());
    return { ok: true, members: n };
  }

  async members(id: Buffer, cursor: string | null, limit: number): Promise<MemberPage> {
    const [, z, m] = keysOf(id);
    const from = cursor === null ? '-' : Buffer.concat([Buffer.from('('), Buffer.from(cursor, 'hex')]);
    const ids = (await this.#r.command(z, ['ZRANGE', z, from, '+', 'BYLEX', 'LIMIT', '0', String(limit)])) as Buffer[];
    if (ids.length === 0) return { members: [], next: null };
    const values = (await this.#r.command(m, ['HMGET', m, ...ids])) as (Buffer | null)[];
    return {
      // one removed between the two reads is skipped
      members: values.filter((v): v is Buffer => v !== null).map(decodeMember),
      next: ids.length === limit ? ids.at(-1)!.toString('hex') : null,
    };
  }

  async has(id: Buffer, members: readonly Member[]): Promise<boolean[]> {
    if (members.length === 0) return [];
    const [, , m] = keysOf(id);
    const values = (await this.#r.command(m, ['HMGET', m, ...members.map(memberId)])) as (Buffer | null)[];
    return values.map((v) => v !== null);
  }

  async touch(id: Buffer): Promise<void> {
    const now = this.#o.now();
    const owner = (await this.#eval(USE, keysOf(id), [String(this.#liveSince()), String(now)])) as Buffer | null;
    if (owner) await this.#index(id, owner, now);
  }

  async delete(id: Buffer): Promise<boolean> {
    const owner = (await this.#eval(USE, keysOf(id), [String(this.#liveSince()), ''])) as Buffer | null;
    if (!owner) return false;
    await this.#index(id, owner, null);
    return true;
  }

  async expire(limit: number): Promise<number> {
    const since = String(this.#liveSince());
    const ids = (await this.#r.command(ALL, ['ZRANGE', ALL, '-inf', `(${since}`, 'BYSCORE', 'LIMIT', '0', String(limit)])) as Buffer[];
    let n = 0;
    for (const id of ids) {
      const owner = (await this.#eval(EXPIRE, keysOf(id), [since])) as Buffer | null;
      if (owner) {
        n++;
        await this.#index(id, owner, null);
      } else {
        // used since the index was written, or already gone: the index learns its last use
        const live = await this.get(id);
        if (live) await this.#index(id, live.owner, live.usedAt);
        else await this.#r.command(ALL, ['ZREM', ALL, id]);
      }
    }
    return n;
  }

  /**
   * Copies an aggregate as it is (`webpushd migrate`): its id, owner, members and last use kept,
   * no cap checked. false when Redis has it already, which is left as it is. The members go first
   * (not an aggregate without {a:H}, which the last chunk writes), then the indexes, then {a:H}:
   * an interrupted copy leaves no aggregate that the sweep or the owner's cap misses, and the
   * next run completes it.
   */
  async importAggregate(a: Omit<Aggregate, 'members'>, members: readonly Member[]): Promise<boolean> {
    const keys = keysOf(a.id);
    if ((await this.#r.command(keys[0], ['EXISTS', keys[0]])) === 1) return false;
    const unique = [...distinct(members)];
    const chunk = (from: number, last: boolean) => {
      const args: (string | Buffer)[] = [last ? '1' : '0', a.owner, String(a.usedAt)];
      for (const [k, m] of unique.slice(from, from + IMPORT_CHUNK)) args.push(Buffer.from(k, 'hex'), encodeMember(m));
      return this.#eval(IMPORT, keys, args);
    };
    let from = 0;
    for (; from + IMPORT_CHUNK < unique.length; from += IMPORT_CHUNK) if ((await chunk(from, false)) !== 1) return false;
    await this.#index(a.id, a.owner, a.usedAt);
    return (await chunk(from, true)) === 1;
  }

  async count(): Promise<number> {
    return (await this.#r.command(ALL, ['ZCOUNT', ALL, String(this.#liveSince()), '+inf'])) as number;
  }

  /** The connection is the message store's: it closes it. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}
