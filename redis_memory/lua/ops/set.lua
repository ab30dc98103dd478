-- One change to a set attribute. a: kind field, operation (add | discard | remove | pop |
-- clear), the members. Replies: {size, changed} for add / discard / remove; {size, member}
-- for pop; {size} for clear. RMNOKEY: remove of a missing member, pop of an empty set.
OPS.set = {
  check = function(hash, key, a)
    local err = expect_kind(hash, a[1], 'set')
    if err then
      return err
    end
    if a[2] == 'remove' then
      for i = 3, #a do
        if redis.call('SISMEMBER', key, a[i]) == 0 then
          return fail('RMNOKEY', 'the member is not in the set')
        end
      end
    elseif a[2] == 'pop' and redis.call('SCARD', key) == 0 then
      return fail('RMNOKEY', 'pop from an empty set')
    end
    return nil
  end,
  apply = function(hash, key, a)
    assigned_now(hash, string.sub(a[1], 7))  -- a later change: an older replayed assignment loses to it
    local op = a[2]
    if op == 'add' then
      local changed = each_chunk('SADD', key, a, 3, #a)
      return {redis.call('SCARD', key), changed}
    elseif op == 'discard' or op == 'remove' then
      local changed = each_chunk('SREM', key, a, 3, #a)
      return {redis.call('SCARD', key), changed}
    elseif op == 'pop' then
      local member = redis.call('SPOP', key)
      return {redis.call('SCARD', key), member}
    end
    redis.call('DEL', key)
    return {redis.call('SCARD', key)}
  end,
}
