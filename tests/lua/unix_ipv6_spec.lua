-- corio.unix() stream sockets on a temporary path, and TCP over IPv6 on ::1 (skipped,
-- pending, when the host has no IPv6 loopback).
local corio = require "corio"
local S = require "corio_support"

local run = S.run
local V = S.pack  -- V(...): the values and how many (n), to compare whole results
local function known(reason, fn)  -- see corio_support's known
  local ok, why = S.known(reason, fn)
  if not ok then pending(why) end
end

local function has_ipv6()
  local s = corio.tcp6()
  local ok = s and s:bind("::1", 0)
  if s then s:close() end
  return ok == 1
end

describe("corio.unix", function()
  local path
  before_each(function() path = S.tmpname(".sock") end)
  after_each(function() os.remove(path) end)

  it("is a unixstream{master} that binds, listens, accepts and connects on a path", function()
    run(function()
      local server = assert(corio.unix())
      assert.equal("unixstream{master}", server.class)
      assert.matches("^unixstream{master}: 0x%x+$", tostring(server))
      assert.equal(1, server:bind(path))
      assert.equal(1, server:listen())
      assert.equal("unixstream{server}", server.class)
      server:settimeout(2)
      assert.same(V(path), V(server:getsockname()))  -- the path alone, as LuaSocket's

      local client = assert(corio.unix())
      client:settimeout(2)
      assert.equal(1, client:connect(path))
      assert.equal("unixstream{client}", client.class)
      local peer = assert(server:accept())
      assert.equal("unixstream{client}", peer.class)
      peer:settimeout(2)
      assert.same(V(""), V(client:getsockname()))  -- an unnamed socket
      assert.equal("unix", peer:getfamily())

      assert.equal(6, client:send("hello\n"))
      assert.equal("hello", peer:receive())
      assert.equal(3, peer:send("abc"))
      assert.equal("abc", client:receive(3))
      client:send("bye")
      client:close()
      assert.equal("bye", peer:receive("*a"))
      peer:close()
      server:close()
    end)
  end)

  it("serves several clients concurrently", function()
    run(function()
      local server = assert(corio.unix())
      assert.equal(1, server:bind(path))
      assert.equal(1, server:listen())
      server:settimeout(2)
      corio.spawn(function()
        for _ = 1, 5 do
          local c = server:accept()
          if not c then return end
          corio.spawn(function()
            c:settimeout(2)
            local line = c:receive()
            c:send("echo " .. tostring(line) .. "\n")
            c:close()
          end)
        end
      end)
      local replies = {}
      local waits = {}
      for i = 1, 5 do
        waits[i] = S.go(function()
          local c = assert(corio.unix())
          c:settimeout(2)
          assert(c:connect(path))
          c:send("client " .. i .. "\n")
          replies[i] = c:receive()
          c:close()
        end)
      end
      for i = 1, 5 do waits[i]() end
      for i = 1, 5 do assert.equal("echo client " .. i, replies[i]) end
      server:close()
    end)
  end)

  it("receive times out and close wakes a waiter", function()
    run(function()
      local server = assert(corio.unix())
      assert.equal(1, server:bind(path))
      assert.equal(1, server:listen())
      server:settimeout(2)
      local client = assert(corio.unix())
      assert.equal(1, client:connect(path))
      local peer = assert(server:accept())
      peer:settimeout(0.05)
      local ok, err = peer:receive()
      assert.is_nil(ok)
      assert.equal("timeout", err)
      peer:settimeout(5)
      local res
      corio.spawn(function() res = { peer:receive() } end)
      peer:close()
      corio.sleep(0.01)
      assert.same({ nil, "closed", "" }, res)  -- with the (empty) partial result
      client:close()
      server:close()
    end)
  end)

  it("every class has all of LuaSocket's unixstream methods and corio's; others raise its error", function()
    local m = assert(corio.unix())
    for _, name in ipairs({ "accept", "bind", "close", "connect", "dirty", "getfd", "getstats", "setstats",
      "listen", "receive", "send", "setfd", "setoption", "setpeername", "setsockname", "getsockname",
      "settimeout", "shutdown",
      "getpeername", "getfamily", "gettimeout", "getoption",  -- corio's own, beside LuaSocket's
      "receivesome", "setthrottle", "getthrottle", "setlimit" }) do
      assert.is_function(m[name], name)
    end
    assert.is_nil(m.receivefrom)
    assert.is_nil(m.sendto)
    for _, name in ipairs({ "accept", "receive", "send", "shutdown", "getstats" }) do
      local ok, err = pcall(m[name], m)
      assert.is_false(ok)
      assert.equal(("bad argument #1 to '?' (unixstream{%s} expected)"):format(name == "accept" and "server" or "client"),
        err)
    end
    m:close()
  end)

  it("reports a missing path and a path in use", function()
    local client = assert(corio.unix())
    assert.same(V(nil, "No such file or directory"), V(client:connect(path)))
    assert.equal("unixstream{master}", client.class)
    local fd_after = client:getfd()
    client:close()
    local a, b = corio.unix(), corio.unix()
    assert.equal(1, a:bind(path))
    local ok, err = b:bind(path)
    assert.is_nil(ok)
    assert.equal("address already in use", err)
    a:close()
    b:close()
    -- KNOWN: LuaSocket closes the descriptor of a unixstream whose connect (or bind) failed
    known("a failed unixstream connect or bind keeps the descriptor", function()
      assert.equal(-1, fd_after)
    end)
  end)

  -- KNOWN: LuaSocket answers a path longer than sun_path with nil, "path too long";
  -- corio with strerror(ENAMETOOLONG), "File name too long"
  it("refuses a path that is too long with LuaSocket's words", function()
    local u = corio.unix()
    local long = "/tmp/" .. string.rep("p", 200)
    local r = V(u:bind(long))
    assert.is_nil(r[1])
    assert.equal(2, r.n)
    assert.equal("unixstream{master}", u.class)
    local c = V(u:connect(long))
    assert.is_nil(c[1])
    u:close()
    known("unix path too long", function()
      assert.same(V(nil, "path too long"), r)
      assert.same(V(nil, "path too long"), c)
    end)
  end)
end)

