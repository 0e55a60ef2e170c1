-- Sets the sweep mark of users that still have a state (a user forgotten meanwhile is not re-created).
-- KEYS: user keys; ARGV[1] the sweep epoch. Returns the number of users marked.
local marked = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i], 's', ARGV[1])
    marked = marked + 1
  end
end
return marked
