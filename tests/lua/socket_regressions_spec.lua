-- Socket bugs found by adversarial use (issue 9, section 3), each kept as a regression:
-- a second address after a refused first, timeouts that bound name resolution and each
-- attempt, one line-limit rule whatever the segmentation, rates that cannot bind, huge
-- datagram sizes, and a wrapped socket closed by LuaSocket's own close() while a thread
-- waits on it. Loopback only; every wait is bounded.
local corio = require "corio"
local socket = require "socket"
local S = require "corio_support"

local run, pair, port_of = S.run, S.pair, S.port

-- Runs Lua source in a child interpreter with CARES_HOSTS naming a hosts file of `hosts`
-- (c-ares reads it when the resolver starts); returns its output and "status <code>".
local function child_with_hosts(hosts, source)
  local hosts_path = S.tmpname(".hosts")
  local f = assert(io.open(hosts_path, "w"))
  f:write(hosts)
  f:close()
  local out = S.child_in("CARES_HOSTS=" .. S.shquote(hosts_path), source)
  os.remove(hosts_path)
  return out
end

-- A loopback listener that takes no connection: its backlog is full, so a further SYN is
-- dropped and a connect to it waits until its timeout. Returns ip, port, and a function
-- that closes it all.
local function silent_listener(ip)
  local l = assert(socket.tcp4())
  assert(l:bind(ip, 0))
  assert(l:listen(0))
  local _, port = l:getsockname()
  local fillers = {}
  for _ = 1, 4 do  -- more than the backlog holds
    local c = socket.tcp4()
    c:settimeout(0)
    c:connect(ip, port)
    fillers[#fillers + 1] = c
  end
  return ip, tonumber(port), function()
    for _, c in ipairs(fillers) do c:close() end
    l:close()
  end
end

describe("socket regressions", function()
  describe("connect", function()
    it("goes on to the second address of a name when the first refuses (a fresh descriptor)", function()
      -- Before: the second attempt reused the failed descriptor and failed with "closed".
      local out = child_with_hosts("127.0.0.2 two.corio.test\n127.0.0.3 two.corio.test\n", [[
        local corio = require "corio"
        local server = assert(corio.bind("127.0.0.3", 0))
        local _, port = server:getsockname()
        corio.spawn(function()
          local c = corio.tcp4()  -- a descriptor from the start: its options can be set
          c:settimeout(2)
          c:setoption("keepalive", true)
          print("connect", c:connect("two.corio.test", port))
          print("peer", c:getpeername())
          print("keepalive", c:getoption("keepalive"))
          c:close()
          server:close()
        end)
        corio.run()
      ]])
      assert.matches("connect\t1", out)
      assert.matches("peer\t127.0.0.3", out)
      assert.matches("keepalive\ttrue", out)  -- set before, applied again to the fresh descriptor
      assert.matches("status 0", out)
    end)

    it("gives each address its own timeout and moves on when one does not answer", function()
      local ip, port, close = silent_listener("127.0.0.2")
      local out = child_with_hosts("127.0.0.2 slow.corio.test\n127.0.0.3 slow.corio.test\n", ([[
        local corio = require "corio"
        local server = assert(corio.bind("127.0.0.3", %d))
        corio.spawn(function()
          local c = corio.tcp()
          c:settimeout(0.3)
          local t0 = corio.now()
          print("connect", c:connect("slow.corio.test", %d))
          print(("took %%.2f"):format(corio.now() - t0))
          print("peer", c:getpeername())
          c:close()
          server:close()
        end)
        corio.run()
      ]]):format(port, port))
      close()
      assert.matches("connect\t1", out)
      assert.matches("peer\t127.0.0.3", out)
      local took = tonumber(out:match("took (%d+%.%d+)"))
      assert.is_true(took >= 0.3 and took < 2, out)
      assert.matches("status 0", out)
      assert.equal("127.0.0.2", ip)
    end)

    it("stops on the first attempt with a zero timeout, which goes on in the background", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local c = corio.tcp()
        c:settimeout(0)
        local ok, err = c:connect("127.0.0.1", port_of(server))
        -- On loopback the handshake may complete at once; otherwise LuaSocket's "timeout".
        assert.is_true(ok == 1 or err == "timeout", tostring(err))
        assert.equal("tcp{client}", c.class)
        c:settimeout(1)
        local peer = assert((function() server:settimeout(1) return server:accept() end)())
        -- As LuaSocket's: calling connect again completes a connect in progress (1), then
        -- answers "already connected"; the connection is never dropped.
        if ok ~= 1 then assert.equal(1, c:connect("127.0.0.1", port_of(server))) end
        assert.same({ nil, "already connected" }, { c:connect("127.0.0.1", port_of(server)) })
        assert.equal(3, c:send("abc"))
        peer:settimeout(1)
        assert.equal("abc", peer:receive(3))
        c:close()
        peer:close()
        server:close()
      end)
    end)

    it("settimeout bounds the name lookup of connect, bind and setpeername", function()
      -- Before: each waited for c-ares' own 5 s whatever the socket's timeout.
      run(function()
        local dns = assert(socket.udp4())
        assert(dns:setsockname("127.0.0.1", 0))
        local _, dport = dns:getsockname()
        assert(corio.nameservers("127.0.0.1:" .. dport))  -- a server that never answers
        local function timed(f)
          local t0 = corio.now()
          local a, b = f()
          return corio.now() - t0, a, b
        end
        local c = corio.tcp()
        c:settimeout(0.2)
        local took, ok, err = timed(function() return c:connect("nowhere.corio.test", 80) end)
        assert.same({ nil, "timeout" }, { ok, err })
        assert.is_true(took >= 0.2 and took < 1.5, took)
        local b = corio.tcp()
        b:settimeout(0.1, "t")
        took, ok, err = timed(function() return b:bind("nowhere.corio.test", 0) end)
        assert.same({ nil, "timeout" }, { ok, err })
        assert.is_true(took >= 0.1 and took < 1.5, took)
        local u = corio.udp()
        u:settimeout(0.1)
        took, ok, err = timed(function() return u:setpeername("nowhere.corio.test", 53) end)
        assert.same({ nil, "timeout" }, { ok, err })
        assert.is_true(took >= 0.1 and took < 1.5, took)
        c:close()
        b:close()
        u:close()
        dns:close()
      end)
    end)
  end)

  describe("line limit", function()
    -- Before: a 2000-byte line in one segment passed a 1000-byte limit while a 1000-byte
    -- line whose "\n" came later was refused.
    local function read_line(segments, limit)
      local out
      run(function()
        local c, p = pair(1)
        p:setlimit(limit)
        corio.spawn(function()
          for _, s in ipairs(segments) do
            c:send(s)
            corio.sleep(0.02)
          end
        end)
        out = { p:receive("*l") }
        c:close()
        p:close()
      end)
      return out
    end

    it("refuses only lines longer than the limit, however the bytes are segmented", function()
      local exact, over = string.rep("a", 1000), string.rep("b", 1001)
      assert.same({ exact, nil, nil }, read_line({ exact .. "\n" }, 1000))
      assert.same({ exact, nil, nil }, read_line({ exact, "\n" }, 1000))
      assert.same({ exact, nil, nil }, read_line({ exact:sub(1, 500), exact:sub(501), "\nnext" }, 1000))
      assert.same({ nil, "line too long", "" }, read_line({ over .. "\n" }, 1000))
      assert.same({ nil, "line too long", "" }, read_line({ over, "\n" }, 1000))
      assert.same({ nil, "line too long", "" }, read_line({ string.rep("c", 2000) .. "\n" }, 1000))
    end)

    it("keeps the refused bytes buffered: nothing is lost", function()
      run(function()
        local c, p = pair(1)
        p:setlimit(10)
        c:send(string.rep("x", 20) .. "\nok\n")
        assert.same({ nil, "line too long", "" }, { p:receive() })
        assert.equal(string.rep("x", 20), (p:receive(20)))
        assert.equal("\n", (p:receive(1)))
        assert.equal("ok", (p:receive()))
        c:close()
        p:close()
      end)
    end)

    it("corio.setlimit sets the default of every socket; math.huge lifts it", function()
      local big = string.rep("z", 3 * 1024 * 1024)
      run(function()
        local c, p = pair(5)
        assert.same({ nil, "line too long", "" }, (function()
          corio.spawn(function() c:send(big .. "\n") end)
          return { p:receive() }
        end)())
        c:close()
        p:close()
        corio.setlimit(math.huge)
        local c2, p2 = pair(5)
        corio.spawn(function() c2:send(big .. "\n") end)
        local line = p2:receive()
        assert.equal(#big, #line)
        corio.setlimit(1024 * 1024)
        c2:close()
        p2:close()
      end)
      assert.has_error(function() corio.setlimit(0) end)
      assert.has_error(function() corio.setlimit(0 / 0) end)
    end)
  end)

  describe("throttle", function()
    -- Before: math.huge or 1e300 moved nothing and spun the loop at 100 % CPU.
    for _, rate in ipairs({ math.huge, 1e300, 2 ^ 64 }) do
      it(("setthrottle(%g, %g) transfers at full speed without spinning"):format(rate, rate), function()
        run(function()
          local c, p = pair(2)
          c:setthrottle(rate, rate)
          p:setthrottle(rate, rate)
          local data = string.rep("x", 300000)
          local cpu0, t0 = os.clock(), corio.now()
          local sent = S.go(function() return c:send(data) end)
          assert.equal(#data, #assert(p:receive(#data)))
          assert.equal(#data, sent())
          assert.is_true(corio.now() - t0 < 1)
          assert.is_true(os.clock() - cpu0 < 0.5)
          c:close()
          p:close()
        end)
      end)
    end

    it("refuses a rate that is not a number", function()
      local c = corio.tcp4()
      assert.has_error(function() c:setthrottle(0 / 0) end)
      assert.same({ 1 }, { c:setthrottle(-5, nil) })  -- unlimited
      assert.same({}, { c:getthrottle() })
      c:close()
    end)
  end)

  describe("udp", function()
    it("receive(2^40) gives the datagram instead of aborting on an allocation", function()
      run(function()
        local a, b = corio.udp4(), corio.udp4()
        assert(a:setsockname("127.0.0.1", 0))
        assert(b:setpeername("127.0.0.1", port_of(a)))
        a:settimeout(1)
        b:send("hello")
        assert.equal("hello", a:receive(2 ^ 40))
        b:send("again")
        assert.same({ "again", "127.0.0.1", port_of(b) }, { a:receivefrom(math.huge) })
        assert.same({ nil, "out of memory" }, { a:receive(-1) })  -- LuaSocket's words
        a:close()
        b:close()
      end)
    end)
  end)

  describe("corio.wrap", function()
    -- Before: the waiter was never woken, and later read the bytes of a new connection that
    -- got the same descriptor number.
    it("a wrapper whose object LuaSocket closes wakes its waiters and never reads a reused descriptor", function()
      run(function()
        local server = assert(socket.bind("127.0.0.1", 0))
        local port = port_of(server)
        local t = socket.tcp()
        local w = corio.wrap(t)
        w:settimeout(2)
        assert(w:connect("127.0.0.1", port))
        server:settimeout(1)
        local peer = assert(server:accept())
        local old_fd = t:getfd()
        local waiter = S.go(function() return w:receive() end)
        corio.sleep(0.05)
        t:close()  -- LuaSocket's own close, not the wrapper's
        assert.same({ nil, "closed", "" }, { waiter(1) })
        -- A new connection very likely gets the same descriptor number.
        local other = assert(socket.connect("127.0.0.1", port))
        local peer2 = assert(server:accept())
        peer2:send("not yours\n")
        assert.equal(old_fd, other:getfd())
        assert.same({ nil, "closed", "" }, { w:receive() })
        assert.equal("not yours", other:receive())
        other:close()
        peer:close()
        peer2:close()
        server:close()
      end)
    end)

    it("takes LuaSocket's unix stream sockets too: connect, accept, send and receive", function()
      local unix = require "socket.unix"
      local path = S.tmpname(".sock")
      run(function()
        local server = corio.wrap(assert(unix.stream()))
        assert.equal("unixstream{master}", server.class)
        assert.equal(1, server:bind(path))
        assert.equal(1, server:listen())
        assert.equal("unixstream{server}", server.class)
        assert.equal("unixstream{server}", server.socket.class)
        server:settimeout(2)
        local client = corio.wrap(assert(unix.stream()))
        client:settimeout(2)
        local wait = S.go(function()
          assert.equal(1, client:connect(path))
          assert.equal("unixstream{client}", client.socket.class)
          return client:send("over unix\n")
        end)
        local peer = assert(server:accept())
        assert.equal("unixstream{client}", peer.class)
        assert.equal("unixstream{client}", peer.socket.class)
        assert.equal(peer:getfd(), peer.socket:getfd())
        peer:settimeout(2)
        assert.same({ "over unix", nil, nil }, { peer:receive() })
        assert.equal(10, wait())
        local waiter = S.go(function() return peer:receive() end)
        corio.sleep(0.02)
        peer.socket:close()  -- LuaSocket's own close wakes the waiter
        assert.same({ nil, "closed", "" }, { waiter(1) })
        client:close()
        server:close()
      end)
      os.remove(path)
    end)
  end)

  describe("hostile numbers", function()
    it("setfd takes NaN, math.huge and negatives as no descriptor", function()
      for _, n in ipairs({ 0 / 0, math.huge, -math.huge, -1.5, 2 ^ 40 }) do
        local s = assert(corio.tcp())
        s:setfd(n)
        assert.equal(-1, s:getfd())
        s:close()
      end
    end)

    it("setstats clamps NaN and negatives to 0 and huge counts to the largest", function()
      run(function()
        local a, b = pair()
        assert.equal(1, a:setstats(0 / 0, -5, 0 / 0))
        local r, w, age = a:getstats()
        assert.equal(0, r)
        assert.equal(0, w)
        assert.is_true(age >= 0 and age < 5)
        a:setstats(math.huge, 2 ^ 70, -math.huge)
        r, w = a:getstats()
        assert.equal(2 ^ 64, r)  -- UINT64_MAX, as a double
        assert.equal(2 ^ 64, w)
        a:close()
        b:close()
      end)
    end)
  end)
end)
