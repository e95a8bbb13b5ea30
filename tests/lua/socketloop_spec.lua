-- corio.socketloop: every function of the socketloop API (wrap, connect, newthread,
-- current, suspend, resume, newserver, start, stop, step, coro), and the seed's getpage
-- example run unchanged but for the require line. Loopback only; every wait is bounded.
local corio = require "corio"
local loop = require "corio.socketloop"
local socket = require "socket"
local S = require "corio_support"
local servers = require "servers_support"

-- Runs the loop (loop.start) under a watchdog; fails if it had to stop it. The watchdog is
-- a timer, which keeps the loop alive: the test's threads call loop.stop() when done
-- (start returning by itself is tested in a child process).
local function start_bounded(limit)
  local timed_out = false
  local dog = corio.after(limit or 5, function()
    timed_out = true
    loop.stop()
  end)
  loop.start()
  dog:cancel()
  assert(not timed_out, "the loop was still running at the watchdog")
end

-- The seed's example, unchanged but for the require line (and a local server as url).
-- LuaSocket 2 set the globals socket and ltn12 the example uses; LuaSocket 3 does not.
local seed_example = [[
socket, ltn12 = require "socket", require "ltn12"
local loop = require'corio.socketloop'
local http = require'socket.http'

local function getpage(url)
   local t = {}
   local ok, code, headers = http.request{
      url = url,
      sink = ltn12.sink.table(t),
      create = function()
         return loop.wrap(socket.try(socket.tcp()))
      end,
   }
   assert(ok, code)
   return table.concat(t), headers, code
end

loop.newthread(function()
   local body = getpage(arg[1])
   print('got ' .. #body .. ' bytes')
end)

loop.start()
]]

describe("corio.socketloop", function()
  it("the seed's getpage example gets a page from python3's http.server", function()
    local server, why = servers.python_http()
    if not server then pending(why) return end
    local ok, out = pcall(S.child, seed_example, ("http://127.0.0.1:%d/hello.txt"):format(server.port))
    server.stop()
    assert(ok, out)
    assert.matches("got " .. #servers.body .. " bytes", out, 1, true)
    assert.matches("status 0", out)
  end)

  it("getpage from loop threads, a reply without Content-Length read until closed", function()
    local server, port = servers.http_until_closed(servers.body)
    local ltn12 = require "ltn12"
    local http = require "socket.http"
    local bodies = {}
    for i = 1, 2 do
      loop.newthread(function(url)
        local t = {}
        local ok, code = http.request {
          url = url,
          sink = ltn12.sink.table(t),
          create = function() return loop.wrap(socket.try(socket.tcp())) end,
        }
        assert(ok, code)
        bodies[i] = table.concat(t)
        if bodies[1] and bodies[2] then loop.stop() end
      end, ("http://127.0.0.1:%d/%d"):format(port, i))
    end
    start_bounded(10)
    server:close()
    assert.equal(servers.body, bodies[1])
    assert.equal(servers.body, bodies[2])
  end)

  it("wrap makes a LuaSocket socket async, the original kept as .socket", function()
    local server = assert(corio.bind("127.0.0.1", 0))
    local t = socket.tcp()
    local a = loop.wrap(t)
    assert.equal(t, a.socket)
    local got
    loop.newthread(function()
      a:settimeout(2)
      assert(a:connect("127.0.0.1", S.port(server)))
      server:settimeout(2)
      local peer = assert(server:accept())
      peer:send("hi\n")
      got = S.pack(a:receive())
      a:close()
      peer:close()
      loop.stop()
    end)
    start_bounded()
    server:close()
    assert.same(S.pack("hi", nil, nil), got)  -- receive's three values
    assert.equal(-1, t:getfd())
  end)

  it("connect makes an async connection, from a local address too", function()
    local server = assert(corio.bind("127.0.0.1", 0))
    local results = {}
    loop.newthread(function()
      local c = assert(loop.connect("127.0.0.1", S.port(server)))
      assert.equal("tcp{client}", c.class)
      local c2 = assert(loop.connect("127.0.0.1", S.port(server), "127.0.0.1", 0))
      results.local_name = { c2:getsockname() }
      local refused, err = loop.connect("127.0.0.1", S.free_port())
      results.refused = { refused, err }
      c:close()
      c2:close()
      loop.stop()
    end)
    start_bounded()
    server:close()
    -- LuaSocket's shape: the port a string
    assert.equal(3, #results.local_name)
    assert.equal("127.0.0.1", results.local_name[1])
    assert.matches("^%d+$", results.local_name[2])
    assert.equal("inet", results.local_name[3])
    assert.same({ nil, "connection refused" }, results.refused)
  end)

  it("newthread runs the handler with its argument at once, until it waits; current is that thread", function()
    local trace = {}
    local inner
    local th = loop.newthread(function(arg)
      inner = loop.current()
      trace[#trace + 1] = "start " .. arg
      corio.sleep(0.01)
      trace[#trace + 1] = "end"
      loop.stop()
    end, "x")
    trace[#trace + 1] = "returned"
    assert.equal("thread", type(th))
    assert.equal(th, inner)
    assert.is_nil(loop.current())  -- the main thread
    start_bounded()
    assert.same({ "start x", "returned", "end" }, trace)
  end)

  it("suspend waits for resume, which passes a value", function()
    local got
    local sleeper = loop.newthread(function()
      got = loop.suspend()
      loop.stop()
    end)
    loop.newthread(function()
      corio.sleep(0.01)
      assert.is_nil(got)
      loop.resume(sleeper, "wake up")
    end)
    start_bounded()
    assert.equal("wake up", got)
  end)

  it("newserver dispatches each connection to the handler in a thread of its own", function()
    local server = assert(loop.newserver("127.0.0.1", 0, function(c)
      c:settimeout(2)
      local line = c:receive()
      c:send(line:upper() .. "\n")
      c:close()
    end))
    local port = S.port(server)
    local replies = {}
    for i = 1, 3 do
      loop.newthread(function()
        local c = assert(loop.connect("127.0.0.1", port))
        c:settimeout(2)
        c:send("hello " .. i .. "\n")
        replies[i] = c:receive()
        c:close()
        if replies[1] and replies[2] and replies[3] then loop.stop() end
      end)
    end
    start_bounded()
    server:close()
    assert.same({ "HELLO 1", "HELLO 2", "HELLO 3" }, replies)
  end)

  it("start returns when no thread is left", function()
    local out = S.child([[
      local loop = require "corio.socketloop"
      loop.newthread(function() require("corio").sleep(0.05) end)
      loop.start(1)
      print("returned")
    ]])
    assert.matches("returned", out)
    assert.matches("status 0", out)
  end)

  it("stop makes start return while a server still accepts", function()
    local server = assert(loop.newserver("127.0.0.1", 0, function(c) c:close() end))
    corio.after(0.02, loop.stop)
    local t0 = corio.now()
    start_bounded()
    assert.is_true(corio.now() - t0 < 1)
    server:close()
  end)

  it("step dispatches what is ready: true if anything ran, false after its timeout", function()
    local done = false
    loop.newthread(function()
      corio.sleep(0.01)
      done = true
    end)
    local deadline = corio.now() + 2
    while not done and corio.now() < deadline do loop.step(0.5) end
    assert.is_true(done)
    local t0 = corio.now()
    assert.is_false(loop.step(0.03))
    assert.is_true(corio.now() - t0 >= 0.025)
    corio.after(0, function() end)
    assert.is_true(loop.step(1))
  end)

  describe("coro", function()
    it("has the loop's functions", function()
      for _, name in ipairs({ "wrap", "connect", "newthread", "current", "suspend", "resume", "newserver",
        "start", "stop", "step" }) do
        assert.equal(loop[name], loop.coro[name], name)
      end
    end)

    it("transfer passes control and values between symmetric coroutines", function()
      local coro = loop.coro
      local trace = {}
      local ping, pong
      ping = coro.create(function(n)
        while n < 6 do
          trace[#trace + 1] = "ping " .. n
          n = coro.transfer(pong, n + 1)
        end
        trace[#trace + 1] = "done"
        coro.stop()
      end)
      pong = coro.create(function(n)
        while true do
          trace[#trace + 1] = "pong " .. n
          n = coro.transfer(ping, n + 1)
        end
      end)
      coro.transfer(ping, 1)  -- from the main thread: starts ping
      start_bounded()
      assert.same({ "ping 1", "pong 2", "ping 3", "pong 4", "ping 5", "pong 6", "done" }, trace)
    end)

    it("a transferring thread waits on sockets like any other", function()
      local coro = loop.coro
      local server = assert(loop.newserver("127.0.0.1", 0, function(c)
        c:send("data\n")
        c:close()
      end))
      local got
      local reader = coro.create(function(port)
        local c = assert(loop.connect("127.0.0.1", port))
        c:settimeout(2)
        got = c:receive()
        c:close()
        loop.stop()
      end)
      loop.newthread(function() coro.transfer(reader, S.port(server)) end)
      start_bounded()
      server:close()
      assert.equal("data", got)
    end)
  end)
end)
