-- The hot path of mem.messages.append(): ops/push.lua as one lean script, for a single append
-- to an object without expiry. Running the composed op:push means running lib.lua's chunk on
-- every call, which doubles the server's time per append; ops/push.lua stays the definition
-- (transactions and objects with a ttl use it) and tests/test_lua.py checks the two agree.
-- KEYS[1] object hash, KEYS[2] the list; ARGV[1] expiry (always 0 here), ARGV[2] operation id
-- (see applied_before() in lib.lua), ARGV[3] '' (made online), ARGV[4] kind field, ARGV[5]
-- bound (0: none), ARGV[6] search fields (always '' here), ARGV[7..] the elements.
-- Reply: the new length (LLEN). A searchable list (see lib.lua) is refused with RMFULL
-- before anything is written: the caller sends op:push instead.
local brace = string.find(KEYS[1], '{', 1, true)
local oplog = string.sub(KEYS[1], 1, brace - 1) .. '~ops' .. string.sub(KEYS[1], brace)
if ARGV[2] ~= '' then
  local first = redis.call('HGET', oplog, ARGV[2])
  if first then
    return tonumber(cjson.decode(first)[1].n)
  end
end
local found = {redis.call('HGET', KEYS[1], ARGV[4]), redis.call('HGET', KEYS[1], '_search:' .. string.sub(ARGV[4], 7))}
if found[1] ~= 'list' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
if found[2] then
  return redis.error_reply('RMFULL the list is searchable: use op:push')
end
for i = 7, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local bound = tonumber(ARGV[5])
if bound > 0 then
  redis.call('LTRIM', KEYS[2], -bound, -1)
end
local length = redis.call('LLEN', KEYS[2])
local now = redis.call('TIME')  -- when the list last changed (assigned_now() in lib.lua)
local changed = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
if ARGV[2] ~= '' then
  redis.call('HSET', oplog, ARGV[2], cjson.encode({{n = string.format('%.17g', length)}}), '@' .. string.sub(ARGV[4], 7), changed)
  redis.call('HPEXPIRE', oplog, 3600000, 'FIELDS', 1, ARGV[2])
else
  redis.call('HSET', oplog, '@' .. string.sub(ARGV[4], 7), changed)
end
return length
