-- Several ops, all or none: every op is checked before any is applied.
-- KEYS[1] object hash, KEYS[2..] the ops' keys; ARGV[1] expiry in ms, ARGV[2] operation id,
-- ARGV[3] when a replayed batch was made ('' : online), ARGV[4] number of ops, then per op:
-- name, index of its key in KEYS, number of arguments, the arguments.
-- Returns the list of the ops' replies.
local done, first_reply = applied_before(KEYS[1], ARGV[2])
if done then
  return first_reply
end
MADE_AT = ARGV[3]
local ops, position = {}, 5
for i = 1, tonumber(ARGV[4]) do
  local name, key, count = ARGV[position], KEYS[tonumber(ARGV[position + 1])], tonumber(ARGV[position + 2])
  local a = {}
  for j = 1, count do
    a[j] = ARGV[position + 2 + j]
  end
  if not OPS[name] then
    return fail('ERR', 'unknown operation ' .. tostring(name))
  end
  ops[i] = {OPS[name], key, a}
  position = position + 3 + count
end
for _, op in ipairs(ops) do
  local err = op[1].check(KEYS[1], op[2], op[3])
  if err then
    return err
  end
end
local results = {}
for i, op in ipairs(ops) do
  results[i] = op[1].apply(KEYS[1], op[2], op[3])
end
remember_applied(KEYS[1], ARGV[2], results)
touch(KEYS[1], tonumber(ARGV[1]))
return results
