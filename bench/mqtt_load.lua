-- bench/mqtt_load.cpp's load with corio.mqtt (luamqtt's API): P publishers each send M
-- messages of 64 bytes to bench/<i> at QoS Q, each keeping at most W unfinished (the publish
-- callback: QoS 0 written, QoS 1 acknowledged), one subscriber to bench/# at QoS Q counts them
-- (and acknowledges them: corio.mqtt leaves that to the handler, as luamqtt does).
-- usage: lua5.4 bench/mqtt_load.lua PORT QOS [P M W]
local corio = require "corio"
local mqtt = require "corio.mqtt"
local port = assert(tonumber(arg[1]), "usage: mqtt_load.lua PORT QOS [P M W]")
local qos = assert(tonumber(arg[2]), "usage: mqtt_load.lua PORT QOS [P M W]")
local P, M, W = tonumber(arg[3]) or 100, tonumber(arg[4]) or 1000, tonumber(arg[5]) or 20
local total = P * M
local uri = "127.0.0.1:" .. port

local function cpu_s()  -- utime + stime of this process, from /proc/self/stat (clock ticks)
  local f = io.open("/proc/self/stat")
  local s = f:read("a")
  f:close()
  local fields = {}
  for x in s:match("%) (.*)"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100  -- fields 14 and 15 of stat(5)
end

local received, last, subscribed = 0, 0, false
local sub = mqtt.client{ uri = uri, clean = true, id = "lua-load-sub", keep_alive = 60 }
sub:on{
  connect = function()
    sub:subscribe{ topic = "bench/#", qos = qos, callback = function(suback)
      subscribed = not suback.error
    end }
  end,
  message = function(msg)
    sub:acknowledge(msg)
    received = received + 1
    last = corio.now()
  end,
}
sub:start_connecting()

local pubs, connected = {}, 0
for i = 1, P do
  local c = mqtt.client{ uri = uri, clean = true, id = "lua-load-pub-" .. i, keep_alive = 60 }
  c:on{ connect = function() connected = connected + 1 end }
  c:start_connecting()
  pubs[i] = c
end
local give_up = corio.now() + 60
while (connected < P or not subscribed) and corio.now() < give_up do corio.step(0.05) end
if connected < P or not subscribed then
  print(("bench=mqtt_load impl=corio-lua qos=%d clients=%d FAIL connect"):format(qos, P))
  os.exit(1)
end

local payload = ("x"):rep(64)
local sent, failed = {}, 0
local next_of = {}
for i = 1, P do
  local c, topic = pubs[i], "bench/" .. (i - 1)
  local args
  local function done(ack)
    if ack.error then failed = failed + 1 end
    next_of[i]()
  end
  args = { topic = topic, payload = payload, qos = qos, callback = done }
  sent[i] = 0
  next_of[i] = function()
    if sent[i] >= M then return end
    sent[i] = sent[i] + 1
    c:publish(args)
  end
end

local cpu0, t0 = cpu_s(), corio.now()
for i = 1, P do
  for _ = 1, W do next_of[i]() end
end
local t_end, quiet, seen = corio.now() + 60, corio.now(), -1
while received < total and corio.now() < t_end do
  corio.step(0.1)
  if received ~= seen then seen, quiet = received, corio.now() end
  if corio.now() - quiet > 3 then break end  -- the rest is lost
end
local secs, cpu = last - t0, cpu_s() - cpu0
print(("bench=mqtt_load impl=corio-lua qos=%d clients=%d msgs=%d received=%d failed=%d secs=%.3f msgs_per_s=%.0f cpu_s=%.2f")
  :format(qos, P, total, received, failed, secs, secs > 0 and received / secs or 0, cpu))
for _, c in ipairs(pubs) do c:disconnect() end
sub:disconnect()
local stop = corio.now() + 5
while corio.now() < stop and corio.step(0.05) do end
os.exit(received == total and 0 or 1)
