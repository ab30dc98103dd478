-- Path-level changes to a dict attribute held as a RedisJSON document, all or none.
-- KEYS[1] object hash, KEYS[2] the document; ARGV[1] kind field, ARGV[2] number of operations,
-- then four arguments per operation: name, container path, child (the element's path; the
-- index for arrinsert), argument (JSON value; the index for arrpop).
-- Every operation is checked before any is applied, so an error leaves the document unchanged.
-- Errors: RMKIND (attribute deleted or replaced), RMPATH (container gone or of another type),
-- RMNOKEY (key missing), RMNOINDEX (index out of range).
local kind = redis.call('HGET', KEYS[1], ARGV[1])
if kind ~= 'dict' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
local key, n = KEYS[2], tonumber(ARGV[2])
local needs = {set='object', setnx='object', del='object', pop='object',
               arrappend='array', arrinsert='array', arrpop='array', arrset='array',
               replaceobject='object', replacearray='array'}

for i = 0, n - 1 do
  local op, container, child = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i]
  local want = needs[op]
  if not want then
    return redis.error_reply('ERR unknown document operation ' .. tostring(op))
  end
  local types = redis.call('JSON.TYPE', key, container)
  if #types ~= 1 or types[1] ~= want then
    return redis.error_reply('RMPATH the dict or list at this path was changed by another writer')
  end
  if op == 'del' or op == 'pop' then
    if #redis.call('JSON.TYPE', key, child) ~= 1 then
      return redis.error_reply('RMNOKEY key not found')
    end
  elseif op == 'arrset' then
    if #redis.call('JSON.TYPE', key, child) ~= 1 then
      return redis.error_reply('RMNOINDEX list index out of range')
    end
  elseif op == 'arrpop' then
    local length = redis.call('JSON.ARRLEN', key, container)[1]
    local index = tonumber(ARGV[6 + 4 * i])
    if index < 0 or index >= length then
      return redis.error_reply('RMNOINDEX list index out of range')
    end
  end
end

local results = {}
for i = 0, n - 1 do
  local op, container, child, arg = ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  local result
  if op == 'set' or op == 'arrset' then
    result = redis.call('JSON.SET', key, child, arg)
  elseif op == 'replaceobject' or op == 'replacearray' then
    result = redis.call('JSON.SET', key, container, arg)
  elseif op == 'setnx' then
    redis.call('JSON.SET', key, child, arg, 'NX')
    result = redis.call('JSON.GET', key, child)
  elseif op == 'del' then
    result = redis.call('JSON.DEL', key, child)
  elseif op == 'pop' then
    result = redis.call('JSON.GET', key, child)
    redis.call('JSON.DEL', key, child)
  elseif op == 'arrappend' then
    result = redis.call('JSON.ARRAPPEND', key, container, arg)[1]
  elseif op == 'arrinsert' then
    local length = redis.call('JSON.ARRLEN', key, container)[1]
    local index = math.max(0, math.min(tonumber(child), length))
    result = redis.call('JSON.ARRINSERT', key, container, index, arg)[1]
  elseif op == 'arrpop' then
    result = redis.call('JSON.ARRPOP', key, container, tonumber(arg))[1]
  end
  results[i + 1] = result or false
end
redis.call('EXISTS', key)
return results
