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

