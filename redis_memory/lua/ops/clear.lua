-- Delete every key of the object: the message-search copies of its searchable lists, each
-- collection named by a kind field, then the hash. a: nothing. Reply: the number of keys deleted.
OPS.clear = {
  check = function(hash, key, a)
    for _, field in ipairs(redis.call('HKEYS', hash)) do
      if string.sub(field, 1, 6) == '_kind:' then
        PENDING[field] = false
      end
    end
    return nil
  end,
  apply = function(hash, key, a)
    local deleted = 0
    for _, field in ipairs(redis.call('HKEYS', hash)) do
      if string.sub(field, 1, 8) == '_search:' then
        local name = string.sub(field, 9)
        deleted = deleted + drop_search(hash, collection_key(hash, name), name)
      end
    end
    for _, field in ipairs(redis.call('HKEYS', hash)) do
      if string.sub(field, 1, 6) == '_kind:' then
        deleted = deleted + redis.call('DEL', collection_key(hash, string.sub(field, 7)))
      end
    end
    redis.call('DEL', oplog_key(hash))  -- clear is idempotent: it keeps no operation id (single.lua)
    return deleted + redis.call('DEL', hash)
  end,
}
