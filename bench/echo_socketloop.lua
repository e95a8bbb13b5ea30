-- Echo server through corio's socketloop facade (newserver + start): the socketloop program
-- a user would port, on corio's loop. Usage: lua5.4 bench/echo_socketloop.lua PORT (127.0.0.1)
local loop = require "corio.socketloop"
local port = assert(tonumber(arg[1]), "usage: echo_socketloop.lua PORT")

assert(loop.newserver("127.0.0.1", port, function(client)
  client:setoption("tcp-nodelay", true)
  while true do
    -- LuaSocket has no "whatever is available" pattern; corio's sockets add receivesome.
    local data = client:receivesome(65536)
    if not data or not client:send(data) then break end
  end
  client:close()
end))
loop.start()
