-- corio.wrap(luasocket_object): LuaSocket's tcp master/client/server and udp sockets made
-- asynchronous on corio's engine, the object kept as .socket; LuaSocket's own http and
-- smtp modules through their create hooks. Loopback only; every wait has a timeout.
local corio = require "corio"
local socket = require "socket"
local http = require "socket.http"
local smtp = require "socket.smtp"
local ltn12 = require "ltn12"
local S = require "corio_support"
local servers = require "servers_support"

local run, port_of = S.run, S.port
local V = S.pack  -- V(...): the values and how many (n), to compare whole results
local function known(reason, fn)  -- see corio_support's known
  local ok, why = S.known(reason, fn)
  if not ok then pending(why) end
end

local function wrapped_tcp()
  local w = corio.wrap(socket.tcp())
  w:settimeout(5)
  return w
end

describe("corio.wrap", function()
  describe("a fresh tcp master", function()
    it("has no descriptor yet, the class and methods of LuaSocket's, the object as .socket", function()
      local t = socket.tcp()
      local w = corio.wrap(t)
      assert.equal(t, w.socket)
      assert.equal(-1, w:getfd())
      assert.equal("tcp{master}", w.class)
      assert.matches("^tcp{master}: 0x%x+$", tostring(w))
      for _, name in ipairs({ "accept", "bind", "close", "connect", "dirty", "getfamily", "getfd", "getoption",
        "getpeername", "getsockname", "getstats", "setstats", "listen", "receive", "send", "setfd", "setoption",
        "setpeername", "setsockname", "settimeout", "gettimeout", "shutdown" }) do
        assert.is_function(w[name], name)
      end
      -- as on LuaSocket's own objects, the other classes' methods are there and refuse this one
      -- with LuaSocket's words
      for name, class in pairs({ accept = "tcp{server}", receive = "tcp{client}", send = "tcp{client}" }) do
        local ok, err = pcall(w[name], w)
        assert.is_false(ok)
        assert.equal(("bad argument #1 to '?' (%s expected)"):format(class), err)
      end
      assert.equal("inet4", w:getfamily())
      assert.same(V(-1, -1), V(w:gettimeout()))
      assert.equal(w, corio.wrap(w))  -- wrapping again gives the same socket
      assert.same({ nil, "LuaSocket tcp, udp or unixstream socket expected" }, { corio.wrap(io.stdout) })
      assert.has_error(function() corio.wrap("nope") end)
      w.note = "mine"  -- fields are kept beside .socket
      assert.equal("mine", w.note)
      w.socket = t
      w:close()
    end)

    it("connect resolves through corio, gives the object the descriptor and makes both clients", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local t = socket.tcp()
        local w = corio.wrap(t)
        w:settimeout(2)
        assert.equal(1, w:connect("localhost", tostring(port_of(server))))  -- port as a string, as http passes it
        assert.is_true(w:getfd() >= 0)
        assert.equal(w:getfd(), t:getfd())
        assert.equal("tcp{client}", w.class)
        assert.equal("tcp{client}", t.class)
        assert.equal("127.0.0.1", (t:getpeername()))  -- the object works on its own too
        server:settimeout(2)
        local peer = assert(server:accept())
        peer:settimeout(2)
        assert.equal(6, w:send("hello\n"))
        assert.equal("hello", peer:receive())
        peer:send("line\r\nrest")
        assert.equal("pre:line", w:receive("*l", "pre:"))
        peer:close()
        assert.same(V("rest", nil, nil), V(w:receive("*a")))
        assert.same(V(nil, "closed", ""), V(w:receive("*a")))
        w:close()
        assert.equal(-1, t:getfd())
        server:close()
      end)
    end)

    it("connect reports a refused connection with LuaSocket's words", function()
      run(function()
        local w = wrapped_tcp()
        assert.same(V(nil, "connection refused"), V(w:connect("127.0.0.1", S.free_port())))
        assert.equal("tcp{client}", w.class)  -- as LuaSocket's: a client even when connect fails
        assert.equal("tcp{client}", w.socket.class)
        w:close()
      end)
    end)

    it("bind, listen and accept: the server accepts wrapped clients over LuaSocket objects", function()
      run(function()
        local t = socket.tcp()
        local w = corio.wrap(t)
        assert.equal(1, w:setoption("reuseaddr", true) or 1)
        assert.equal(1, w:bind("127.0.0.1", 0))
        assert.equal(w:getfd(), t:getfd())
        assert.equal(1, w:listen())
        assert.equal("tcp{server}", w.class)
        assert.equal("tcp{server}", t.class)
        w:settimeout(2)
        local wait = S.go(function()
          local c = assert(corio.connect("127.0.0.1", port_of(w)))
          c:send("from client\n")
          c:close()
        end)
        local client = assert(w:accept())
        assert.equal("tcp{client}", client.class)
        assert.equal("tcp{client}", client.socket.class)
        assert.equal(client:getfd(), client.socket:getfd())
        client:settimeout(2)
        assert.equal("from client", client:receive())
        wait()
        client:close()
        assert.equal(-1, client.socket:getfd())
        w:close()
      end)
    end)
  end)

  describe("an object with a descriptor", function()
    it("is looked up lazily: a descriptor the object gets on its own is used from then on", function()
      run(function()
        local t = socket.tcp()
        local w = corio.wrap(t)
        assert.equal(-1, w:getfd())
        assert(t:bind("127.0.0.1", 0))  -- LuaSocket itself, not the wrapper
        assert(t:listen())
        assert.equal(t:getfd(), w:getfd())
        assert.equal("tcp{server}", w.class)
        w:settimeout(2)
        local wait = S.go(function() return assert(corio.connect("127.0.0.1", (select(2, t:getsockname())))) end)
        local c = assert(w:accept())
        local peer = wait()
        peer:send("x")
        c:settimeout(2)
        assert.equal("x", c:receive(1))
        peer:close()
        c:close()
        w:close()
      end)
    end)

    it("an object closed by LuaSocket itself leaves the wrapper closed too", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local t = socket.tcp()
        local w = corio.wrap(t)
        w:settimeout(2)
        assert(w:connect("127.0.0.1", port_of(server)))
        t:close()
        assert.same(V(nil, "closed", ""), V(w:receive()))
        assert.equal(-1, w:getfd())
        server:close()
      end)
    end)

    it("wraps a connected LuaSocket client", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local t = assert(socket.connect("127.0.0.1", port_of(server)))  -- blocking LuaSocket connect
        local w = corio.wrap(t)
        assert.equal("tcp{client}", w.class)
        assert.equal(t:getfd(), w:getfd())
        server:settimeout(2)
        local peer = assert(server:accept())
        w:settimeout(2)
        peer:send("ping\n")
        assert.equal("ping", w:receive())
        peer:close()
        w:close()
        server:close()
      end)
    end)
  end)

  describe("lifetime", function()
    it("a collected wrapper leaves the object's descriptor open and usable", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local t = socket.tcp()
        do
          local w = corio.wrap(t)
          w:settimeout(2)
          assert(w:connect("127.0.0.1", port_of(server)))
        end
        collectgarbage()
        collectgarbage()
        server:settimeout(2)
        local peer = assert(server:accept())
        peer:settimeout(2)
        assert.equal(3, t:send("ok\n"))  -- LuaSocket's own send, blocking
        assert.equal("ok", peer:receive())
        t:close()
        peer:close()
        server:close()
      end)
    end)

    it("wrappers and objects collected together leak no descriptor", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        collectgarbage()
        local before = S.open_fds()
        for _ = 1, 20 do
          local w = corio.wrap(socket.tcp())
          w:settimeout(2)
          assert(w:connect("127.0.0.1", port_of(server)))
          local u = corio.wrap(socket.udp())
          assert(u:setsockname("127.0.0.1", 0))
        end
        server:close()
        collectgarbage()
        collectgarbage()
        assert.is_true(S.open_fds() <= before, "descriptors left open")
      end)
    end)
  end)

  describe("the corio guarantees", function()
    it("close wakes every thread waiting on the socket with nil, 'closed' and closes the object", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local w = wrapped_tcp()
        assert(w:connect("127.0.0.1", port_of(server)))
        local waits = {}
        for i = 1, 3 do waits[i] = S.go(function() return w:receive() end) end
        corio.sleep(0.02)
        w:close()
        for i = 1, 3 do
          local ok, err = waits[i](2)
          assert.is_nil(ok)
          assert.equal("closed", err)
        end
        assert.equal(-1, w.socket:getfd())
        server:close()
      end)
    end)

    it("settimeout bounds a wait: nil, 'timeout'", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local w = wrapped_tcp()
        assert(w:connect("127.0.0.1", port_of(server)))
        w:settimeout(0.05)
        local elapsed, ok, err = S.time(w.receive, w)
        assert.is_nil(ok)
        assert.equal("timeout", err)
        assert.is_true(elapsed >= 0.04 and elapsed < 1, elapsed)
        w:close()
        server:close()
      end)
    end)

    it("a wait lets other threads run (two waits overlap)", function()
      run(function()
        local server = assert(corio.bind("127.0.0.1", 0))
        local a, b = wrapped_tcp(), wrapped_tcp()
        assert(a:connect("127.0.0.1", port_of(server)))
        assert(b:connect("127.0.0.1", port_of(server)))
        a:settimeout(0.2)
        b:settimeout(0.2)
        local t0 = corio.now()
        local wa = S.go(function() return a:receive() end)
        local wb = S.go(function() return b:receive() end)
        assert.equal("timeout", select(2, wa()))
        assert.equal("timeout", select(2, wb()))
        assert.is_true(corio.now() - t0 < 0.35)
        a:close()
        b:close()
        server:close()
      end)
    end)
  end)

  describe("udp", function()
    it("unconnected and connected, with the object following", function()
      run(function()
        local u1, u2 = socket.udp(), socket.udp()
        local a, b = corio.wrap(u1), corio.wrap(u2)
        assert.equal("udp{unconnected}", a.class)
        assert.equal(-1, a:getfd())
        a:settimeout(2)
        b:settimeout(2)
        assert.equal(1, a:setsockname("127.0.0.1", 0))
        assert.equal(a:getfd(), u1:getfd())
        local _, pa = a:getsockname()
        assert.equal(5, b:sendto("hello", "127.0.0.1", pa))
        assert.equal(b:getfd(), u2:getfd())
        local data, ip, port = a:receivefrom()
        assert.equal("hello", data)
        assert.equal("127.0.0.1", ip)
        assert.equal(1, a:setpeername(ip, port))
        assert.equal("udp{connected}", a.class)
        assert.equal("udp{connected}", u1.class)
        assert.equal(3, a:send("hey"))
        assert.equal("hey", b:receive())
        local waiting = S.go(function() return a:receive() end)
        corio.sleep(0.01)
        a:close()
        assert.same({ nil, "closed" }, { waiting() })
        assert.equal(-1, u1:getfd())
        a:settimeout(0.05)
        b:settimeout(0.05)
        assert.same({ nil, "timeout" }, { b:receive() })
        b:close()
      end)
    end)
  end)

  describe("unixstream", function()
    local sunix_ok, sunix = pcall(require, "socket.unix")

    it("a wrapped client talks to a wrapped server", function()
      if not sunix_ok then return pending("no socket.unix") end
      local path = S.tmpname(".sock")
      local accepted, client_class, received
      run(function()
        local srv = corio.wrap(sunix.stream())
        assert.equal("unixstream{master}", srv.class)
        assert.equal(1, srv:bind(path))
        assert.equal(1, srv:listen())
        assert.equal("unixstream{server}", srv.socket.class)
        srv:settimeout(0.5)
        local c = corio.wrap(sunix.stream())
        c:settimeout(1)
        assert.equal(1, c:connect(path))
        client_class = c.socket.class
        accepted = V(srv:accept())
        if accepted[1] then
          accepted[1]:settimeout(1)
          c:send("unix\n")
          received = accepted[1]:receive()
          accepted[1]:close()
        end
        c:close()
        srv:close()
      end)
      os.remove(path)
      assert.equal("unixstream{client}", client_class)
      -- KNOWN: a wrapped unixstream server's accept fails with nil, "Operation not supported":
      -- lwrap.cpp's AcceptOp calls the fresh object's close with the descriptor as an extra
      -- argument, so the call fails
      known("wrapped unixstream accept fails", function()
        assert.equal(1, accepted.n)
        assert.equal("unixstream{client}", accepted[1].class)
        assert.equal("unix", received)
      end)
    end)
  end)

  describe("socket.http through the create hook", function()
    local function get(url)
      local t = {}
      local ok, code, headers = http.request {
        url = url,
        sink = ltn12.sink.table(t),
        create = function() return corio.wrap(socket.tcp()) end,
      }
      return table.concat(t), ok, code, headers
    end

    it("gets a page with Content-Length from python3's http.server", function()
      local server, why = servers.python_http()
      if not server then pending(why) return end
      local ok, err = pcall(run, 15, function()
        local body, res, code, headers = get(("http://127.0.0.1:%d/hello.txt"):format(server.port))
        assert.equal(1, res)
        assert.equal(200, code)
        assert.equal(tostring(#servers.body), headers["content-length"])
        assert.equal(servers.body, body)
      end)
      server.stop()
      assert(ok, err)
    end)

    it("reads a reply without Content-Length until 'closed', two requests at once", function()
      run(15, function()
        local server, port = servers.http_until_closed(servers.body)
        local url = ("http://localhost:%d/x"):format(port)
        local w1 = S.go(get, url)
        local w2 = S.go(get, url .. "y")
        for _, wait in ipairs({ w1, w2 }) do
          local body, res, code, headers = wait(10)
          assert.equal(1, res)
          assert.equal(200, code)
          assert.is_nil(headers["content-length"])
          assert.equal(#servers.body, #body)
          assert.equal(servers.body, body)
        end
        server:close()
      end)
    end)

    it("reports a refused connection as http does", function()
      run(function()
        local body, res, err = get(("http://127.0.0.1:%d/"):format(S.free_port()))
        assert.equal("", body)
        assert.is_nil(res)
        assert.equal("connection refused", err)
      end)
    end)

    it("works from the main thread too (the call blocks, running the loop)", function()
      local server, port = servers.http_until_closed("short")
      local timeout = http.TIMEOUT
      http.TIMEOUT = 5  -- no watchdog here: http's own timeout bounds each wait
      local body, res, code = get(("http://127.0.0.1:%d/"):format(port))
      http.TIMEOUT = timeout
      assert.equal(1, res)
      assert.equal(200, code)
      assert.equal("short", body)
      server:close()
    end)
  end)

  describe("socket.smtp through the create hook", function()
    it("sends a message to a local sink", function()
      run(15, function()
        local server, port, mails = servers.smtp_sink()
        local ok, err = smtp.send {
          from = "<alice@example.test>",
          rcpt = { "<bob@example.test>", "<carol@example.test>" },
          source = smtp.message {
            headers = { subject = "corio test", to = "bob@example.test" },
            body = "first line\r\nsecond line",
          },
          server = "127.0.0.1",
          port = port,
          create = function() return corio.wrap(socket.tcp()) end,
        }
        assert.equal(1, ok, err)
        assert.equal(1, #mails)
        assert.equal("alice@example.test", mails[1].from)
        assert.same({ "bob@example.test", "carol@example.test" }, mails[1].rcpt)
        assert.matches("[Ss]ubject: corio test", mails[1].data)
        assert.matches("first line\nsecond line", mails[1].data, 1, true)
        server:close()
      end)
    end)
  end)

  describe("socket.protect", function()
    it("can be yielded across from a corio thread, returning try failures as nil, message", function()
      run(function()
        local f = socket.protect(function(x)
          corio.sleep(0.01)
          local try = socket.newtry(function() x.finalized = true end)
          try(nil, "boom")
        end)
        local state = {}
        assert.same({ nil, "boom" }, { f(state) })
        assert.is_true(state.finalized)
        local g = socket.protect(function() corio.sleep(0.01) error("not a try error") end)
        assert.has_error(g)
        assert.equal(3, socket.protect(function(a) corio.sleep(0) return a + 1 end)(2))
        if _VERSION == "Lua 5.1" then assert.is_true(socket.corio_protect) end
        -- a wait inside it yields rather than blocking in a nested loop: the two overlap
        local t0 = corio.now()
        local slow = socket.protect(function() corio.sleep(0.1) return true end)
        local w1, w2 = S.go(slow), S.go(slow)
        assert.is_true(w1())
        assert.is_true(w2())
        assert.is_true(corio.now() - t0 < 0.18, corio.now() - t0)
      end)
    end)
  end)
end)
