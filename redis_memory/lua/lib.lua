-- Shared by every write script (composed in front of the ops; see backend._script_table).
-- An op is OPS.<name> = {check = function(hash, key, a), apply = function(hash, key, a)}:
-- `check` reads only and returns an error reply or nil; `apply` writes and returns the op's
-- reply. `a` holds the op's arguments. Every `apply` ends by reading its key, which keeps the
-- key registered for client-side tracking (our own writes de-register it, even with NOLOOP).
local OPS = {}

local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end

-- Kinds as the ops checked so far in this call will leave them (false: deleted), so a batch
-- can assign an attribute and then change it.
local PENDING = {}

local function current_kind(hash, field)
  local pending = PENDING[field]
  if pending ~= nil then
    return pending
  end
  return redis.call('HGET', hash, field)
end

local function expect_kind(hash, field, wanted)
  if current_kind(hash, field) ~= wanted then
    return fail('RMKIND', 'the attribute was deleted or replaced by another writer')
  end
  return nil
end

-- Run `command key items[first..last]` in chunks (Lua's unpack has a limit).
local function each_chunk(command, key, items, first, last)
  local total = 0
  for i = first, last, 1000 do
    total = total + redis.call(command, key, unpack(items, i, math.min(i + 999, last)))
  end
  return total
end

-- Keep only the last `bound` elements of a list (0: no bound).
local function trim_to(key, bound)
  bound = tonumber(bound)
  if bound > 0 then
    redis.call('LTRIM', key, -bound, -1)
  end
end

-- The collection key of attribute `name`, as keys.py builds it (percent-encoding).
local function collection_key(hash, name)
  return hash .. ':' .. (string.gsub(name, '[^%w_%.%-]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

-- Sliding expiry: every key of the object gets `ttl` ms again. PEXPIRE counts as a change
-- for client tracking, so each key is read afterwards to stay tracked.
local function touch(hash, ttl)
  if ttl <= 0 or redis.call('EXISTS', hash) == 0 then
    return
  end
  redis.call('PEXPIRE', hash, ttl)
  local fields = redis.call('HKEYS', hash)
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 6) == '_kind:' then
      local key = collection_key(hash, string.sub(field, 7))
      if redis.call('PEXPIRE', key, ttl) == 1 then
        redis.call('EXISTS', key)
      end
    end
  end
end
