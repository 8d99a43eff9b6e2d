-- Re-asserts the deployment metadata (sent with every round trip of a running
-- client): a server restarted without persistence, or flushed, has lost it, and
-- a later client would otherwise pick a new seed and re-emit every record.
-- KEYS[1] the metadata key, ARGV[1] the value this client agreed on at start.
-- Answers 1 (unchanged), 0 (was gone: stored again), or the value found instead.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  return 0
end
if v == ARGV[1] then return 1 end
return v
