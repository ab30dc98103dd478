-- Assign an attribute, replacing whatever it held (of any kind).
-- a: name, kind field, kind (recorded), structure (hash | list | json | set), '1' when RedisJSON
-- is loaded, bound (lists: keep the last N elements; 0: none), payload: the scalar text, the
-- list elements, the document, or the set members.
-- Reply: the collection's length (LLEN / SCARD / EXISTS), 1 for a scalar.
OPS.assign = {
  check = function(hash, key, a)
    PENDING[a[2]] = a[3]
    return nil
  end,
  apply = function(hash, key, a)
    redis.call('DEL', key)
    local structure = a[4]
    if structure == 'hash' then
      redis.call('HSET', hash, a[1], a[7], a[2], a[3])
      return 1
    end
    redis.call('HDEL', hash, a[1])
    redis.call('HSET', hash, a[2], a[3])
    if structure == 'list' then
      each_chunk('RPUSH', key, a, 7, #a)
      trim_to(key, a[6])
      return redis.call('LLEN', key)
    end
    if structure == 'set' then
      each_chunk('SADD', key, a, 7, #a)
      return redis.call('SCARD', key)
    end
    if a[5] == '1' then
      redis.call('JSON.SET', key, '$', a[7])
    else
      redis.call('SET', key, a[7])
    end
    return redis.call('EXISTS', key)
  end,
}
