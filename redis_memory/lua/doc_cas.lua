-- Replace a dict attribute held as a JSON string (the fallback without RedisJSON), but only if
-- it still has the content the caller changed: compare-and-set on the SHA1 of the old text.
-- KEYS[1] object hash, KEYS[2] the document; ARGV[1] kind field, ARGV[2] expected SHA1,
-- ARGV[3] new text. Errors: RMKIND, RMCAS (changed since read: re-read and retry).
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if kind ~= 'dict' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
local current = redis.call('GET', KEYS[2])
if not current or redis.sha1hex(current) ~= ARGV[2] then
  return redis.error_reply('RMCAS the document was changed by another writer')
end
redis.call('SET', KEYS[2], ARGV[3])
return redis.call('EXISTS', KEYS[2])
