#!lua
-- Replaces every class's statistics with values recomputed from the user states, if nothing wrote since the scan began.
-- KEYS[1] {prefix}:meta, KEYS[2..] every statistics key of the catalog
-- ARGV[1] layout fingerprint, ARGV[2] statistics version 'epoch:seq' read before the scan, ARGV[3] the number of users
-- counted, ARGV[4..] the new values ('' = empty class, key deleted). Returns {'OK', epoch, seq} or {'CONFLICT'} or {'LAYOUT'}.
local meta = KEYS[1]
if redis.call('HGET', meta, 'layout') ~= ARGV[1] then return {'LAYOUT'} end
local epoch = redis.call('HGET', meta, 'epoch')
if (epoch .. ':' .. (redis.call('HGET', meta, 'seq') or '0')) ~= ARGV[2] then return {'CONFLICT'} end
for i = 2, #KEYS do
  if ARGV[i + 2] == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], ARGV[i + 2]) end
end
redis.call('HSET', meta, 'users', ARGV[3])
return {'OK', epoch, tostring(redis.call('HINCRBY', meta, 'seq', 1))}
