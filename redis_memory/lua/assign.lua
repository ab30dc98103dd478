-- Assign an attribute, replacing whatever it held (of any kind) atomically.
-- KEYS[1] object hash, KEYS[2] collection key
-- ARGV[1] name, ARGV[2] kind field, ARGV[3] kind (recorded), ARGV[4] structure: hash, list,
-- json or set; ARGV[5] '1' when RedisJSON is loaded; ARGV[6..] payload: the scalar text, the
-- list elements, the document, or the set members.
-- Returns the collection's length (LLEN / SCARD / EXISTS, which also re-registers client
-- tracking of the key), 1 for a scalar.
redis.call('DEL', KEYS[2])
local kind, structure = ARGV[3], ARGV[4]
if structure == 'hash' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[6], ARGV[2], kind)
  return 1
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[2], kind)
if structure == 'list' then
  for i = 6, #ARGV, 1000 do
    redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return redis.call('LLEN', KEYS[2])
end
if structure == 'set' then
  for i = 6, #ARGV, 1000 do
    redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  return redis.call('SCARD', KEYS[2])
end
if ARGV[5] == '1' then
  redis.call('JSON.SET', KEYS[2], '$', ARGV[6])
else
  redis.call('SET', KEYS[2], ARGV[6])
end
return redis.call('EXISTS', KEYS[2])
