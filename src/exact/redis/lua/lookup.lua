-- The read-only lookup of one instance (see journal.rs, LOOKUP): is each query's
-- member in a bucket of its windows j-c .. j? Two bitmaps, one bit per query:
-- seen in any of them; seen in its own window j.
local prefix, nd = ARGV[1], tonumber(ARGV[2])
local hdr = ARGV[3 + nd]
local mbase = 3 + nd
local nq = string.len(hdr) / 9
local ints = read_ints(ARGV[mbase + nq + 1])
local dirs = {}
local function dir(g, j)
  local id = g * 65536 + j
  local r = dirs[id]
  if r == nil then
    r = read_dir(prefix .. ':{g' .. g .. '}:w' .. ARGV[2 + j])
    dirs[id] = r
  end
  return r
end
local out, own, byte, obyte = {}, {}, 0, 0
for i = 1, nq do
  local g, j, c, a = query(hdr, i)
  local t = ints(i)
  local m = ARGV[mbase + i]
  for k = j, j - c, -1 do
    local r = dir(g, k)
    if held_in(r, a, m, t) then
      local bit = POW2[(i - 1) % 8]
      byte = byte + bit
      if k == j then obyte = obyte + bit end
      break
    end
  end
  if i % 8 == 0 or i == nq then
    out[#out + 1] = string.char(byte)
    own[#own + 1] = string.char(obyte)
    byte, obyte = 0, 0
  end
end
return table.concat(out) .. table.concat(own)
