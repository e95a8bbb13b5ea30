-- The echo server of bench/echo.lua over TLS (corio.serve with tls): a thread per
-- connection, each handshake done before it. Usage: lua5.4 bench/tls_echo.lua PORT CERT KEY
local corio = require "corio"
local port = assert(tonumber(arg[1]), "usage: tls_echo.lua PORT CERT KEY")

assert(corio.serve("127.0.0.1", port, function(client)
  client:setoption("tcp-nodelay", true)
  while true do
    local data = client:receivesome(65536)
    if not data or not client:send(data) then break end
  end
  client:close()
end, { tls = { certificate = assert(arg[2]), key = assert(arg[3]) } }))
corio.run()
