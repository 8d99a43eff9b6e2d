-- Bucket addressing, shared by the scripts that read or write buckets (REDIS.md,
-- "Layout"): the directory of a (group, window), a member's bucket in it, and a
-- query of the 9-byte-per-query header. Prepended to each such script.

-- The directory of the (group, window) whose keys start with `base`: L, s, n and
-- the flag x, with the two moduli of linear hashing and a cache of bucket keys.
local function read_dir(base)
  local v = redis.call('HMGET', base .. ':m', 'L', 's', 'n', 'x')
  local r = { base = base, L = tonumber(v[1]) or 0, s = tonumber(v[2]) or 0,
              n = tonumber(v[3]) or 0, x = v[4] == '1', keys = {} }
  r.m1, r.m2 = 2 ^ r.L, 2 ^ (r.L + 1)
  return r
end

-- The bucket of address a: a mod 2^L, or a mod 2^(L+1) below the split pointer s.
local function bucket(r, a)
  local b = a % r.m1
  if b < r.s then b = a % r.m2 end
  return b
end

-- The key of bucket b. Made once per call: a number formatted into a string costs
-- a sprintf, and a concatenation a new interned string.
local function bucket_key(r, b)
  local k = r.keys[b]
  if k == nil then
    k = r.base .. ':b' .. b
    r.keys[b] = k
  end
  return k
end

-- A stored member's address: its last nine decimal digits (exact in a double; the
-- client computes the same for the header).
local function addr(m)
  local a = tonumber(string.sub(m, -9))
  if a < 0 then a = -a end
  return a
end

-- Query i of header hdr: group, own window's descriptor j (1-based), older windows
-- to check c (descriptors j-c .. j-1), address a.
local function query(hdr, i)
  local p = 9 * i - 8
  local g, j1, j0, c1, c0, a3, a2, a1, a0 = string.byte(hdr, p, p + 8)
  return g, j1 * 256 + j0, c1 * 256 + c0, ((a3 * 256 + a2) * 256 + a1) * 256 + a0
end

-- Two to the power k for k < 8, for packing answer bits.
local POW2 = { [0] = 1, 2, 4, 8, 16, 32, 64, 128 }


-- Integer IDs (REDIS.md, "Integer IDs: bitmap containers"): the argument after
-- the members holds 14 bytes per integer query, in order: its 1-based position
-- (u32 BE), 1 if the client asks for its range's container to be made (u8), its
-- range h (7 bytes BE) and its bit (u16 BE). One string, not four arguments a
-- query: each argument costs Redis a Lua string (measured: 1.4x the Redis CPU
-- of --shared on random 64-bit IDs). Returns a reader: ints(i) is query i's
-- entry { h = .., off = .., p = .. }, or nil for a string ID; queries are read
-- in increasing order.
local function read_ints(s)
  s = s or ''
  local at, len = 1, string.len(s)
  local function pos_at(q)
    if q > len then return -1 end
    local a, b, c, d = string.byte(s, q, q + 3)
    return ((a * 256 + b) * 256 + c) * 256 + d
  end
  local nextpos = pos_at(1)
  return function(i)
    if i ~= nextpos then return nil end
    local f, h1, h2, h3, h4, h5, h6, h7, o1, o0 = string.byte(s, at + 4, at + 13)
    local h = (((((h1 * 256 + h2) * 256 + h3) * 256 + h4) * 256 + h5) * 256 + h6) * 256 + h7
    at = at + 14
    nextpos = pos_at(at)
    return { h = h, off = o1 * 256 + o0, p = f == 1 }
  end
end

-- The byte after a container's bits: \1 if no fingerprint of its range was in
-- the buckets of its (group, window) when it was made.
local FLAG_BYTE = 8184

-- The state of a range without a container (shared, never changed).
local ABSENT = { st = -1 }

-- The container of range h (a number) in r: its key and its state, -1 absent, 0 made after
-- members of its group and window were in buckets, 1 clean (then none of its
-- range is ever in a bucket). The ranges listed in r's `cs` set are read once a
-- call: a range not listed has no container, and costs no command (sparse IDs,
-- each alone in its range, would otherwise cost one more command each:
-- measured, 2x the Redis CPU of --shared on random 64-bit IDs).
local function container(r, h)
  local made = r.made
  if made == nil then
    made = {}
    for _, x in ipairs(redis.call('SMEMBERS', r.base .. ':cs')) do made[tonumber(x)] = true end
    r.made, r.cs = made, {}
  end
  if not made[h] then return ABSENT end
  local c = r.cs[h]
  if c == nil then
    local key = r.base .. ':c' .. string.format('%d', h)
    local f = redis.call('GETRANGE', key, FLAG_BYTE, FLAG_BYTE)
    local st = -1
    if f == '\1' then st = 1 elseif f ~= '' then st = 0 end
    c = { key = key, st = st }
    r.cs[h] = c
  end
  return c
end

-- Whether the ID of a query (member m, address a; t its integer entry or nil) is
-- in r: the container's bit, and the bucket unless the container is clean.
local function held_in(r, a, m, t)
  if t then
    local c = container(r, t.h)
    if c.st >= 0 and redis.call('GETBIT', c.key, t.off) == 1 then return true end
    if c.st == 1 then return false end
  end
  return r.n > 0 and redis.call('SISMEMBER', bucket_key(r, bucket(r, a)), m) == 1
end

-- Makes the container of range h in r (absent so far), at its full size so that
-- it never grows (a grown string may take twice its size), flagged clean if no
-- member of r is in a bucket yet; `at` its expiry (nil: none).
local function make_container(r, h, at)
  container(r, h)
  -- A number in a string: '%d', exact (a plain conversion keeps 14 digits).
  local hs = string.format('%d', h)
  local c = { key = r.base .. ':c' .. hs, st = 0 }
  if r.n == 0 then c.st = 1 end
  r.made[h], r.cs[h] = true, c
  redis.call('SETRANGE', c.key, FLAG_BYTE, c.st == 1 and '\1' or '\0')
  local cs = r.base .. ':cs'
  redis.call('SADD', cs, hs)
  if at then
    redis.call('PEXPIREAT', c.key, at)
    redis.call('PEXPIREAT', cs, at)
  end
  return c
end
