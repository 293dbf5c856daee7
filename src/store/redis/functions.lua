#!lua name=webpushd_1
-- The Redis store's functions (docs/ARCHITECTURE.md, "The Redis store"). Each runs atomically
-- and touches only the keys it is given, all in one hash slot: a user agent's keys share the
-- tag {u:<uaid hex>}, and the slot's indexes carry a tag of that same slot. The library name
-- and the function prefix carry a version, so nodes of two releases can share one Redis.
--
-- User-agent functions take these KEYS, in this order:
local UA, SUBS, COUNTS, QUEUE, EXPIRY, TOPICS, MESSAGES, OUTBOX, SLOT_SEEN, SLOT_EXPIRY, SLOT_OUTBOX, GONE, HOLDER, SLOT_STORED =
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14
-- and receipt functions (a receipt subscription's slot) these:
local R_SUBS, R_COUNTER, R_RECORDS, R_QUEUE, R_EXPIRY, R_SEEN = 1, 2, 3, 4, 5, 6

local NO_TOPIC, HAS_RECEIPT = 255, 1
-- How long a deleted user agent's last message id is kept: made again in that time, it goes on
-- from there (later, the creation time it is seeded with is far enough ahead).
local GONE_MS = 86400000

-- A message record (src/store/redis/record.ts): chid (16 bytes), urgency (1), topic length
-- (1, 255: none), receipt flag (1), the receipt subscription (16, when flagged), the topic, then
-- what only the reader decodes.
local function header(rec)
  local chid, urgency, topicLen = rec:sub(1, 16), rec:byte(17), rec:byte(18)
  local pos, receipt = 20, nil
  if rec:byte(19) == HAS_RECEIPT then
    receipt = rec:sub(20, 35)
    pos = 36
  end
  local topic = nil
  if topicLen ~= NO_TOPIC then topic = rec:sub(pos, pos + topicLen - 1) end
  return chid, urgency, topic, receipt
end

-- Ids and times go to Redis as integers written out in full (tostring would write 1.7e+15).
local function int(n) return string.format('%d', n) end

-- The slot's expiry index holds each user agent once, at its earliest message expiry.
local function refresh_expiry(keys, uaid)
  local first = redis.call('ZRANGE', keys[EXPIRY], 0, 0, 'WITHSCORES')
  if first[2] then
    redis.call('ZADD', keys[SLOT_EXPIRY], first[2], uaid)
  else
    redis.call('ZREM', keys[SLOT_EXPIRY], uaid)
  end
end

-- Deletes one stored message; one that asked for a receipt leaves it in the user agent's outbox
-- (the receipt subscription lives in another slot: the store moves it there next) and in `out`.
local function remove_message(keys, uaid, id, rec, status, out)
  local chid, _, topic, receipt = header(rec)
  redis.call('HDEL', keys[MESSAGES], id)
  redis.call('ZREM', keys[QUEUE], id)
  redis.call('ZREM', keys[EXPIRY], id)
  redis.call('DECR', keys[SLOT_STORED])
  if redis.call('HINCRBY', keys[COUNTS], chid, -1) <= 0 then redis.call('HDEL', keys[COUNTS], chid) end
  if topic and redis.call('HGET', keys[TOPICS], chid .. topic) == id then redis.call('HDEL', keys[TOPICS], chid .. topic) end
  if receipt then
    local entry = receipt .. chid .. status
    redis.call('HSET', keys[OUTBOX], id, entry)
    redis.call('SADD', keys[SLOT_OUTBOX], uaid)
    out[#out + 1] = id
    out[#out + 1] = entry
  end
end

-- ARGV: uaid, chid, key hash ('' for none), now, most channels, the id before the first message
-- (for a new user agent; ids go on from a deleted one's). Returns 1, or 0 when the user agent
-- holds the most channels it may.
local function put_subscription(keys, args)
  local uaid, chid, keyHash, now, maxChannels, firstId = args[1], args[2], args[3], args[4], tonumber(args[5]), args[6]
  local current = redis.call('HGET', keys[SUBS], chid)
  local created = now
  if current then
    created = current:match('^(%d+):')
  elseif redis.call('HLEN', keys[SUBS]) >= maxChannels then
    return 0
  end
  if redis.call('EXISTS', keys[UA]) == 0 then
    local last = tonumber(redis.call('GET', keys[GONE]) or '0')
    if last > tonumber(firstId) then firstId = int(last) end
    redis.call('HSET', keys[UA], 'created', now, 'id', firstId)
    redis.call('DEL', keys[GONE])
  end
  redis.call('HSET', keys[UA], 'seen', now)
  redis.call('ZADD', keys[SLOT_SEEN], now, uaid)
  redis.call('HSET', keys[SUBS], chid, created .. ':' .. keyHash)
  return 1
end

-- ARGV: uaid, chid. Returns {existed (0/1), outbox entries (id, entry)...}.
local function delete_subscription(keys, args)
  local uaid, chid = args[1], args[2]
  local existed = redis.call('HDEL', keys[SUBS], chid)
  local out = {}
  if existed == 1 and redis.call('HEXISTS', keys[COUNTS], chid) == 1 then
    for _, id in ipairs(redis.call('ZRANGE', keys[QUEUE], 0, -1)) do
      local rec = redis.call('HGET', keys[MESSAGES], id)
      if rec:sub(1, 16) == chid then remove_message(keys, uaid, id, rec, '410', out) end
    end
    refresh_expiry(keys, uaid)
  end
  return { existed, out }
end

-- ARGV: uaid, last seen before (ms; '' to delete it whatever), the node recorded as holding its
-- connection when it was picked ('' for none; with a last seen only). Returns {deleted (0/1),
-- outbox entries...}.
local function delete_user_agent(keys, args)
  local uaid, seenBefore = args[1], tonumber(args[2])
  local seen = redis.call('HGET', keys[UA], 'seen')
  -- an idle user agent seen since it was picked stays
  if not seen or (seenBefore and tonumber(seen) >= seenBefore) then return { 0, {} } end
  -- and so does one a node took since (connected for longer than the expiry, it was not idle)
  if seenBefore and (redis.call('HGET', keys[HOLDER], 'node') or '') ~= args[3] then return { 0, {} } end
  local out = {}
  for _, id in ipairs(redis.call('ZRANGE', keys[QUEUE], 0, -1)) do
    local rec = redis.call('HGET', keys[MESSAGES], id)
    local chid, _, _, receipt = header(rec)
    if receipt then
      local entry = receipt .. chid .. '410'
      redis.call('HSET', keys[OUTBOX], id, entry)
      out[#out + 1] = id
      out[#out + 1] = entry
    end
  end
  if #out > 0 then redis.call('SADD', keys[SLOT_OUTBOX], uaid) end
  redis.call('DECRBY', keys[SLOT_STORED], redis.call('ZCARD', keys[QUEUE]))
  redis.call('SET', keys[GONE], redis.call('HGET', keys[UA], 'id'), 'PX', GONE_MS)
  redis.call('DEL', keys[UA], keys[SUBS], keys[COUNTS], keys[QUEUE], keys[EXPIRY], keys[TOPICS], keys[MESSAGES])
  redis.call('ZREM', keys[SLOT_SEEN], uaid)
  redis.call('ZREM', keys[SLOT_EXPIRY], uaid)
  return { 1, out }
end

-- A user agent connected or disconnected (now): when it was last seen; an unknown one stays unknown.
local function touch(keys, uaid, now)
  if redis.call('EXISTS', keys[UA]) == 0 then return 0 end
  redis.call('HSET', keys[UA], 'seen', now)
  redis.call('ZADD', keys[SLOT_SEEN], now, uaid)
  return 1
end

-- ARGV: uaid, now.
local function touch_user_agent(keys, args)
  return touch(keys, args[1], args[2])
end

-- ARGV: uaid, chid, topic ('' for none), record, expires at, most per subscription, most per
-- user agent, the saving node ('': publish no hint). Returns {0, id, replaced id (0: none),
-- {outbox entries...}, holder node ('': none), hinted (0/1)}, {1} (no such subscription) or {2}
-- (too many stored). With a saving node (one Redis, not a Cluster: the holder's channel is in
-- another slot), a holder that is another node gets the message's hint at once, in this call:
-- "M", uaid, id, " ", record (record.ts: encodeMessageHint) on {n:<node>}:hints (keys.ts).
local function save_message(keys, args)
  local uaid, chid, topic, rec, expiresAt = args[1], args[2], args[3], args[4], args[5]
  local maxPerSub, maxPerUa, saver = tonumber(args[6]), tonumber(args[7]), args[8] or ''
  if redis.call('HEXISTS', keys[SUBS], chid) == 0 then return { 1 } end
  local out = {}
  local replaced = false
  if topic ~= '' then replaced = redis.call('HGET', keys[TOPICS], chid .. topic) end
  if replaced then
    -- RFC 8030 5.4: the replaced message will never be acknowledged
    remove_message(keys, uaid, replaced, redis.call('HGET', keys[MESSAGES], replaced), '410', out)
    redis.call('HINCRBY', keys[COUNTS], chid, 1)
  else
    -- the subscription's own cap first: one sender cannot use up the user agent's total. Its
    -- count goes up at once (one command, not a read and a write) and back when refused.
    local count = redis.call('HINCRBY', keys[COUNTS], chid, 1)
    if count > maxPerSub or redis.call('ZCARD', keys[QUEUE]) >= maxPerUa then
      if count <= 1 then redis.call('HDEL', keys[COUNTS], chid) else redis.call('HINCRBY', keys[COUNTS], chid, -1) end
      return { 2 }
    end
  end
  local id = redis.call('HINCRBY', keys[UA], 'id', 1)
  redis.call('INCR', keys[SLOT_STORED])
  redis.call('HSET', keys[MESSAGES], id, rec)
  redis.call('ZADD', keys[QUEUE], id, id)
  redis.call('ZADD', keys[EXPIRY], expiresAt, id)
  if topic ~= '' then redis.call('HSET', keys[TOPICS], chid .. topic, id) end
  if replaced then
    refresh_expiry(keys, uaid)
  else
    -- nothing removed: the earliest expiry is the one indexed (if any) or this one, whichever
    -- is sooner; LT adds the user agent when absent and lowers it only (no read of the queue)
    redis.call('ZADD', keys[SLOT_EXPIRY], 'LT', expiresAt, uaid)
  end
  -- the node holding the connection: the saver hints it without a read of its own
  local holder = redis.call('HGET', keys[HOLDER], 'node') or ''
  local hinted = 0
  if saver ~= '' and holder ~= '' and holder ~= saver then
    -- pcall: a refused publish (an ACL) must not fail a save already written; the saver tries again
    local sent = redis.pcall('SPUBLISH', '{n:' .. holder .. '}:hints', 'M' .. uaid .. int(id) .. ' ' .. rec)
    if type(sent) == 'number' then hinted = 1 end
  end
  return { 0, id, tonumber(replaced or '0'), out, holder, hinted }
end

-- ARGV: after id, most, now, chid ('' for all), least urgency (0-3). Returns {id, record, ...},
-- unexpired, oldest first.
local function pending_messages(keys, args)
  local after, limit, now, chid, minUrgency = args[1], tonumber(args[2]), tonumber(args[3]), args[4], tonumber(args[5])
  local out = {}
  while #out < 2 * limit do
    local ids = redis.call('ZRANGEBYSCORE', keys[QUEUE], '(' .. after, '+inf', 'LIMIT', 0, limit)
    if #ids == 0 then break end
    for _, id in ipairs(ids) do
      if tonumber(redis.call('ZSCORE', keys[EXPIRY], id)) > now then
        local rec = redis.call('HGET', keys[MESSAGES], id)
        if (chid == '' or rec:sub(1, 16) == chid) and rec:byte(17) >= minUrgency then
          out[#out + 1] = tonumber(id)
          out[#out + 1] = rec
          if #out == 2 * limit then break end
        end
      end
    end
    after = ids[#ids]
  end
  return out
end

-- ARGV: uaid, chid, id. Returns {deleted (0/1), outbox entries...}.
local function delete_message(keys, args)
  local uaid, chid, id = args[1], args[2], args[3]
  local rec = redis.call('HGET', keys[MESSAGES], id)
  if not rec or rec:sub(1, 16) ~= chid then return { 0, {} } end
  local out = {}
  remove_message(keys, uaid, id, rec, '204', out)
  refresh_expiry(keys, uaid)
  return { 1, out }
end

-- ARGV: uaid, now, most. Deletes expired messages. Returns {{id, chid, ...}, outbox entries...}.
local function sweep_user_agent(keys, args)
  local uaid = args[1]
  local expired, out = {}, {}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', keys[EXPIRY], '-inf', args[2], 'LIMIT', 0, tonumber(args[3]))) do
    local rec = redis.call('HGET', keys[MESSAGES], id)
    expired[#expired + 1] = tonumber(id)
    expired[#expired + 1] = rec:sub(1, 16)
    remove_message(keys, uaid, id, rec, '410', out)
  end
  refresh_expiry(keys, uaid)
  return { expired, out }
end

-- ARGV: node, uaid, now. The user agent's connection is on `node` now: its epoch goes up, and it
-- is seen. Returns {previous node (nil: none), epoch, last message id (0: none)}. Kept apart from
-- the user agent's record: one that only said hello is connected without being stored.
local function claim_user_agent(keys, args)
  touch(keys, args[2], args[3])
  local previous = redis.call('HGET', keys[HOLDER], 'node')
  local epoch = redis.call('HINCRBY', keys[HOLDER], 'epoch', 1)
  redis.call('HSET', keys[HOLDER], 'node', args[1])
  redis.call('PERSIST', keys[HOLDER])
  return { previous, epoch, tonumber(redis.call('HGET', keys[UA], 'id') or '0') }
end

-- ARGV: node, epoch, uaid, now. That connection left (the user agent is seen); a newer one (a
-- later epoch) stays recorded.
local function release_user_agent(keys, args)
  touch(keys, args[3], args[4])
  local holder = redis.call('HMGET', keys[HOLDER], 'node', 'epoch')
  if holder[1] == args[1] and holder[2] == args[2] then
    redis.call('HDEL', keys[HOLDER], 'node')
    -- the epoch outlives a short absence, not an abandoned uaid
    redis.call('PEXPIRE', keys[HOLDER], GONE_MS)
  end
  return 1
end

-- KEYS: the outbox, the slot's outbox index. ARGV: uaid, ids moved to their receipt subscriptions.
local function outbox_moved(keys, args)
  redis.call('HDEL', keys[1], unpack(args, 2))
  if redis.call('EXISTS', keys[1]) == 0 then redis.call('SREM', keys[2], args[1]) end
  return 1
end

-- Receipts. A seq is the slot's counter * 16384 + the slot, so it names its slot (deleteReceipt
-- gets only the seq), is unique everywhere, and increases for each receipt subscription. A
-- subscription's receipts are the queue members <id><seq, 16 digits>, in seq order.
local function seq_member(sub, seq) return sub .. string.format('%016d', seq) end
local function seq_of(member) return int(tonumber(member:sub(17))) end

-- ARGV: id, expires at. A new receipt subscription.
local function create_receipt_subscription(keys, args)
  redis.call('ZADD', keys[R_SUBS], args[2], args[1])
  return 1
end

-- ARGV: id, lives at least until, now. Returns 1 (extended) or 0 (no such unexpired one).
local function use_receipt_subscription(keys, args)
  local id, untilAt, now = args[1], tonumber(args[2]), tonumber(args[3])
  local expires = tonumber(redis.call('ZSCORE', keys[R_SUBS], id))
  if not expires or expires <= now then return 0 end
  if untilAt > expires then redis.call('ZADD', keys[R_SUBS], untilAt, id) end
  return 1
end

-- ARGV: slot, expires at, uaid, then (message id, outbox entry) pairs. Queues each receipt once
-- (a move repeated after a failure finds it seen). Returns how many were queued now.
local function queue_receipts(keys, args)
  local slot, expiresAt, uaid = tonumber(args[1]), args[2], args[3]
  local queued = 0
  for i = 4, #args, 2 do
    local id, entry = args[i], args[i + 1]
    local seen = uaid .. id
    if not redis.call('ZSCORE', keys[R_SEEN], seen) then
      local sub = entry:sub(1, 16)
      local seq = redis.call('INCR', keys[R_COUNTER]) * 16384 + slot
      -- record: subscription, uaid, chid, status (3), message id
      redis.call('HSET', keys[R_RECORDS], int(seq), sub .. uaid .. entry:sub(17, 32) .. entry:sub(33, 35) .. id)
      redis.call('ZADD', keys[R_QUEUE], 0, seq_member(sub, seq))
      redis.call('ZADD', keys[R_EXPIRY], expiresAt, int(seq))
      redis.call('ZADD', keys[R_SEEN], expiresAt, seen)
      queued = queued + 1
    end
  end
  return queued
end

-- ARGV: id, after seq, most, now. Returns {seq, record, ...} unexpired, in seq order.
local function pending_receipts(keys, args)
  local sub, limit, now = args[1], tonumber(args[3]), tonumber(args[4])
  local from, to = '(' .. seq_member(sub, tonumber(args[2])), '(' .. sub .. ':'
  local out = {}
  while #out < 2 * limit do
    local members = redis.call('ZRANGEBYLEX', keys[R_QUEUE], from, to, 'LIMIT', 0, limit)
    if #members == 0 then break end
    for _, m in ipairs(members) do
      local seq = seq_of(m)
      if tonumber(redis.call('ZSCORE', keys[R_EXPIRY], seq)) > now then
        out[#out + 1] = tonumber(seq)
        out[#out + 1] = redis.call('HGET', keys[R_RECORDS], seq)
        if #out == 2 * limit then break end
      end
    end
    from = '(' .. members[#members]
  end
  return out
end

local function remove_receipt(keys, seq)
  local rec = redis.call('HGET', keys[R_RECORDS], seq)
  if not rec then return 0 end
  redis.call('ZREM', keys[R_QUEUE], seq_member(rec:sub(1, 16), tonumber(seq)))
  redis.call('HDEL', keys[R_RECORDS], seq)
  redis.call('ZREM', keys[R_EXPIRY], seq)
  return 1
end

-- ARGV: seq.
local function delete_receipt(keys, args)
  return remove_receipt(keys, args[1])
end

-- ARGV: now, most. Deletes the slot's expired receipts and receipt subscriptions (with their
-- receipts). Returns {receipts deleted, {expired subscription ids...}}.
local function sweep_receipts(keys, args)
  local now, most = args[1], tonumber(args[2])
  local receipts = 0
  for _, seq in ipairs(redis.call('ZRANGEBYSCORE', keys[R_EXPIRY], '-inf', now, 'LIMIT', 0, most)) do
    receipts = receipts + remove_receipt(keys, seq)
  end
  local subs = redis.call('ZRANGEBYSCORE', keys[R_SUBS], '-inf', now, 'LIMIT', 0, most)
  for _, sub in ipairs(subs) do
    redis.call('ZREM', keys[R_SUBS], sub)
    for _, m in ipairs(redis.call('ZRANGEBYLEX', keys[R_QUEUE], '[' .. sub, '(' .. sub .. ':')) do
      remove_receipt(keys, seq_of(m))
    end
  end
  redis.call('ZREMRANGEBYSCORE', keys[R_SEEN], '-inf', now)
  return { receipts, subs }
end

-- KEYS: a lease. ARGV: the token it was taken with. Ends it unless it expired and another node
-- took it since. Returns 1 (ended) or 0.
local function release_lease(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  return redis.call('DEL', keys[1])
end

local function register(name, fn, flags)
  redis.register_function { function_name = 'wp1_' .. name, callback = fn, flags = flags or {} }
end

register('put_subscription', put_subscription)
register('delete_subscription', delete_subscription, { 'allow-oom' })
register('delete_user_agent', delete_user_agent, { 'allow-oom' })
register('touch_user_agent', touch_user_agent)
register('save_message', save_message)
register('pending_messages', pending_messages, { 'no-writes' })
register('delete_message', delete_message, { 'allow-oom' })
register('sweep_user_agent', sweep_user_agent, { 'allow-oom' })
register('outbox_moved', outbox_moved, { 'allow-oom' })
register('claim_user_agent', claim_user_agent, { 'allow-oom' })
register('release_user_agent', release_user_agent, { 'allow-oom' })
register('create_receipt_subscription', create_receipt_subscription)
register('use_receipt_subscription', use_receipt_subscription)
register('queue_receipts', queue_receipts, { 'allow-oom' })
register('pending_receipts', pending_receipts, { 'no-writes' })
register('delete_receipt', delete_receipt, { 'allow-oom' })
register('sweep_receipts', sweep_receipts, { 'allow-oom' })
register('release_lease', release_lease, { 'allow-oom' })

-- Token secrets ({g}:secrets, a list, newest first: the first seals, every one opens) and the
-- copy of a SQLite data dir (src/cli/migrate.ts).

-- KEYS: the secrets. ARGV: secrets. Stores them unless some are there (nodes starting together
-- on an empty Redis end with one set). Returns the secrets in Redis.
local function init_secrets(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then redis.call('RPUSH', keys[1], unpack(args)) end
  return redis.call('LRANGE', keys[1], 0, -1)
end

-- KEYS: the secrets. ARGV: secrets to add after (older than) those there, unless already there.
-- Returns how many were added.
local function add_secrets(keys, args)
  local added = 0
  for _, secret in ipairs(args) do
    if not redis.call('LPOS', keys[1], secret) then
      redis.call('RPUSH', keys[1], secret)
      added = added + 1
    end
  end
  return added
end

-- KEYS: the secrets. ARGV: how many of the newest to keep (at least 1). Returns how many were dropped.
local function retire_secrets(keys, args)
  local keep = tonumber(args[1])
  local dropped = math.max(redis.call('LLEN', keys[1]) - keep, 0)
  if dropped > 0 then redis.call('LTRIM', keys[1], 0, keep - 1) end
  return dropped
end

-- User-agent KEYS. ARGV: uaid, created, seen, last message id, subscription count n, then n
-- (chid, "<created ms>:<key hash>") pairs, then (message id, record, expires at) triples, ids
-- kept as they were. A user agent Redis already has is left as it is. Returns 1 (copied) or 0.
local function import_user_agent(keys, args)
  local uaid = args[1]
  if redis.call('EXISTS', keys[UA]) == 1 or redis.call('EXISTS', keys[SUBS]) == 1 then return 0 end
  -- ids go on after those of the same uaid deleted here lately, as in put_subscription
  local lastId = math.max(tonumber(args[4]), tonumber(redis.call('GET', keys[GONE]) or '0'))
  redis.call('HSET', keys[UA], 'created', args[2], 'seen', args[3], 'id', int(lastId))
  redis.call('DEL', keys[GONE])
  redis.call('ZADD', keys[SLOT_SEEN], args[3], uaid)
  local n = tonumber(args[5])
  for i = 6, 5 + 2 * n, 2 do redis.call('HSET', keys[SUBS], args[i], args[i + 1]) end
  for i = 6 + 2 * n, #args, 3 do
    local id, rec, expiresAt = args[i], args[i + 1], args[i + 2]
    local chid, _, topic = header(rec)
    redis.call('HSET', keys[MESSAGES], id, rec)
    redis.call('ZADD', keys[QUEUE], id, id)
    redis.call('ZADD', keys[EXPIRY], expiresAt, id)
    redis.call('HINCRBY', keys[COUNTS], chid, 1)
    if topic then redis.call('HSET', keys[TOPICS], chid .. topic, id) end
  end
  redis.call('INCRBY', keys[SLOT_STORED], redis.call('ZCARD', keys[QUEUE]))
  refresh_expiry(keys, uaid)
  return 1
end

register('init_secrets', init_secrets)
register('add_secrets', add_secrets)
register('retire_secrets', retire_secrets, { 'allow-oom' })
register('import_user_agent', import_user_agent)
