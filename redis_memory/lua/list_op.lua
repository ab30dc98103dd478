-- One change to a list attribute (appends: push.lua), checked against its kind, atomically.
-- KEYS[1] object hash, KEYS[2] the list; ARGV[1] kind field, ARGV[2] operation, ARGV[3..] its
-- arguments. Every branch ends by reading the list (LLEN), which re-registers client tracking.
-- Errors: RMKIND (attribute deleted or replaced), RMCAS (element changed since it was read),
-- RMNOINDEX (index out of range).
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if kind ~= 'list' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
local key, op = KEYS[2], ARGV[2]

local function push_all(first, last)
  for i = first, last, 1000 do
    redis.call('RPUSH', key, unpack(ARGV, i, math.min(i + 999, last)))
  end
end

local function expect(index, raw)
  local current = redis.call('LINDEX', key, index)
  if not current then
    return redis.error_reply('RMNOINDEX list index out of range')
  end
  if current ~= raw then
    return redis.error_reply('RMCAS the element was changed by another writer')
  end
  return nil
end

if op == 'popright' or op == 'popleft' then
  local value
  if op == 'popright' then value = redis.call('RPOP', key) else value = redis.call('LPOP', key) end
  if not value then
    return redis.error_reply('RMNOINDEX pop from empty list')
  end
  return {redis.call('LLEN', key), value}
elseif op == 'set' then
  local err = expect(tonumber(ARGV[3]), ARGV[4])
  if err then return err end
  redis.call('LSET', key, tonumber(ARGV[3]), ARGV[5])
  return {redis.call('LLEN', key)}
elseif op == 'delete' then
  local index = tonumber(ARGV[3])
  local err = expect(index, ARGV[4])
  if err then return err end
  local tail = redis.call('LRANGE', key, index + 1, -1)
  if index == 0 then
    redis.call('LPOP', key)
  else
    redis.call('LTRIM', key, 0, index - 1)
    for i = 1, #tail, 1000 do
      redis.call('RPUSH', key, unpack(tail, i, math.min(i + 999, #tail)))
    end
  end
  return {redis.call('LLEN', key), ARGV[4]}
elseif op == 'insert' then
  local index = tonumber(ARGV[3])
  local length = redis.call('LLEN', key)
  if index >= length then
    redis.call('RPUSH', key, ARGV[4])
  elseif index <= 0 then
    redis.call('LPUSH', key, ARGV[4])
  else
    local tail = redis.call('LRANGE', key, index, -1)
    redis.call('LTRIM', key, 0, index - 1)
    redis.call('RPUSH', key, ARGV[4])
    for i = 1, #tail, 1000 do
      redis.call('RPUSH', key, unpack(tail, i, math.min(i + 999, #tail)))
    end
  end
  return {redis.call('LLEN', key)}
elseif op == 'replace' then
  -- ARGV[3] = number of expected current elements n, ARGV[4..3+n] them, then the new ones.
  local n = tonumber(ARGV[3])
  local current = redis.call('LRANGE', key, 0, -1)
  if #current ~= n then
    return redis.error_reply('RMCAS the list was changed by another writer')
  end
  for i = 1, n do
    if current[i] ~= ARGV[3 + i] then
      return redis.error_reply('RMCAS the list was changed by another writer')
    end
  end
  redis.call('DEL', key)
  push_all(4 + n, #ARGV)
  return {redis.call('LLEN', key)}
elseif op == 'clear' then
  redis.call('DEL', key)
  return {redis.call('LLEN', key)}
end
return redis.error_reply('ERR unknown list operation ' .. op)
