-- Runs LuaSocket's own test client (test/testclnt.lua, read from a path at run time, never
-- stored here) unchanged, against real LuaSocket, corio's sockets or corio.wrap()ed ones,
-- and counts its checks. Run by scripts/luasocket-testclnt, which starts the server.
--
--   lua testclnt_adapter.lua <testclnt.lua> <luasocket|native|wrap> <host> <port> [check limit s]
--
-- A check is one top-level call of a global function the client defines (test_*,
-- accept_errors ...): returning is a pass, raising (fail() or an assert) a failure.
-- stdout: one "RESULT" line per check, then "SUMMARY"; the client's chatter goes to stderr.

local path, mode, host, port = arg[1], arg[2], arg[3] or "127.0.0.1", arg[4]
local limit = tonumber(arg[5]) or 120  -- corio modes: a check past this has its sockets closed
assert(path and port and (mode == "luasocket" or mode == "native" or mode == "wrap"),
  "usage: testclnt_adapter.lua <testclnt.lua> <luasocket|native|wrap> <host> <port> [limit]")
io.stdout:setvbuf("line")

local real = require "socket"
local gettime = real.gettime
local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end

local corio, notes = nil, {}
if mode ~= "luasocket" then
  corio = require "corio"
  -- testclnt reads 8 MB lines; corio bounds lines (1 MiB by default) unless told otherwise
  if type(corio.setlimit) == "function" then
    local ok, err = pcall(corio.setlimit, math.huge)
    if not ok then notes[#notes + 1] = "corio.setlimit(math.huge) failed: " .. tostring(err) end
  else
    notes[#notes + 1] = "corio has no process-wide corio.setlimit: lines stay bounded (1 MiB default)"
  end
end

---------------------------------------------------------------------------------------------
-- The object the client sees: a thin proxy per socket, the same for every mode. It forwards
-- every field and method (class, getfd for socket.select ...) and, as a LUASOCKET_DEBUG
-- build does (buffer.c), makes stream send/receive return the elapsed time after the 3
-- usual values.

local real_of = setmetatable({}, { __mode = "k" })   -- proxy -> object
local proxy_of = setmetatable({}, { __mode = "kv" }) -- object -> proxy
local opened = {}                                     -- objects made during the current check

local function is_socket(v)
  if type(v) ~= "userdata" then return false end
  local ok, class = pcall(function() return v.class end)
  return ok and type(class) == "string"
end

local proxy_mt = {}
local function proxy(v)
  if not is_socket(v) then return v end
  local p = proxy_of[v]
  if not p then
    p = setmetatable({}, proxy_mt)
    real_of[p], proxy_of[v] = v, p
    opened[#opened + 1] = v
  end
  return p
end

local function proxies(...)
  local r = pack(...)
  for i = 1, r.n do r[i] = proxy(r[i]) end
  return unpack(r, 1, r.n)
end

local function is_stream(obj)
  local class = obj.class
  return type(class) == "string" and (class:find("^tcp{") or class:find("^unix{")) ~= nil
end

local methods = {}  -- one forwarding function per method name
local function method(name)
  local m = methods[name]
  if m then return m end
  if name == "send" or name == "receive" then
    m = function(self, ...)
      local obj = real_of[self] or self
      local f = obj[name]
      if not is_stream(obj) then return proxies(f(obj, ...)) end
      local t = gettime()
      local r = pack(f(obj, ...))
      return r[1], r[2], r[3], gettime() - t
    end
  else
    m = function(self, ...)
      local obj = real_of[self] or self
      return proxies(obj[name](obj, ...))
    end
  end
  methods[name] = m
  return m
end

proxy_mt.__index = function(p, k)
  local v = real_of[p][k]
  if type(v) == "function" and type(k) == "string" then return method(k) end
  return v
end
proxy_mt.__newindex = function(p, k, v) real_of[p][k] = v end
proxy_mt.__tostring = function(p) return tostring(real_of[p]) end

---------------------------------------------------------------------------------------------
-- The socket table the client's require"socket" gets: LuaSocket's, with the constructors
-- of the mode.

local function connect_with(make)  -- LuaSocket's global_connect (tcp.c) on `make`'s socket
  return function(rhost, rport, laddr, lport)
    local s, err = make()
    if not s then return nil, err end
    local ok
    if laddr then
      ok, err = s:bind(laddr, lport or 0)
      if not ok then s:close() return nil, err end
    end
    ok, err = s:connect(rhost, rport)
    if not ok then s:close() return nil, err end
    return s
  end
end

local function bind_with(make4, make6)  -- LuaSocket's socket.bind (socket.lua)
  return function(bhost, bport, backlog)
    if bhost == "*" then bhost = "0.0.0.0" end
    local addrinfo, err = real.dns.getaddrinfo(bhost)
    if not addrinfo then return nil, err end
    err = "no info on address"
    for _, alt in ipairs(addrinfo) do
      local s, res
      s, err = (alt.family == "inet" and make4 or make6)()
      if not s then return nil, err end
      s:setoption("reuseaddr", true)
      res, err = s:bind(alt.addr, bport)
      if res then res, err = s:listen(backlog) end
      if res then return s end
      s:close()
    end
    return nil, err
  end
end

local ctor
if mode == "luasocket" then
  ctor = {
    tcp = real.tcp, tcp4 = real.tcp4, tcp6 = real.tcp6,
    udp = real.udp, udp4 = real.udp4, udp6 = real.udp6,
    connect = real.connect, connect4 = real.connect4, connect6 = real.connect6, bind = real.bind,
  }
elseif mode == "native" then
  ctor = {
    tcp = corio.tcp, tcp4 = corio.tcp4, tcp6 = corio.tcp6,
    udp = corio.udp, udp4 = corio.udp4, udp6 = corio.udp6,
    connect = corio.connect, bind = corio.bind,
    -- corio has no connect4/connect6 (testclnt calls neither)
    connect4 = connect_with(corio.tcp4), connect6 = connect_with(corio.tcp6),
  }
else
  local function wrapped(make)
    return function()
      local s, err = make()
      if not s then return nil, err end
      return corio.wrap(s)
    end
  end
  ctor = {
    tcp = wrapped(real.tcp), tcp4 = wrapped(real.tcp4), tcp6 = wrapped(real.tcp6),
    udp = wrapped(real.udp), udp4 = wrapped(real.udp4), udp6 = wrapped(real.udp6),
    connect = connect_with(wrapped(real.tcp)),
    connect4 = connect_with(wrapped(real.tcp4)), connect6 = connect_with(wrapped(real.tcp6)),
    bind = bind_with(wrapped(real.tcp4), wrapped(real.tcp6)),
  }
end

local client_socket = setmetatable({ _DEBUG = true }, { __index = real })
for name, f in pairs(ctor) do
  client_socket[name] = function(...) return proxies(f(...)) end
end

---------------------------------------------------------------------------------------------
-- The client's environment: its global functions are intercepted as it defines them.

local CHUNK = "@testclnt.lua"
local Fail = {}  -- metatable marking fail()'s errors
local results, current, depth, section = {}, nil, 0, "start"
local counts = { run = 0, passed = 0, failed = 0, skipped = 0 }
local skip = { connect_timeout = "connects to 10.0.0.1:81: loopback only" }

local function where()  -- the client's innermost line on the stack
  for level = 3, 60 do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.source == CHUNK and info.currentline > 0 then return "testclnt.lua:" .. info.currentline end
  end
  return "?"
end

local function handler(e)
  if getmetatable(e) == Fail then return { msg = "fail: " .. e.msg, at = where() } end
  return { msg = tostring(e), at = where() }
end

local function describe(v)
  if type(v) == "string" then return string.format("%q", #v > 30 and v:sub(1, 27) .. "..." or v) end
  if type(v) == "table" and real_of[v] then
    local ok, fam = pcall(function() return v:getfamily() end)
    return tostring(v.class) .. (ok and fam and "/" .. tostring(fam) or "")
  end
  if type(v) == "table" then return "{" .. #v .. " items}" end
  return tostring(v)
end

local function label(name, ...)
  local args = pack(...)
  for i = 1, args.n do args[i] = describe(args[i]) end
  return name .. "(" .. table.concat(args, ", ", 1, args.n) .. ")"
end

local function report(rec)
  results[#results + 1] = rec
  local key = ({ pass = "passed", fail = "failed", skip = "skipped" })[rec.status]
  counts[key] = counts[key] + 1
  if rec.status ~= "skip" then counts.run = counts.run + 1 end
  io.stdout:write(string.format("RESULT %s %d [%s] %s%s%s\n", rec.status, #results, section, rec.name,
    rec.msg and " :: " .. rec.msg:gsub("\n", " | ") or "",
    rec.status ~= "skip" and string.format(" (pass lines %d, warnings %d, %.2fs)", rec.passes, rec.warns,
      rec.time) or ""))
end

-- Closes what the check opened, ending its waits with "closed" (corio modes only).
local function watchdog(rec)
  if not corio then return nil end
  return corio.after(limit, function()
    if current ~= rec then return end
    rec.watchdog = true
    for _, obj in ipairs(opened) do pcall(function() obj:close() end) end
  end)
end

local function check(name, f)
  return function(...)
    if depth > 0 then return f(...) end
    local rec = { name = label(name, ...), passes = 0, warns = 0, time = 0 }
    if skip[name] then
      rec.status, rec.msg = "skip", skip[name]
      report(rec)
      return
    end
    io.stdout:write("START ", rec.name, "\n")
    current, depth, opened = rec, 1, {}
    local timer = watchdog(rec)
    local t = gettime()
    local r = pack(xpcall(f, handler, ...))
    rec.time = gettime() - t
    if timer then timer:cancel() end
    current, depth = nil, 0
    if r[1] then
      rec.status = "pass"
      report(rec)
      return unpack(r, 2, r.n)
    end
    rec.status = "fail"
    local msg, at = r[2].msg, r[2].at
    rec.msg = (msg:find(at .. ":", 1, true) and msg or msg .. " (" .. at .. ")")
      .. (rec.watchdog and " [watchdog: its sockets closed after " .. limit .. "s]" or "")
    report(rec)
  end
end

local env = setmetatable({}, { __index = _G })
rawset(env, "host", host)
rawset(env, "port", port)
rawset(env, "require", function(name)
  if name == "socket" then return client_socket end
  return require(name)
end)

local helpers = {
  fail = function(orig)
    return function(...)
      local ok, msg = pcall(string.format, ...)
      msg = ok and msg or tostring((...))
      io.stderr:write("ERROR: ", msg, "!\n")
      error(setmetatable({ msg = msg }, Fail), 0)
    end
  end,
  pass = function(orig)
    return function(...)
      if current then current.passes = current.passes + 1 end
      return orig(...)
    end
  end,
  test = function(orig)
    return function(name, ...)
      section = tostring(name):gsub("[:%s]+$", "")
      return orig(name, ...)
    end
  end,
  warn = function(orig)
    return function(...)
      if current then current.warns = current.warns + 1 end
      return orig(...)
    end
  end,
  printf = function(orig) return orig end,
}

getmetatable(env).__newindex = function(t, k, v)
  if type(v) == "function" and type(k) == "string" then
    v = helpers[k] and helpers[k](v) or check(k, v)
  end
  rawset(t, k, v)
end

---------------------------------------------------------------------------------------------

local file = assert(io.open(path, "rb"))
local source = file:read("*a")
file:close()
local chunk
if setfenv then
  chunk = assert(loadstring(source, CHUNK))
  setfenv(chunk, env)
else
  chunk = assert(load(source, CHUNK, "t", env))
end

for _, n in ipairs(notes) do io.stdout:write("NOTE ", n, "\n") end
local done, outcome
local function main()
  outcome = pack(xpcall(chunk, handler))
  done = true
end
if corio then
  corio.spawn(main)  -- every wait of the client yields to corio's loop
  corio.run()
else
  main()
end

if not done then
  io.stdout:write("ABORTED the client's thread did not finish (corio.run returned)\n")
elseif not outcome[1] then
  io.stdout:write("ABORTED at top level: ", outcome[2].msg, " (", outcome[2].at, ")\n")
end
io.stdout:write(string.format("SUMMARY mode=%s lua=%s run=%d passed=%d failed=%d skipped=%d\n", mode,
  jit and jit.version or _VERSION, counts.run, counts.passed, counts.failed, counts.skipped))
os.exit((done and outcome[1]) and 0 or 2)
