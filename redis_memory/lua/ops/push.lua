-- Append to a list attribute (the hot path of mem.messages.append()).
-- a: kind field, bound (keep the last N elements after appending; 0: none), the fields to
-- copy for message search ('' : none asked; see lib.lua), the elements.
-- Reply: the new length (LLEN).
OPS.push = {
  check = function(hash, key, a)
    return expect_kind(hash, a[1], 'list')
  end,
  apply = function(hash, key, a)
    assigned_now(hash, string.sub(a[1], 7))  -- a later change: an older replayed assignment loses to it
    local name = string.sub(a[1], 7)
    request_search(hash, key, name, a[3])
    local length = redis.call('LLEN', key)
    each_chunk('RPUSH', key, a, 4, #a)
    resync(hash, key, name, length, length)
    drop_front(hash, name, trim_to(key, a[2]))
    return redis.call('LLEN', key)
  end,
}
