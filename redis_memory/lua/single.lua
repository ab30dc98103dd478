-- One op. KEYS[1] object hash, KEYS[2] the op's key; ARGV[1] expiry in ms (0: none),
-- ARGV[2..] the op's arguments.
local _, op = next(OPS)
local a = {}
for i = 2, #ARGV do
  a[i - 1] = ARGV[i]
end
local err = op.check(KEYS[1], KEYS[2], a)
if err then
  return err
end
local result = op.apply(KEYS[1], KEYS[2], a)
touch(KEYS[1], tonumber(ARGV[1]))
return result
