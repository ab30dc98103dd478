-- Compare-and-set of a scalar attribute: write it only if it still holds the expected value.
-- a: name, kind field, expected kind, expected text, new kind, new text. An expected kind of
-- '' means "not stored". RMCAS when the attribute holds anything else.
OPS.cas = {
  check = function(hash, key, a)
    local current = redis.call('HMGET', hash, a[1], a[2])
    local kind = current_kind(hash, a[2])
    if (kind or '') ~= a[3] or (a[3] ~= '' and current[1] ~= a[4]) then
      return fail('RMCAS', 'the attribute no longer holds the expected value')
    end
    PENDING[a[2]] = a[5]
    return nil
  end,
  apply = function(hash, key, a)
    assigned_now(hash, a[1])  -- a later change: an older replayed assignment loses to it
    redis.call('DEL', key)
    redis.call('HSET', hash, a[1], a[6], a[2], a[5])
    return 1
  end,
}
