-- make run: a timer, a virtual event and a socket becoming readable, all in one
-- corio event set (the LuaEvents API) on one loop.
local event = require "corio.event"
local socket = require "socket"
local corio = require "corio"

local ev = event.newset()
local t0 = corio.now()
local function say(fmt, ...) print(string.format("%6.3f s  " .. fmt, corio.now() - t0, ...)) end

-- A loopback connection whose server side becomes readable when the client writes.
local server = assert(socket.bind("127.0.0.1", 0))
local ip, port = server:getsockname()
local client = assert(socket.connect(ip, port))
local conn = assert(server:accept())

local greet = ev:add("v", nil, "a virtual event")
ev:add("t", 0.10, "one-shot timer: the client writes now")
local tick = ev:add("T", 0.04, "periodic timer")
ev:add("r", conn, "server side", 2.0)

ev:trigger(greet)
local ticks = 0
for id, reason, source, context in ev(true) do
  if id == tick then
    ticks = ticks + 1
    say("%s (%s) #%d", context, reason, ticks)
    if ticks == 3 then ev:del(tick) end
  elseif reason == "readable" then
    say("%s is %s: %q", context, reason, conn:receive("*l"))
  else
    say("%s (%s)", context, reason)
    if context:find("client writes") then client:send("hello from the client\n") end
  end
end
say("the set is empty: the iterator ended")
client:close(); conn:close(); server:close()
