-- corio.asok: the asok API on corio. Threads are plain coroutines (coroutine.create and
-- coroutine.resume); a thread waiting in an asok call yields and corio's loop, driven by
-- asok.select(nil, nil, timeout), resumes it. Sockets are corio.wrap() wrappers of
-- LuaSocket sockets: each function takes a wrapper or a plain LuaSocket socket (wrapped on
-- first use, the wrapper kept while the socket lives).
--   local asok = require "corio.asok"   -- instead of require "asok"
local corio = require "corio"
require "socket"  -- asok is for LuaSocket sockets; its classes are patched below

local asok = {
  sleep = corio.sleep,    -- sleep(seconds): this thread only
  xpcall = corio.xpcall,  -- xpcall(f, err, ...): err nil for the default handler
}

-- plain LuaSocket socket -> its wrapper. On LuaJIT (weak keys are no ephemerons) an entry
-- goes when the socket is closed; on Lua 5.4 also when it is dropped.
local wrappers = setmetatable({}, { __mode = "k" })

local function is_corio(sok)
  local mt = getmetatable(sok)
  return type(mt) == "table" and mt.__corio_socket == true
end

-- The asok functions a wrapper has as methods beyond the corio socket's own.
local function decorate(w)
  w.throttle_receive = asok.throttle_receive
  w.throttle_send = asok.throttle_send
  return w
end

-- The wrapper for sok (a wrapper, a corio socket, or a plain LuaSocket socket).
local function W(sok)
  if is_corio(sok) then return sok end
  local w = wrappers[sok]
  if not w then
    w = assert(corio.wrap(sok))
    wrappers[sok] = decorate(w)
  end
  return w
end

-- select(nil, nil, timeout): runs the loop for timeout seconds (nil: until nothing is
-- left), resuming the threads whose I/O or sleep is done; always returns nil, "timeout".
function asok.select(_, _, timeout)
  if timeout == nil then
    corio.run()
  else
    local deadline = corio.now() + timeout
    repeat corio.step(math.max(0, deadline - corio.now())) until corio.now() >= deadline
  end
  return nil, "timeout"
end

-- accept(sok) -> client: a wrapper from a wrapper, a plain LuaSocket socket from one.
function asok.accept(sok)
  local client, err = W(sok):accept()
  if not client then return nil, err end
  decorate(client)
  if is_corio(sok) then return client end
  wrappers[client.socket] = client
  return client.socket
end

function asok.receive(sok, ...) return W(sok):receive(...) end
function asok.receivefrom(sok, ...) return W(sok):receivefrom(...) end
function asok.send(sok, ...) return W(sok):send(...) end
function asok.sendto(sok, ...) return W(sok):sendto(...) end
-- settimeout(sok, seconds): the asynchronous timeout, distinct from LuaSocket's own.
function asok.settimeout(sok, ...) return W(sok):settimeout(...) end

function asok.throttle_receive(sok, bps)
  local w = W(sok)
  local _, send_bps = w:getthrottle()
  return w:setthrottle(bps, send_bps)
end

function asok.throttle_send(sok, bps)
  local w = W(sok)
  local receive_bps = w:getthrottle()
  return w:setthrottle(receive_bps, bps)
end

-- wrap(sok [, timeout]) -> wrapper; sets sok's LuaSocket timeout to timeout (default 0).
function asok.wrap(sok, timeout)
  if is_corio(sok) then return sok end
  sok:settimeout(timeout or 0)
  return W(sok)
end

-- The seed's known bug was that threads waiting on a socket closed meanwhile were never
-- resumed: a wrapper's close wakes them, and so does LuaSocket's own close() of a wrapped
-- socket (corio.wrap sees to it). That close also forgets the socket's wrapper here: on
-- LuaJIT (no ephemerons) the entry would otherwise keep both alive.
local registry = debug.getregistry()
for _, class in ipairs({ "tcp{master}", "tcp{client}", "tcp{server}", "udp{unconnected}", "udp{connected}" }) do
  local methods = type(registry[class]) == "table" and registry[class].__index
  local close = type(methods) == "table" and methods.close
  if close then
    methods.close = function(self, ...)
      wrappers[self] = nil
      return close(self, ...)
    end
  end
end

return asok
