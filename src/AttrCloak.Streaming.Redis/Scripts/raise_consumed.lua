-- Raises applied-offset watermarks without a state change (a batch that wrote no user): KEYS[1] {prefix}:consumed,
-- ARGV (field 'topic/partition', offset) pairs; each field becomes max(stored, offset).
for i = 1, #ARGV, 2 do
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]))
  if not stored or stored < tonumber(ARGV[i + 1]) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 'OK'
