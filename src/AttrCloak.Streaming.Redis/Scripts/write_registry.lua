-- Writes generation records of the registry if nobody wrote since the caller read it (optimistic concurrency).
-- KEYS[1] {prefix}:generations (hash: 'version', and one 'g:{model version}' field per generation holding its JSON)
-- ARGV[1] the version the caller read, ARGV[2..] (field, value) pairs. Returns the new version, or -1 on a conflict.
local current = redis.call('HGET', KEYS[1], 'version') or '0'
if current ~= ARGV[1] then return -1 end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HINCRBY', KEYS[1], 'version', 1)
