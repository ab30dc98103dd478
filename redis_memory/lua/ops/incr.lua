-- Atomic counter. a: name, kind field, amount, 'int' or 'float' (the amount's type).
-- A missing attribute starts at 0; an int stays an int unless a float is added. Reply: the
-- new value as text. RMTYPE when the attribute holds something other than a number, RMVALUE
-- when the float sum would be infinite or the integer sum would not fit in 64 bits.
OPS.incr = {
  check = function(hash, key, a)
    local kind = current_kind(hash, a[2])
    if kind and kind ~= 'int' and kind ~= 'float' then
      return fail('RMTYPE', 'incr needs an int or float attribute, not a ' .. kind)
    end
    if kind == 'float' or a[4] == 'float' then
      -- HINCRBYFLOAT adds in long double: refuse a sum a double cannot hold (it reads back inf)
      local sum = (tonumber(redis.call('HGET', hash, a[1]) or '0') or 0) + tonumber(a[3])
      if sum == math.huge or sum == -math.huge or sum ~= sum then
        return fail('RMVALUE', 'incr would make ' .. a[1] .. ' too large for a float')
      end
      PENDING[a[2]] = 'float'
    else
      -- HINCRBY would refuse a sum beyond 64 bits only when applied: refuse it here, exactly
      if not int_sum_fits(redis.call('HGET', hash, a[1]) or '0', a[3]) then
        return fail('RMVALUE', 'incr would make ' .. a[1] .. ' too large for a 64-bit integer')
      end
      PENDING[a[2]] = 'int'
    end
    return nil
  end,
  apply = function(hash, key, a)
    assigned_now(hash, a[1])  -- a later change: an older replayed assignment loses to it
    local kind = redis.call('HGET', hash, a[2])
    redis.call('DEL', key)
    local value
    if kind == 'float' or a[4] == 'float' then
      value = redis.call('HINCRBYFLOAT', hash, a[1], a[3])
      redis.call('HSET', hash, a[2], 'float')
    else
      value = tostring(redis.call('HINCRBY', hash, a[1], a[3]))
      redis.call('HSET', hash, a[2], 'int')
    end
    return value
  end,
}
