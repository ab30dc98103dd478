-- Shared by every write script (composed in front of the ops; see backend._script_table).
-- An op is OPS.<name> = {check = function(hash, key, a), apply = function(hash, key, a)}:
-- `check` reads only and returns an error reply or nil; `apply` writes and returns the op's
-- reply. `a` holds the op's arguments. Every `apply` ends by reading its key, which keeps the
-- key registered for client-side tracking (our own writes de-register it, even with NOLOOP).
local OPS = {}

local function fail(code, message)
  return redis.error_reply(code .. ' ' .. message)
end

-- Exactly once (docs/reliability.md), as idempotent producers do it: an operation id is
-- '<writer>:<seq>', where a writer is one slot of one process that sends one write at a time
-- (resends included), its seq growing by one per write. Field <writer> of the hash
-- <prefix>~ops{<id>} holds the writer's last applied seq and that write's reply, and expires
-- OPLOG_MS after the writer's last write; so a write resent after its reply was lost returns
-- that first reply instead of being applied again, and the log holds one field per writer
-- active in the last hour, whatever the traffic. The '~' keeps the hash out of both search
-- indexes.
local OPLOG_MS = 3600000

local function oplog_key(hash)
  local brace = string.find(hash, '{', 1, true)
  return string.sub(hash, 1, brace - 1) .. '~ops' .. string.sub(hash, brace)
end

-- Numbers are kept as text ({n = ...}): cjson writes only 14 significant digits.
local function pack_reply(value)
  local kind = type(value)
  if kind == 'number' then
    return {n = string.format('%.17g', value)}
  elseif kind == 'table' then
    local packed = {}
    for k, v in pairs(value) do
      packed[k] = pack_reply(v)
    end
    return packed
  end
  return value
end

local function unpack_reply(value)
  if type(value) ~= 'table' then
    return value
  end
  if value.n ~= nil and type(value.n) == 'string' then
    return tonumber(value.n)
  end
  local unpacked = {}
  for k, v in pairs(value) do
    unpacked[k] = unpack_reply(v)
  end
  return unpacked
end

-- (true, first reply) when write `op_id` was applied already; false otherwise. A writer's
-- earlier seq than its last applied one cannot be sent (one write at a time per writer): it
-- is refused rather than applied twice.
local function applied_before(hash, op_id)
  if op_id == '' then
    return false
  end
  local writer, seq = string.match(op_id, '^(.*):(%d+)$')
  local found = redis.call('HGET', oplog_key(hash), writer)
  if not found then
    return false
  end
  local last, reply = string.match(found, '^(%d+) (%d+)$')  -- push.lua's form: seq and length
  if last then
    reply = tonumber(reply)
  else
    local entry = cjson.decode(found)
    last, reply = entry[1], unpack_reply(entry[2])
  end
  if tonumber(last) < tonumber(seq) then
    return false
  end
  if tonumber(last) > tonumber(seq) then
    return true, fail('RMSTALEOP', 'a later write of the same writer was applied already')
  end
  return true, reply
end

local function remember_applied(hash, op_id, reply)
  if op_id == '' then
    return
  end
  local writer, seq = string.match(op_id, '^(.*):(%d+)$')
  local key = oplog_key(hash)
  redis.call('HSET', key, writer, cjson.encode({seq, pack_reply(reply)}))
  redis.call('HPEXPIRE', key, OPLOG_MS, 'FIELDS', 1, writer)
end

