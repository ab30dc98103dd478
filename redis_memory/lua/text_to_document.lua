-- Convert one dict attribute stored as JSON text (written while RedisJSON was not loaded)
-- into a RedisJSON document, atomically: a reader sees the text or the document, never
-- neither. Used by redis_memory.migrations.documents.
-- KEYS[1] object hash, KEYS[2] the attribute's key; ARGV[1] its kind field.
-- Returns 1 converted, 0 nothing to convert (not a dict, or already a document), or RedisJSON's
-- error message as a string (not an error reply: the caller pipelines) when it refuses the
-- text, which then stays as it was.
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if not kind or (kind ~= 'dict' and string.sub(kind, 1, 6) ~= 'model:') then
  return 0
end
if redis.call('TYPE', KEYS[2]).ok ~= 'string' then
  return 0
end
local text = redis.call('GET', KEYS[2])
local pttl = redis.call('PTTL', KEYS[2])
redis.call('DEL', KEYS[2])
local done = redis.pcall('JSON.SET', KEYS[2], '$', text)
if type(done) == 'table' and done.err then
  redis.call('SET', KEYS[2], text)
  if pttl > 0 then
    redis.call('PEXPIRE', KEYS[2], pttl)
  end
  return done.err
end
if pttl > 0 then
  redis.call('PEXPIRE', KEYS[2], pttl)
end
return 1