describe("corio tcp over IPv6", function()
  it("tcp6 binds, accepts and connects on ::1", function()
    if not has_ipv6() then
      pending("no IPv6 loopback (::1) on this host")
      return
    end
    run(function()
      local server = assert(corio.tcp6())
      assert.equal(1, server:bind("::1", 0))
      assert.equal(1, server:listen())
      server:settimeout(2)
      local ip, port, family = server:getsockname()
      assert.equal("::1", ip)
      assert.is_string(port)
      assert.equal("inet6", family)
      assert.equal("inet6", server:getfamily())

      local client = assert(corio.tcp6())
      client:settimeout(2)
      assert.equal(1, client:connect("::1", port))
      local peer = assert(server:accept())
      peer:settimeout(2)
      local cip, cport, cfamily = client:getsockname()
      assert.same({ cip, tonumber(cport), cfamily }, { peer:getpeername() })
      assert.equal("inet6", select(3, client:getpeername()))
      assert.equal("inet6", peer:getfamily())  -- the server's family, as LuaSocket's accept gives
      assert.equal(5, client:send("six!\n"))
      assert.equal("six!", peer:receive())
      client:close()
      peer:close()
      server:close()
    end)
  end)

  it("corio.tcp() takes its family from the address, and corio.bind/connect take '::1'", function()
    if not has_ipv6() then
      pending("no IPv6 loopback (::1) on this host")
      return
    end
    run(function()
      local server = assert(corio.bind("::1", 0))
      server:settimeout(2)
      assert.equal("inet6", select(3, server:getsockname()))
      local c = corio.tcp()
      c:settimeout(2)
      assert.equal(1, c:connect("::1", S.port(server)))
      assert.equal("inet6", c:getfamily())
      local p = assert(server:accept())
      c:close()
      p:close()
      local c2 = assert(corio.connect("::1", S.port(server)))
      c2:close()
      server:close()
    end)
  end)

  it("a tcp6 socket is IPv6 only, as in LuaSocket", function()
    if not has_ipv6() then
      pending("no IPv6 loopback (::1) on this host")
      return
    end
    local r
    run(function()
      local v4 = assert(corio.bind("127.0.0.1", 0))
      local c = corio.tcp6()
      c:settimeout(2)
      r = V(c:connect("127.0.0.1", S.port(v4)))
      assert.is_nil(r[1])
      assert.equal(2, r.n)
      -- tcp sockets set ipv6-v6only but cannot get it (LuaSocket's option tables)
      local ok, err = pcall(c.getoption, c, "ipv6-v6only")
      assert.is_false(ok)
      assert.equal("bad argument #2 to '?' (unsupported option `ipv6-v6only')", err)
      assert.equal(1, c:setoption("ipv6-v6only", true))
      c:close()
      v4:close()
    end)
    -- KNOWN: an address of the other family: LuaSocket gives getaddrinfo's EAI_ADDRFAMILY
    -- words; corio says "host or service not provided, or not known"
    known("words for an address of the other family", function()
      assert.same(V(nil, "Address family for hostname not supported"), r)
    end)
  end)

  it("a refused IPv6 connection says 'connection refused'", function()
    if not has_ipv6() then
      pending("no IPv6 loopback (::1) on this host")
      return
    end
    run(function()
      local s = corio.tcp6()
      assert.equal(1, s:bind("::1", 0))
      local port = S.port(s)
      s:close()
      local c = corio.tcp6()
      c:settimeout(2)
      local ok, err = c:connect("::1", port)
      assert.is_nil(ok)
      assert.equal("connection refused", err)
      c:close()
    end)
  end)
end)
