-- Read one collection attribute: its kind and its value, in one round trip.
-- KEYS[1] object hash, KEYS[2] collection key
-- ARGV[1] attribute name, ARGV[2] its kind field, ARGV[3] '1' when RedisJSON is loaded,
-- ARGV[4] (lists) the caller's copy as 'version head length first last' ('' : none; see
-- list_state and delta_from in lib.lua).
-- Returns {} when the attribute is not stored, else {kind, value, format, pttl, state}:
-- format is 'json' for a RedisJSON document, 'string' for JSON text, 'delta' for a list of
-- which value holds only the elements the caller's copy lacks (its front dropped as the
-- list's head moved), '' otherwise; pttl is the key's remaining time to live in ms (negative:
-- none); state is a list's 'version head'. Reading the collection also registers the key for
-- client-side tracking.
local kind = redis.call('HGET', KEYS[1], ARGV[2])
if not kind then
  return {}
end
local pttl = redis.call('PTTL', KEYS[2])
if kind == 'list' then
  local brace = string.find(KEYS[1], '{', 1, true)
  local oplog = string.sub(KEYS[1], 1, brace - 1) .. '~ops' .. string.sub(KEYS[1], brace)
  local state = redis.call('HGET', oplog, '#' .. ARGV[1]) or '0 0'
  local version, head = string.match(state, '^(%d+) (%d+)$')
  local known_version, known_head, known_length, first, last =
    string.match(ARGV[4] or '', '^(%d+) (%d+) (%d+) (%S+) (%S+)$')
  if known_version == version and tonumber(head) >= tonumber(known_head) then
    local from = tonumber(known_head) + tonumber(known_length) - tonumber(head)
    -- the copy's last element, and its first while nothing left the front, must be the list's
    -- (a change made outside this library does not move the version)
    local ends_hold = from == 0 or redis.sha1hex(redis.call('LINDEX', KEYS[2], from - 1) or '') == last
    if ends_hold and tonumber(head) == tonumber(known_head) and tonumber(known_length) > 0 then
      ends_hold = redis.sha1hex(redis.call('LINDEX', KEYS[2], 0) or '') == first
    end
    if ends_hold and from >= 0 and from <= redis.call('LLEN', KEYS[2]) then
      return {kind, redis.call('LRANGE', KEYS[2], from, -1), 'delta', pttl, state}
    end
  end
  return {kind, redis.call('LRANGE', KEYS[2], 0, -1), '', pttl, state}
end
if kind == 'set' then
  return {kind, redis.call('SMEMBERS', KEYS[2]), '', pttl}
end
if kind == 'dict' or string.sub(kind, 1, 6) == 'model:' then
  -- a document written while RedisJSON was not loaded stays a JSON string: read it as one
  if ARGV[3] == '1' and redis.call('TYPE', KEYS[2]).ok ~= 'string' then
    return {kind, redis.call('JSON.GET', KEYS[2], '$'), 'json', pttl}
  end
  return {kind, redis.call('GET', KEYS[2]), 'string', pttl}
end
return {kind, redis.call('HGET', KEYS[1], ARGV[1]), '', pttl}
