-- An echo server on every core: one forked worker per CPU, all serving the same port
-- (corio.serve sets SO_REUSEPORT inside a worker, and the kernel spreads the connections).
-- A node-wide resty.timer prints the cluster's figures once per second: whichever worker
-- holds the key that second asks every worker for its counters over loopback UDP. A worker
-- that dies is restarted; Ctrl-C or SIGTERM stops them all cleanly.
--
--   lua5.4 examples/workers_echo.lua [port = 7000] [workers = cores]    then: nc 127.0.0.1 7000
local corio = require "corio"
local resty_timer = require "corio.resty.timer"

local port = tonumber(arg[1]) or 7000

local function cores()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("*l") or "")
  if p then p:close() end
  return n or 1
end

local stats = { open = 0, conns = 0, lines = 0 }  -- this worker's

local function echo(client)
  stats.open, stats.conns = stats.open + 1, stats.conns + 1
  client:settimeout(60)
  while true do
    local line = client:receive("*l")
    if not line then break end
    client:send(line .. "\n")
    stats.lines = stats.lines + 1
  end
  client:close()
  stats.open = stats.open - 1
end

local n = tonumber(arg[2]) or cores()
print(("echo on 127.0.0.1:%d, %d workers; Ctrl-C to stop"):format(port, n))

-- Worker i answers "stats" on UDP port + i with "open conns lines".
local function answer_stats(i)
  local udp = assert(corio.udp4())
  assert(udp:setsockname("127.0.0.1", port + i))
  corio.spawn(function()
    while true do
      local msg, ip, from = udp:receivefrom()
      if msg == "stats" then
        udp:sendto(("%d %d %d"):format(stats.open, stats.conns, stats.lines), ip, from)
      elseif not msg and ip == "closed" then
        return
      end
    end
  end)
  corio.atshutdown(function() udp:close() end)
end

-- Runs in the one worker holding the key this second: gathers every worker's counters.
local function print_cluster_stats(i)
  local q = assert(corio.udp4())
  q:settimeout(0.2)
  for j = 1, n do q:sendto("stats", "127.0.0.1", port + j) end
  local answered, open, conns, lines = 0, 0, 0, 0
  for _ = 1, n do
    local reply = q:receive()
    if not reply then break end
    local o, c, l = reply:match("^(%d+) (%d+) (%d+)$")
    answered, open, conns, lines = answered + 1, open + o, conns + c, lines + l
  end
  q:close()
  print(("[worker %d] cluster: %d/%d workers answered, %d connections open, %d in all, %d lines echoed")
    :format(i, answered, n, open, conns, lines))
  io.stdout:flush()
end

local ok, err = corio.workers(n, function(i)
  assert(corio.serve("127.0.0.1", port, echo))
  answer_stats(i)
  resty_timer({ interval = 1, recurring = true, detached = true, shm_name = "workers_echo",
    key_name = "stats:" .. port, expire = print_cluster_stats }, i)
  corio.atshutdown(function() io.stderr:write(("worker %d stopping\n"):format(i)) end)
end, { grace = 3 })

if not ok then
  io.stderr:write("cannot start the workers: ", tostring(err), "\n")
  os.exit(1)
end
print("all workers stopped")
