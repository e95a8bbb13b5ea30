-- corio.socketloop: the socketloop API (luapower) on corio. The loop is corio's: every
-- thread is a corio thread, sockets are corio sockets, and start() does not poll.
--   local loop = require "corio.socketloop"   -- instead of require "socketloop"
local corio = require "corio"

local loop = {
  wrap = corio.wrap,          -- wrap(luasocket_socket) -> async socket, the original as .socket
  connect = corio.connect,    -- connect(address, port [, local_address [, local_port]]) -> async socket
  newthread = corio.spawn,    -- newthread(handler, arg) -> thread, run now until it first waits
  current = corio.current,    -- the running thread (nil in the main thread)
  suspend = corio.suspend,    -- suspend() -> the values given to resume
  resume = corio.resume,      -- resume(thread, arg): a suspend()ed thread goes on soon
  newserver = corio.serve,    -- newserver(host, port, handler): handler(client) per connection
  step = corio.step,          -- step([timeout]) -> true | false: dispatches what is ready
  stop = corio.stop,
}

-- start([timeout]): dispatches until no thread is left or stop() is called. socketloop's
-- timeout bounded each select(); corio waits on the poller, so it has no use for it.
function loop.start()
  corio.run()
end

-- loop.coro: the same loop with symmetric coroutines. transfer(thread, ...) passes control
-- and values to a thread suspended in transfer() (or new from create()), suspending the
-- caller until some thread transfers back to it; built on corio's suspend/resume.
local coro = setmetatable({}, { __index = loop })

-- create(f) -> thread: starts f(...) with the values of the first transfer to it.
function coro.create(f)
  return corio.spawn(function() return f(corio.suspend()) end)
end

function coro.transfer(thread, ...)
  assert(corio.resume(thread, ...))
  if corio.current() then return corio.suspend() end  -- the main thread cannot be suspended
end

loop.coro = coro

return loop
