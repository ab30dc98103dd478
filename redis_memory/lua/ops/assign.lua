-- Assign an attribute, replacing whatever it held (of any kind).
-- a: name, kind field, kind (recorded), structure (hash | list | json | set), '1' when RedisJSON
-- is loaded ('?': not known when the write was journaled; the replay settles it), bound (lists: keep the last N elements; 0: none), the fields to copy for message
-- search (lists; '' : none asked), payload: the scalar text, the list elements, the document,
-- or the set members. A searchable list stays searchable when it is replaced by a list.
-- Records when (see superseded() in lib.lua); RMSTALE for a replayed assignment
-- older than the attribute's last one.
-- Reply: the collection's length (LLEN / SCARD / EXISTS), 1 for a scalar.
OPS.assign = {
  check = function(hash, key, a)
    local err = superseded(hash, a[1])
    if err then
      return err
    end
    PENDING[a[2]] = a[3]
    return nil
  end,
  apply = function(hash, key, a)
    local structure, name = a[4], a[1]
    local old_length = 0
    if structure == 'list' then
      old_length = list_length(key)
    else
      drop_search(hash, key, name)
    end
    redis.call('DEL', key)
    if structure == 'hash' then
      redis.call('HSET', hash, a[1], a[8], a[2], a[3])
      assigned_now(hash, name)
      return 1
    end
    redis.call('HDEL', hash, a[1])
    redis.call('HSET', hash, a[2], a[3])
    assigned_now(hash, name)
    if structure == 'list' then
      list_rewritten(hash, name)  -- a new list: copies of any earlier one are not prefixes of it
      each_chunk('RPUSH', key, a, 8, #a)
      trim_to(key, a[6])
      resync(hash, key, name, 0, old_length)
      request_search(hash, key, name, a[7])
      return redis.call('LLEN', key)
    end
    if structure == 'set' then
      each_chunk('SADD', key, a, 8, #a)
      return redis.call('SCARD', key)
    end
    if a[5] == '1' then
      redis.call('JSON.SET', key, '$', a[8])
    else
      redis.call('SET', key, a[8])
    end
    return redis.call('EXISTS', key)
  end,
}
