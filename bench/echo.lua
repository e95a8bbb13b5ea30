-- Echo server on corio's native Lua API: a thread per connection sends back whatever
-- arrives. Usage: lua5.4 bench/echo.lua PORT [CERT KEY] (binds 127.0.0.1; with a
-- certificate and key, over TLS: corio.serve's tls, each handshake done before the thread)
local corio = require "corio"
local port = assert(tonumber(arg[1]), "usage: echo.lua PORT [CERT KEY]")
local tls = arg[2] and { tls = { certificate = arg[2], key = assert(arg[3], "CERT needs KEY") } }

assert(corio.serve("127.0.0.1", port, function(client)
  client:setoption("tcp-nodelay", true)
  while true do
    local data = client:receivesome(65536)  -- 1..65536 bytes, whatever is available
    if not data or not client:send(data) then break end
  end
  client:close()
end, tls))
corio.run()
