// The behaviour every AggregateStore owes the aggregate endpoint (src/aggregates/types.ts), as one
// suite: test/unit/aggregates-sqlite.test.ts and aggregates-redis.test.ts run it against each.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { memberId, type AggregateStore, type AggregateStoreOptions, type Member } from '../../src/aggregates/types.ts';

/** Opens an empty store (nothing from an earlier test in it). */
export type OpenAggregateStore = (opts: Required<AggregateStoreOptions>) => Promise<AggregateStore>;

const IDLE_MS = 60_000;

const member = (keyHash: Buffer | null = null): Member => ({ uaid: randomBytes(16), chid: randomBytes(16), keyHash });
const members = (n: number) => Array.from({ length: n }, () => member());
const hex = (m: Member) => memberId(m).toString('hex');

async function allMembers(store: AggregateStore, id: Buffer, pageSize: number): Promise<Member[]> {
  const out: Member[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.members(id, cursor, pageSize);
    assert.ok(page.members.length <= pageSize);
    out.push(...page.members);
    cursor = page.next;
  } while (cursor !== null);
  return out;
}

export function aggregateContract(name: string, open: OpenAggregateStore, opts: { skip?: string | false } = {}): void {
  describe(`${name}: the AggregateStore contract`, { skip: opts.skip ?? false }, () => {
    let store: AggregateStore | undefined;
    let clock = 1_000_000;
    const start = async (over: Partial<AggregateStoreOptions> = {}) => {
      clock = 1_000_000;
      store = await open({ maxMembers: 100, maxPerOwner: 3, idleMs: IDLE_MS, now: () => clock, ...over });
      return store;
    };
    afterEach(async () => {
      await store?.close();
      store = undefined;
    });

    test('create: an owned aggregate with its members, read back whole in pages, each once', async () => {
      const s = await start();
      const owner = randomBytes(16);
      const restricted = member(owner);
      const given = [...members(24), restricted];
      const created = await s.create(owner, [...given, given[0]!]);
      assert.ok(created.ok);
      const agg = await s.get(created.id);
      assert.deepEqual(agg && { owner: agg.owner, members: agg.members, usedAt: agg.usedAt }, { owner, members: 25, usedAt: clock });
      const listed = await allMembers(s, created.id, 7);
      assert.deepEqual(listed.map(hex), given.map(hex).sort(), 'by member id, none twice, none missing');
      const back = listed.find((m) => hex(m) === hex(restricted))!;
      assert.deepEqual(back, restricted, 'uaid, chid and key hash kept');
      assert.equal(listed.find((m) => hex(m) === hex(given[0]!))!.keyHash, null);
      assert.deepEqual(await s.has(created.id, [given[3]!, member(), restricted]), [true, false, true]);
      assert.equal(await s.get(randomBytes(16)), null);
      assert.deepEqual(await s.members(randomBytes(16), null, 10), { members: [], next: null });
    });

    test('a member\'s push token and its key are kept with it, in both forms of push URL', async () => {
      const s = await start();
      const owner = randomBytes(16);
      const sealed = (m: Member): Member => ({ ...m, pushToken: { key: randomBytes(8), token: randomBytes(m.keyHash ? 78 : 62).toString('base64url') } });
      const given = [sealed(member()), sealed(member(owner)), member()];
      const created = await s.create(owner, given.slice(0, 2));
      assert.ok(created.ok);
      assert.ok((await s.change(created.id, given.slice(2), [])).ok);
      const listed = await allMembers(s, created.id, 2);
      for (const m of given) assert.deepEqual(listed.find((l) => hex(l) === hex(m)), m, 'one added without a token has none');
    });

    test('change: removals and additions at once; one past maxMembers is refused whole', async () => {
      const s = await start({ maxMembers: 10 });
      const first = members(8);
      const created = await s.create(randomBytes(16), first);
      assert.ok(created.ok);
      const added = members(4);
      // 8 - 2 + 4 = 10: fits
      assert.deepEqual(await s.change(created.id, added, [first[0]!, first[1]!, member()]), { ok: true, members: 10 });
      assert.deepEqual(await s.has(created.id, [first[0]!, first[2]!, added[3]!]), [false, true, true]);
      // adding one already there and removing nothing changes nothing
      assert.deepEqual(await s.change(created.id, [added[0]!], []), { ok: true, members: 10 });
      const before = (await allMembers(s, created.id, 100)).map(hex);
      assert.deepEqual(await s.change(created.id, members(2), [first[2]!]), { ok: false, reason: 'too-many-members' });
      assert.deepEqual((await allMembers(s, created.id, 100)).map(hex), before, 'nothing of a refused change is kept');
      assert.equal((await s.get(created.id))!.members, 10);
      assert.deepEqual(await s.create(randomBytes(16), members(11)), { ok: false, reason: 'too-many-members' });
      assert.deepEqual(await s.change(randomBytes(16), members(1), []), { ok: false, reason: 'no-aggregate' });
    });

    test('changes at once never pass maxMembers together', async () => {
      const s = await start({ maxMembers: 10 });
      const created = await s.create(randomBytes(16), members(4));
      assert.ok(created.ok);
      const results = await Promise.all([s.change(created.id, members(4), []), s.change(created.id, members(4), [])]);
      assert.deepEqual(results.map((r) => r.ok).sort(), [false, true]);
      assert.equal((await s.get(created.id))!.members, 8);
    });

    test('maxPerOwner live aggregates per owner; a deleted or expired one frees its place', async () => {
      const s = await start({ maxPerOwner: 2 });
      const owner = randomBytes(16);
      const a = await s.create(owner, []);
      clock += IDLE_MS / 2;
      const b = await s.create(owner, members(1));
      assert.ok(a.ok && b.ok);
      assert.deepEqual(await s.create(owner, []), { ok: false, reason: 'too-many-aggregates' });
      assert.ok((await s.create(randomBytes(16), [])).ok, 'another owner has places of its own');
      assert.equal(await s.delete(b.id), true);
      assert.equal(await s.delete(b.id), false);
      assert.equal(await s.get(b.id), null);
      assert.deepEqual(await s.members(b.id, null, 10), { members: [], next: null });
      const c = await s.create(owner, []);
      assert.ok(c.ok);
      assert.deepEqual(await s.create(owner, []), { ok: false, reason: 'too-many-aggregates' });
      // a is idle for longer than idleMs, c is not
      clock += IDLE_MS / 2 + 1;
      assert.equal(await s.get(a.id), null);
      assert.ok((await s.create(owner, [])).ok);
    });

    test('expiry: idle for idleMs is gone; a send (touch) or change starts it again; expire deletes and counts', async () => {
      const s = await start({ maxPerOwner: 10 });
      const owner = randomBytes(16);
      const created = await Promise.all([0, 1, 2, 3].map(() => s.create(owner, members(3))));
      const [touched, changed, idle, deleted] = created.map((c) => {
        assert.ok(c.ok);
        return c;
      });
      assert.ok(touched && changed && idle && deleted);
      assert.equal(await s.count(), 4);
      await s.delete(deleted.id);
      assert.equal(await s.count(), 3);
      clock += IDLE_MS - 1;
      await s.touch(touched.id);
      assert.ok((await s.change(changed.id, members(1), [])).ok);
      clock += 2;
      assert.equal(await s.get(idle.id), null, 'idle for longer than idleMs');
      assert.deepEqual(await s.change(idle.id, members(1), []), { ok: false, reason: 'no-aggregate' });
      assert.equal(await s.delete(idle.id), false, 'an expired one is not there to delete');
      await s.touch(idle.id);
      assert.equal(await s.get(idle.id), null, 'a touch does not bring an expired one back');
      assert.equal(await s.count(), 2);
      assert.equal(await s.expire(100), 1);
      assert.equal(await s.expire(100), 0);
      assert.deepEqual(await s.members(idle.id, null, 10), { members: [], next: null }, 'its members went with it');
      assert.equal((await s.get(touched.id))!.usedAt, clock - 2);
      assert.equal((await s.get(changed.id))!.members, 4);
      clock += IDLE_MS;
      assert.equal(await s.expire(1), 1, 'at most limit per call');
      assert.equal(await s.expire(100), 1);
      assert.equal(await s.count(), 0);
    });
  });
}
