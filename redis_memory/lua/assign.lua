-- Assign an attribute, replacing whatever it held (of any kind) atomically.
-- KEYS[1] object hash, KEYS[2] collection key
-- ARGV[1] name, ARGV[2] kind field, ARGV[3] kind, ARGV[4] '1' when RedisJSON is loaded,
-- ARGV[5..] payload: the scalar text, the list elements, or the dict document.
-- Returns the collection's length for lists, 1 otherwise.
redis.call('DEL', KEYS[2])
local kind = ARGV[3]
if kind == 'list' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[2], kind)
  for i = 5, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return redis.call('LLEN', KEYS[2])
end
if kind == 'dict' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('HSET', KEYS[1], ARGV[2], kind)
  if ARGV[4] == '1' then
    redis.call('JSON.SET', KEYS[2], '$', ARGV[5])
  else
    redis.call('SET', KEYS[2], ARGV[5])
  end
  return redis.call('EXISTS', KEYS[2])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[5], ARGV[2], kind)
return 1
