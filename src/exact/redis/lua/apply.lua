-- Applies one (group, window)'s compaction of one instance if its directory is
-- unchanged (see journal.rs, APPLY, for its arguments).
local dir = ARGV[1]
local v = redis.call('HMGET', dir, 'L', 's', 'n', 'x')
local L, s, n = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
local fresh, x = v[3] == false, v[4] == '1' or ARGV[9] == '1'
local at
local e = tonumber(ARGV[7])
if e ~= 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if e > now then at = e else at = now + tonumber(ARGV[8]) end
end
local added = tonumber(ARGV[10])
if L ~= tonumber(ARGV[2]) or s ~= tonumber(ARGV[3]) or n ~= tonumber(ARGV[4]) then
  if added > 0 then
    redis.call('HINCRBY', dir, 'n', added)
    if fresh and at then redis.call('PEXPIREAT', dir, at) end
  end
  return -1
end
n = n + added
local i, nops = 12, tonumber(ARGV[11])
for _ = 1, nops do
  local kind, key, cnt = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  for c = i, i + cnt - 1, 4000 do
    local last = math.min(c + 3999, i + cnt - 1)
    if kind == 'r' then
      n = n - redis.call('SREM', key, unpack(ARGV, c, last))
    else
      n = n + redis.call('SADD', key, unpack(ARGV, c, last))
    end
  end
  if kind ~= 'r' and at and (kind == 'n' or fresh or x) then
    redis.call('PEXPIREAT', key, at)
  end
  i = i + cnt
end
redis.call('HSET', dir, 'L', ARGV[5], 's', ARGV[6], 'n', n, 'x', x and '1' or '0')
if fresh and at then redis.call('PEXPIREAT', dir, at) end
return n
