-- Append to a list attribute: the hot path of mem.messages.append(), kept minimal.
-- KEYS[1] object hash, KEYS[2] the list; ARGV[1] kind field, ARGV[2..] the elements.
-- Returns the new length, read with LLEN, which also re-registers client tracking of the key.
-- Error RMKIND when the attribute was deleted or replaced by another writer.
if redis.call('HGET', KEYS[1], ARGV[1]) ~= 'list' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
for i = 2, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return redis.call('LLEN', KEYS[2])
