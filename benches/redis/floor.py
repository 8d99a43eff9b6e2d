# Redis CPU per ID of the building blocks of a check-and-insert on one server:
# the same members for each (1M queries, 10 % repeats, random 64-bit integers as
# the tier stores them), 4096 intset buckets (256 groups x 16, ~220 members each
# at the end), calls of 4096 queries. Prints Redis CPU (INFO cpu, user + sys) per
# query, the commands that took longest (commandstats, wall-clock based) and
# used_memory. FLUSHes the server it is given: use a private one.
#
#   python3 benches/redis/floor.py SOCK [N] [setnx,plain,lua,leaseset,leasehash,multi,mis]
import socket, random, sys, time, struct, hashlib
SOCK = sys.argv[1]; N = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
CALL = 4096
def enc(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes): a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)
class C:
    def __init__(s):
        s.s = socket.socket(socket.AF_UNIX); s.s.connect(SOCK); s.buf = b""
    def send(s, cmds):
        s.s.sendall(b"".join(enc(c) for c in cmds))
        return [s.read() for _ in cmds]
    def line(s):
        while b"\r\n" not in s.buf: s.buf += s.s.recv(1 << 20)
        l, s.buf = s.buf.split(b"\r\n", 1); return l
    def read(s):
        l = s.line(); t = l[:1]
        if t in (b"+", b":"): return l[1:]
        if t == b"-": raise Exception(l)
        if t == b"$":
            n = int(l[1:])
            if n < 0: return None
            while len(s.buf) < n + 2: s.buf += s.s.recv(1 << 20)
            v, s.buf = s.buf[:n], s.buf[n + 2:]; return v
        if t == b"*":
            return [s.read() for _ in range(int(l[1:]))]
c = C()
def cpu():
    info = c.send([["INFO", "cpu"]])[0].decode()
    return sum(float(l.split(":")[1]) for l in info.split("\r\n") if l.startswith(("used_cpu_sys:", "used_cpu_user:")))
rnd = random.Random(7)
uniq = [rnd.getrandbits(64) - (1 << 63) for _ in range(int(N * 0.9))]
qs = [uniq[i] if i < len(uniq) else uniq[rnd.randrange(len(uniq))] for i in range(N)]
rnd.shuffle(qs)
def key(m): return "b:{g%d}:%d" % ((m >> 56) & 255, m & 15)
keys = [key(m) for m in qs]
LUA_SADD = """
local out, byte, n = {}, 0, #KEYS
for i = 1, n do
  byte = byte * 2 + redis.call('SADD', KEYS[i], ARGV[i])
  if i % 8 == 0 then out[#out+1] = string.char(byte % 256); byte = 0 end
end
return table.concat(out)
"""
# per-call lease set: SADD of the call's members (as if all new), one call; DEL later
LUA_SADD_LEASESET = """
local out, byte, n, new = {}, 0, #KEYS, {}
for i = 1, n do
  local a = redis.call('SADD', KEYS[i], ARGV[i])
  if a == 1 then new[#new+1] = ARGV[i] end
  byte = byte * 2 + a
  if i % 8 == 0 then out[#out+1] = string.char(byte % 256); byte = 0 end
end
if #new > 0 then for i = 1, #new, 4000 do redis.call('SADD', ARGV[n+1], unpack(new, i, math.min(i+3999, #new))) end end
return table.concat(out)
"""
LUA_SADD_LEASEHASH = """
local out, byte, n, kv = {}, 0, #KEYS, {}
for i = 1, n do
  local a = redis.call('SADD', KEYS[i], ARGV[i])
  if a == 1 then kv[#kv+1] = ARGV[i]; kv[#kv+1] = 'c0ffee00:1700000000000' end
  byte = byte * 2 + a
  if i % 8 == 0 then out[#out+1] = string.char(byte % 256); byte = 0 end
end
if #kv > 0 then for i = 1, #kv, 4000 do redis.call('HSET', ARGV[n+1], unpack(kv, i, math.min(i+3999, #kv))) end end
return table.concat(out)
"""
LUA_MIS = """
-- per bucket: SMISMEMBER then SADD of the absent ones (KEYS: one per bucket;
-- ARGV: counts per bucket then the members)
local nk = #KEYS
local at = nk + 1
local out = {}
for k = 1, nk do
  local cnt = tonumber(ARGV[k])
  local ms = {}
  for j = 0, cnt - 1 do ms[#ms+1] = ARGV[at + j] end
  local got = redis.call('SMISMEMBER', KEYS[k], unpack(ms))
  local add = {}
  for j = 1, cnt do if got[j] == 0 then add[#add+1] = ms[j] end end
  if #add > 0 then redis.call('SADD', KEYS[k], unpack(add)) end
  out[#out+1] = #add
  at = at + cnt
end
return #out
"""
def run(name, fn):
    c.send([["FLUSHALL"], ["CONFIG", "RESETSTAT"]])
    c0 = cpu(); t0 = time.time()
    for s in range(0, N, CALL):
        fn(s, min(s + CALL, N))
    c1 = cpu(); t1 = time.time()
    stats = c.send([["INFO", "commandstats"]])[0].decode()
    top = sorted(((int(l.split("usec=")[1].split(",")[0]), l.split(":")[0][8:]) for l in stats.split("\r\n") if l.startswith("cmdstat_")), reverse=True)[:4]
    mem = c.send([["INFO", "memory"]])[0].decode()
    used = [l for l in mem.split("\r\n") if l.startswith("used_memory:")][0]
    print("%-22s redis cpu %.2f us/query  wall %.1f s  top: %s  %s" % (name, (c1 - c0) / N * 1e6, t1 - t0, ", ".join("%s %.2f us/q" % (n, u / N) for u, n in top), used), flush=True)
