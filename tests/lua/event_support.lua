-- Shared by the corio.event specs (not a spec itself): a monotonic clock, a collector
-- for iterator results, loopback TCP pairs and the interpreter's pid.
local socket = require "socket"
local corio = require "corio"

local M = {}

M.now = corio.now  -- monotonic seconds, the clock the event timers run on

-- Runs one iteration `for ... in ev(block)` and returns what it produced, in order:
-- { id=, why=, src=, ctx=, at=, called= }: `at` is when the iterator returned the event,
-- `called` when that iterator call began (seconds since t0, or since this call). A
-- persistent event's timeout restarts inside that call, so a lower bound for its next
-- return is `called` + timeout (not `at`, which is a little later).
-- `body(e, list)` runs inside the loop body when given.
-- The contexts of a collect()ed list, in order.
function M.ctxs(list)
  local r = {}
  for i, e in ipairs(list) do r[i] = e.ctx end
  return r
end

function M.collect(ev, block, body, t0)
  t0 = t0 or M.now()
  local list = {}
  local f, s, c = ev(block)
  while true do
    local called = M.now() - t0
    local id, why, src, ctx = f(s, c)
    if id == nil then break end
    c = id
    local e = { id = id, why = why, src = src, ctx = ctx, at = M.now() - t0, called = called }
    list[#list + 1] = e
    if body then body(e, list) end
  end
  return list
end

-- A connected pair of LuaSocket TCP objects on 127.0.0.1 (ephemeral port).
function M.tcp_pair()
  local server = assert(socket.bind("127.0.0.1", 0))
  server:settimeout(2)
  local _, port = server:getsockname()
  local client = assert(socket.connect("127.0.0.1", port))
  local peer = assert(server:accept())
  server:close()
  client:settimeout(2)
  peer:settimeout(2)
  return client, peer
end

-- The pid of the interpreter running busted.
function M.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  return assert(pid)
end

-- The interpreter binary running busted (to run a script in a child process).
function M.interpreter()
  local p = assert(io.popen("readlink /proc/" .. M.pid() .. "/exe"))
  local exe = p:read("*l")
  p:close()
  return assert(exe)
end

function M.is_integer(n)
  return type(n) == "number" and n == math.floor(n)
end

return M
