-- One op. KEYS[1] object hash, KEYS[2] the op's key; ARGV[1] expiry in ms (0: none),
-- ARGV[2] operation id ('' : none), ARGV[3] when a replayed write was made ('' : online),
-- ARGV[4..] the op's arguments.
local _, op = next(OPS)
local done, first_reply = applied_before(KEYS[1], ARGV[2])
if done then
  return first_reply
end
MADE_AT = ARGV[3]
local a = {}
for i = 4, #ARGV do
  a[i - 3] = ARGV[i]
end
local err = op.check(KEYS[1], KEYS[2], a)
if err then
  return err
end
local result = op.apply(KEYS[1], KEYS[2], a)
remember_applied(KEYS[1], ARGV[2], result)
touch(KEYS[1], tonumber(ARGV[1]))
return result
