-- N recurring timers, interval 1 s, first runs spread over [1 s, 2 s) (jitter 1 s); from
-- 2 s on (all set up and running) SECS seconds are measured: CPU per expiry of
-- corio.resty.timer beside corio.every and luv's repeating timers, one process each. Usage: lua5.4 bench/recurring.lua resty|every|luv [N=100000] [SECS=4]
local impl = arg[1] or "resty"
local n = tonumber(arg[2]) or 100000
local secs = tonumber(arg[3]) or 4
math.randomseed(42)
local fired = 0
local function expire() fired = fired + 1 end

local function rss_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local now, at, stop, run, keep = nil, nil, nil, nil, {}
if impl == "luv" then
  local uv = require "luv"
  now = function() return uv.hrtime() / 1e9 end
  for i = 1, n do
    local t = uv.new_timer()
    t:start(1000 + math.floor(math.random() * 1000), 1000, expire)
    keep[i] = t
  end
  at = function(s, fn)
    local t = uv.new_timer()
    t:start(math.floor(s * 1000), 0, fn)
  end
  stop = function() uv.stop() end
  run = function() uv.run() end
else
  local corio = require "corio"
  now = corio.now
  if impl == "resty" then
    local resty_timer = require "corio.resty.timer"
    local opts = { interval = 1, jitter = 1, recurring = true, expire = expire }
    for i = 1, n do keep[i] = resty_timer(opts) end
  elseif impl == "every" then
    for i = 1, n do
      corio.after(math.random(), function() keep[i] = corio.every(1, expire) end)
    end
  else
    error("impl: resty, every or luv")
  end
  at, stop, run = corio.after, corio.stop, corio.run
end

local c0, t0, f0
at(2, function() c0, t0, f0 = os.clock(), now(), fired end)
at(2 + secs, stop)
run()
local c1, t1, f1 = os.clock(), now(), fired
print(string.format("bench=recurring impl=%s(%s) timers=%d secs=%.1f expiries=%d cpu_ms=%.0f " ..
  "cpu_ns_per_expiry=%.0f maxrss_mb=%.0f", impl, jit and "luajit" or _VERSION:gsub("Lua ", "lua"), n,
  t1 - t0, f1 - f0, (c1 - c0) * 1e3, (c1 - c0) * 1e9 / math.max(1, f1 - f0), rss_mb()))
