-- Path-level changes to a dict attribute held as a RedisJSON document.
-- a: kind field, number of changes, then four arguments per change: name, container path,
-- child (the element's path; the index for arrinsert), argument (JSON value; the index for
-- arrpop). Reply: one result per change.
-- RMPATH: a container is gone or of another type; RMNOKEY: key missing; RMNOINDEX: index
-- out of range.
local NEEDS = {set = 'object', setnx = 'object', del = 'object', pop = 'object',
               arrappend = 'array', arrinsert = 'array', arrpop = 'array', arrset = 'array',
               replaceobject = 'object', replacearray = 'array'}

OPS.doc = {
  check = function(hash, key, a)
    local err = expect_kind(hash, a[1], 'dict')
    if err then
      return err
    end
    for i = 0, tonumber(a[2]) - 1 do
      local op, container, child = a[3 + 4 * i], a[4 + 4 * i], a[5 + 4 * i]
      local want = NEEDS[op]
      if not want then
        return fail('ERR', 'unknown document operation ' .. tostring(op))
      end
      local types = redis.call('JSON.TYPE', key, container)
      if #types ~= 1 or types[1] ~= want then
        return fail('RMPATH', 'the dict or list at this path was changed by another writer')
      end
      if op == 'del' or op == 'pop' then
        if #redis.call('JSON.TYPE', key, child) ~= 1 then
          return fail('RMNOKEY', 'key not found')
        end
      elseif op == 'arrset' then
        if #redis.call('JSON.TYPE', key, child) ~= 1 then
          return fail('RMNOINDEX', 'list index out of range')
        end
      elseif op == 'arrpop' then
        local length = redis.call('JSON.ARRLEN', key, container)[1]
        local index = tonumber(a[6 + 4 * i])
        if index < 0 or index >= length then
          return fail('RMNOINDEX', 'list index out of range')
        end
      end
    end
    return nil
  end,
  apply = function(hash, key, a)
    assigned_now(hash, string.sub(a[1], 7))  -- a later change: an older replayed assignment loses to it
    local results = {}
    for i = 0, tonumber(a[2]) - 1 do
      local op, container, child, arg = a[3 + 4 * i], a[4 + 4 * i], a[5 + 4 * i], a[6 + 4 * i]
      local result
      if op == 'set' or op == 'arrset' then
        result = redis.call('JSON.SET', key, child, arg)
      elseif op == 'replaceobject' or op == 'replacearray' then
        result = redis.call('JSON.SET', key, container, arg)
      elseif op == 'setnx' then
        redis.call('JSON.SET', key, child, arg, 'NX')
        result = redis.call('JSON.GET', key, child)
      elseif op == 'del' then
        result = redis.call('JSON.DEL', key, child)
      elseif op == 'pop' then
        result = redis.call('JSON.GET', key, child)
        redis.call('JSON.DEL', key, child)
      elseif op == 'arrappend' then
        result = redis.call('JSON.ARRAPPEND', key, container, arg)[1]
      elseif op == 'arrinsert' then
        local length = redis.call('JSON.ARRLEN', key, container)[1]
        local index = math.max(0, math.min(tonumber(child), length))
        result = redis.call('JSON.ARRINSERT', key, container, index, arg)[1]
      elseif op == 'arrpop' then
        result = redis.call('JSON.ARRPOP', key, container, tonumber(arg))[1]
      end
      results[i + 1] = result or false
    end
    redis.call('EXISTS', key)
    return results
  end,
}
