-- Lua cost of node-wide leases, ns per call: leases:acquire of a live lease (the common
-- "not my turn" check) and of an expired one (a take). Usage: lua5.4 bench/lease.lua [N=1000000]
local core = require "corio.core"
local n = tonumber(arg[1]) or 1000000
local clock = core.now

local name = "bench.lua." .. math.floor(clock() * 1e6) % 1000000
local leases = core.leases(name)
for i = 1, 300 do leases:acquire("other-" .. i, 3600) end
local ok = leases:acquire("live", 3600)
local wrong = 0

local t0 = clock()
for _ = 1, n do
  if leases:acquire("live", 3600) then wrong = wrong + 1 end
end
local live_ns = (clock() - t0) * 1e9 / n

t0 = clock()
for _ = 1, n do
  if not leases:acquire("expired", 1e-9) then wrong = wrong + 1 end
end
local take_ns = (clock() - t0) * 1e9 / n

core.unlink_leases(name)
print(string.format("bench=lease impl=corio-lua(%s) n=%d acquire_live_ns=%.1f acquire_take_ns=%.1f ok=%d",
  jit and "luajit" or _VERSION:gsub("Lua ", "lua"), n, live_ns, take_ns, (ok and wrong == 0) and 1 or 0))
