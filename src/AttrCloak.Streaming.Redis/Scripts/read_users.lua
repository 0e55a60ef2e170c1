#!lua flags=no-writes
-- Reads users' states (or, for users without state, their forget tombstone) and the statistics version, atomically.
-- KEYS[1] {prefix}:meta, KEYS[2 .. n+1] user keys, KEYS[n+2 .. 2n+1] the same users' tombstone keys
-- Returns layout, epoch, seq, then 7 values per user: kind ('U' state, 'T' tombstone, 'N' nothing), version, event id,
-- original, cloaked, classes, input partition, sweep mark ('' where absent).
local n = (#KEYS - 1) / 2
local out = {redis.call('HGET', KEYS[1], 'layout') or '', redis.call('HGET', KEYS[1], 'epoch') or '',
  redis.call('HGET', KEYS[1], 'seq') or '0'}
for i = 1, n do
  local f = redis.call('HMGET', KEYS[1 + i], 'v', 'e', 'o', 'c', 'a', 'p', 's')
  if f[1] then
    out[#out + 1] = 'U'
    for j = 1, 7 do out[#out + 1] = f[j] or '' end
  else
    local t = redis.call('GET', KEYS[1 + n + i])
    if t then
      out[#out + 1] = 'T'
      out[#out + 1] = t
    else
      out[#out + 1] = 'N'
      out[#out + 1] = ''
    end
    for j = 1, 6 do out[#out + 1] = '' end
  end
end
return out
