-- bench/mqtt_idle.cpp's measure with corio.mqtt (luamqtt's API): N clients with keep_alive K
-- connected to 127.0.0.1:PORT, then SECS seconds of keep-alives only: on-CPU time of the
-- process (/proc/self/schedstat) and VmRSS per client.
-- usage: lua5.4 bench/mqtt_idle.lua PORT [N K SECS]
local corio = require "corio"
local mqtt = require "corio.mqtt"
local port = assert(tonumber(arg[1]), "usage: mqtt_idle.lua PORT [N K SECS]")
local n, ka, secs = tonumber(arg[2]) or 1000, tonumber(arg[3]) or 5, tonumber(arg[4]) or 30

local function on_cpu()
  local f = io.open("/proc/self/schedstat")
  local ns = f:read("*n")
  f:close()
  return ns / 1e9
end
local function rss_kb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s+(%d+)")
    if kb then return tonumber(kb) end
  end
end

collectgarbage()
local rss0 = rss_kb()
local clients, connected, closed = {}, 0, 0
for i = 1, n do
  local c = mqtt.client{ uri = "127.0.0.1:" .. port, clean = true, id = "lua-idle-" .. i, keep_alive = ka }
  c:on{ connect = function() connected = connected + 1 end, close = function() closed = closed + 1 end }
  c:start_connecting()
  clients[i] = c
end
local give_up = corio.now() + 60
while connected < n and corio.now() < give_up do corio.step(0.1) end
if connected < n then
  print(("bench=mqtt_idle impl=corio-lua clients=%d FAIL connected=%d"):format(n, connected))
  os.exit(1)
end
corio.step(0.2)
collectgarbage()
local rss1 = rss_kb()
local cpu0, t_end = on_cpu(), corio.now() + secs
while corio.now() < t_end do corio.step(t_end - corio.now()) end
local cpu = on_cpu() - cpu0
print(("bench=mqtt_idle impl=corio-lua clients=%d keep_alive=%d secs=%.1f cpu_ms=%.1f cpu_pct=%.3f rss_per_client_b=%.0f rss_mb=%.1f closed=%d")
  :format(n, ka, secs, cpu * 1000, 100 * cpu / secs, (rss1 - rss0) * 1024 / n, rss1 / 1024, closed))
for _, c in ipairs(clients) do c:disconnect() end
local stop = corio.now() + 5
while corio.now() < stop and corio.step(0.05) do end
