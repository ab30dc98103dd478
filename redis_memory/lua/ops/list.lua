-- One change to a list attribute other than appending (see push.lua).
-- a: kind field, operation, bound (keep the last N elements after growing; 0: none), then:
--   popright | popleft | clear             nothing          reply {length, value | nil}
--   set      index, expected element, new element            reply {length}
--   delete   index, expected element                         reply {length, element}
--   insert   index, element                                  reply {length}
--   replace  n, the n expected elements, the new elements    reply {length}
--   trim     N: keep the last N elements                     reply {length}
-- `set`, `delete` and `replace` are compare-and-set: RMCAS when the list is not what the
-- caller read. RMNOINDEX for an index out of range or a pop from an empty list.
OPS.list = {
  check = function(hash, key, a)
    local err = expect_kind(hash, a[1], 'list')
    if err then
      return err
    end
    local op = a[2]
    if op == 'set' or op == 'delete' then
      local current = redis.call('LINDEX', key, tonumber(a[4]))
      if not current then
        return fail('RMNOINDEX', 'list index out of range')
      end
      if current ~= a[5] then
        return fail('RMCAS', 'the element was changed by another writer')
      end
    elseif op == 'replace' then
      local n, current = tonumber(a[4]), redis.call('LRANGE', key, 0, -1)
      if #current ~= n then
        return fail('RMCAS', 'the list was changed by another writer')
      end
      for i = 1, n do
        if current[i] ~= a[4 + i] then
          return fail('RMCAS', 'the list was changed by another writer')
        end
      end
    elseif op == 'popright' or op == 'popleft' then
      if redis.call('LLEN', key) == 0 then
        return fail('RMNOINDEX', 'pop from empty list')
      end
    end
    return nil
  end,
  apply = function(hash, key, a)
    local op, bound = a[2], tonumber(a[3])
    local value
    if op == 'popright' then
      value = redis.call('RPOP', key)
    elseif op == 'popleft' then
      value = redis.call('LPOP', key)
    elseif op == 'set' then
      redis.call('LSET', key, tonumber(a[4]), a[6])
    elseif op == 'delete' then
      local index = tonumber(a[4])
      value = a[5]
      if index == 0 then
        redis.call('LPOP', key)
      else
        local tail = redis.call('LRANGE', key, index + 1, -1)
        redis.call('LTRIM', key, 0, index - 1)
        each_chunk('RPUSH', key, tail, 1, #tail)
      end
    elseif op == 'insert' then
      local index, length = tonumber(a[4]), redis.call('LLEN', key)
      if index >= length then
        redis.call('RPUSH', key, a[5])
      elseif index <= 0 then
        redis.call('LPUSH', key, a[5])
      else
        local tail = redis.call('LRANGE', key, index, -1)
        redis.call('LTRIM', key, 0, index - 1)
        redis.call('RPUSH', key, a[5])
        each_chunk('RPUSH', key, tail, 1, #tail)
      end
    elseif op == 'replace' then
      local n = tonumber(a[4])
      redis.call('DEL', key)
      each_chunk('RPUSH', key, a, 5 + n, #a)
    elseif op == 'clear' then
      redis.call('DEL', key)
    elseif op == 'trim' then
      local keep = tonumber(a[4])
      if keep <= 0 then
        redis.call('DEL', key)
      else
        redis.call('LTRIM', key, -keep, -1)
      end
    end
    if op == 'insert' or op == 'replace' then
      trim_to(key, bound)
    end
    return {redis.call('LLEN', key), value or false}
  end,
}
