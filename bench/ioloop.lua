-- luamqtt's clients on an ioloop: idle CPU and message latency. N clients (keep_alive 5 s,
-- or $KA; each subscribed to a topic of its own) connect to a mosquitto started here; once all are
-- subscribed, IDLE seconds are measured (CPU of this process); then one more client
-- subscribed to bench/lat receives MSGS lines from one mosquitto_pub -l, each stamped just
-- before it is written, one every GAP s: latency = callback time - stamp.
--   lua5.4 bench/ioloop.lua corio|luamqtt [N=100] [IDLE=30] [MSGS=40] [GAP=0.5]
-- corio: corio.ioloop stands in for mqtt.ioloop. luamqtt: luamqtt's own ioloop.
-- The clients are the real luamqtt's when it is on LUA_PATH (bench/run.sh: LUAMQTT_DIR),
-- else tests/lua/mqtt_contract.lua (same contract with the ioloop), corio only.
local loopname = arg[1] or "corio"
local n = tonumber(arg[2]) or 100
local idle = tonumber(arg[3]) or 30
local msgs = tonumber(arg[4]) or 40
local gap = tonumber(arg[5]) or 0.5
local keep_alive = tonumber(os.getenv("KA")) or 5

if loopname == "corio" then package.loaded["mqtt.ioloop"] = require "corio.ioloop" end
local socket = require "socket"
local mq = require "mosquitto_support"
local has_luamqtt, mqtt = pcall(require, "mqtt")
if not has_luamqtt then
  if loopname ~= "corio" then
    print(("bench=ioloop impl=%s clients=%d FAIL=luamqtt-unavailable"):format(loopname, n))
    return
  end
  mqtt = nil
end
local C = not mqtt and require "mqtt_contract"
local ioloop = require "mqtt.ioloop"

-- On-CPU seconds of this process (/proc/self/schedstat: nanoseconds, not 10 ms ticks).
local function cpu()
  local f = assert(io.open("/proc/self/schedstat"))
  local ns = tonumber(f:read("*l"):match("^(%d+)"))
  f:close()
  return ns / 1e9
end

local broker = mq.start()
local uri = "127.0.0.1:" .. broker.port

-- A client subscribed to topic; on_message(payload).
local function client(topic, on_message)
  local c, state = nil, { subscribed = false }
  if mqtt then
    c = mqtt.client({ uri = uri, clean = true, keep_alive = keep_alive })
    c:on({
      connect = function() assert(c:subscribe({ topic = topic, qos = 0, callback = function() state.subscribed = true end })) end,
      message = function(m) if on_message then on_message(m.payload) end end,
      error = function(e) io.stderr:write("client error: ", tostring(e), "\n") end,
    })
  else
    c = C.client({ uri = uri, keep_alive = keep_alive })
    c:on({
      connect = function() c:subscribe(topic) end,
      subscribe = function() state.subscribed = true end,
      message = function(m) if on_message then on_message(m.payload) end end,
    })
  end
  return c, state
end

local loop = ioloop.get()
local clients, states = {}, {}
local lat = {}
for i = 1, n do clients[i], states[i] = client("bench/idle/" .. i) end
clients[n + 1], states[n + 1] = client("bench/lat", function(p) lat[#lat + 1] = socket.gettime() - tonumber(p) end)

local phase, t0, c0, idle_cpu, idle_s, started = "connecting", socket.gettime(), nil, nil, nil, nil
local function driver()
  local t = socket.gettime()
  if phase == "connecting" then
    local all = true
    for i = 1, #states do all = all and states[i].subscribed end
    if all then phase, t0, c0 = "idle", t, cpu()
    elseif t - t0 > 60 then phase = "done" end
  elseif phase == "idle" and t - t0 >= idle then
    idle_cpu, idle_s = cpu() - c0, t - t0
    phase, started = "latency", t
    os.execute(("(sleep 0.5; for i in $(seq %d); do date +%%s.%%N; sleep %g; done) | %s >/dev/null 2>&1 &")
      :format(msgs, gap, broker:pub_lines("bench/lat")))
  elseif phase == "latency" and (#lat >= msgs or t - started > msgs * gap + 60) then
    phase = "done"
  end
  if phase == "done" then
    for i = 1, #clients do clients[i]:disconnect() end
    loop:remove(driver)
  end
  -- (luamqtt's 3.x loop calls it every iteration whatever it returns)
  if phase == "idle" then return t0 + idle - t end
  return 0.05
end

for i = 1, #clients do
  loop:add(clients[i])
  clients[i]:start_connecting()
end
loop:add(driver)
loop:run_until_clients()
broker:stop()

table.sort(lat)
local function pct(p) return lat[1] and lat[math.max(1, math.ceil(#lat * p))] * 1e3 or -1 end
print(("bench=ioloop impl=%s clients=%s client_lib=%s idle_s=%.1f idle_cpu_ms=%.1f idle_cpu_pct=%.3f msgs=%d received=%d lat_p50_ms=%.2f lat_p99_ms=%.2f lat_max_ms=%.2f")
  :format(loopname, n, mqtt and "luamqtt" or "contract", idle_s or -1, (idle_cpu or -1) * 1e3,
    idle_cpu and idle_cpu / idle_s * 100 or -1, msgs, #lat, pct(0.5), pct(0.99), pct(1)))
