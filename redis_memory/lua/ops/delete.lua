-- Delete an attribute of any kind (and the message-search copies of a searchable list).
-- a: name, kind field. Reply: 0 when it was not stored. RMSTALE as for assign.lua.
OPS.delete = {
  check = function(hash, key, a)
    local err = superseded(hash, a[1])
    if err then
      return err
    end
    PENDING[a[2]] = false
    return nil
  end,
  apply = function(hash, key, a)
    if redis.call('HEXISTS', hash, a[2]) == 0 then
      return 0
    end
    drop_search(hash, key, a[1])
    redis.call('HDEL', hash, a[1], a[2])
    redis.call('HDEL', oplog_key(hash), '@' .. a[1])
    redis.call('DEL', key)
    return 1
  end,
}
