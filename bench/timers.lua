-- N one-shot corio timers (corio.after), deadlines uniform in [0, 1 s), every second one
-- cancelled (:cancel()), run until the rest fire: the workload and output line of
-- ../shared/bench/timers_*.lua. Usage: lua5.4 bench/timers.lua [N=1000000]
local corio = require "corio"
local n = tonumber(arg[1]) or 1000000
math.randomseed(42)
local fired = 0
local function fire() fired = fired + 1 end
local timers = {}
local c0, t0 = os.clock(), corio.now()
for i = 1, n do
  timers[i] = corio.after(math.random(), fire)
end
local t1 = corio.now()
local cancelled = 0
for i = 2, n, 2 do
  timers[i]:cancel()
  cancelled = cancelled + 1
end
timers = nil
local t2 = corio.now()
corio.run()
local t3, c3 = corio.now(), os.clock()
local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end
print(string.format("impl=corio-lua(%s) timers=%d cancelled=%d fired=%d setup_ms=%.1f cancel_ms=%.1f " ..
  "run_ms=%.1f wall_ms=%.1f cpu_ms=%.1f ns_per_timer=%.0f cpu_ns_per_timer=%.0f maxrss_mb=%.0f ok=%d",
  jit and "luajit" or _VERSION:gsub("Lua ", "lua"), n, cancelled, fired, (t1 - t0) * 1e3,
  (t2 - t1) * 1e3, (t3 - t2) * 1e3, (t3 - t0) * 1e3, (c3 - c0) * 1e3, (t3 - t0) * 1e9 / n,
  (c3 - c0) * 1e9 / n, rss_mb(), fired == n - math.floor(n / 2) and 1 or 0))
