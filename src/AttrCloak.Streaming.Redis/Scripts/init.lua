#!lua
-- Creates the deployment's meta hash, or checks that the one present describes the same layout.
-- KEYS[1] {prefix}:meta
-- ARGV[1] layout fingerprint, ARGV[2] dimension, ARGV[3] attribute catalog, ARGV[4] reference point (float64 LE),
-- ARGV[5] a fresh random epoch id (used only if the meta hash is created now),
-- ARGV[6] '1' = the caller saw the meta hash before: a missing one means the state was lost, so do not re-create it
-- Returns {'OK', epoch} or {'LAYOUT', layout, dimension, catalog} or {'MISSING'}.
local meta = KEYS[1]
local current = redis.call('HGET', meta, 'layout')
if current then
  if current == ARGV[1] then return {'OK', redis.call('HGET', meta, 'epoch')} end
  return {'LAYOUT', current, redis.call('HGET', meta, 'dimension') or '', redis.call('HGET', meta, 'catalog') or ''}
end
if ARGV[6] == '1' then return {'MISSING'} end
redis.call('HSET', meta, 'layout', ARGV[1], 'dimension', ARGV[2], 'catalog', ARGV[3], 'reference', ARGV[4],
  'epoch', ARGV[5], 'seq', '0')
return {'OK', ARGV[5]}
