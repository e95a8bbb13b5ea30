-- corio: the native Lua API — threads, timers, and (corio.event) the event container.
local core = require "corio.core"

local corio = {
  version = core.version,
  now = core.now,          -- monotonic seconds
  spawn = core.spawn,      -- spawn(fn, ...) -> thread, run now until it first waits
  current = core.current,  -- the running corio thread, nil in the main thread
  sleep = core.sleep,      -- sleep(seconds): this thread only
  suspend = core.suspend,  -- suspend() -> values given to resume
  resume = core.resume,    -- resume(thread, ...) -> true | nil, message
  run = core.run,          -- run([fn]): until nothing is left, or stop()
  step = core.step,        -- step([timeout]) -> whether anything ran
  stop = core.stop,
  onerror = core.onerror,  -- onerror(fn(message, thread)); nil: print to stderr
  after = core.after,      -- after(seconds, fn, ...) -> timer with :cancel()
  every = core.every,      -- every(seconds, fn, ...) -> timer with :cancel()
  -- sockets with LuaSocket's object API; calls that wait yield the calling thread
  tcp = core.tcp,          -- family chosen by bind/connect
  tcp4 = core.tcp4,
  tcp6 = core.tcp6,
  udp = core.udp,
  udp4 = core.udp4,
  udp6 = core.udp6,
  unix = core.unix,        -- stream socket on a path
}

-- connect(host, port [, laddr [, lport]]) -> client | nil, message
function corio.connect(host, port, laddr, lport)
  local sock, err = corio.tcp()
  if not sock then return nil, err end
  local ok
  if laddr then
    ok, err = sock:bind(laddr, lport or 0)
    if not ok then sock:close() return nil, err end
  end
  ok, err = sock:connect(host, port)
  if not ok then sock:close() return nil, err end
  return sock
end

-- bind(host, port [, backlog]) -> server | nil, message (reuseaddr; the system's maximum backlog)
function corio.bind(host, port, backlog)
  local sock, err = corio.tcp()
  if not sock then return nil, err end
  local ok
  ok, err = sock:bind(host, port)
  if ok then
    sock:setoption("reuseaddr", true)
    ok, err = sock:listen(backlog)
  end
  if not ok then sock:close() return nil, err end
  return sock
end

-- serve(host, port, handler) -> server: handler(client) runs in a thread of its own for
-- each connection. Pending connections are accepted in a burst (accept does not wait
-- while some are queued); closing the server ends the accepting thread.
function corio.serve(host, port, handler)
  local server, err = corio.bind(host, port)
  if not server then return nil, err end
  corio.spawn(function()
    while true do
      local client, aerr = server:accept()
      if client then
        corio.spawn(handler, client)
      elseif aerr == "closed" then
        return
      end
    end
  end)
  return server
end

-- xpcall with arguments (as asok offers); yielding inside works on Lua 5.4 and LuaJIT.
function corio.xpcall(f, handler, ...)
  return xpcall(f, handler or debug.traceback, ...)
end

return corio
