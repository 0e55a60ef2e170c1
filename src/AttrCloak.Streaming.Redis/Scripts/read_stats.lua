#!lua flags=no-writes
-- A consistent snapshot of every class's statistics with the version they are at.
-- KEYS[1] {prefix}:meta, KEYS[2..] every statistics key of the catalog
-- Returns layout, epoch, seq, then one value per statistics key ('' = absent = empty class).
local out = {redis.call('HGET', KEYS[1], 'layout') or '', redis.call('HGET', KEYS[1], 'epoch') or '',
  redis.call('HGET', KEYS[1], 'seq') or '0'}
for i = 2, #KEYS do out[#out + 1] = redis.call('GET', KEYS[i]) or '' end
return out