-- Where a list stands, so a reader that holds an older copy is sent only what changed:
-- field '#<name>' of the op log holds '<version> <head>'. The version changes with every
-- change to the list other than appending and dropping elements from its front (it is
-- max(old + 1, the server's time in us), so a list deleted and made again never repeats
-- one); head counts the elements dropped from the front since the version was set. A copy
-- of `length` elements read at (version, head) is still the front-trimmed prefix of the list
-- while the version holds: what it lacks is LRANGE <head' - head + length - head'>.. (see
-- delta_from). No field: version '0' (a list written before versions were kept). A list
-- deleted or replaced by another kind keeps its field, so the list assigned next gets a
-- version no copy of the old one holds.
local function list_state(hash, name)
  local found = redis.call('HGET', oplog_key(hash), '#' .. name)
  if not found then
    return '0', 0
  end
  local version, head = string.match(found, '^(%d+) (%d+)$')
  return version, tonumber(head)
end

local function list_rewritten(hash, name)
  local version = list_state(hash, name)
  local now = redis.call('TIME')
  local stamp = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('HSET', oplog_key(hash), '#' .. name, string.format('%d 0', math.max(tonumber(version) + 1, stamp)))
end

local function list_dropped(hash, name, count)
  if count > 0 then
    local version, head = list_state(hash, name)
    redis.call('HSET', oplog_key(hash), '#' .. name, string.format('%s %d', version, head + count))
  end
end

-- The caller's copy, 'version head length first last' (or ''; first and last: SHA-1 of its end
-- elements' text), against the list at `key` now: the
-- Redis index of the first element the copy lacks, or nil when the copy is not a prefix of
-- the list any more (another change than appending or dropping from the front).
local function delta_from(hash, name, key, known)
  local version, head, length, first, last = string.match(known or '', '^(%d+) (%d+) (%d+) (%S+) (%S+)$')
  if not version then
    return nil
  end
  local now_version, now_head = list_state(hash, name)
  if now_version ~= version or now_head < tonumber(head) then
    return nil
  end
  local from = tonumber(head) + tonumber(length) - now_head
  if from < 0 or from > redis.call('LLEN', key) then
    return nil
  end
  -- The copy's last element, and its first while nothing left the front, must still be the
  -- list's: a change made outside this library (LSET, LPUSH...) does not move the version.
  if from > 0 and redis.sha1hex(redis.call('LINDEX', key, from - 1) or '') ~= last then
    return nil
  end
  if now_head == tonumber(head) and tonumber(length) > 0 and redis.sha1hex(redis.call('LINDEX', key, 0) or '') ~= first then
    return nil
  end
  return from
end

-- Last writer wins when the offline journal replays an assignment or a deletion: MADE_AT is
-- when the replayed write was made (ms, the writer's clock; '' for a write made online), and
-- field '@<name>' of the operation log records when the attribute was last changed by any
-- write (ms, the server's clock, or a replayed write's MADE_AT; kept while it is stored), so a
-- replayed assignment never undoes a later append, path change or increment.
local MADE_AT = ''

local function now_ms()
  local now = redis.call('TIME')
  return string.format('%d', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
end

-- When an attribute was changed: now, or, for a replayed write, when it was made offline (so
-- the writes a process journaled one after another are replayed one after another, none stale).
local function assigned_now(hash, name)
  local key = oplog_key(hash)
  if MADE_AT == '' then
    redis.call('HSET', key, '@' .. name, now_ms())
    return
  end
  local last = redis.call('HGET', key, '@' .. name)
  if not last or tonumber(last) < tonumber(MADE_AT) then  -- a replayed older write leaves it later
    redis.call('HSET', key, '@' .. name, MADE_AT)
  end
end

local function superseded(hash, name)
  if MADE_AT == '' then
    return nil
  end
  local at = redis.call('HGET', oplog_key(hash), '@' .. name)
  if at and tonumber(at) > tonumber(MADE_AT) then
    return fail('RMSTALE', 'a later write to ' .. name .. ' wins (last writer wins)')
  end
  return nil
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
-- An integer's text as (hi, lo) with value = hi * 1e9 + lo and 0 <= lo < 1e9: both parts are
-- exact in a double, so sums of 64-bit integers can be checked exactly.
local function int_parts(text)
  local negative, digits = text:sub(1, 1) == '-', text:gsub('^[-+]', '')
  local hi, lo = 0, tonumber(digits)
  if #digits > 9 then
    hi, lo = tonumber(digits:sub(1, -10)), tonumber(digits:sub(-9))
  end
  if negative then
    hi, lo = -hi, -lo
    if lo < 0 then
      hi, lo = hi - 1, lo + 1e9
    end
  end
  return hi, lo
end

-- Whether the integers a + b (texts) fit in 64 bits, as HINCRBY needs.
local function int_sum_fits(a, b)
  local ah, al = int_parts(a)
  local bh, bl = int_parts(b)
  local hi, lo = ah + bh, al + bl
  if lo >= 1e9 then
    hi, lo = hi + 1, lo - 1e9
  end
  if hi > 9223372036 or (hi == 9223372036 and lo > 854775807) then
    return false
  end
  return not (hi < -9223372037 or (hi == -9223372037 and lo < 145224192))
end

local function each_chunk(command, key, items, first, last)
  local total = 0
  for i = first, last, 1000 do
    total = total + redis.call(command, key, unpack(items, i, math.min(i + 999, last)))
  end
  return total
end

-- Keep only the last `bound` elements of a list (0: no bound). Returns how many were removed.
local function trim_to(key, bound)
  bound = tonumber(bound)
  if bound > 0 then
    local excess = redis.call('LLEN', key) - bound
    if excess > 0 then
      redis.call('LTRIM', key, excess, -1)
      return excess
    end
  end
  return 0
end

-- A push's reply to a caller that sent its copy ('version head length first last', see delta_from):
-- {length, state, '1', the elements other writers appended between the copy's end and this
-- push's own}, or {length, state, '0'} when the copy is not a prefix of the list any more.
local function push_reply(hash, name, key, known, length, pushed)
  local version, head = list_state(hash, name)
  local reply = {length, version .. ' ' .. string.format('%d', head), '0'}
  local from, own = delta_from(hash, name, key, known), length - pushed
  if from == nil or own < 0 or from > own then
    return reply
  end
  reply[3] = '1'
  if from < own then
    for _, raw in ipairs(redis.call('LRANGE', key, from, own - 1)) do
      reply[#reply + 1] = raw
    end
  end
  return reply
end

-- An attribute name as keys.py writes it in key names (percent-encoding).
local function encode_name(name)
  return (string.gsub(name, '[^%w_%.%-]', function(c)
    return string.format('%%%02X', string.byte(c))
  end))
end

-- The collection key of attribute `name`, as keys.py builds it.
local function collection_key(hash, name)
  return hash .. ':' .. encode_name(name)
end

-- Message search (opt-in per list attribute; see redis_memory/search/messages.py). Element i
-- of a searchable list is copied into the hash <prefix>#m{<id>}:<name>:<base + i>, written and
-- deleted by the same script that changes the list. The object's hash records, per searchable
-- list, '_search:<name>' (the element's fields to copy, comma-separated) and '_mbase:<name>'.
local function search_state(hash, name)
  local wanted = redis.call('HGET', hash, '_search:' .. name)
  if not wanted then
    return nil
  end
  local fields = {}
  for field in string.gmatch(wanted, '[^,]+') do
    fields[#fields + 1] = field
  end
  local brace = string.find(hash, '{', 1, true)
  return {
    hash = hash,
    name = name,
    fields = fields,
    base = tonumber(redis.call('HGET', hash, '_mbase:' .. name) or '0'),
    id = string.sub(hash, brace + 1, -2),
    prefix = string.sub(hash, 1, brace - 1) .. '#m' .. string.sub(hash, brace) .. ':' .. encode_name(name) .. ':',
  }
end

local function message_key(state, position)
  return state.prefix .. string.format('%d', state.base + position)
end

-- The searchable text of a field's value: a string as is, a number or boolean as text, a
-- list of strings or of content parts ({"type": "text", "text": ...}) joined by spaces.
local function field_text(value)
  local kind = type(value)
  if kind == 'string' then
    return value
  elseif kind == 'number' or kind == 'boolean' then
    return tostring(value)
  elseif kind == 'table' then
    local parts = {}
    for _, part in ipairs(value) do
      if type(part) == 'string' then
        parts[#parts + 1] = part
      elseif type(part) == 'table' and type(part.text) == 'string' then
        parts[#parts + 1] = part.text
      end
    end
    if #parts > 0 then
      return table.concat(parts, ' ')
    end
  end
  return nil
end

-- A code point as the copies' content holds it (redis_memory.search.messages.fold mirrors
-- this): non-ASCII punctuation and spaces become a space (RediSearch only splits words at
-- ASCII ones) and Latin, Greek and Cyrillic capitals become small letters (RediSearch
-- lowercases ASCII only). cp >= 0x80.
local function fold(cp)
  if cp < 0xC0 or cp == 0xD7 or cp == 0xF7 or (cp >= 0x2000 and cp <= 0x206F)
      or (cp >= 0x3000 and cp <= 0x3002) or (cp >= 0x3008 and cp <= 0x3011) then
    return 0x20
  elseif cp <= 0xDE then  -- Latin-1 capitals
    return cp + 0x20
  elseif cp >= 0x100 and cp <= 0x17E then  -- Latin Extended-A: capital, small in pairs
    if cp == 0x178 then
      return 0xFF
    end
    local even = cp % 2 == 0
    if (cp <= 0x137 and even and cp ~= 0x130) or (cp >= 0x139 and cp <= 0x148 and not even)
        or (cp >= 0x14A and cp <= 0x177 and even) or (cp >= 0x179 and not even) then
      return cp + 1
    end
  elseif cp >= 0x391 and cp <= 0x3A9 and cp ~= 0x3A2 then  -- Greek capitals
    return cp + 0x20
  elseif cp >= 0x400 and cp <= 0x40F then  -- Cyrillic capitals
    return cp + 0x50
  elseif cp >= 0x410 and cp <= 0x42F then
    return cp + 0x20
  end
  return cp
end

local function fold_char(char)
  local b1, b2, b3 = string.byte(char, 1, 3)
  local cp
  if b1 < 0xE0 then
    cp = (b1 - 0xC0) * 64 + (b2 - 0x80)
  elseif b1 < 0xF0 and b3 then
    cp = ((b1 - 0xE0) * 64 + (b2 - 0x80)) * 64 + (b3 - 0x80)
  else
    return nil  -- beyond U+FFFF: kept
  end
  local folded = fold(cp)
  if folded == cp then
    return nil
  elseif folded == 0x20 then
    return ' '
  end
  return string.char(0xC0 + math.floor(folded / 64), 0x80 + folded % 64)  -- all below U+0800
end

-- A message's content as its copy holds it, for RediSearch to find every word in any case:
-- control characters (RediSearch does not split words at a newline), "_" and "\\" become
-- spaces, and non-ASCII characters are folded (see fold).
local function search_text(value)
  value = string.gsub(value, '[%c_\\]', ' ')
  value = string.gsub(value, '[\194-\244][\128-\191]+', fold_char)
  return value
end

local function write_message(state, position, raw)
  local key = message_key(state, position)
  local args = {key, 'element', raw, 'conversation', state.id, 'attribute', state.name, 'n', string.format('%d', state.base + position)}
  local ok, element = pcall(cjson.decode, raw)
  if ok and type(element) == 'table' then
    for _, field in ipairs(state.fields) do
      local value = field_text(element[field])
      if value and field == 'content' then
        value = search_text(value)
      end
      if value then
        args[#args + 1] = field
        args[#args + 1] = value
      end
    end
  elseif ok then  -- an element that is not an object (a plain string message): its text is the content
    local value = field_text(element)
    if value then
      value = search_text(value)
      args[#args + 1] = 'content'
      args[#args + 1] = value
    end
  end
  redis.call('DEL', key)
  redis.call('HSET', unpack(args))
  local ttl = redis.call('PTTL', state.hash)  -- a copy expires with its conversation
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- The list changed from position `from` on, and was `old_length` long: copy positions
-- from..end again (only `from` itself when `only_one`) and delete the copies past its end.
local function resync(hash, key, name, from, old_length, only_one)
  local state = search_state(hash, name)
  if not state then
    return
  end
  local items = redis.call('LRANGE', key, from, only_one and from or -1)
  for i, raw in ipairs(items) do
    write_message(state, from + i - 1, raw)
  end
  if not only_one then
    for position = from + #items, old_length - 1 do
      redis.call('DEL', message_key(state, position))
    end
  end
end

-- `count` elements were removed from the front of the list: drop their copies; the others
-- keep their keys (base moves on).
local function drop_front(hash, name, count)
  if count <= 0 then
    return
  end
  local state = search_state(hash, name)
  if not state then
    return
  end
  for position = 0, count - 1 do
    redis.call('DEL', message_key(state, position))
  end
  redis.call('HSET', hash, '_mbase:' .. name, string.format('%d', state.base + count))
end

-- The length of `key` if it holds a list, else 0.
local function list_length(key)
  local length = redis.pcall('LLEN', key)
  return type(length) == 'number' and length or 0
end

-- Make list `name` searchable with `fields` (comma-separated; '' leaves it as it is), copying
-- what it holds already.
local function request_search(hash, key, name, fields)
  if fields == '' or redis.call('HGET', hash, '_search:' .. name) == fields then
    return
  end
  redis.call('HSET', hash, '_search:' .. name, fields)
  redis.call('HSETNX', hash, '_mbase:' .. name, '0')
  local length = list_length(key)
  resync(hash, key, name, 0, length)
end

-- Attribute `name` stops being a searchable list (deleted or replaced): delete every copy.
-- Returns how many keys it deleted.
local function drop_search(hash, key, name)
  local state = search_state(hash, name)
  if not state then
    return 0
  end
  local deleted = 0
  for position = 0, list_length(key) - 1 do
    deleted = deleted + redis.call('DEL', message_key(state, position))
  end
  redis.call('HDEL', hash, '_search:' .. name, '_mbase:' .. name)
  return deleted
end

-- Sliding expiry: every key of the object gets `ttl` ms again. PEXPIRE counts as a change
-- for client tracking, so each key is read afterwards to stay tracked.
local function touch(hash, ttl)
  if ttl <= 0 or redis.call('EXISTS', hash) == 0 then
    return
  end
  redis.call('PEXPIRE', hash, ttl)
  redis.call('PEXPIRE', oplog_key(hash), ttl)
  local fields = redis.call('HKEYS', hash)
  for _, field in ipairs(fields) do
    if string.sub(field, 1, 6) == '_kind:' then
      local key = collection_key(hash, string.sub(field, 7))
      if redis.call('PEXPIRE', key, ttl) == 1 then
        redis.call('EXISTS', key)
      end
    elseif string.sub(field, 1, 8) == '_search:' then  -- the copies of a searchable list: O(length)
      local state = search_state(hash, string.sub(field, 9))
      for position = 0, list_length(collection_key(hash, state.name)) - 1 do
        redis.call('PEXPIRE', message_key(state, position), ttl)
      end
    end
  end
end
