-- Name resolution for corio sockets: asynchronous (the calling thread waits, the others
-- run), /etc/hosts honoured (read, never edited), unknown names fail in bounded time, and
-- connect tries each address of a name in turn. No outside network is needed: the names
-- come from /etc/hosts (or, in a child process, from a hosts file given with CARES_HOSTS).
local corio = require "corio"
local S = require "corio_support"

local run = S.run
local function known(reason, fn)  -- see corio_support's known
  local ok, why = S.known(reason, fn)
  if not ok then pending(why) end
end

-- The IPv4 and IPv6 addresses /etc/hosts gives each name: { [name] = { inet = {ip = true}, inet6 = {...} } }.
local function etc_hosts()
  local names = {}
  local f = io.open("/etc/hosts")
  if not f then return names end
  for line in f:lines() do
    line = line:gsub("#.*", "")
    local fields = {}
    for w in line:gmatch("%S+") do fields[#fields + 1] = w end
    local ip = fields[1]
    if ip and #fields > 1 then
      local family = ip:find(":", 1, true) and "inet6" or "inet"
      for i = 2, #fields do
        local name = fields[i]:lower()
        names[name] = names[name] or { inet = {}, inet6 = {} }
        names[name][family][ip] = true
      end
    end
  end
  f:close()
  return names
end

-- The address setpeername(name) on a udp socket of `family` ("inet"/"inet6") resolves
-- to, or nil, message. It waits in the calling thread only.
local function resolve(name, family)
  local u = family == "inet6" and corio.udp6() or corio.udp4()
  local ok, err = u:setpeername(name, 9)
  local ip = ok and u:getpeername()
  u:close()
  if not ok then return nil, err end
  return ip
end

local child = S.child_in

describe("corio name resolution", function()
  it("resolves 'localhost' while another thread keeps ticking every 10 ms", function()
    run(function()
      local ticks, lookups, stop = 0, 0, false
      corio.spawn(function()
        while not stop do
          corio.sleep(0.01)
          ticks = ticks + 1
        end
      end)
      local resolver = S.go(function()
        local t0 = corio.now()
        while corio.now() - t0 < 0.2 do
          local ip, err = resolve("localhost", "inet")
          assert(ip, err)
          assert(ip:match("^127%."), ip)
          lookups = lookups + 1
        end
      end)
      resolver()
      stop = true
      assert.is_true(lookups >= 5, "lookups " .. lookups)
      assert.is_true(ticks >= 10, "the ticker ticked only " .. ticks .. " times in 0.2 s")
    end)
  end)

  it("a lookup waits in its own thread: spawn returns before it is done", function()
    run(function()
      local result
      corio.spawn(function() result = resolve("localhost", "inet") end)
      assert.is_nil(result)  -- the thread is waiting for the resolver, not blocking
      local deadline = corio.now() + 5
      while not result and corio.now() < deadline do corio.sleep(0.001) end
      assert.matches("^127%.", result)
    end)
  end)

  it("resolves the names of /etc/hosts to their addresses there", function()
    local hosts = etc_hosts()
    local checked = 0
    run(function()
      for name, addrs in pairs(hosts) do
        if next(addrs.inet) then
          local ip, err = resolve(name, "inet")
          assert(ip, name .. ": " .. tostring(err))
          assert(addrs.inet[ip], ("%s resolved to %s, not an /etc/hosts address"):format(name, ip))
          checked = checked + 1
        end
      end
    end)
    if checked == 0 then pending("no IPv4 names in /etc/hosts") end
  end)

  it("connects to 'localhost' with tcp (the name from /etc/hosts)", function()
    run(function()
      local server = assert(corio.bind("127.0.0.1", 0))
      server:settimeout(2)
      local c = assert(corio.connect("localhost", S.port(server)))
      local p = assert(server:accept())
      local ip, port, family = c:getsockname()  -- the port a string, as LuaSocket's
      assert.same({ ip, tonumber(port), family }, { p:getpeername() })
      c:close()
      p:close()
      server:close()
    end)
  end)

  it("many lookups at once all complete", function()
    run(function()
      local waits = {}
      for i = 1, 50 do waits[i] = S.go(resolve, "localhost", "inet") end
      for i = 1, 50 do assert.matches("^127%.", waits[i]()) end
    end)
  end)

  it("an unknown name gives an error message in bounded time, other threads running", function()
    run(15, function()
      local ticks, stop = 0, false
      corio.spawn(function()
        while not stop do
          corio.sleep(0.01)
          ticks = ticks + 1
        end
      end)
      local t0 = corio.now()
      local ip, err = resolve("no-such-host.invalid", "inet")
      local elapsed = corio.now() - t0
      stop = true
      assert.is_nil(ip)
      assert.equal("host or service not provided, or not known", err)  -- LuaSocket's EAI_NONAME words
      assert.is_true(elapsed < 10, "took " .. elapsed)
      if elapsed > 0.1 then
        assert.is_true(ticks >= elapsed / 0.01 / 3, "ticks " .. ticks .. " in " .. elapsed .. " s")
      end
      local c, cerr = corio.connect("no-such-host.invalid", 80)
      assert.is_nil(c)
      assert.equal(err, cerr)
    end)
  end)

  it("numeric addresses need no lookup and never fail as names", function()
    local err
    run(function()
      assert.equal("127.0.0.1", resolve("127.0.0.1", "inet"))
      local ip
      ip, err = resolve("127.0.0.1", "inet6")  -- an IPv4 literal for an IPv6 socket
      assert.is_nil(ip)
      assert.is_string(err)
    end)
    -- KNOWN: LuaSocket passes getaddrinfo's EAI_ADDRFAMILY words on
    known("words for an address of the other family", function()
      assert.equal("Address family for hostname not supported", err)
    end)
  end)

  it("connect tries each address of a name in turn, options and bind again; CARES_HOSTS names the hosts file", function()
    local hosts = S.tmpname(".hosts")
    local f = assert(io.open(hosts, "w"))
    -- ::1 first: nothing listens there, so the connect must go on to 127.0.0.1
    f:write("::1 corio-dual.test\n127.0.0.1 corio-dual.test\n127.0.0.7 corio-only-here.test\n" ..
      "127.0.0.2 corio-two.test\n127.0.0.1 corio-two.test\n")
    f:close()
    local out, status = child("CARES_HOSTS=" .. S.shquote(hosts), [[
      local corio = require "corio"
      local server = assert(corio.bind("127.0.0.1", 0))
      local port = select(2, server:getsockname())
      local c, err = corio.connect("corio-dual.test", port)
      assert(c, "dual-stack name: " .. tostring(err))
      assert(c:getpeername() == "127.0.0.1")
      c:close()
      -- 127.0.0.2 refuses (the server listens on 127.0.0.1 only): the second attempt is on a
      -- fresh descriptor, with the options set and the explicit bind applied again
      local t = corio.tcp4()
      assert(t:setoption("keepalive", true) == 1)
      assert(t:setoption("tcp-nodelay", true) == 1)
      local spare = assert(corio.bind("127.0.0.1", 0))
      local lport = select(2, spare:getsockname())
      spare:close()
      assert(t:bind("127.0.0.1", lport) == 1)
      t:settimeout(2)
      local ok, cerr = t:connect("corio-two.test", port)
      assert(ok == 1, "second address: " .. tostring(cerr))
      assert(t:getpeername() == "127.0.0.1")
      assert(select(2, t:getsockname()) == lport, "the bind was not applied again")
      assert(t:getoption("keepalive") == true, "keepalive not applied again")
      assert(t:getoption("tcp-nodelay") == true, "tcp-nodelay not applied again")
      server:settimeout(2)
      assert(server:accept()):close()
      assert(server:accept()):close()
      t:close()
      local u = corio.udp()
      assert(u:setpeername("corio-only-here.test", 9))
      assert(u:getpeername() == "127.0.0.7", "custom hosts file not used")
      print("hosts ok")
    ]])
    os.remove(hosts)
    assert.equal(0, status, out)
    assert.matches("hosts ok", out)
  end)
end)
