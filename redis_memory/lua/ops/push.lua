-- Append to a list attribute (the hot path of mem.messages.append()).
-- a: kind field, bound (keep the last N elements after appending; 0: none) followed, when
-- the caller holds a copy of the list, by ' version head length first last' (delta_from in lib.lua),
-- the fields to copy for message search ('' : none asked; see lib.lua), the elements.
-- Reply: the new length (LLEN); with a copy, push_reply's {length, state, delta flag, ...}.
OPS.push = {
  check = function(hash, key, a)
    return expect_kind(hash, a[1], 'list')
  end,
  apply = function(hash, key, a)
    local name = string.sub(a[1], 7)
    assigned_now(hash, name)  -- a later change: an older replayed assignment loses to it
    local bound, known = string.match(a[2], '^(%d+) ?(.*)$')
    request_search(hash, key, name, a[3])
    local length = redis.call('LLEN', key)
    each_chunk('RPUSH', key, a, 4, #a)
    resync(hash, key, name, length, length)
    local dropped = trim_to(key, bound)
    drop_front(hash, name, dropped)
    list_dropped(hash, name, dropped)
    length = redis.call('LLEN', key)
    if known == '' then
      return length
    end
    return push_reply(hash, name, key, known, length, #a - 3)
  end,
}
