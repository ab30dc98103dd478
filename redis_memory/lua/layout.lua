-- The layout record of a prefix (core/layout.py): the stored layout version, the record
-- written first when there is none (one atomic step).
-- KEYS[1] <prefix>__meta__; ARGV[1] this library's layout, ARGV[2] now (epoch seconds),
-- ARGV[3] the library and its version. Returns the stored layout (text).
local stored = redis.call('HGET', KEYS[1], 'layout')
if stored then return stored end
redis.call('HSET', KEYS[1], 'layout', ARGV[1], 'created_at', ARGV[2], 'created_by', ARGV[3])
return ARGV[1]
