-- bench/echo.lua's echo server on N forked workers (corio.workers; SO_REUSEPORT spreads the
-- connections). Usage: lua5.4 bench/echo_workers.lua PORT [N=2]; SIGTERM stops it.
local corio = require "corio"
local port = assert(tonumber(arg[1]), "usage: echo_workers.lua PORT [N]")
local n = tonumber(arg[2]) or 2

assert(corio.workers(n, function()
  assert(corio.serve("127.0.0.1", port, function(client)
    client:setoption("tcp-nodelay", true)
    while true do
      local data = client:receivesome(65536)
      if not data or not client:send(data) then break end
    end
    client:close()
  end))
end, { grace = 1 }))
