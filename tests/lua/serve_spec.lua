-- corio.serve: a handler thread per connection; 2,000 concurrent connections through one
-- server (bounded in time); and a server under descriptor exhaustion (EMFILE), in a child
-- process with a low RLIMIT_NOFILE, that neither spins nor dies and recovers afterwards.
local corio = require "corio"
local S = require "corio_support"

local run = S.run

describe("corio.serve", function()
  it("runs the handler in a thread per connection and returns the server", function()
    run(function()
      local server = assert(corio.serve("127.0.0.1", 0, function(c)
        c:settimeout(2)
        local line = c:receive()
        c:send("echo " .. tostring(line) .. "\n")
        c:close()
      end))
      assert.equal("tcp{server}", server.class)
      assert.is_true(server:getoption("reuseaddr"))
      for i = 1, 3 do
        local c = assert(corio.connect("127.0.0.1", S.port(server)))
        c:settimeout(2)
        c:send("line " .. i .. "\n")
        assert.equal("echo line " .. i, c:receive())
        c:close()
      end
      server:close()
    end)
  end)

  it("reports a port in use", function()
    local a = assert(corio.bind("127.0.0.1", 0))
    local server, err = corio.serve("127.0.0.1", S.port(a), function() end)
    assert.is_nil(server)
    assert.equal("address already in use", err)
    a:close()
  end)

  it("closing the server ends the accepting thread and lets run() return", function()
    local out
    do
      local path = S.tmpname(".lua")
      local f = assert(io.open(path, "w"))
      f:write([[
        local corio = require "corio"
        local server = assert(corio.serve("127.0.0.1", 0, function(c) c:close() end))
        corio.after(0.05, function() server:close() end)
        local t0 = corio.now()
        corio.run()
        print(("returned after %.2f"):format(corio.now() - t0))
      ]])
      f:close()
      local p = assert(io.popen(("timeout 20 %s %s 2>&1; echo \"status $?\""):format(S.shquote(S.interpreter()),
        S.shquote(path))))
      out = p:read("*a")
      p:close()
      os.remove(path)
    end
    assert.matches("returned after 0%.%d+", out)
    assert.matches("status 0", out)
  end)

  it("keeps going, without spinning, when accept fails lastingly (a shut down server)", function()
    local path = S.tmpname(".lua")
    local f = assert(io.open(path, "w"))
    f:write([[
      local corio = require "corio"
      local server = assert(corio.serve("127.0.0.1", 0, function(c) c:close() end))
      local ticks = 0
      corio.spawn(function()
        -- shutdown is a client's method (LuaSocket's tcp{client}): a client object lends it,
        -- given the server's descriptor for the call. accept now fails at once (EINVAL), again
        -- and again, and the descriptor stays readable.
        local lender = assert(corio.connect("127.0.0.1", (select(2, server:getsockname()))))
        local own = lender:getfd()
        lender:setfd(server:getfd())
        assert(lender:shutdown() == 1)
        lender:setfd(own)  -- the server's descriptor stays the server's; the lender closes its own
        lender:close()
        assert(server:getfd() >= 0)
        local c0 = os.clock()
        for _ = 1, 30 do
          corio.sleep(0.01)
          ticks = ticks + 1
        end
        local cpu = os.clock() - c0
        server:close()
        print(("ticks %d cpu %.3f"):format(ticks, cpu))
      end)
      corio.run()
      print("done")
    ]])
    f:close()
    local p = assert(io.popen(("timeout 20 %s %s 2>&1; echo \"status $?\""):format(S.shquote(S.interpreter()),
      S.shquote(path))))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.matches("ticks 30", out)
    assert.matches("done", out)
    assert.matches("status 0", out)
    local cpu = tonumber(out:match("cpu ([%d.]+)"))
    assert.is_true(cpu ~= nil and cpu < 0.2, out)
  end)

  -- A socket keeps its epoll interest after a receive or accept (a reader coming back costs
  -- no epoll_ctl), but only a waiting thread keeps corio.run() going.
  it("lets corio.run() return once no thread waits, though sockets stay open", function()
    local out = S.child([[
      local corio = require "corio"
      local srv = assert(corio.bind("127.0.0.1", 0))
      local _, port = srv:getsockname()
      local kept = {}
      corio.spawn(function()
        for _ = 1, 2 do
          local c = srv:accept()
          assert(c:receive() == "hello")
          kept[#kept + 1] = c  -- open, no longer read
        end
      end)
      for _ = 1, 2 do
        corio.spawn(function()
          local c = assert(corio.connect("127.0.0.1", port))
          c:send("hello\n")
          kept[#kept + 1] = c
        end)
      end
      local t0 = corio.now()
      corio.run()
      print(("returned after %.2f s with %d open sockets"):format(corio.now() - t0, #kept))
    ]])
    local secs, open = out:match("returned after ([%d.]+) s with (%d+) open sockets")
    assert(secs, out)
    assert.is_true(tonumber(secs) < 5, out)
    assert.equal(4, tonumber(open))
    assert.matches("status 0", out, 1, true)
  end)

  describe("2,000 concurrent connections", function()
    local n = 2000
    local need = 2 * n + 200  -- both ends of every connection live in this process
    -- The scenario, as a chunk: run here, or in a child under a raised soft limit. It
    -- returns failures (a table of messages) and the time taken.
    local scenario = [[
      local corio, S, n = ...
      local failures = {}
      local function check(cond, msg) if not cond then failures[#failures + 1] = msg end end
      local t0 = corio.now()
      S.run(60, function()
        local open, max_open, served = 0, 0, 0
        local server = assert(corio.serve("127.0.0.1", 0, function(c)
          c:settimeout(30)
          open = open + 1
          if open > max_open then max_open = open end
          local line = c:receive()
          if line then c:send(line .. "\n") end
          c:receive("*a")  -- until the client goes
          c:close()
          open = open - 1
          served = served + 1
        end))
        local port = S.port(server)
        local clients, waits = {}, {}
        for i = 1, n do
          waits[i] = S.go(function()
            local c = corio.tcp()
            c:settimeout(30)
            local ok, err = c:connect("127.0.0.1", port)
            if not ok then return check(false, "connect: " .. tostring(err)) end
            c:send("client " .. i .. "\n")
            local reply, rerr = c:receive()
            check(reply == "client " .. i, "reply: " .. tostring(reply or rerr))
            clients[i] = c
          end)
        end
        for i = 1, n do waits[i](40) end
        check(max_open == n, "only " .. max_open .. " connections were open at once")
        for i = 1, n do if clients[i] then clients[i]:close() end end
        local deadline = corio.now() + 20
        while served < n and corio.now() < deadline do corio.sleep(0.01) end
        check(served == n, "served " .. served .. " of " .. n)
        server:close()
      end)
      return failures, corio.now() - t0
    ]]

    local function limits()
      local p = assert(io.popen("ulimit -Sn; ulimit -Hn"))
      local soft, hard = p:read("*l"), p:read("*l")
      p:close()
      local function num(v) return v == "unlimited" and math.huge or tonumber(v) or 0 end
      return num(soft), num(hard)
    end

    it("go through one server, in bounded time", function()
      local soft, hard = limits()
      local failures, elapsed
      if soft >= need then
        failures, elapsed = assert(load(scenario))(corio, S, n)
      elseif hard >= need then
        -- raise the soft RLIMIT_NOFILE for a child running the same scenario
        local path = S.tmpname(".lua")
        local f = assert(io.open(path, "w"))
        f:write("local failures, elapsed = assert(load(", ("%q"):format(scenario), "))(require 'corio', ",
          "require 'corio_support', ", n, ")\n",
          "print(('elapsed %.3f'):format(elapsed))\n",
          "for _, m in ipairs(failures) do print('failure: ' .. m) end\n")
        f:close()
        local p = assert(io.popen(("ulimit -Sn %d && timeout 120 %s %s 2>&1; echo \"status $?\""):format(need,
          S.shquote(S.interpreter()), S.shquote(path))))
        local out = p:read("*a")
        p:close()
        os.remove(path)
        assert.matches("status 0%s*$", out)
        elapsed = tonumber(out:match("elapsed ([%d.]+)"))
        assert(elapsed, out)
        failures = {}
        for m in out:gmatch("failure: ([^\n]*)") do failures[#failures + 1] = m end
      else
        pending(("RLIMIT_NOFILE allows %s descriptors (hard limit %s); %d concurrent connections need %d")
          :format(tostring(soft), tostring(hard), n, need))
        return
      end
      assert.same({}, failures)
      assert.is_true(elapsed < 30, ("2,000 connections took %.1f s"):format(elapsed))
    end)
  end)

  describe("under descriptor exhaustion (EMFILE)", function()
    -- The child: a server limited to 40 descriptors, reporting on stdout. It waits until
    -- accepting stalls, measures its own CPU time over a second of being stuck, then waits
    -- until every client has been accepted.
    local server_script = [[
      local corio = require "corio"
      local total = tonumber(arg[1])
      local accepted = 0
      local function say(...) io.stdout:write(string.format(...), "\n") io.stdout:flush() end
      local finished = 0
      local server = assert(corio.serve("127.0.0.1", 0, function(c)
        accepted = accepted + 1
        c:settimeout(30)
        if c:receive() then c:send("ok\n") end
        c:receive("*a")  -- hold the descriptor until the client goes
        c:close()
        finished = finished + 1
      end))
      -- One whole conversation first, while descriptors are plentiful, so that the code
      -- paths taken later have run once: under sanitizers, a first-time check (UBSan's
      -- vptr check opens a pipe) would fail for want of a descriptor, not for a bug.
      local warm = assert(corio.connect("127.0.0.1", (select(2, server:getsockname()))))
      warm:settimeout(5)
      warm:send("hi\n")
      assert(warm:receive() == "ok")
      warm:close()
      local deadline0 = corio.now() + 5
      while finished < 1 and corio.now() < deadline0 do corio.sleep(0.01) end
      accepted = 0
      say("port %d", select(2, server:getsockname()))
      corio.spawn(function()
        local last, since, deadline = -1, corio.now(), corio.now() + 15
        while true do
          corio.sleep(0.05)
          if accepted ~= last then
            last, since = accepted, corio.now()
          elseif accepted > 0 and corio.now() - since >= 0.5 then
            break
          end
          if corio.now() > deadline then say("never stalled at %d", accepted) os.exit(2) end
        end
        local c0, t0 = os.clock(), corio.now()
        corio.sleep(1)
        say("stuck at %d accepted: cpu %.4f s in %.3f s", accepted, os.clock() - c0, corio.now() - t0)
        deadline = corio.now() + 20
        while accepted < total do
          corio.sleep(0.05)
          if corio.now() > deadline then say("not recovered: %d of %d", accepted, total) os.exit(3) end
        end
        say("recovered: %d accepted", accepted)
        server:close()
      end)
      corio.run()
      say("done")
    ]]

    it("a server neither spins nor dies, and recovers once descriptors are freed", function()
      local total = 60
      local path = S.tmpname(".lua")
      local f = assert(io.open(path, "w"))
      f:write(server_script)
      f:close()
      local cmd = ("ulimit -n 40 && timeout 60 %s %s %d 2>&1; echo \"status $?\""):format(
        S.shquote(S.interpreter()), S.shquote(path), total)
      local p = assert(io.popen(cmd))
      local out = {}
      local function line()
        local l = p:read("*l")
        out[#out + 1] = l
        return l
      end
      local function transcript() return table.concat(out, "\n") end

      local ok, err = pcall(function()
        local port = tonumber((line() or ""):match("^port (%d+)"))
        assert(port, "the child did not start: " .. transcript())
        local clients = {}
        for i = 1, total do
          local c = corio.tcp()
          c:settimeout(5)
          assert(c:connect("127.0.0.1", port))  -- the kernel completes it even if not accepted
          c:send("hi\n")
          clients[i] = c
        end
        local stuck = line() or ""
        local accepted, cpu, wall = stuck:match("^stuck at (%d+) accepted: cpu ([%d.]+) s in ([%d.]+) s")
        assert(accepted, "the child did not get stuck: " .. transcript())
        accepted, cpu, wall = tonumber(accepted), tonumber(cpu), tonumber(wall)
        assert(accepted < total, transcript())
        assert(cpu < 0.2 * wall, ("the stuck server used %.3f s of CPU in %.3f s"):format(cpu, wall))
        -- free descriptors: each client, once served, goes away
        for i = 1, total do
          local reply, rerr = clients[i]:receive()
          assert(reply == "ok", ("client %d: %s (%s)"):format(i, tostring(reply), tostring(rerr)))
          clients[i]:close()
        end
      end)
      local rest = p:read("*a") or ""
      p:close()
      os.remove(path)
      out[#out + 1] = rest
      assert(ok, tostring(err) .. "\nchild output:\n" .. transcript())
      local all = transcript()
      assert.matches("recovered: " .. total .. " accepted", all)
      assert.matches("done", all)
      assert.matches("status 0%s*$", all)
    end)
  end)
end)
