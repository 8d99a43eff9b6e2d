-- One instance's compaction of the integer IDs of one (group, window) (see
-- compact.rs, BITS, for its arguments): sets their bits in the containers of
-- their ranges, making those the client asks for; answers the ranges it wrote
-- nothing for (no container, none asked), whose IDs go into buckets.
local r = read_dir(ARGV[1])
local at
local e = tonumber(ARGV[2])
if e ~= 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if e > now then at = e else at = now + tonumber(ARGV[3]) end
end
local tmp = ARGV[1] .. ':t'
local i, nr = 5, tonumber(ARGV[4])
local back, made = {}, false
for _ = 1, nr do
  local h, promote, kind = tonumber(ARGV[i]), ARGV[i + 1] == '1', ARGV[i + 2]
  i = i + 3
  local c = container(r, h)
  local fresh = false
  if c.st < 0 and promote then
    c = make_container(r, h, at)
    made, fresh = true, true
  end
  if kind == 'b' then
    if c.st < 0 then
      back[#back + 1] = h
    elseif fresh then
      -- Within its length: the string is not reallocated, its expiry stays.
      redis.call('SETRANGE', c.key, 0, ARGV[i])
    else
      -- BITOP replaces the key (same size: its flag byte is ORed with nothing)
      -- and drops its expiry, which is set again.
      redis.call('SET', tmp, ARGV[i])
      redis.call('BITOP', 'OR', c.key, c.key, tmp)
      redis.call('DEL', tmp)
      if at then redis.call('PEXPIREAT', c.key, at) end
    end
    i = i + 1
  else
    local cnt = tonumber(ARGV[i])
    i = i + 1
    if c.st < 0 then
      back[#back + 1] = h
    else
      for k = i, i + cnt - 1, 1000 do
        local ops = {}
        for q = k, math.min(k + 999, i + cnt - 1) do
          ops[#ops + 1] = 'SET'
          ops[#ops + 1] = 'u1'
          ops[#ops + 1] = ARGV[q]
          ops[#ops + 1] = 1
        end
        redis.call('BITFIELD', c.key, unpack(ops))
      end
    end
    i = i + cnt
  end
end
-- The directory marks the window as holding data (see journal.rs, owns).
local dir = ARGV[1] .. ':m'
if made and redis.call('EXISTS', dir) == 0 then
  redis.call('HSET', dir, 'c', 1)
  if at then redis.call('PEXPIREAT', dir, at) end
end
return back
