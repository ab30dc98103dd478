-- Replace a dict attribute held as a JSON string (the fallback without RedisJSON), but only if
-- it still has the text the caller changed: compare-and-set on its SHA1.
-- a: kind field, expected SHA1, new text. RMCAS when it changed since read (re-read, retry).
OPS.doc_cas = {
  check = function(hash, key, a)
    local err = expect_kind(hash, a[1], 'dict')
    if err then
      return err
    end
    local current = redis.call('GET', key)
    if not current or redis.sha1hex(current) ~= a[2] then
      return fail('RMCAS', 'the document was changed by another writer')
    end
    return nil
  end,
  apply = function(hash, key, a)
    assigned_now(hash, string.sub(a[1], 7))  -- a later change: an older replayed assignment loses to it
    redis.call('SET', key, a[3])
    return redis.call('EXISTS', key)
  end,
}
