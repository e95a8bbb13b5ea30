-- LuaSocket parity at run time: every scenario runs three times — on real LuaSocket
-- sockets (Debian's lua-socket, the reference), on corio's own sockets and on corio.wrap()ed
-- LuaSocket sockets — and everything observable must be the same in the three runs: every
-- return value, how many there are (select('#')), their types (math.type on 5.4), error
-- messages of pcall'ed calls, classes, dirty(), getstats, gettimeout, getfamily ...
--
-- The scenario code is the same for the three: corio calls made outside a coroutine block
-- while they run the loop, like LuaSocket's. The peer of each conversation is a real LuaSocket
-- socket used sequentially in this thread: the kernel buffers for both sides (a connect
-- completes into the listen backlog before accept; data sent waits until received). Loopback
-- only; every wait is bounded (timeouts of 0.05 to 1 s).
--
-- What is inherently different (descriptor numbers, addresses in tostring, ephemeral ports,
-- ages) is normalised: replaced by its type, or by a comparison made inside the scenario.
-- Where corio differs from LuaSocket on purpose, R:decided states both values (LuaSocket's and
-- corio's) and each run is checked against its own. Differences not decided are recorded with
-- R:known and marked -- KNOWN: a mismatch there makes the test pending instead of failing.
local socket = require "socket"
local unix_ok, sunix = pcall(require, "socket.unix")
local corio = require "corio"

local unpack = table.unpack or unpack
local function pack(...) return { n = select("#", ...), ... } end
local mtype = math.type or function(v) return type(v) end  -- LuaJIT: just "number"

---------------------------------------------------------------------------------------------
-- The three ways of making sockets.

local function lunix() return sunix.stream() end
local function wrapped(make)
  return function(...)
    local s, err = make(...)
    if not s then return s, err end
    return corio.wrap(s)
  end
end

local APIS = {
  {
    name = "luasocket",
    tcp = socket.tcp, tcp4 = socket.tcp4, tcp6 = socket.tcp6,
    udp = socket.udp, udp4 = socket.udp4, udp6 = socket.udp6,
    unix = unix_ok and lunix or nil,
    connect = socket.connect,
    bind = socket.bind,
  },
  {
    name = "native",
    tcp = corio.tcp, tcp4 = corio.tcp4, tcp6 = corio.tcp6,
    udp = corio.udp, udp4 = corio.udp4, udp6 = corio.udp6,
    unix = corio.unix,
    connect = corio.connect,
    bind = corio.bind,
  },
  {
    name = "wrap",
    tcp = wrapped(socket.tcp), tcp4 = wrapped(socket.tcp4), tcp6 = wrapped(socket.tcp6),
    udp = wrapped(socket.udp), udp4 = wrapped(socket.udp4), udp6 = wrapped(socket.udp6),
    unix = unix_ok and wrapped(lunix) or nil,
    -- LuaSocket's own socket.connect, its result wrapped (the wrapper takes the connected object)
    connect = function(...)
      local s, err = socket.connect(...)
      if not s then return s, err end
      return corio.wrap(s)
    end,
    bind = function(...)
      local s, err = socket.bind(...)
      if not s then return s, err end
      return corio.wrap(s)
    end,
  },
}
for _, api in ipairs(APIS) do api.corio = api.name ~= "luasocket" end

---------------------------------------------------------------------------------------------
-- Describing values. A masked value stands for one that differs by nature between runs
-- (a port, a descriptor): only its description (its type, usually) is compared.

local Masked = {}
local function masked(desc) return setmetatable({ desc = desc }, Masked) end
local function typeof(v) return type(v) == "number" and mtype(v) or type(v) end

local describe_value
local function describe_table(t, seen)
  if seen[t] then return "<cycle>" end
  seen[t] = true
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. describe_value(t[k], seen) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

function describe_value(v, seen)
  local t = type(v)
  if t == "number" then
    if v ~= v then return typeof(v) .. " nan" end
    return typeof(v) .. " " .. (v == math.floor(v) and math.abs(v) < 2 ^ 53 and ("%d"):format(v) or ("%.17g"):format(v))
  elseif t == "string" then
    -- an error message raised from a line of this file carries that line: the same in the
    -- three runs, but dropped to keep reports short
    return ("%q"):format((v:gsub("^[^\n:]*luasocket_parity_spec%.lua:%d+: ", "")))
  elseif t == "userdata" then
    local ok, class = pcall(function() return v.class end)
    return "userdata " .. (ok and tostring(class) or "?")
  elseif t == "table" then
    if getmetatable(v) == Masked then return "<" .. v.desc .. ">" end
    return describe_table(v, seen or {})
  end
  if t == "function" or t == "thread" then return t end  -- whatever its address
  return tostring(v)  -- nil, boolean
end

local function describe_pack(r)
  local parts = {}
  for i = 1, r.n do parts[i] = describe_value(r[i]) end
  return r.n .. ": " .. table.concat(parts, ", ")
end

---------------------------------------------------------------------------------------------
-- The recorder a scenario writes its observations to.

local Recorder = {}
Recorder.__index = Recorder

local function new_recorder(api)
  return setmetatable({ api = api, entries = {}, failures = {}, opened = {} }, Recorder)
end

-- R(label, ...): the values of ... are what must be the same in the three runs.
function Recorder:__call(label, ...)
  self.entries[#self.entries + 1] = { label = label, desc = describe_pack(pack(...)) }
  return ...
end

-- R:known(reason, label, ...): as R(label, ...), but a difference is corio's known one.
function Recorder:known(reason, label, ...)
  self.entries[#self.entries + 1] = { label = label, desc = describe_pack(pack(...)), known = reason }
  return ...
end

-- R:decided(label, luasocket, corio, ...): where corio differs from LuaSocket on purpose.
-- luasocket and corio are packs (V(...)) of what each gives; the values are checked against
-- the one of this run.
function Recorder:decided(label, luasocket_values, corio_values, ...)
  local want = describe_pack(self.api.corio and corio_values or luasocket_values)
  local got = describe_pack(pack(...))
  if want ~= got then
    self.failures[#self.failures + 1] = ("%s [%s]: expected %s, got %s"):format(label, self.api.name, want, got)
  end
  self.entries[#self.entries + 1] = { label = label, desc = "(decided)" }
  return ...
end

-- A pcall'ed call: ok, message (or results), as observed.
function Recorder:pcall(label, f, ...)
  return self(label, pcall(f, ...))
end

-- Keeps a socket to close when the scenario ends (whatever happens).
function Recorder:keep(s)
  if s then self.opened[#self.opened + 1] = s end
  return s
end

local V = pack

-- Replaces the values at the given positions by their description (masked).
local function mask(positions, ...)
  local r = pack(...)
  for i, what in pairs(positions) do
    if i <= r.n then r[i] = masked(what .. " " .. typeof(r[i])) end
  end
  return unpack(r, 1, r.n)
end
-- ip, port, family with the port masked (errors, nil and a message, as they are)
local function named(...)
  if (...) == nil then return ... end
  return mask({ [2] = "port" }, ...)
end
-- A descriptor: its type, and whether it is one (>= 0)
local function fd_ok(fd) return masked("fd " .. typeof(fd) .. (fd >= 0 and "" or " " .. tostring(fd))) end

---------------------------------------------------------------------------------------------
-- Running a scenario three times and comparing.

local function run_scenario(api, scenario)
  local R = new_recorder(api)
  local ok, err = xpcall(scenario, debug.traceback, R, api)
  for i = #R.opened, 1, -1 do pcall(R.opened[i].close, R.opened[i]) end
  if not ok then error(("[%s] scenario raised: %s"):format(api.name, tostring(err)), 0) end
  return R
end

local function parity(scenario, needs)
  local runs = {}
  for _, api in ipairs(APIS) do
    if needs and not api[needs] then return pending("no socket.unix in this LuaSocket") end
    runs[#runs + 1] = run_scenario(api, scenario)
  end
  local failures, known, reasons = {}, {}, {}
  local function note_known(reason, line)
    if not known[reason] then
      known[reason] = { first = line, n = 0 }
      reasons[#reasons + 1] = reason
    end
    known[reason].n = known[reason].n + 1
  end
  local ref = runs[1]
  if os.getenv("PARITY_DUMP") then  -- PARITY_DUMP=1: every observation of the three runs
    for i, e in ipairs(ref.entries) do
      io.stderr:write(("%3d %-40s %s\n"):format(i, e.label, e.desc))
      for k = 2, #runs do
        local o = runs[k].entries[i]
        if o and o.desc ~= e.desc then io.stderr:write(("    %-40s %s\n"):format(runs[k].api.name, o.desc)) end
      end
    end
  end
  for _, R in ipairs(runs) do
    for _, f in ipairs(R.failures) do failures[#failures + 1] = f end
  end
  for k = 2, #runs do
    local R = runs[k]
    local last_known  -- a known difference may change what the scenario goes on to observe
    for i = 1, math.max(#ref.entries, #R.entries) do
      local a, b = ref.entries[i], R.entries[i]
      if not a or not b or a.label ~= b.label then
        local line = ("[%s] observation %d: %s in LuaSocket's run, %s in this one"):format(R.api.name, i,
          a and a.label or "nothing", b and b.label or "nothing")
        if last_known then note_known(last_known, line) else failures[#failures + 1] = line end
        break
      end
      if a.desc ~= b.desc then
        local line = ("%s [%s]: LuaSocket %s; corio %s"):format(a.label, R.api.name, a.desc, b.desc)
        local reason = a.known or b.known
        if reason then
          note_known(reason, line)
          last_known = reason
        else
          failures[#failures + 1] = line
        end
      end
    end
  end
  if #failures > 0 then error("differences from LuaSocket:\n  " .. table.concat(failures, "\n  "), 0) end
  if #reasons > 0 then
    local lines = {}
    for _, reason in ipairs(reasons) do
      lines[#lines + 1] = ("KNOWN: %s (%d difference%s), e.g. %s"):format(reason, known[reason].n,
        known[reason].n > 1 and "s" or "", known[reason].first)
    end
    pending(table.concat(lines, "\n"))
  end
end

---------------------------------------------------------------------------------------------
-- Peers: real LuaSocket sockets, on 127.0.0.1.

local function peer_server()
  local srv = assert(socket.bind("127.0.0.1", 0))
  srv:settimeout(1)
  local _, port = srv:getsockname()
  return srv, tonumber(port)
end

local function peer_connect(port)
  local p = socket.tcp()
  p:settimeout(1)
  assert(p:connect("127.0.0.1", port))
  return p
end

-- A port nothing listens on.
local function free_port()
  local srv, port = peer_server()
  srv:close()
  return port
end

-- A scenario's connected client under test, and its LuaSocket peer.
local function client(R, api)
  local srv, port = peer_server()
  local c = R:keep(assert(api.tcp()))
  c:settimeout(1)
  assert(c:connect("127.0.0.1", port))
  local p = R:keep(assert(srv:accept()))
  srv:close()
  p:settimeout(1)
  return c, p
end

-- A scenario's listening server under test (tcp{server}) and its port.
local function server(R, api)
  local s = R:keep(assert(api.tcp()))
  assert(s:bind("127.0.0.1", 0))
  assert(s:listen())
  s:settimeout(1)
  local _, port = s:getsockname()
  return s, tonumber(port)
end

local function udp_peer()
  local u = assert(socket.udp())
  assert(u:setsockname("127.0.0.1", 0))
  u:settimeout(1)
  local _, port = u:getsockname()
  return u, tonumber(port)
end

local function elapsed(f, ...)
  local t0 = socket.gettime()
  local r = pack(f(...))
  return socket.gettime() - t0, unpack(r, 1, r.n)
end

---------------------------------------------------------------------------------------------

describe("LuaSocket parity (LuaSocket, corio, corio.wrap)", function()
  -- every method name either kind has, LuaSocket's and corio's
  local NAMES = { "accept", "bind", "close", "connect", "dirty", "getfamily", "getfd", "getoption", "getpeername",
    "getsockname", "getstats", "setstats", "gettimeout", "listen", "receive", "receivefrom", "send", "sendto",
    "setfd", "setoption", "setpeername", "setsockname", "settimeout", "shutdown",
    "receivesome", "setthrottle", "getthrottle", "setlimit" }
  -- corio's own methods, on purpose (LuaSocket has none of them on that kind)
  local EXTRAS = {
    tcp = { receivesome = true, setthrottle = true, getthrottle = true, setlimit = true },
    udp = { setthrottle = true, getthrottle = true, getstats = true, setstats = true },
    unixstream = { receivesome = true, setthrottle = true, getthrottle = true, setlimit = true,
      getpeername = true, getfamily = true, gettimeout = true, getoption = true },
  }

  local function methods(R, label, s, kind)
    R(label .. " class", s.class)
    R(label .. " tostring", (tostring(s):gsub("0x%x+$", "<address>")))
    for _, name in ipairs(NAMES) do
      if EXTRAS[kind][name] then
        R:decided(label .. "." .. name, V("nil"), V("function"), type(s[name]))
      elseif kind == "udp" and name == "accept" then
        -- KNOWN: the wrapper's own accept is on every kind (calling it on udp raises
        -- "udp{unconnected} expected"; LuaSocket: attempt to call a nil value)
        R(label .. "." .. name, type(s[name]))
      else
        R(label .. "." .. name, type(s[name]))
      end
    end
  end

  describe("classes and methods", function()
    it("every tcp class has all of tcp's methods", function()
      parity(function(R, api)
        local m = R:keep(api.tcp())
        methods(R, "tcp()", m, "tcp")
        methods(R, "tcp4()", R:keep(api.tcp4()), "tcp")
        methods(R, "tcp6()", R:keep(api.tcp6()), "tcp")
        local c = client(R, api)
        methods(R, "client", c, "tcp")
        local s = server(R, api)
        methods(R, "server", s, "tcp")
      end)
    end)

    it("every udp class has all of udp's methods", function()
      parity(function(R, api)
        local u = R:keep(api.udp())
        methods(R, "udp()", u, "udp")
        methods(R, "udp4()", R:keep(api.udp4()), "udp")
        methods(R, "udp6()", R:keep(api.udp6()), "udp")
        local _, port = udp_peer()
        R("setpeername", u:setpeername("127.0.0.1", port))
        methods(R, "connected", u, "udp")
      end)
    end)

    it("every unixstream class has all of unixstream's methods", function()
      parity(function(R, api)
        local path = os.tmpname()
        os.remove(path)
        local m = R:keep(api.unix())
        methods(R, "unix()", m, "unixstream")
        R("bind", m:bind(path))
        R("listen", m:listen())
        methods(R, "server", m, "unixstream")
        local c = R:keep(api.unix())
        R("connect", c:connect(path))
        methods(R, "client", c, "unixstream")
        m:settimeout(1)
        -- KNOWN: a corio.wrap()ped unixstream server's accept fails with "Operation not
        -- supported" (lwrap.cpp's AcceptOp calls the fresh object's close with an extra argument)
        local a = R:keep(R("accept", m:accept()))
        if a then methods(R, "accepted", a, "unixstream") end
        os.remove(path)
      end, "unix")
    end)

    -- methods reserved to one class, called on the others (LuaSocket's checkclass)
    local RESERVED = {
      tcp = { accept = "server", bind = "master", listen = "master", receive = "client", send = "client",
        getstats = "client", setstats = "client", shutdown = "client" },
      udp = { send = "connected", sendto = "unconnected", receivefrom = "unconnected",
        setsockname = "unconnected", getpeername = "connected" },
      unixstream = { accept = "server", bind = "master", listen = "master", connect = "master",
        setpeername = "master", setsockname = "master", receive = "client", send = "client",
        getstats = "client", setstats = "client", shutdown = "client" },
    }
    -- a function calling s:name() (so the error message says "calling 'name' on bad self")
    local calls = {}
    local function method_call(name)
      calls[name] = calls[name] or assert(load("local s = ... return s:" .. name .. "()", "=call"))
      return calls[name]
    end
    local function wrong_class_calls(R, kind, objects)
      local names = {}
      for name in pairs(RESERVED[kind]) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        for _, role in ipairs({ "master", "client", "server", "unconnected", "connected" }) do
          local s = objects[role]
          if s and role ~= RESERVED[kind][name] then
            -- a method call (the message names the method) and a plain call
            R:pcall(kind .. " " .. role .. ":" .. name .. "()", method_call(name), s)
            R:pcall(kind .. " " .. role .. "." .. name .. "()", s[name], s)
          end
        end
      end
    end

    it("a tcp method of another class raises LuaSocket's argument error", function()
      parity(function(R, api)
        local c = client(R, api)
        local s = server(R, api)
        wrong_class_calls(R, "tcp", { master = R:keep(api.tcp()), client = c, server = s })
        R("classes after", c.class, s.class)
      end)
    end)

    it("a udp method of another class raises LuaSocket's argument error", function()
      parity(function(R, api)
        local _, port = udp_peer()
        local connected = R:keep(api.udp())
        assert(connected:setpeername("127.0.0.1", port))
        wrong_class_calls(R, "udp", { unconnected = R:keep(api.udp()), connected = connected })
      end)
    end)

    it("a unixstream method of another class raises LuaSocket's argument error", function()
      parity(function(R, api)
        local path = os.tmpname()
        os.remove(path)
        local s = R:keep(api.unix())
        assert(s:bind(path))
        assert(s:listen())
        s:settimeout(1)
        local c = R:keep(api.unix())
        assert(c:connect(path))
        -- KNOWN: see above (wrapped unixstream accept)
        local a = R:keep(R("accept", s:accept()))
        wrong_class_calls(R, "unixstream", { master = R:keep(api.unix()), client = c, server = s })
        if a then R("accepted", a.class) end
        os.remove(path)
      end, "unix")
    end)

    it("a method given a socket of another kind, or no socket, raises LuaSocket's error", function()
      parity(function(R, api)
        local t, u = R:keep(api.tcp()), R:keep(api.udp())
        local c = client(R, api)
        for _, name in ipairs({ "close", "getfd", "settimeout", "getsockname", "dirty" }) do
          -- KNOWN: corio's group methods take any corio socket (LuaSocket: "tcp{any} expected")
          R("tcp." .. name .. "(udp)", pcall(t[name], u))
          R("udp." .. name .. "(tcp)", pcall(u[name], t))
          -- KNOWN: corio's words for what is no socket at all are its own
          R("tcp." .. name .. "({})", pcall(t[name], {}))
        end
        -- KNOWN: a class method names the class of the object's own kind
        R("tcp client.receive(udp)", pcall(c.receive, u))
        R("udp.sendto(tcp)", pcall(u.sendto, c, "x", "127.0.0.1", 1))
      end)
    end)
  end)

  describe("receive", function()
    it("every pattern, with and without a prefix", function()
      parity(function(R, api)
        local c, p = client(R, api)
        R("peer send", p:send("line1\r\nline2\nabcdefghijklm\nop\r\rx\n"))
        R("receive()", c:receive())
        R("receive('*l', prefix)", c:receive("*l", "pre:"))
        R("receive(3)", c:receive(3))
        R("receive(3, 'xy') reads 1", c:receive(3, "xy"))
        R("receive(2, 'xyz') prefix already longer", c:receive(2, "xyz"))
        R("receive(3, 'xyz') prefix exactly n", c:receive(3, "xyz"))
        R("receive(0, 'p')", c:receive(0, "p"))
        R("receive('3') numeric string", c:receive("3"))
        R("receive(0) with data buffered", c:receive(0))
        R("dirty", c:dirty())
        R("receive(1.9) truncated count", c:receive(1.9))
        R("receive(nil, 'n:')", c:receive(nil, "n:"))
        R("receive('*l') drops every CR", c:receive("*l"))
        R("dirty after", c:dirty())
        R("peer send", p:send("12345"))
        c:settimeout(0.05)
        R("receive('*a') while the peer is open", c:receive("*a", ">"))
        R("peer send", p:send("tail"))
        R("receive('*all') reads only '*a'", c:receive("*all"))
        R("peer close", p:close())
        R("receive('*a') again at the end", c:receive("*a"))
        R("receive('*a', prefix) at the end", c:receive("*a", "pfx"))
      end)
    end)

    it("patterns without '*' ('l', 'a'), corio's superset", function()
      parity(function(R, api)
        local c, p = client(R, api)
        R("peer send", p:send("one\ntwo"))
        p:close()
        -- LuaSocket raises its argument error, as for any invalid pattern (worded per interpreter)
        local invalid = V(pcall(function() return c:receive("*x") end))
        R:decided("receive('l')", invalid, V(true, "one", nil, nil), pcall(function() return c:receive("l") end))
        if not api.corio then c:receive("*l") end  -- what the corio runs read
        R:decided("receive('a')", invalid, V(true, "two", nil, nil), pcall(function() return c:receive("a") end))
        if not api.corio then c:receive("*a") end
        R("after", c:receive())
      end)
    end)

    it("rejects invalid patterns with LuaSocket's errors", function()
      parity(function(R, api)
        local c = client(R, api)
        c:settimeout(0.05)
        R:pcall("receive('*x')", function() return c:receive("*x") end)
        R:pcall("receive('x')", function() return c:receive("x") end)
        R:pcall("receive(-1)", function() return c:receive(-1) end)
        R:pcall("receive({})", function() return c:receive({}) end)
        R:pcall("receive(true)", function() return c:receive(true) end)
        R:pcall("receive('*l', {})", function() return c:receive("*l", {}) end)
        R:pcall("receive('*l', 5) numeric prefix", function() return c:receive("*l", 5) end)
        R:pcall("receive('')", function() return c:receive("") end)
        R:pcall("receive('*L')", function() return c:receive("*L") end)
        R:pcall("receive('*line') is '*l'", function() return c:receive("*line") end)
      end)
    end)

    it("the partial retry loop yields exactly n bytes, data arriving in two segments", function()
      parity(function(R, api)
        local c, p = client(R, api)
        c:settimeout(0.05)
        p:send("abc")
        local segments = { "defXYZ\n" }
        local s, err, part
        local rounds = 0
        repeat
          rounds = rounds + 1
          s, err, part = c:receive(6, part)
          R("round " .. rounds, s, err, part)
          if err == "timeout" and segments[1] then p:send(table.remove(segments, 1)) end
        until s or err ~= "timeout" or rounds > 5
        R("rounds", rounds)
        R("next record left unread", c:receive())
        -- the same with a line
        p:send("par")
        s, err, part = c:receive("*l")
        R("line round 1", s, err, part)
        p:send("tial\nnext\n")
        R("line round 2", c:receive("*l", part))
        R("next line", c:receive())
      end)
    end)

    it("receive(0): timeout when idle, '' with data, closed after the peer closes", function()
      parity(function(R, api)
        local c, p = client(R, api)
        c:settimeout(0.05)
        R("idle", c:receive(0))
        R("idle with prefix", c:receive(0, "pre"))
        p:send("z")
        R("with data", c:receive(0))
        R("dirty", c:dirty())
        R("the byte", c:receive(1))
        p:close()
        R("after peer close", c:receive(0))
        R("again", c:receive(0))
      end)
    end)

    it("'*a' at the end of the stream, twice", function()
      parity(function(R, api)
        local c, p = client(R, api)
        p:send("all of it\r\n")
        p:close()
        R("first", c:receive("*a"))
        R("second", c:receive("*a"))
        R("third, prefix", c:receive("*a", "p"))
        R("line", c:receive())
        R("count", c:receive(3, "ab"))
        R("count covered by the prefix", c:receive(2, "ab"))
      end)
    end)

    it("every pattern after its own close(), nothing buffered", function()
      parity(function(R, api)
        local c = client(R, api)
        R("close", c:close())
        R("close again", c:close())
        R("class", c.class)
        R("dirty", c:dirty())
        R("receive()", c:receive())
        R("receive('*l', prefix)", c:receive("*l", "pre"))
        R("receive('*a')", c:receive("*a"))
        R("receive('*a', prefix)", c:receive("*a", "pre"))
        R("receive(5)", c:receive(5))
        R("receive(5, prefix)", c:receive(5, "pre"))
        R("receive(2, prefix) covered", c:receive(2, "pre"))
        R("receive(0)", c:receive(0))
        R("receive(0, prefix)", c:receive(0, "pre"))
        R("getfd", c:getfd())
      end)
    end)

    it("every pattern after its own close(), bytes still buffered", function()
      parity(function(R, api)
        local c, p = client(R, api)
        p:send("ab\ncd\nefgh\nij")
        R("first line", c:receive())  -- the rest is buffered now
        R("dirty", c:dirty())
        R("close", c:close())
        R("dirty after close", c:dirty())
        R("line", c:receive())
        R("count", c:receive(1))
        R("count with prefix", c:receive(2, "<"))
        R("line rest", c:receive("*l"))
        R("'*a' the rest", c:receive("*a"))
        R("'*a' again", c:receive("*a"))
        R("dirty at last", c:dirty())
        local c2, p2 = client(R, api)
        p2:send("xy")
        c2:settimeout(0.05)
        R("timeout", c2:receive())
        p2:send("z\nw")
        R("count", c2:receive(2, "?"))  -- "\nw" buffered after it
        c2:close()
        R("line of what is left", c2:receive())
        R("partial line of what is left", c2:receive())
        local c3, p3 = client(R, api)
        p3:send("12345")
        R("count", c3:receive(2))
        c3:close()
        R("count larger than the rest", c3:receive(5))
        R("then", c3:receive(0))
      end)
    end)
  end)

  describe("send", function()
    it("returns the last index, with i and j as LuaSocket's arithmetic", function()
      parity(function(R, api)
        local c, p = client(R, api)
        R("send", c:send("hello"))
        R("send(2, 4)", c:send("hello", 2, 4))
        R("send(3)", c:send("hello", 3))
        R("send(-2, -2)", c:send("hello", -2, -2))
        R("send(-100)", c:send("hello", -100))
        R("send(3, 2) empty", c:send("hello", 3, 2))
        R("send('')", c:send(""))
        R("send(1, 99)", c:send("hello", 1, 99))
        R("send(0)", c:send("hello", 0))
        R("send(6) past the end", c:send("hello", 6))
        R("send(10) far past the end", c:send("hello", 10))
        R("send(2.7, 3.2) truncated", c:send("hello", 2.7, 3.2))
        R("send('2', '3') numeric strings", c:send("hello", "2", "3"))
        R("send(42) a number", c:send(42))
        R("send(1, -6)", c:send("hello", 1, -6))
        R:pcall("send({})", function() return c:send({}) end)
        R:pcall("send()", function() return c:send() end)
        R:pcall("send('x', 'a')", function() return c:send("x", "a") end)
        R("received", p:receive(5 + 3 + 3 + 1 + 5 + 5 + 5 + 1 + 1 + 2 + 2))
        R("getstats", mask({ [3] = "age" }, c:getstats()))
      end)
    end)

    it("after its own close, and to a peer that closed", function()
      parity(function(R, api)
        local c, p = client(R, api)
        c:close()
        R("send", c:send("data"))
        R("send(3)", c:send("data", 3))
        R("send('')", c:send(""))
        local c2, p2 = client(R, api)
        p2:close()
        local ok, err, last
        for _ = 1, 200 do
          ok, err, last = c2:send(("x"):rep(65536))
          if not ok then break end
          socket.sleep(0.001)
        end
        R("send to a closed peer", ok, err, mask({ "last" }, last))
        R("index of a failed send", type(last) == "number" and last >= 0 and last <= 65536)
        if p then p:close() end
        -- more than the kernel buffers, the peer not reading: timeout with the last index sent
        local c3, p3 = client(R, api)
        c3:settimeout(0.1)
        local data = ("z"):rep(16 * 1024 * 1024)
        local t, ok3, err3, last3 = elapsed(c3.send, c3, data, 3)
        R("send timing out", ok3, err3, mask({ "last" }, last3), t >= 0.09 and t < 2)
        R("its index", last3 > 3 and last3 < #data)
        p3:settimeout(0.5)
        local got = 0
        repeat
          local d, e, part = p3:receive(65536)
          got = got + #(d or part)
        until got >= last3 - 2 or e
        R("the peer gets what was sent", got == last3 - 2)
      end)
    end)
  end)

  describe("settimeout and gettimeout", function()
    it("keep block and total apart, as given", function()
      parity(function(R, api)
        local function all(label, s)
          R(label .. " fresh", s:gettimeout())
          R(label .. " settimeout(1.5)", s:settimeout(1.5))
          R(label .. " b", s:gettimeout())
          R(label .. " settimeout(0.25, 't')", s:settimeout(0.25, "t"))
          R(label .. " b t", s:gettimeout())
          R(label .. " settimeout(2, 'r')", s:settimeout(2, "r"))
          R(label .. " r", s:gettimeout())
          R(label .. " settimeout(3, 'block')", s:settimeout(3, "block"))
          R(label .. " settimeout(4, 'total')", s:settimeout(4, "total"))
          R(label .. " words", s:gettimeout())
          R(label .. " settimeout(nil)", s:settimeout(nil))
          R(label .. " settimeout(-5, 't')", s:settimeout(-5, "t"))
          R(label .. " negative kept", s:gettimeout())
          R(label .. " settimeout('0.5')", s:settimeout("0.5"))
          R(label .. " settimeout(1, nil)", s:settimeout(1, nil))
          R(label .. " numeric string", s:gettimeout())
          R(label .. " settimeout(0)", s:settimeout(0))
          R(label .. " zero", s:gettimeout())
          R:pcall(label .. " settimeout(1, 'x')", function() return s:settimeout(1, "x") end)
          R:pcall(label .. " settimeout(1, '')", function() return s:settimeout(1, "") end)
          R:pcall(label .. " settimeout('x')", function() return s:settimeout("x") end)
          R:pcall(label .. " settimeout({})", function() return s:settimeout({}) end)
          R:pcall(label .. " settimeout(1, 5)", function() return s:settimeout(1, 5) end)
          R(label .. " after the errors", s:gettimeout())
        end
        all("tcp", R:keep(api.tcp()))
        all("client", (client(R, api)))
        all("udp", R:keep(api.udp()))
      end)
    end)

    it("the wait is the smaller of block and total", function()
      parity(function(R, api)
        local c, p = client(R, api)
        c:settimeout(5)
        c:settimeout(0.1, "t")
        local t, ok, err, part = elapsed(c.receive, c)
        R("block 5, total 0.1", ok, err, part, t >= 0.09 and t < 1)
        c:settimeout(0.1)
        c:settimeout(5, "t")
        t, ok, err, part = elapsed(c.receive, c, 10)
        R("block 0.1, total 5", ok, err, part, t >= 0.09 and t < 1)
        c:settimeout(0)
        c:settimeout(-1, "t")
        t, ok, err, part = elapsed(c.receive, c, "*a")
        R("block 0", ok, err, part, t < 0.05)
        p:send("x")
        socket.sleep(0.02)
        -- KNOWN: after a receive that found nothing, a receive with a zero timeout does not
        -- read the bytes that arrived meanwhile (it times out; the call after gets them) unless
        -- the loop ran in between (see tcp_spec)
        R("block 0 with data",
          c:receive(1))
      end)
    end)
  end)

  describe("getfamily, getsockname and getpeername", function()
    it("give LuaSocket's shapes and families", function()
      parity(function(R, api)
        local m = R:keep(api.tcp())
        R("tcp() getfamily", m:getfamily())
        R("tcp() getsockname", m:getsockname())
        R("tcp() getpeername", m:getpeername())
        local m4 = R:keep(api.tcp4())
        R("tcp4() getfamily", m4:getfamily())
        R("tcp4() getsockname before bind", m4:getsockname())
        R("tcp4() getpeername", m4:getpeername())
        R("bind", m4:bind("127.0.0.1", 0))
        R("tcp4() getsockname", named(m4:getsockname()))
        local m6 = R:keep(api.tcp6())
        R("tcp6() getfamily", m6:getfamily())
        R("tcp6() bind ::1", m6:bind("::1", 0))
        R("tcp6() getsockname", named(m6:getsockname()))
        -- KNOWN: an address of the other family: getaddrinfo's EAI_ADDRFAMILY for LuaSocket
        R("tcp6() bind 127.0.0.1",
          R:keep(api.tcp6()):bind("127.0.0.1", 0))
        R("tcp() bind", m:bind("127.0.0.1", 0))
        R("tcp() after bind getfamily", m:getfamily())
        R("tcp() after bind getsockname", named(m:getsockname()))
        local c, p = client(R, api)
        R("client getfamily", c:getfamily())
        R("client getpeername", named(c:getpeername()))
        R("client getsockname", named(c:getsockname()))
        local _, pport = p:getsockname()
        local _, cport = c:getpeername()
        R("client getpeername port is the peer's", tonumber(pport) == cport)
        local s, port = server(R, api)
        R("server getfamily", s:getfamily())
        R("server getsockname", named(s:getsockname()))
        R("server getpeername", s:getpeername())
        local pc = R:keep(peer_connect(port))
        local a = R:keep(s:accept())
        R("accepted getfamily", a:getfamily())
        R("accepted getpeername", named(a:getpeername()))
        local _, aport = a:getpeername()
        local _, pcport = pc:getsockname()
        R("accepted getpeername port", aport == tonumber(pcport))
        c:close()
        R("closed getfamily", c:getfamily())
        R("closed getsockname", c:getsockname())
        R("closed getpeername", c:getpeername())
      end)
    end)

    it("tcp6 on ::1", function()
      parity(function(R, api)
        local s = R:keep(api.tcp6())
        R("bind", s:bind("::1", 0))
        R("listen", s:listen())
        s:settimeout(1)
        local _, port = s:getsockname()
        local c = R:keep(api.tcp())
        c:settimeout(1)
        R("connect ::1", c:connect("::1", port))
        R("client getfamily", c:getfamily())
        R("client getpeername", named(c:getpeername()))
        local a = R:keep(s:accept())
        R("accepted getfamily", a:getfamily())
        R("accepted getpeername", named(a:getpeername()))
        R("send", c:send("six\n"))
        R("receive", a:receive())
        local c4 = R:keep(api.tcp4())
        c4:settimeout(1)
        -- KNOWN: as for bind, LuaSocket says "Address family for hostname not supported"
        R("tcp4 connect ::1", c4:connect("::1", port))
        R("tcp4 class after", c4.class)
      end)
    end)
  end)

  describe("connect", function()
    it("refused: nil, 'connection refused', and a tcp{client} all the same", function()
      parity(function(R, api)
        local port = free_port()
        for _, make in ipairs({ "tcp4", "tcp" }) do
          local m = R:keep(api[make]())
          m:settimeout(1)
          R(make .. " connect", m:connect("127.0.0.1", port))
          R(make .. " class", m.class)
          R(make .. " getfd", fd_ok(m:getfd()))
          R(make .. " getfamily", m:getfamily())
          R(make .. " getoption('error')", m:getoption("error"))
          R(make .. " receive", m:receive())
          R(make .. " send", m:send("x"))
          R(make .. " getpeername", m:getpeername())
          if make == "tcp" then
            -- KNOWN: LuaSocket's tcp() keeps its family unspecified after a failed connect, so
            -- its next connect makes a fresh descriptor (refused again); corio's tries the
            -- failed descriptor again, as LuaSocket's tcp4() does ("closed").
            R(make .. " connect again", m:connect("127.0.0.1", port))
            R(make .. " receive after", m:receive())
          else
            R(make .. " connect again", m:connect("127.0.0.1", port))
            R(make .. " receive after", m:receive())
          end
          local srv, sport = peer_server()
          R(make .. " connect to a listener after a refusal", m:connect("127.0.0.1", sport))
          srv:close()
        end
        R("connect()", api.connect("127.0.0.1", port))
      end)
    end)

    it("a connected socket asked to connect again", function()
      parity(function(R, api)
        local c = client(R, api)
        local srv, port = peer_server()
        R("connect again", c:connect("127.0.0.1", port))
        R("class", c.class)
        R("setpeername", c:setpeername("127.0.0.1", port))
        srv:close()
      end)
    end)

    it("names that are no address: '*', '', unknown; bad ports", function()
      parity(function(R, api)
        local port = free_port()
        local function try(label, host, p)
          local m = R:keep(api.tcp())
          m:settimeout(0.5)
          R(label, m:connect(host, p))
          R(label .. " class", m.class)
        end
        try("connect('*')", "*", port)
        try("connect('')", "", port)
        try("connect(unknown name)", "no-such-host.invalid", port)
        -- glibc's getaddrinfo takes port 70000 as 70000 % 65536 (4464: "connection refused")
        -- and "" as port 0 ("connection refused"); corio takes them the same way
        local function bad_port(label, p)
          local m = R:keep(api.tcp())
          m:settimeout(0.5)
          R(label, m:connect("127.0.0.1", p))
          R(label .. " class", m.class)
        end
        bad_port("connect(port 70000)", 70000)
        bad_port("connect(port '')", "")
        for _, p in ipairs({ -1, "nosuchservice" }) do
          local m = R:keep(api.tcp())
          m:settimeout(0.5)
          local label = ("connect(port %q)"):format(p)
          R(label, m:connect("127.0.0.1", p))
          -- KNOWN: as above
          R(label .. " class", m.class)
        end
        local m = R:keep(api.tcp())
        R:pcall("connect(nil)", function() return m:connect(nil, port) end)
        R:pcall("connect(host)", function() return m:connect("127.0.0.1") end)
        R:pcall("connect({})", function() return m:connect({}, port) end)
        R("connect('*') function", api.connect("*", port))
        R("connect('') function", api.connect("", port))
        -- KNOWN: on LuaJIT LuaSocket's message names the function '?'; corio.connect, a Lua
        -- function raising its own message, says 'connect' (the same on Lua 5.4)
        R:known("corio.connect's bad family message names 'connect' on LuaJIT", "connect() bad family",
          pcall(function() return api.connect("127.0.0.1", port, nil, nil, "inet7") end))
        -- KNOWN: LuaSocket's socket.connect applies the family to the local bind only (without
        -- one it connects over any family); corio.connect's family chooses the socket
        R("connect() family inet6 to an IPv4 address",
          api.connect("127.0.0.1", port, nil, nil, "inet6"))
      end)
    end)

    it("with a zero timeout: 'timeout' at once, a tcp{client}, and the connection goes on", function()
      parity(function(R, api)
        local srv, port = peer_server()
        local c = R:keep(api.tcp())
        R("settimeout(0)", c:settimeout(0))
        R("connect", c:connect("127.0.0.1", port))
        R("class", c.class)
        socket.sleep(0.02)
        R("connect again: done", c:connect("127.0.0.1", port))
        R("connect a third time", c:connect("127.0.0.1", port))
        R("send", c:send("x"))
        R("receive", c:receive())
        local a = R:keep(srv:accept())
        R("the peer got it", a:receive(1))
        srv:close()
        local r = R:keep(api.tcp())
        r:settimeout(0)
        local port2 = free_port()
        R("refused, at first", r:connect("127.0.0.1", port2))
        socket.sleep(0.02)
        R("refused, then", r:connect("127.0.0.1", port2))
      end)
    end)

    it("connect(host, port, laddr, lport, family)", function()
      parity(function(R, api)
        local srv, port = peer_server()
        local lport = free_port()
        local c = R:keep(api.connect("127.0.0.1", port, "127.0.0.1", lport))
        R("class", c.class)
        local _, got = c:getsockname()
        R("local port", tonumber(got) == lport)
        R("family", c:getfamily())
        local a = R:keep(srv:accept())
        local _, aport = a:getpeername()
        R("seen by the peer", aport == lport)
        local c4 = R:keep(api.connect("127.0.0.1", port, nil, nil, "inet"))
        R("inet", c4.class, c4:getfamily())
        R("a local address in use", api.connect("127.0.0.1", port, "127.0.0.1", lport))
        R("a bad local address", api.connect("127.0.0.1", port, "no-such-host.invalid", 0))
        srv:close()
      end)
    end)
  end)

  describe("bind and listen", function()
    it("bind('*'), empty and bad hosts and ports", function()
      parity(function(R, api)
        local function try(label, host, p)
          local m = R:keep(api.tcp())
          R(label, m:bind(host, p))
          R(label .. " class", m.class)
          R(label .. " getsockname", named(m:getsockname()))
          return m
        end
        try("bind('*', 0)", "*", 0)
        try("bind('*', '0')", "*", "0")
        try("bind('', 0)", "", 0)
        try("bind(unknown name)", "no-such-host.invalid", 0)
        try("bind(port 'nosuchservice')", "127.0.0.1", "nosuchservice")
        try("bind(port -1)", "127.0.0.1", -1)
        -- port 70000 binds 70000 % 65536 and "" port 0, as glibc's getaddrinfo takes them
        for _, p in ipairs({ 70000, "" }) do
          local m = R:keep(api.tcp())
          R(("bind(port %q)"):format(p), m:bind("127.0.0.1", p))
        end
        local m4 = R:keep(api.tcp4())
        R("tcp4 bind('*')", m4:bind("*", 0))
        R("tcp4 getsockname", named(m4:getsockname()))
        local used = R:keep(api.tcp4())
        assert(used:bind("127.0.0.1", 0))
        assert(used:listen())
        local _, port = used:getsockname()
        R("in use", R:keep(api.tcp4()):bind("127.0.0.1", port))
        local m = R:keep(api.tcp4())
        R:pcall("bind(nil)", function() return m:bind(nil, 0) end)
        R:pcall("bind(host)", function() return m:bind("127.0.0.1") end)
        R("bind twice", m:bind("127.0.0.1", 0), m:bind("127.0.0.1", 0))
      end)
    end)

    it("the bind(host, port) function", function()
      parity(function(R, api)
        local s = R:keep(api.bind("127.0.0.1", 0))
        R("class", s.class)
        R("getsockname", named(s:getsockname()))
        R("reuseaddr", s:getoption("reuseaddr"))
        R("getfamily", s:getfamily())
        R("gettimeout", s:gettimeout())
        local _, port = s:getsockname()
        R("in use", api.bind("127.0.0.1", port))
        R("unknown name", api.bind("no-such-host.invalid", 0))
        local s6 = R:keep(api.bind("::1", 0))
        R("::1", s6 and s6.class, s6 and s6:getfamily())
        local any = R:keep(api.bind("*", 0))
        R("'*'", named(any:getsockname()))
        -- corio.bind listens with the system's maximum backlog (decided; LuaSocket's socket.bind
        -- 32): more than 33 pending connections complete (the wrap run has socket.bind's)
        local native = api.name == "native" and V(nil, nil) or V(34, "timeout")
        local peers = {}
        for i = 1, 40 do
          local p = socket.tcp()
          p:settimeout(0.5)
          local ok, err = p:connect("127.0.0.1", port)
          peers[i] = p
          if not ok then
            R:decided("pending connections", V(34, "timeout"), native, i, err)
            break
          end
          if i == 40 then R:decided("pending connections", V(34, "timeout"), native, nil, nil) end
        end
        for _, p in ipairs(peers) do p:close() end
      end)
    end)

    it("listen makes a tcp{server}; accept gives tcp{client}s", function()
      parity(function(R, api)
        local m = R:keep(api.tcp())
        R("bind", m:bind("127.0.0.1", 0))
        R("listen", m:listen())
        R("class", m.class)
        R("listen again", pcall(function() return m:listen() end))
        m:settimeout(0.05)
        local t, ok, err = elapsed(m.accept, m)
        R("accept, nothing pending", ok, err, t >= 0.04 and t < 1)
        local _, port = m:getsockname()
        local p = R:keep(peer_connect(tonumber(port)))
        local a = R:keep(m:accept())
        R("accepted", a)
        R("accepted gettimeout", a:gettimeout())
        R("accepted dirty", a:dirty())
        R("accepted getstats", mask({ [3] = "age" }, a:getstats()))
        p:send("hi\n")
        R("accepted receive", a:receive())
        R("listen(0)", R:keep(api.tcp4()):listen(0))
        local l = R:keep(api.tcp4())
        R:pcall("listen('x')", function() return l:listen("x") end)
        R("tcp() listen before bind", R:keep(api.tcp()):listen())
        R("tcp4() listen before bind", R:keep(api.tcp4()):listen())
        m:close()
        R("accept on a closed server", m:accept())
      end)
    end)
  end)

  describe("close, shutdown, dirty, stats and descriptors", function()
    it("shutdown returns 1 whatever the outcome", function()
      parity(function(R, api)
        local c, p = client(R, api)
        R("shutdown('send')", c:shutdown("send"))
        R("send after shutdown('send')", c:send("late"))
        R("peer sees the end", p:receive("*a"))
        p:send("answer")
        p:close()
        R("still receives", c:receive("*a"))
        R("shutdown('receive')", c:shutdown("receive"))
        R("shutdown()", c:shutdown())
        R:pcall("shutdown('sideways')", function() return c:shutdown("sideways") end)
        c:close()
        R("shutdown() closed", c:shutdown())
      end)
    end)

    it("a peer that resets the connection (linger 0): 'closed'", function()
      parity(function(R, api)
        local c, p = client(R, api)
        p:send("before\nrest")
        assert(p:setoption("linger", { on = true, timeout = 0 }))
        p:close()  -- RST
        socket.sleep(0.02)
        R("receive", c:receive())
        R("receive after", c:receive())
        R("send", c:send("x"))
        R("getoption('error')", c:getoption("error"))
        R("dirty", c:dirty())
        local c2, p2 = client(R, api)
        assert(p2:setoption("linger", { on = true, timeout = 0 }))
        p2:close()
        socket.sleep(0.02)
        R("send first", c2:send("x"))
        R("receive then", c2:receive())
      end)
    end)

    it("getstats counts what receive handed out and what send sent; setstats sets", function()
      parity(function(R, api)
        local c, p = client(R, api)
        R("fresh", mask({ [3] = "age" }, c:getstats()))
        p:send("12345\n")
        R("receive(3)", c:receive(3))
        R("after receive(3)", mask({ [3] = "age" }, c:getstats()))
        R("receive()", c:receive())
        R("after the line", mask({ [3] = "age" }, c:getstats()))
        R("send", c:send("abc"))
        R("after send", mask({ [3] = "age" }, c:getstats()))
        R("setstats", c:setstats(100, 200, 30))
        local r, s, age = c:getstats()
        R("set", r, s, age >= 30 and age < 31)
        R("setstats()", c:setstats())
        R("setstats(nil, 7)", c:setstats(nil, 7))
        R("partly set", mask({ [3] = "age" }, c:getstats()))
        R("setstats(1.9, '3')", c:setstats(1.9, "3"))
        R("truncated", mask({ [3] = "age" }, c:getstats()))
        R:pcall("setstats('x')", function() return c:setstats("x") end)
        c:close()
        R("closed", mask({ [3] = "age" }, c:getstats()))
      end)
    end)

    it("getfd and setfd", function()
      parity(function(R, api)
        local c, p = client(R, api)
        local fd = c:getfd()
        R("getfd", fd_ok(fd))
        local m = R:keep(api.tcp())
        R("tcp() getfd", m:getfd())
        R("tcp4() getfd", fd_ok(R:keep(api.tcp4()):getfd()))
        local other = R:keep(api.tcp4())
        local ofd = other:getfd()
        R("setfd", m:setfd(ofd))
        R("getfd after setfd", m:getfd() == ofd)
        R("class after setfd", m.class)
        R("bind through the new descriptor", m:bind("127.0.0.1", 0))
        R("setfd(-1)", m:setfd(-1))
        R("getfd -1", m:getfd())
        R("the descriptor stays open", named(other:getsockname()))
        R:pcall("setfd()", function() return m:setfd() end)
        R:pcall("setfd('x')", function() return m:setfd("x") end)
        p:send("buffered\nmore\n")
        R("receive", c:receive())
        c:setfd(-1)  -- the buffer stays with the object
        R("dirty after setfd(-1)", c:dirty())
        R("receive what was buffered", c:receive())
        R("receive after", c:receive())
        c:setfd(fd)  -- give it back to close it
        R("close", c:close())
        R("getfd after close", c:getfd())
      end)
    end)
  end)

  describe("setoption and getoption", function()
    it("tcp: booleans, integers, linger, error, and their argument checks", function()
      parity(function(R, api)
        local c = client(R, api)
        for _, name in ipairs({ "keepalive", "reuseaddr", "reuseport", "tcp-nodelay" }) do
          R(name .. " true", c:setoption(name, true))
          R(name .. " get", c:getoption(name))
          R(name .. " false", c:setoption(name, false))
          R(name .. " get false", c:getoption(name))
          R:pcall(name .. " 1", function() return c:setoption(name, 1) end)
          R:pcall(name .. " 'yes'", function() return c:setoption(name, "yes") end)
          R:pcall(name .. " nil", function() return c:setoption(name, nil) end)
          R:pcall(name .. " no value", function() return c:setoption(name) end)
        end
        for _, name in ipairs({ "tcp-keepidle", "tcp-keepcnt", "tcp-keepintvl" }) do
          R(name .. " 30", c:setoption(name, 30))
          R(name .. " get", c:getoption(name))
          R(name .. " '7'", c:setoption(name, "7"))
          R(name .. " get '7'", c:getoption(name))
          R(name .. " 5.9", c:setoption(name, 5.9))
          R(name .. " get 5.9", c:getoption(name))
          R(name .. " 'x'", c:setoption(name, "x"))
          R(name .. " true", c:setoption(name, true))
          R(name .. " -1", c:setoption(name, -1))
        end
        R("recv-buffer-size", c:setoption("recv-buffer-size", 65536))
        R("recv-buffer-size get", c:getoption("recv-buffer-size"))
        R("send-buffer-size", c:setoption("send-buffer-size", 65536))
        R("send-buffer-size get", c:getoption("send-buffer-size"))
        R("tcp-defer-accept", c:setoption("tcp-defer-accept", 1))
        R("tcp-fastopen", c:setoption("tcp-fastopen", 1))
        R("tcp-fastopen-connect", c:setoption("tcp-fastopen-connect", true))
        R("ipv6-v6only on an IPv4 socket", c:setoption("ipv6-v6only", true))
        R("error", c:getoption("error"))
        -- linger
        R:pcall("linger true", function() return c:setoption("linger", true) end)
        R:pcall("linger {}", function() return c:setoption("linger", {}) end)
        R:pcall("linger { on = 1 }", function() return c:setoption("linger", { on = 1, timeout = 1 }) end)
        R:pcall("linger { on = true }", function() return c:setoption("linger", { on = true }) end)
        R:pcall("linger timeout 'x'", function() return c:setoption("linger", { on = true, timeout = "x" }) end)
        R("linger timeout '5'", c:setoption("linger", { on = true, timeout = "5" }))
        R("linger get", c:getoption("linger"))
        R("linger { on = true, timeout = 3 }", c:setoption("linger", { on = true, timeout = 3 }))
        R("linger get 3", c:getoption("linger"))
        R("linger off", c:setoption("linger", { on = false, timeout = 0 }))
        R("linger get off", c:getoption("linger"))
        -- names
        for _, name in ipairs({ "bogus", "ipv6-v6only", "tcp-defer-accept", "tcp-fastopen", "broadcast",
          "ip-multicast-ttl" }) do
          R:pcall("getoption " .. name, function() return c:getoption(name) end)
        end
        for _, name in ipairs({ "bogus", "error", "broadcast", "dontroute", "ip-multicast-loop" }) do
          R:pcall("setoption " .. name, function() return c:setoption(name, true) end)
        end
        R:pcall("setoption(5, true)", function() return c:setoption(5, true) end)
        R:pcall("setoption(nil)", function() return c:setoption(nil, true) end)
        R:pcall("setoption()", function() return c:setoption() end)
        R:pcall("getoption()", function() return c:getoption() end)
        R:pcall("getoption({})", function() return c:getoption({}) end)
        -- KNOWN: LuaSocket cuts the name in its message to 35 characters
        R("setoption of a long name",
          pcall(function() return c:setoption(("x"):rep(50), true) end))
        c:close()
        R("setoption on a closed socket", c:setoption("keepalive", true))
        R("getoption on a closed socket", c:getoption("keepalive"))
        R("getoption linger on a closed socket", c:getoption("linger"))
        R("getoption error on a closed socket", c:getoption("error"))
      end)
    end)

    it("tcp: on masters and servers, with and without a descriptor", function()
      parity(function(R, api)
        local m4 = R:keep(api.tcp4())
        R("tcp4 reuseaddr", m4:setoption("reuseaddr", true))
        R("bind", m4:bind("127.0.0.1", 0))
        R("listen", m4:listen())
        R("server reuseaddr", m4:getoption("reuseaddr"))
        R("server tcp-nodelay", m4:setoption("tcp-nodelay", true))
        R("server tcp-defer-accept", m4:setoption("tcp-defer-accept", 5))
        local m6 = R:keep(api.tcp6())
        R("tcp6 ipv6-v6only false", m6:setoption("ipv6-v6only", false))
        R("tcp6 ipv6-v6only true", m6:setoption("ipv6-v6only", true))
        local m = R:keep(api.tcp())
        R("tcp() setoption (no descriptor yet)", m:setoption("reuseaddr", true))
        R("tcp() getoption", m:getoption("reuseaddr"))
        R("tcp() getoption linger", m:getoption("linger"))
        R("tcp() getoption error", m:getoption("error"))
      end)
    end)

    it("udp: booleans, integers, multicast, membership and their argument checks", function()
      parity(function(R, api)
        local u = R:keep(api.udp4())
        for _, name in ipairs({ "dontroute", "broadcast", "reuseaddr", "reuseport", "ip-multicast-loop" }) do
          R(name .. " true", u:setoption(name, true))
          R(name .. " get", u:getoption(name))
          R(name .. " false", u:setoption(name, false))
          R(name .. " get false", u:getoption(name))
          R:pcall(name .. " 0", function() return u:setoption(name, 0) end)
        end
        R("ipv6-v6only on udp4", u:setoption("ipv6-v6only", true))
        R("getoption ipv6-v6only on udp4", u:getoption("ipv6-v6only"))
        R("ipv6-multicast-loop on udp4", u:setoption("ipv6-multicast-loop", true))
        R("ip-multicast-ttl", u:setoption("ip-multicast-ttl", 4))
        R("ip-multicast-ttl '3'", u:setoption("ip-multicast-ttl", "3"))
        R("ip-multicast-ttl 'x'", u:setoption("ip-multicast-ttl", "x"))
        R("ip-multicast-ttl 1000", u:setoption("ip-multicast-ttl", 1000))
        R:pcall("getoption ip-multicast-ttl", function() return u:getoption("ip-multicast-ttl") end)
        R("ip-multicast-if", u:setoption("ip-multicast-if", "127.0.0.1"))
        R("ip-multicast-if get", u:getoption("ip-multicast-if"))
        R("ip-multicast-if '*'", u:setoption("ip-multicast-if", "*"))
        R("ip-multicast-if get '*'", u:getoption("ip-multicast-if"))
        R:pcall("ip-multicast-if 'bogus'", function() return u:setoption("ip-multicast-if", "bogus") end)
        R:pcall("ip-multicast-if {}", function() return u:setoption("ip-multicast-if", {}) end)
        R("ip-multicast-if 5", u:setoption("ip-multicast-if", 5))
        R("recv-buffer-size", u:setoption("recv-buffer-size", 32768))
        R("recv-buffer-size get", u:getoption("recv-buffer-size"))
        R("send-buffer-size get", u:getoption("send-buffer-size"))
        R("error", u:getoption("error"))
        for _, name in ipairs({ "ip-add-membership", "ip-drop-membership" }) do
          R:pcall(name .. " true", function() return u:setoption(name, true) end)
          R:pcall(name .. " {}", function() return u:setoption(name, {}) end)
          R:pcall(name .. " bad multiaddr", function() return u:setoption(name, { multiaddr = "x", interface = "*" }) end)
          R:pcall(name .. " no interface", function() return u:setoption(name, { multiaddr = "239.1.2.3" }) end)
          R:pcall(name .. " bad interface", function()
            return u:setoption(name, { multiaddr = "239.1.2.3", interface = "x" })
          end)
          R:pcall(name .. " numeric interface", function()
            return u:setoption(name, { multiaddr = "239.1.2.3", interface = 5 })
          end)
          R:pcall(name .. " loopback", function()
            return u:setoption(name, { multiaddr = "239.1.2.3", interface = "127.0.0.1" })
          end)
        end
        for _, name in ipairs({ "keepalive", "tcp-nodelay", "linger", "bogus" }) do
          R:pcall("setoption " .. name, function() return u:setoption(name, true) end)
          R:pcall("getoption " .. name, function() return u:getoption(name) end)
        end
        u:close()
        R("setoption on a closed socket", u:setoption("broadcast", true))
        R("getoption on a closed socket", u:getoption("broadcast"))
        R("getoption ip-multicast-if on a closed socket", u:getoption("ip-multicast-if"))
      end)
    end)

    it("udp6: hops, v6only and IPv6 membership", function()
      parity(function(R, api)
        local u = R:keep(api.udp6())
        R("ipv6-v6only get", u:getoption("ipv6-v6only"))
        R("ipv6-v6only false", u:setoption("ipv6-v6only", false))
        R("ipv6-v6only get false", u:getoption("ipv6-v6only"))
        R("ipv6-unicast-hops 5", u:setoption("ipv6-unicast-hops", 5))
        R("ipv6-unicast-hops get", u:getoption("ipv6-unicast-hops"))
        R("ipv6-multicast-loop", u:setoption("ipv6-multicast-loop", false))
        R("ipv6-multicast-loop get", u:getoption("ipv6-multicast-loop"))
        -- KNOWN: LuaSocket 3.1 sets and gets the unicast hops for "ipv6-multicast-hops" (a
        -- bug of its options table); corio sets IPV6_MULTICAST_HOPS
        R("ipv6-multicast-hops 7", u:setoption("ipv6-multicast-hops", 7))
        R:known("ipv6-multicast-hops is LuaSocket's unicast hops", "ipv6-unicast-hops after", u:getoption("ipv6-unicast-hops"))
        R:known("ipv6-multicast-hops is LuaSocket's unicast hops", "ipv6-multicast-hops get", u:getoption("ipv6-multicast-hops"))
        local name = "ipv6-add-membership"
        R:pcall(name .. " true", function() return u:setoption(name, true) end)
        R:pcall(name .. " {}", function() return u:setoption(name, {}) end)
        R:pcall(name .. " bad multiaddr", function() return u:setoption(name, { multiaddr = "x" }) end)
        -- KNOWN: LuaSocket raises this one for argument -1 (options.c's luaL_argerror(L, -1, ...))
        R:known("ipv6 membership: the 'interface' error's argument number", name .. " bad interface",
          pcall(function() return u:setoption(name, { multiaddr = "ff02::1:3", interface = "lo" }) end))
        R:pcall(name .. " loopback", function() return u:setoption(name, { multiaddr = "ff02::1:3", interface = 1 }) end)
        R:pcall("ipv6-drop-membership", function()
          return u:setoption("ipv6-drop-membership", { multiaddr = "ff02::1:3", interface = 1 })
        end)
        R:pcall("ipv6-drop-membership not joined", function()
          return u:setoption("ipv6-drop-membership", { multiaddr = "ff02::1:4" })
        end)
      end)
    end)

    it("unixstream: keepalive, reuseaddr and linger", function()
      parity(function(R, api)
        local u = R:keep(api.unix())
        R("keepalive", u:setoption("keepalive", true))
        R("reuseaddr", u:setoption("reuseaddr", false))
        R("linger", u:setoption("linger", { on = true, timeout = 2 }))
        R:pcall("linger {}", function() return u:setoption("linger", {}) end)
        R:pcall("keepalive 1", function() return u:setoption("keepalive", 1) end)
        R:pcall("tcp-nodelay", function() return u:setoption("tcp-nodelay", true) end)
        R:pcall("reuseport", function() return u:setoption("reuseport", true) end)
        R:pcall("broadcast", function() return u:setoption("broadcast", true) end)
      end, "unix")
    end)
  end)

  describe("udp", function()
    it("sendto, receivefrom and receive on an unconnected socket", function()
      parity(function(R, api)
        local peer, pport = udp_peer()
        local u = R:keep(api.udp())
        u:settimeout(0.5)
        R("getfamily", u:getfamily())
        R("getsockname before", u:getsockname())
        R("getfd before", u:getfd())
        R("dirty", u:dirty())
        R("sendto", u:sendto("hello", "127.0.0.1", pport))
        R("sendto a number", u:sendto(42, "127.0.0.1", pport))
        R("sendto a string port", u:sendto("p", "127.0.0.1", tostring(pport)))
        R("sendto ''", u:sendto("", "127.0.0.1", pport))
        R("getfd after", fd_ok(u:getfd()))
        R("getfamily after", u:getfamily())
        R("getsockname", named(u:getsockname()))
        local _, uport = u:getsockname()
        local d, ip, port = peer:receivefrom()
        R("peer receivefrom", d, ip, port == tonumber(uport))
        R("peer receive", peer:receive())
        R("peer receive", peer:receive())
        R("peer receive ''", peer:receive())
        peer:sendto("back", "127.0.0.1", uport)
        local data, from, fport = u:receivefrom()
        R("receivefrom", data, from, mask({ "port" }, fport), fport == pport)
        peer:sendto("again", "127.0.0.1", uport)
        R("receive", u:receive())
        peer:sendto("truncated", "127.0.0.1", uport)
        R("receive(4)", u:receive(4))
        u:settimeout(0.05)
        R("the rest is gone", u:receive())
        R("receivefrom, nothing", u:receivefrom())
        peer:sendto("sized", "127.0.0.1", uport)
        R("receivefrom(2)", mask({ [3] = "port" }, u:receivefrom(2)))
        peer:sendto("zero", "127.0.0.1", uport)
        R("receive(0)", u:receive(0))
        R("after receive(0)", u:receive())
        peer:sendto("", "127.0.0.1", uport)
        R("an empty datagram", u:receive())
        peer:sendto("huge", "127.0.0.1", uport)
        -- decided: corio caps the buffer at 64 KiB (no datagram is longer); LuaSocket mallocs
        -- what is asked, and 2^40 bytes cannot be had
        R:decided("receive(2^40)", V(nil, "out of memory"), V("huge"), u:receive(2 ^ 40))
        if not api.corio then u:receive() end  -- the datagram corio read
        -- KNOWN: LuaSocket casts -1 to a huge size_t and fails to allocate it ("out of memory");
        -- corio raises an argument error
        R("receive(-1)", pcall(function() return u:receive(-1) end))
        R:pcall("receive('x')", function() return u:receive("x") end)
        R("receive('3')", u:receive("3"))
        peer:close()
      end)
    end)

    it("sendto takes numeric addresses only, with getaddrinfo's words", function()
      parity(function(R, api)
        local _, pport = udp_peer()
        local u = R:keep(api.udp4())
        R("localhost", u:sendto("x", "localhost", pport))
        R("'*'", u:sendto("x", "*", pport))
        R("''", u:sendto("x", "", pport))
        R("port 'http'", u:sendto("x", "127.0.0.1", "http"))
        R("port ''", u:sendto("x", "127.0.0.1", ""))
        R("port -1", u:sendto("x", "127.0.0.1", -1))
        R("port 70000", u:sendto("x", "127.0.0.1", 70000))
        R("an IPv6 address on udp4", u:sendto("x", "::1", pport))
        R("port 0", u:sendto("x", "127.0.0.1", 0))
        R:pcall("no port", function() return u:sendto("x", "127.0.0.1") end)
        -- KNOWN: corio checks the port (#3) before the address (#2): the two luaL_checkstring
        -- are arguments of one C++ call (ldatagram.cpp l_sendto), evaluated in either order
        R("no address", pcall(function() return u:sendto("x") end))
        R:pcall("a table", function() return u:sendto({}, "127.0.0.1", pport) end)
        local u6 = R:keep(api.udp6())
        R("udp6 to 127.0.0.1", u6:sendto("x", "127.0.0.1", pport))
        R("udp6 to ::1", u6:sendto("x", "::1", pport))
        local u0 = R:keep(api.udp())
        R("udp() to ::1", u0:sendto("x", "::1", pport))
        R("udp() family after", u0:getfamily())
        R("udp() getsockname after", named(u0:getsockname()))
      end)
    end)

    it("setpeername, send, receive, getpeername and setpeername('*')", function()
      parity(function(R, api)
        local peer, pport = udp_peer()
        local u = R:keep(api.udp())
        u:settimeout(0.5)
        R("setpeername", u:setpeername("127.0.0.1", pport))
        R("class", u.class)
        R("getpeername", named(u:getpeername()))
        R("getsockname", named(u:getsockname()))
        R("getfamily", u:getfamily())
        R("send", u:send("hello"))
        R("send ''", u:send(""))
        R("send a number", u:send(7))
        local _, uport = u:getsockname()
        R("peer receivefrom", mask({ [3] = "port" }, peer:receivefrom()))
        R("peer receive ''", peer:receive())
        R("peer receive", peer:receive())
        peer:sendto("back", "127.0.0.1", uport)
        R("receive", u:receive())
        R:pcall("receivefrom on a connected socket", function() return u:receivefrom() end)
        R:pcall("sendto on a connected socket", function() return u:sendto("x", "127.0.0.1", pport) end)
        R:pcall("setsockname on a connected socket", function() return u:setsockname("127.0.0.1", 0) end)
        R("setpeername again", u:setpeername("127.0.0.1", pport))
        R("setpeername('*')", u:setpeername("*"))
        R("class after '*'", u.class)
        R:pcall("getpeername", function() return u:getpeername() end)
        R("setpeername('*') again", u:setpeername("*"))
        R("sendto after", u:sendto("free", "127.0.0.1", pport))
        R("peer", peer:receive())
        R("setpeername localhost", u:setpeername("localhost", pport))
        R("class", u.class)
        R("setpeername an unknown name", u:setpeername("no-such-host.invalid", pport))
        R("setpeername a bad port", u:setpeername("127.0.0.1", "nosuchservice"))
        R:pcall("setpeername(nil)", function() return u:setpeername(nil, 1) end)
        R:pcall("setpeername(host)", function() return u:setpeername("127.0.0.1") end)
        -- a fresh udp(): setpeername('*') without a descriptor
        local f = R:keep(api.udp())
        R("fresh setpeername('*')", f:setpeername("*"))
        R("fresh class", f.class)
        peer:close()
      end)
    end)

    it("send to a port nobody listens on, then receive: connection refused", function()
      parity(function(R, api)
        local u = R:keep(api.udp())
        u:settimeout(0.5)
        R("setpeername", u:setpeername("127.0.0.1", free_port()))
        R("send", u:send("anyone?"))
        socket.sleep(0.02)
        R("receive", u:receive())
        R("send again", u:send("x"))
      end)
    end)

    it("setsockname and a closed socket", function()
      parity(function(R, api)
        local u = R:keep(api.udp())
        R("setsockname('*', 0)", u:setsockname("*", 0))
        R("getsockname", named(u:getsockname()))
        R("setsockname twice", u:setsockname("127.0.0.1", 0))
        local u2 = R:keep(api.udp())
        R("setsockname an unknown name", u2:setsockname("no-such-host.invalid", 0))
        R("setsockname('', 0)", u2:setsockname("", 0))
        R("setsockname a bad service", u2:setsockname("127.0.0.1", "nosuchservice"))
        R("setsockname localhost", u2:setsockname("localhost", 0))
        R("getsockname localhost", named(u2:getsockname()))
        local _, port = u:getsockname()
        R("setsockname a port in use", R:keep(api.udp4()):setsockname("0.0.0.0", port))
        local c = R:keep(api.udp())
        assert(c:setpeername("127.0.0.1", 9))
        R("close", u:close())
        R("close again", u:close())
        R("getfd", u:getfd())
        -- decided: LuaSocket's receive on a closed udp socket returns "" (a quirk not copied)
        R:decided("receive after close", V(""), V(nil, "closed"), u:receive())
        -- (LuaSocket's receivefrom then fails in getnameinfo on an address never filled in:
        -- "ai_family not supported" here, whatever the stack held)
        local d, e = u:receivefrom()
        R:decided("receivefrom after close", V(nil, "string"), V(nil, "closed"), d, api.corio and e or type(e))
        R("getsockname after close", u:getsockname())
        -- KNOWN: corio's sendto gives a closed udp socket a fresh descriptor and sends; LuaSocket
        -- makes one only for a udp() that never had one, and says "refused" (udp_strerror)
        R("sendto after close",
          u:sendto("x", "127.0.0.1", port))
        R("getsockname after that", u:getsockname())
        c:close()
        -- KNOWN: LuaSocket's udp word for a send on a closed socket is "refused" (udp_strerror)
        R("send after close", c:send("x"))
        R("setpeername after close", u:setpeername("127.0.0.1", 9))
      end)
    end)
  end)

  describe("unixstream", function()
    it("bind, listen, connect, accept", function()
      parity(function(R, api)
        local path = os.tmpname()
        os.remove(path)
        local s = R:keep(api.unix())
        R("bind", s:bind(path))
        R("getsockname is the path", s:getsockname() == path, select("#", s:getsockname()))
        R("listen", s:listen())
        R("class", s.class)
        s:settimeout(0.05)
        R("accept, nothing pending", s:accept())
        R("bind the same path", R:keep(api.unix()):bind(path))
        local c = R:keep(api.unix())
        R("settimeout", c:settimeout(1))
        R("connect", c:connect(path))
        R("class", c.class)
        R("client getsockname", c:getsockname())
        -- KNOWN: see the method sets (wrapped unixstream accept)
        local a = R:keep(R("accept", s:accept()))
        if a then
          a:settimeout(1)
          R("send", c:send("over unix\nrest"))
          R("receive", a:receive())
          R("receive(2, prefix)", a:receive(2, "r"))
          c:close()
          R("'*a'", a:receive("*a"))
          R("'*a' again", a:receive("*a"))
          R("getstats", mask({ [3] = "age" }, a:getstats()))
        end
        os.remove(path)
      end, "unix")
    end)

    it("failures of bind and connect", function()
      parity(function(R, api)
        local path = os.tmpname()  -- a file, no socket
        local m = R:keep(api.unix())
        R("connect to nothing", m:connect(path .. ".none"))
        R("class after", m.class)
        -- KNOWN: LuaSocket closes a unixstream whose connect or bind failed (getfd() -1)
        R("getfd after", m:getfd())
        local long = "/tmp/" .. ("x"):rep(200)
        -- KNOWN: LuaSocket says "path too long"
        R("bind a long path", R:keep(api.unix()):bind(long))
        R("connect a long path", R:keep(api.unix()):connect(long))
        local b = R:keep(api.unix())
        R("bind a path in no directory", b:bind("/nonexistent-dir/sock"))
        R("getfd after a failed bind", b:getfd())
        R:pcall("bind()", function() return R:keep(api.unix()):bind() end)
        R("bind an existing file", R:keep(api.unix()):bind(path))
        R("connect to a file that is no socket", R:keep(api.unix()):connect(path))
        os.remove(path)
      end, "unix")
    end)
  end)
end)
