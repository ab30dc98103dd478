-- Read every attribute of an object in one round trip (to_dict).
-- KEYS[1] object hash; ARGV[1] '1' when RedisJSON is loaded.
-- Returns {fields (HGETALL), then per collection attribute: name, value[, format]} where a
-- document's value is followed by its format ('json' or 'string').
local fields = redis.call('HGETALL', KEYS[1])
local result = {fields}
for i = 1, #fields, 2 do
  local field, kind = fields[i], fields[i + 1]
  if string.sub(field, 1, 6) == '_kind:' then
    local name = string.sub(field, 7)
    local key = KEYS[1] .. ':' .. (string.gsub(name, '[^%w_%.%-]', function(c)
      return string.format('%%%02X', string.byte(c))
    end))
    if kind == 'list' then
      table.insert(result, {name, redis.call('LRANGE', key, 0, -1)})
    elseif kind == 'set' then
      table.insert(result, {name, redis.call('SMEMBERS', key)})
    elseif kind == 'dict' or string.sub(kind, 1, 6) == 'model:' then
      if ARGV[1] == '1' and redis.call('TYPE', key).ok ~= 'string' then
        table.insert(result, {name, redis.call('JSON.GET', key, '$'), 'json'})
      else
        table.insert(result, {name, redis.call('GET', key), 'string'})
      end
    end
  end
end
return result
