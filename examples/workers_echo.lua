-- An echo server on every core: one forked worker per CPU, all serving the same port
-- (corio.serve sets SO_REUSEPORT inside a worker, and the kernel spreads the connections).
-- A worker that dies is restarted; Ctrl-C or SIGTERM stops them all cleanly.
--
--   lua5.4 examples/workers_echo.lua [port]       then: nc 127.0.0.1 7000
local corio = require "corio"

local port = tonumber(arg[1]) or 7000

local function cores()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("*l") or "")
  if p then p:close() end
  return n or 1
end

local function echo(client)
  client:settimeout(60)
  while true do
    local line = client:receive("*l")
    if not line then break end
    client:send(line .. "\n")
  end
  client:close()
end

local n = cores()
print(("echo on 127.0.0.1:%d, %d workers; Ctrl-C to stop"):format(port, n))

local ok, err = corio.workers(n, function(i)
  assert(corio.serve("127.0.0.1", port, echo))
  -- Node-wide stats: a timer that counts this worker's connections into the node's shared
  -- figures goes here (added with the node-wide leases; see lua/corio/ and src/node).
  corio.atshutdown(function() io.stderr:write(("worker %d stopping\n"):format(i)) end)
end, { grace = 3 })

if not ok then
  io.stderr:write("cannot start the workers: ", tostring(err), "\n")
  os.exit(1)
end
print("all workers stopped")
