-- Append to a list attribute (the hot path of mem.messages.append()).
-- a: kind field, bound (keep the last N elements after appending; 0: none), the elements.
-- Reply: the new length (LLEN).
OPS.push = {
  check = function(hash, key, a)
    return expect_kind(hash, a[1], 'list')
  end,
  apply = function(hash, key, a)
    each_chunk('RPUSH', key, a, 3, #a)
    trim_to(key, a[2])
    return redis.call('LLEN', key)
  end,
}
