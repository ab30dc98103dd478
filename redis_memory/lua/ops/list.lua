-- One change to a list attribute other than appending (see push.lua).
-- a: kind field, operation, bound (keep the last N elements after growing; 0: none), the
-- element fields to make searchable ('' for none asked, as push.lua), then:
--   popright | popleft | clear             nothing          reply {length, value | nil}
--   set      index, expected element, new element            reply {length}
--   delete   index, expected element                         reply {length, element}
--   insert   index, element                                  reply {length}
--   replace  n, the n expected elements, the new elements    reply {length}
--   trim     N: keep the last N elements                     reply {length}
-- Every reply ends with the list's state after the change ('version head', list_state).
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
      local current = redis.call('LINDEX', key, tonumber(a[5]))
      if not current then
        return fail('RMNOINDEX', 'list index out of range')
      end
      if current ~= a[6] then
        return fail('RMCAS', 'the element was changed by another writer')
      end
    elseif op == 'replace' then
      local n, current = tonumber(a[5]), redis.call('LRANGE', key, 0, -1)
      if #current ~= n then
        return fail('RMCAS', 'the list was changed by another writer')
      end
      for i = 1, n do
        if current[i] ~= a[5 + i] then
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
    assigned_now(hash, string.sub(a[1], 7))  -- a later change: an older replayed assignment loses to it
    local op, bound, name = a[2], tonumber(a[3]), string.sub(a[1], 7)
    request_search(hash, key, name, a[4])
    local length = redis.call('LLEN', key)
    local value
    if op == 'popright' then
      value = redis.call('RPOP', key)
      resync(hash, key, name, length - 1, length)
      list_rewritten(hash, name)
    elseif op == 'popleft' then
      value = redis.call('LPOP', key)
      drop_front(hash, name, 1)
      list_dropped(hash, name, 1)
    elseif op == 'set' then
      local index = tonumber(a[5])
      redis.call('LSET', key, index, a[7])
      resync(hash, key, name, index < 0 and length + index or index, length, true)
      list_rewritten(hash, name)
    elseif op == 'delete' then
      local index = tonumber(a[5])
      value = a[6]
      if index < 0 then
        index = length + index
      end
      if index == 0 then
        redis.call('LPOP', key)
        drop_front(hash, name, 1)
        list_dropped(hash, name, 1)
      else
        list_rewritten(hash, name)
        local tail = redis.call('LRANGE', key, index + 1, -1)
        redis.call('LTRIM', key, 0, index - 1)
        each_chunk('RPUSH', key, tail, 1, #tail)
        resync(hash, key, name, index, length)
      end
    elseif op == 'insert' then
      list_rewritten(hash, name)
      local index = tonumber(a[5])
      if index >= length then
        redis.call('RPUSH', key, a[6])
        resync(hash, key, name, length, length)
      elseif index <= 0 then
        redis.call('LPUSH', key, a[6])
        resync(hash, key, name, 0, length)
      else
        local tail = redis.call('LRANGE', key, index, -1)
        redis.call('LTRIM', key, 0, index - 1)
        redis.call('RPUSH', key, a[6])
        each_chunk('RPUSH', key, tail, 1, #tail)
        resync(hash, key, name, index, length)
      end
    elseif op == 'replace' then
      list_rewritten(hash, name)
      local n = tonumber(a[5])
      redis.call('DEL', key)
      each_chunk('RPUSH', key, a, 6 + n, #a)
      resync(hash, key, name, 0, length)
    elseif op == 'clear' then
      list_rewritten(hash, name)
      redis.call('DEL', key)
      resync(hash, key, name, 0, length)
    elseif op == 'trim' then
      local keep = tonumber(a[5])
      if keep <= 0 then
        redis.call('DEL', key)
      else
        redis.call('LTRIM', key, -keep, -1)
      end
      drop_front(hash, name, length - redis.call('LLEN', key))
      list_dropped(hash, name, length - redis.call('LLEN', key))
    end
    if op == 'insert' or op == 'replace' then
      local dropped = trim_to(key, bound)
      drop_front(hash, name, dropped)
      list_dropped(hash, name, dropped)
    end
    local version, head = list_state(hash, name)
    return {redis.call('LLEN', key), value or false, version .. ' ' .. string.format('%d', head)}
  end,
}
