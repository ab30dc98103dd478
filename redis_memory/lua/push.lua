-- The hot path of mem.messages.append(): ops/push.lua as one lean script, for a single append
-- to an object without expiry. Running the composed op:push means running lib.lua's chunk on
-- every call, which doubles the server's time per append; ops/push.lua stays the definition
-- (transactions and objects with a ttl use it) and tests/test_lua.py checks the two agree.
-- KEYS[1] object hash, KEYS[2] the list; ARGV[1] expiry (always 0 here), ARGV[2] operation id
-- (see applied_before() in lib.lua), ARGV[3] '' (made online), ARGV[4] kind field, ARGV[5]
-- bound (0: none) and, when the caller holds a copy, ' version head length first last'
-- (delta_from in lib.lua), ARGV[6] search fields (always '' here), ARGV[7..] the elements.
-- Reply: as ops/push.lua. A searchable list (see lib.lua) is refused with RMFULL before
-- anything is written: the caller sends op:push instead.
local brace = string.find(KEYS[1], '{', 1, true)
local oplog = string.sub(KEYS[1], 1, brace - 1) .. '~ops' .. string.sub(KEYS[1], brace)
local writer, seq
if ARGV[2] ~= '' then
  writer, seq = string.match(ARGV[2], '^(.*):(%d+)$')
  local first = redis.call('HGET', oplog, writer)
  if first then
    local last, reply = string.match(first, '^(%d+) (%d+)$')  -- as this script writes it
    if not last then
      local entry = cjson.decode(first)  -- as remember_applied() in lib.lua writes it
      last, reply = entry[1], type(entry[2]) == 'table' and entry[2].n or nil
    end
    if tonumber(last) == tonumber(seq) then
      return tonumber(reply)  -- a resend: its first reply's length (a copy sent is read again)
    elseif tonumber(last) > tonumber(seq) then
      return redis.error_reply('RMSTALEOP a later write of the same writer was applied already')
    end
  end
end
local name = string.sub(ARGV[4], 7)
local found = redis.call('HMGET', KEYS[1], ARGV[4], '_search:' .. name)
if found[1] ~= 'list' then
  return redis.error_reply('RMKIND the attribute was deleted or replaced by another writer')
end
if found[2] then
  return redis.error_reply('RMFULL the list is searchable: use op:push')
end
local length
for i = 7, #ARGV, 1000 do
  length = redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local bound, known = string.match(ARGV[5], '^(%d+) ?(.*)$')
bound = tonumber(bound)
local state, dropped = nil, 0
if bound > 0 and length > bound then
  dropped = length - bound
  redis.call('LTRIM', KEYS[2], -bound, -1)
end
-- A read of the key, after our writes to it: it keeps the key tracked for our mirror.
length = redis.call('LLEN', KEYS[2])
if dropped > 0 or known ~= '' then
  state = redis.call('HGET', oplog, '#' .. name) or '0 0'
end
local version, head = string.match(state or '0 0', '^(%d+) (%d+)$')
head = tonumber(head)
local now = redis.call('TIME')  -- when the list last changed (assigned_now() in lib.lua)
local changed = string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local fields = {'@' .. name, changed}
if dropped > 0 then
  head = head + dropped
  fields[3], fields[4] = '#' .. name, version .. ' ' .. string.format('%d', head)
end
if ARGV[2] ~= '' then
  redis.call('HSET', oplog, writer, seq .. ' ' .. string.format('%d', length), unpack(fields))
  redis.call('HPEXPIRE', oplog, 3600000, 'FIELDS', 1, writer)
else
  redis.call('HSET', oplog, unpack(fields))
end
if known == '' then
  return length
end
-- The caller's copy against the list now (delta_from and push_reply in lib.lua).
local reply = {length, version .. ' ' .. string.format('%d', head), '0'}
local known_version, known_head, known_length, first, last = string.match(known, '^(%d+) (%d+) (%d+) (%S+) (%S+)$')
if known_version == version and head >= tonumber(known_head) then
  local from, own = tonumber(known_head) + tonumber(known_length) - head, length - (#ARGV - 6)
  local ends_hold = from <= 0 or redis.sha1hex(redis.call('LINDEX', KEYS[2], from - 1) or '') == last
  if ends_hold and head == tonumber(known_head) and tonumber(known_length) > 0 then
    ends_hold = redis.sha1hex(redis.call('LINDEX', KEYS[2], 0) or '') == first
  end
  if ends_hold and from >= 0 and own >= 0 and from <= own then
    reply[3] = '1'
    if from < own then
      for _, raw in ipairs(redis.call('LRANGE', KEYS[2], from, own - 1)) do
        reply[#reply + 1] = raw
      end
    end
  end
end
return reply
