#!lua
-- Applies one batch of user-state changes and the class-statistics change they cause: all of it or nothing.
-- (The #!lua shebang makes Redis refuse the whole script up front when it is out of memory, instead of failing at a
-- write half way; nothing here can fail after the first write.)
--
-- Every key is named in KEYS (cluster: they must share one hash slot, i.e. a {hash tag} prefix):
-- KEYS[1] {prefix}:meta
-- KEYS[2 .. 1+ns]             statistics keys of the slots the batch changes: (attribute, class) of the served
--                             population ('stats') and of the original embeddings ('ostats'), only those that changed
-- KEYS[2+ns .. 1+ns+nu]       user keys
-- KEYS[2+ns+nu .. ]           tombstone keys of the users that need one (create, forget, or no state expected)
-- KEYS[#KEYS]                 {prefix}:consumed, when the batch raises applied-offset watermarks (see below)
-- ARGV[1] layout fingerprint the client computed with
-- ARGV[2] mode: 'A' = payloads are the new absolute values, valid only if the statistics are still at version ARGV[3]
--               'D' = payloads are deltas, added here in float64 (commutative: valid whatever other writers did)
--               'N' = no statistics change
-- ARGV[3] expected statistics version 'epoch:seq' (mode A)
-- ARGV[4] ns, ARGV[5] nu, ARGV[6] tombstone TTL in milliseconds
-- ARGV[7 .. 6+ns] payload per statistics key: float64 LE bytes; in mode A '' means the class is now empty
-- then 10 per user: expected token as last read or written ('U'..version..'|'..event id of the state, 'T'..version of
--   the tombstone, '' neither), op ('U' update, 'C' create, 'F' forget, 'N' nothing: compare only), new version, event
--   id, original, cloaked, classes
--   (for 'U', an empty original/cloaked/classes means unchanged: only what changed is sent and written),
--   index of the user's tombstone key among the tombstone keys (0 = none: the user's state is expected to exist),
--   the user's input partition ('' = unchanged), the user's sweep mark ('' = unchanged)
-- The meta hash's 'users' field counts the users with a state (+1 per create, -1 per forget of a stored user).
-- then optional (field 'topic/partition', offset) pairs: each field of KEYS[#KEYS] becomes max(stored, offset), in the
--   same atomic step as the states, so that an event at or below it is known to be a redelivery
-- Returns {'OK', epoch, seq} or {'CONFLICT', what, index} or {'LAYOUT'} or {'CORRUPT', index} or {'BADARGS', index}.
local meta = KEYS[1]
if redis.call('HGET', meta, 'layout') ~= ARGV[1] then return {'LAYOUT'} end
local mode, ns, nu, ttl = ARGV[2], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local ubase = 6 + ns

-- Checks first. Compare-and-set per user: the client computed the statistics delta from the state it read, so that
-- state must still be there (versions compared as strings: exact for any int64). The event id is part of the token:
-- a re-cloak rewrites the cloaked embedding at the same version, under a new event id.
local W = 10
for u = 1, nu do
  local f = redis.call('HMGET', KEYS[1 + ns + u], 'v', 'e')
  local current
  if f[1] then
    current = 'U' .. f[1] .. '|' .. (f[2] or '')
  else
    local t = tonumber(ARGV[ubase + (u - 1) * W + 8])
    current = t > 0 and redis.call('GET', KEYS[1 + ns + nu + t]) or false
    current = current and ('T' .. current) or ''
  end
  if current ~= ARGV[ubase + (u - 1) * W + 1] then return {'CONFLICT', 'user', u} end
  local op = ARGV[ubase + (u - 1) * W + 2]
  if (op == 'F' or op == 'C') and tonumber(ARGV[ubase + (u - 1) * W + 8]) == 0 then return {'BADARGS', u} end
end
local epoch = redis.call('HGET', meta, 'epoch')
if mode == 'A' then
  if (epoch .. ':' .. (redis.call('HGET', meta, 'seq') or '0')) ~= ARGV[3] then return {'CONFLICT', 'stats', 0} end
elseif mode == 'D' then
  for i = 1, ns do
    local len = redis.call('STRLEN', KEYS[1 + i])
    if len ~= 0 and len ~= #ARGV[6 + i] then return {'CORRUPT', i} end
  end
end

-- stored + delta in float64, chunk by chunk (struct.unpack returns its values on the Lua stack, which is limited).
local CHUNK = 256
local full = '<' .. string.rep('d', CHUNK)
local function add(stored, delta)
  local parts, pos, first = {}, 1, nil
  local total = #delta
  while pos <= total do
    local m = math.min(CHUNK, (total - pos + 1) / 8)
    local fmt = (m == CHUNK) and full or ('<' .. string.rep('d', m))
    local b = {struct.unpack(fmt, delta, pos)}
    if stored then
      local a = {struct.unpack(fmt, stored, pos)}
      for i = 1, m do b[i] = a[i] + b[i] end
    else
      for i = 1, m do b[i] = 0 + b[i] end
    end
    if not first then first = b[1] end
    parts[#parts + 1] = struct.pack(fmt, unpack(b, 1, m))
    pos = pos + m * 8
  end
  return table.concat(parts), first
end

local seq = redis.call('HGET', meta, 'seq') or '0'
if ns > 0 and mode ~= 'N' then
  for i = 1, ns do
    local key, payload = KEYS[1 + i], ARGV[6 + i]
    if mode == 'A' then
      if payload == '' then redis.call('DEL', key) else redis.call('SET', key, payload) end
    else
      local value, count = add(redis.call('GET', key), payload)
      -- An empty class is exactly zero: no rounding residue of removed users stays behind.
      if count == 0 then redis.call('DEL', key) else redis.call('SET', key, value) end
    end
  end
  seq = redis.call('HINCRBY', meta, 'seq', 1)
end

for u = 1, nu do
  local o = ubase + (u - 1) * W
  local t = tonumber(ARGV[o + 8])
  local ukey, tkey, op = KEYS[1 + ns + u], t > 0 and KEYS[1 + ns + nu + t] or nil, ARGV[o + 2]
  if op == 'F' then
    redis.call('DEL', ukey)
    redis.call('SET', tkey, ARGV[o + 3], 'PX', ttl)
    if string.sub(ARGV[o + 1], 1, 1) == 'U' then redis.call('HINCRBY', meta, 'users', -1) end
  elseif op ~= 'N' then
    local fields = {'v', ARGV[o + 3], 'e', ARGV[o + 4]}
    if ARGV[o + 5] ~= '' then fields[#fields + 1] = 'o'; fields[#fields + 1] = ARGV[o + 5] end
    if ARGV[o + 6] ~= '' then fields[#fields + 1] = 'c'; fields[#fields + 1] = ARGV[o + 6] end
    if ARGV[o + 7] ~= '' then fields[#fields + 1] = 'a'; fields[#fields + 1] = ARGV[o + 7] end
    if ARGV[o + 9] ~= '' then fields[#fields + 1] = 'p'; fields[#fields + 1] = ARGV[o + 9] end
    if ARGV[o + 10] ~= '' then fields[#fields + 1] = 's'; fields[#fields + 1] = ARGV[o + 10] end
    redis.call('HSET', ukey, unpack(fields))
    -- A create keeps the forget tombstone until it expires: the tombstones are shared by the deployment's
    -- generations, and another generation may still hold an older event of the user that must stay stale.
    if op == 'C' then redis.call('HINCRBY', meta, 'users', 1) end
  end
end
local wbase = ubase + nu * W
for i = wbase + 1, #ARGV, 2 do
  local stored = tonumber(redis.call('HGET', KEYS[#KEYS], ARGV[i]))
  if not stored or stored < tonumber(ARGV[i + 1]) then redis.call('HSET', KEYS[#KEYS], ARGV[i], ARGV[i + 1]) end
end
return {'OK', epoch, tostring(seq)}
