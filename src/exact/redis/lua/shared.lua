-- The check-and-insert of `--shared` (see mod.rs, SCRIPT, for its arguments and
-- REDIS.md for the protocol). Follows prelude.lua.
local ring, seq, slot = KEYS[1], ARGV[1], ARGV[2]
local prev = redis.call('HGET', ring, slot)
if prev then
  local sep = string.find(prev, ':', 1, true)
  if sep and string.sub(prev, 1, sep - 1) == seq then
    return string.sub(prev, sep + 1)
  end
end
local ring_ttl, prefix, load = tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local owner, lease = ARGV[6], tonumber(ARGV[7])
local nd = tonumber(ARGV[8])
local hdr = ARGV[9 + 3 * nd]
local mbase = 9 + 3 * nd
local nq = string.len(hdr) / 9
local ints = read_ints(ARGV[mbase + nq + 1])

local now
local function clock()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end

local function expire_at(j)
  local e = tonumber(ARGV[7 + 3 * j])
  if e == 0 then return nil end
  if e > clock() then return e end
  return clock() + tonumber(ARGV[8 + 3 * j])
end

local metas = {}
local function meta(g, j)
  local id = g * 65536 + j
  local r = metas[id]
  if r == nil then
    r = read_dir(prefix .. ':{g' .. g .. '}:w' .. ARGV[6 + 3 * j])
    r.j, r.dirty, r.fresh = j, false, r.n == 0
    metas[id] = r
  end
  return r
end

-- Leases: the hash <base>:p maps a member some client found new to
-- "<client>:<deadline ms>" until that client has written its record and deleted
-- the entry. New leases are written at the end of the call, one HSET per window,
-- from r.kv (member, value, member, value, ...).
local lease_v
local function take(r, m)
  if not lease_v then lease_v = owner .. ':' .. (clock() + lease) end
  local kv = r.kv
  if kv == nil then
    kv = {}
    r.kv, r.indexed, r.mine = kv, 0, {}
  end
  kv[#kv + 1] = m
  kv[#kv + 1] = lease_v
end

-- Whether this call leased m in r already (indexed only when asked).
local function taken_here(r, m)
  local kv = r.kv
  if kv == nil then return false end
  local mine = r.mine
  for i = r.indexed + 1, #kv, 2 do mine[kv[i]] = true end
  r.indexed = #kv
  return mine[m] == true
end

-- 0: no lease, or this client's own; 1: another client's live lease; 2: another
-- client's lapsed lease. A window without leases costs one HLEN a call.
local function held(r, m)
  if r.leases == nil then r.leases = redis.call('HLEN', r.base .. ':p') end
  if r.leases == 0 then return 0 end
  local v = redis.call('HGET', r.base .. ':p', m)
  if not v then return 0 end
  local sep = string.find(v, ':', 1, true)
  if string.sub(v, 1, sep - 1) == owner or taken_here(r, m) then return 0 end
  if tonumber(string.sub(v, sep + 1)) > clock() then return 1 end
  return 2
end

local function sadd_all(key, list, at)
  for i = 1, #list, 4000 do
    redis.call('SADD', key, unpack(list, i, math.min(i + 3999, #list)))
  end
  if at then redis.call('PEXPIREAT', key, at) end
end

local function split(r)
  local half = r.m1
  local old = bucket_key(r, r.s)
  local lo, hi = {}, {}
  for _, m in ipairs(redis.call('SMEMBERS', old)) do
    if math.floor(addr(m) / half) % 2 == 1 then hi[#hi + 1] = m else lo[#lo + 1] = m end
  end
  redis.call('DEL', old)
  local at = expire_at(r.j)
  if #lo > 0 then sadd_all(old, lo, at) else r.x = true end
  if #hi > 0 then sadd_all(bucket_key(r, r.s + half), hi, at) else r.x = true end
  r.s = r.s + 1
  if r.s == half then
    r.L = r.L + 1
    r.s = 0
    r.m1, r.m2 = r.m2, 2 * r.m2
  end
end

-- Inserts m into its own window's bucket; whether it was not there.
local function insert(r, a, m)
  local key = bucket_key(r, bucket(r, a))
  if redis.call('SADD', key, m) == 0 then return false end
  if r.n == 0 or r.x then
    local at = expire_at(r.j)
    if at then redis.call('PEXPIREAT', key, at) end
  end
  r.n = r.n + 1
  r.dirty = true
  while r.n > load * (r.m1 + r.s) do split(r) end
  return true
end

-- Inserts a query's ID into its own window r; whether it was not there. An
-- integer ID goes into its range's container if there is one (made now if the
-- client asks), else into a bucket like any member; both are checked.
local function insert_id(r, a, m, t)
  if t == nil then return insert(r, a, m) end
  local c = container(r, t.h)
  if c.st < 0 and t.p then
    c = make_container(r, t.h, expire_at(r.j))
    -- The directory marks the window as holding data (see journal.rs, owns).
    r.dirty = true
  end
  if c.st < 0 then return insert(r, a, m) end
  if redis.call('SETBIT', c.key, t.off, 1) == 1 then return false end
  return c.st == 1 or r.n == 0
    or redis.call('SISMEMBER', bucket_key(r, bucket(r, a)), m) == 0
end

local out, byte = {}, 0
for i = 1, nq do
  local g, j, c, a = query(hdr, i)
  local t = ints(i)
  local m = ARGV[mbase + i]
  -- 0 new, 1 seen, 2 wait, 3 new after a lapsed lease
  local ans = 1
  local found
  for k = j - c, j - 1 do
    local r = meta(g, k)
    if held_in(r, a, m, t) then
      found = r
      break
    end
  end
  local h = 0
  if found then h = held(found, m) end
  if h == 1 then
    ans = 2
  else
    local r = meta(g, j)
    local added = insert_id(r, a, m, t)
    if found then
      if h == 2 then
        take(found, m)
        if added then take(r, m) end
        ans = 3
      end
    elseif added then
      take(r, m)
      ans = 0
    else
      h = held(r, m)
      if h == 1 then
        ans = 2
      elseif h == 2 then
        take(r, m)
        ans = 3
      end
    end
  end
  byte = byte + ans * POW2[2 * ((i - 1) % 4)]
  if i % 4 == 0 or i == nq then
    out[#out + 1] = string.char(byte)
    byte = 0
  end
end

for _, r in pairs(metas) do
  local kv = r.kv
  if kv then
    local pk = r.base .. ':p'
    for i = 1, #kv, 4000 do
      redis.call('HSET', pk, unpack(kv, i, math.min(i + 3999, #kv)))
    end
    local at = expire_at(r.j)
    if at then redis.call('PEXPIREAT', pk, at) end
  end
  if r.dirty then
    local mk = r.base .. ':m'
    redis.call('HSET', mk, 'L', r.L, 's', r.s, 'n', r.n, 'x', r.x and '1' or '0')
    if r.fresh then
      local at = expire_at(r.j)
      if at then redis.call('PEXPIREAT', mk, at) end
    end
  end
end

local ans = table.concat(out)
redis.call('HSET', ring, slot, seq .. ':' .. ans)
redis.call('PEXPIRE', ring, ring_ttl)
return ans
