-- Delete an attribute of any kind. KEYS[1] object hash, KEYS[2] collection key;
-- ARGV[1] name, ARGV[2] kind field. Returns 0 when the attribute was not stored.
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