def setnx(a, b):
    c.send([["SET", "k:%d" % qs[i], "1", "NX", "EX", "3600"] for i in range(a, b)])
def plain_sadd(a, b):
    c.send([["SADD", keys[i], qs[i]] for i in range(a, b)])
def evals(script, extra=None):
    sha = c.send([["SCRIPT", "LOAD", script]])[0]
    seq = [0]
    def f(a, b):
        seq[0] += 1
        args = ["EVALSHA", sha, b - a] + keys[a:b] + qs[a:b]
        if extra: args.append(extra % seq[0])
        r = c.send([args])
    return f
def multi_sadd(a, b):
    by = {}
    for i in range(a, b): by.setdefault(keys[i], []).append(qs[i])
    c.send([["SADD", k] + v for k, v in by.items()])
def mis(a, b):
    by = {}
    for i in range(a, b): by.setdefault(keys[i], []).append(qs[i])
    ks = list(by)
    sha = mis.sha
    c.send([["EVALSHA", sha, len(ks)] + ks + [len(by[k]) for k in ks] + [m for k in ks for m in by[k]]])
mis.sha = c.send([["SCRIPT", "LOAD", LUA_MIS]])[0]
which = sys.argv[3].split(",") if len(sys.argv) > 3 else ["setnx", "plain", "lua", "leaseset", "leasehash", "multi", "mis"]
for w in which:
    if w == "setnx": run("SET NX EX per ID", setnx)
    if w == "plain": run("SADD per ID (no Lua)", plain_sadd)
    if w == "lua": run("Lua: SADD per ID", evals(LUA_SADD))
    if w == "leaseset": run("Lua: +lease set/call", evals(LUA_SADD_LEASESET, "lease:{g0}:%d"))
    if w == "leasehash": run("Lua: +lease HSET/ID", evals(LUA_SADD_LEASEHASH, "lease:{g0}:%d"))
    if w == "multi": run("SADD per bucket", multi_sadd)
    if w == "mis": run("Lua: SMISMEMBER+SADD/bkt", mis)
