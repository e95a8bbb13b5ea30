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
  run = core.run,          -- run([fn]): until nothing is left, stop(), or the loop failed
  step = core.step,        -- step([timeout]) -> whether anything ran; raises once the loop failed
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
  setlimit = core.setlimit,  -- setlimit(bytes): default line limit of every socket (math.huge: none)
  nameservers = core.nameservers,  -- nameservers("127.0.0.1:53,..."): DNS servers instead of resolv.conf's
  -- Shutting down (README, "Shutting down"):
  epoch = core.epoch,      -- epoch() -> integer naming this runtime; another one in a forked worker
  atshutdown = core.atshutdown,  -- atshutdown(fn) -> true: fn runs once when shutdown begins (false: too late)
  -- shutdown([grace]) -> true the first time, false after: runs the atshutdown hooks (each in a
  -- thread of its own, in order; an error is reported and the rest run), closes every server
  -- corio.bind/serve made, then lets the loop go on until no spawned thread is in flight (timer
  -- callbacks do not count) or grace seconds (default 5; math.huge: no limit) have passed, and
  -- stops corio.run(). From the main script it runs the loop itself until then.
  shutdown = core.shutdown,
  -- Worker processes (README, "Worker processes"):
  -- workers(n, main [, {grace = 3}]) -> true after a stop (SIGTERM/SIGINT), or nil, message:
  -- n forked workers each run main(i) on a fresh runtime, restarted with back-off when they
  -- exit; from the main script only.
  workers = core.workers,
  worker_index = core.worker,  -- i inside worker i, nil elsewhere; also the field corio.worker
}

-- wrap(luasocket_socket | luasec_connection) -> the same, waiting in corio's loop (a LuaSocket
-- socket's original stays as .socket). A LuaSec connection (ssl.wrap, before or after its
-- handshake) keeps LuaSec doing the TLS (corio.tls).
function corio.wrap(sock, ...)
  local mt = getmetatable(sock)  -- LuaSec's class, as registered (Lua 5.1 has no __name)
  if mt ~= nil and mt == debug.getregistry()["SSL:Connection"] then return require("corio.tls").wrap_luasec(sock) end
  return core.wrap(sock, ...)
end

-- connect(host, port [, laddr [, lport [, family]]]) -> client | nil, message, as LuaSocket's
-- socket.connect: family ("inet", "inet6" or "unspec") picks the local address's family.
local families = { unspec = core.tcp, inet = core.tcp4, inet6 = core.tcp6 }
function corio.connect(host, port, laddr, lport, family)
  local make = families[family or "unspec"]
  if not make then error(("bad argument #5 to 'connect' (invalid option '%s')"):format(tostring(family)), 2) end
  local sock, err = (laddr and make or core.tcp)()
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
function corio.connect4(host, port, laddr, lport) return corio.connect(host, port, laddr, lport, "inet") end
function corio.connect6(host, port, laddr, lport) return corio.connect(host, port, laddr, lport, "inet6") end

-- bind(host, port [, backlog]) -> server | nil, message (reuseaddr; the system's maximum backlog)
-- reuseaddr only counts if set before bind, and a tcp() socket gets its descriptor at bind:
-- so, as LuaSocket's socket.bind, use a socket of each family in turn (IPv4 first).
function corio.bind(host, port, backlog)
  local v6 = type(host) == "string" and host:find(":", 1, true)
  local first
  for _, make in ipairs(v6 and { corio.tcp6 } or { corio.tcp4, corio.tcp6 }) do
    local sock, err = make()
    if not sock then return nil, err end
    sock:setoption("reuseaddr", true)
    -- in a worker, every worker binds the same port: the kernel spreads the connections
    if core.worker() then sock:setoption("reuseport", true) end
    local ok
    ok, err = sock:bind(host, port)
    if ok then ok, err = sock:listen(backlog or math.huge) end
    if ok then
      core.serving(sock)  -- corio.shutdown closes it
      return sock
    end
    sock:close()
    first = first or err
    -- on to IPv6 only when the host has no IPv4 address, not when the port is taken
    if not (err:find("not known", 1, true) or err:find("family", 1, true)) then break end
  end
  return nil, first
end

-- serve(host, port, handler [, {tls = params, handshake_timeout = 10}]) -> server:
-- handler(client) runs in a thread of its own for each connection. Pending connections are
-- accepted in a burst (accept does not wait while some are queued); closing the server ends
-- the accepting thread. With tls, the handler gets the client once its handshake is done
-- (within handshake_timeout seconds; a failed one is closed and never seen).
local function secured(ctx, handler, timeout)
  return function(client)
    client:settimeout(timeout)
    if not client:starttls(ctx) then return end
    client:settimeout(nil)
    return handler(client)
  end
end

function corio.serve(host, port, handler, opts)
  if opts and opts.tls then
    local ctx, cerr = require("corio.tls").server_context(opts.tls)
    if not ctx then return nil, cerr end
    handler = secured(ctx, handler, opts.handshake_timeout or 10)
  end
  local server, err = corio.bind(host, port)
  if not server then return nil, err end
  corio.spawn(function()
    while true do
      local client, aerr = server:accept()
      if client then
        corio.spawn(handler, client)
      elseif aerr == "closed" then
        return
      elseif aerr ~= "timeout" then
        corio.sleep(0.1)  -- a lasting error (a shut down socket: EINVAL) must not spin the loop
      end
    end
  end)
  return server
end

-- xpcall with arguments (as asok offers); yielding inside works on Lua 5.4 and LuaJIT.
function corio.xpcall(f, handler, ...)
  return xpcall(f, handler or debug.traceback, ...)
end

-- LuaJIT cannot yield across a C function, and LuaSocket's socket.protect is one: socket.http
-- and socket.smtp would fail from a corio thread. As Copas does, replace protect/newtry/try
-- with pcall-based ones (a try error is a table marked by `failure`; others are re-raised).
-- Done at load, before socket.http captures socket.protect; Lua 5.4's C protect yields.
if _VERSION == "Lua 5.1" then
  local ok, socket = pcall(require, "socket")
  if ok and type(socket) == "table" and not socket.corio_protect then
    local failure = {}
    local function unwrap(ok2, ...)
      if ok2 then return ... end
      local err = ...
      if type(err) == "table" and getmetatable(err) == failure then return nil, err[1] end
      error(err, 0)
    end
    function socket.protect(f)
      return function(...) return unwrap(pcall(f, ...)) end
    end
    function socket.newtry(finalizer)
      return function(...)
        if not (...) then
          if finalizer then pcall(finalizer) end
          error(setmetatable({ (select(2, ...)) }, failure), 0)
        end
        return ...
      end
    end
    socket.try = socket.newtry()
    socket.corio_protect = true
  end
end

return corio
