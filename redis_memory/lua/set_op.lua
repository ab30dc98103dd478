-- One change to a set attribute, checked against its kind, atomically.
-- KEYS[1] object hash, KEYS[2] the set; ARGV[1] kind field, ARGV[2] operation, ARGV[3..] members.
-- Every branch ends by reading the set (SCARD), which re-registers client tracking.
-- Replies: {size, changed} for add / remove / discard; {size, member} for pop; {size} for clear.
-- Errors: RMKIND (attribute deleted or replaced), RMNOKEY (remove of a missing member, pop of an
-- empty set).
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if kind ~= 'set' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
local key, op = KEYS[2], ARGV[2]
local changed = 0
if op == 'add' or op == 'discard' or op == 'remove' then
  local command = (op == 'add') and 'SADD' or 'SREM'
  for i = 3, #ARGV, 1000 do
    changed = changed + redis.call(command, key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if op == 'remove' and changed == 0 then
    return redis.error_reply('RMNOKEY the member is not in the set')
  end
  return {redis.call('SCARD', key), changed}
elseif op == 'pop' then
  local member = redis.call('SPOP', key)
  if not member then
    return redis.error_reply('RMNOKEY pop from an empty set')
  end
  return {redis.call('SCARD', key), member}
elseif op == 'clear' then
  redis.call('DEL', key)
  return {redis.call('SCARD', key)}
end
return redis.error_reply('ERR unknown set operation ' .. op)
