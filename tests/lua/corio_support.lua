-- Shared by the corio thread and socket specs (not a spec itself): running a test body
-- in a corio thread under a watchdog, loopback socket pairs, ports, timing, RSS, and the
-- interpreter for child processes. Every wait here is bounded, so a bug fails a test
-- instead of hanging it.
local corio = require "corio"

local M = {}

M.now = corio.now

local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end
M.pack, M.unpack = pack, unpack

-- Runs fn(...) in a corio thread and the loop until fn returns. An error in fn, an error
-- in any other thread meanwhile (corio.onerror), or fn still running after `limit`
-- seconds (the watchdog stops the loop) fails the calling test.
function M.run(limit, fn, ...)
  if type(limit) == "function" then return M.run(10, limit, fn, ...) end
  local args = pack(...)
  local errors = {}
  corio.onerror(function(msg) errors[#errors + 1] = msg end)
  local done, ok, err, timed_out = false, true, nil, false
  local dog = corio.after(limit, function()
    timed_out = true
    corio.stop()
  end)
  corio.spawn(function()
    ok, err = xpcall(function() return fn(unpack(args, 1, args.n)) end, debug.traceback)
    done = true
    corio.stop()
  end)
  if not done then corio.run() end
  dog:cancel()
  corio.onerror(nil)
  if not ok then error(err, 0) end
  if errors[1] then error("error in a corio thread: " .. errors[1], 0) end
  if timed_out and not done then error(("test body still running after %g s"):format(limit), 0) end
end

-- Spawns fn(...) now and returns a function that waits (bounded: `limit` seconds,
-- default 10) until fn has finished and returns its results. Call it from a thread.
function M.go(fn, ...)
  local args = pack(...)
  local res
  corio.spawn(function() res = pack(fn(unpack(args, 1, args.n))) end)
  return function(limit)
    local deadline = corio.now() + (limit or 10)
    while not res do
      assert(corio.now() < deadline, "thread did not finish in time")
      corio.sleep(0.001)
    end
    return unpack(res, 1, res.n)
  end
end

-- A check of what corio should do but does not yet (a difference from LuaSocket or a bug,
-- marked -- KNOWN: at the call): runs fn and returns true, or false and "KNOWN: reason (error)"
-- for the spec to hand to busted's pending(), so the suite stays green and its output lists
-- the difference; once fixed, fn passes and so does the test. busted's pending() ends the
-- test where it is called: check what is known last, after the test's other checks and its
-- cleanup. A spec defines once:
--   local function known(reason, fn) local ok, why = S.known(reason, fn) if not ok then pending(why) end end
function M.known(reason, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return true end
  return false, "KNOWN: " .. reason .. " (" .. (tostring(err):gsub("\n.*", "")) .. ")"
end

-- The local port of a socket, as a number (getsockname gives a string, as LuaSocket's).
function M.port(sock)
  local _, port = sock:getsockname()
  return tonumber(port)
end

-- A loopback port nothing listens on (bound, then closed).
function M.free_port()
  local s = assert(corio.bind("127.0.0.1", 0))
  local port = M.port(s)
  s:close()
  return port
end

-- A connected TCP pair on 127.0.0.1: client, accepted peer (both with `timeout`, default
-- 5 s). Works from a corio thread and from the main thread alike.
function M.pair(timeout)
  local server = assert(corio.bind("127.0.0.1", 0))
  server:settimeout(5)
  local client = assert(corio.tcp())
  client:settimeout(5)
  assert(client:connect("127.0.0.1", M.port(server)))
  local peer = assert(server:accept())
  server:close()
  client:settimeout(timeout or 5)
  peer:settimeout(timeout or 5)
  return client, peer
end

-- Seconds fn(...) takes, then its results.
function M.time(fn, ...)
  local t0 = corio.now()
  local r = pack(fn(...))
  return corio.now() - t0, unpack(r, 1, r.n)
end

-- This process's resident set in KiB (/proc/self/status VmRSS).
function M.rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

-- A name no other process running the specs uses: prefix, this process's pid and a count.
-- (LuaJIT seeds math.random the same in every process: two runs side by side would share
-- a shared-memory region named from it.)
local unique_count = 0
function M.unique(prefix)
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  unique_count = unique_count + 1
  return ("%s-%s-%d"):format(prefix, pid, unique_count)
end

-- On-CPU seconds of this process (/proc/self/schedstat: nanoseconds, not 10 ms ticks).
function M.cpu()
  local f = assert(io.open("/proc/self/schedstat"))
  local ns = tonumber(f:read("*l"):match("^(%d+)"))
  f:close()
  return ns / 1e9
end

-- How many descriptors this process has open (entries of /proc/<pid>/fd).
function M.open_fds()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("ls /proc/" .. pid .. "/fd"))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- The interpreter running the specs (CTest sets CORIO_TEST_LUA).
function M.interpreter()
  local exe = os.getenv("CORIO_TEST_LUA")
  if exe and exe ~= "" then return exe end
  local i = -1
  while arg and arg[i - 1] do i = i - 1 end  -- the interpreter is the lowest index
  return assert(arg and arg[i], "cannot tell which interpreter runs the specs")
end

-- A fresh temporary file name (removed first if it exists).
function M.tmpname(suffix)
  local name = os.tmpname()
  os.remove(name)
  return name .. (suffix or "")
end

-- Single-quotes s for sh.
function M.shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Runs Lua source in a child interpreter (at most 20 s) under a shell prefix (environment
-- assignments, "ulimit -v ...;" or ""), with the given arguments (arg[1] ...); returns its
-- output (stdout and stderr) followed by "status <exit code>", and that code.
function M.child_in(prefix, source, ...)
  local path = M.tmpname(".lua")
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  local args = {}
  for i = 1, select("#", ...) do args[i] = M.shquote(select(i, ...)) end
  local p = assert(io.popen(("%s timeout 20 %s %s %s 2>&1; echo \"status $?\""):format(prefix,
    M.shquote(M.interpreter()), M.shquote(path), table.concat(args, " "))))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return out, tonumber(out:match("status (%d+)%s*$"))
end

-- As child_in with no prefix: the output alone.
function M.child(source, ...)
  return (M.child_in("", source, ...))
end

return M
