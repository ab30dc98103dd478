-- Read one collection attribute: its kind and its value, in one round trip.
-- KEYS[1] object hash, KEYS[2] collection key
-- ARGV[1] attribute name, ARGV[2] its kind field, ARGV[3] '1' when RedisJSON is loaded
-- Returns {} when the attribute is not stored, else {kind, value, format, pttl}: format is
-- 'json' for a RedisJSON document, 'string' for JSON text, '' otherwise; pttl is the key's
-- remaining time to live in ms (negative: none). Reading the collection also registers the
-- key for client-side tracking.
local kind = redis.call('HGET', KEYS[1], ARGV[2])
if not kind then
  return {}
end
local pttl = redis.call('PTTL', KEYS[2])
if kind == 'list' then
  return {kind, redis.call('LRANGE', KEYS[2], 0, -1), '', pttl}
end
if kind == 'set' then
  return {kind, redis.call('SMEMBERS', KEYS[2]), '', pttl}
end
if kind == 'dict' or string.sub(kind, 1, 6) == 'model:' then
  -- a document written while RedisJSON was not loaded stays a JSON string: read it as one
  if ARGV[3] == '1' and redis.call('TYPE', KEYS[2]).ok ~= 'string' then
    return {kind, redis.call('JSON.GET', KEYS[2], '$'), 'json', pttl}
  end
  return {kind, redis.call('GET', KEYS[2]), 'string', pttl}
end
return {kind, redis.call('HGET', KEYS[1], ARGV[1]), '', pttl}
