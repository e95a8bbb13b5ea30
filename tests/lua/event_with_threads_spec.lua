-- The event container and corio threads share the thread's loop in one script. Inside a
-- corio thread the iterator waits as any corio call does (the loop goes on); in the main
-- thread it runs the loop itself.
local event = require "corio.event"
local corio = require "corio"
local S = require "corio_support"

-- Runs source in a child interpreter (two iterators that blocked each other would hang).
local function run_child(source)
  local out = S.child(source)
  return out, tonumber(out:match("status (%d+)%s*$"))
end

describe("an event set beside corio threads", function()
  it("does not keep corio.run() going with its own events", function()
    local ev = event.newset()
    ev:add("S", "USR2", "never comes")
    ev:add("T", 60, "far away")
    local ran = false
    local t0 = corio.now()
    corio.run(function() corio.sleep(0.01); ran = true end)
    assert.is_true(ran)
    assert.is_true(corio.now() - t0 < 5, "corio.run() waited for the event set")
    assert.equal(2, #ev)
    ev:clear()
  end)

  it("keeps threads running while its iterator blocks, and a thread may trigger it", function()
    local ev = event.newset()
    local vid = ev:add("v", nil, "from a thread")
    local ticks = 0
    corio.spawn(function()
      for _ = 1, 3 do corio.sleep(0.01); ticks = ticks + 1 end
      ev:trigger(vid)
    end)
    local got = {}
    for id, reason, _, ctx in ev(2.0) do got[#got + 1] = { id, reason, ctx } end
    assert.equal(3, ticks)
    assert.same({ { vid, "triggered", "from a thread" } }, got)
  end)

  it("two corio threads iterating two sets each get their events promptly and in order", function()
    local out, status = run_child([[
      local corio = require "corio"
      local event = require "corio.event"
      local sets, got, sent = {}, {}, {}
      local rounds = 6
      for i = 1, 2 do
        sets[i] = event.newset()
        got[i] = {}
        sent[i] = {}
      end
      local vids = { sets[1]:add("V", nil, "a"), sets[2]:add("V", nil, "b") }
      local dog = corio.after(5, corio.stop)  -- bounds corio.run() below
      for i = 1, 2 do
        corio.spawn(function()
          for id, reason, _, ctx in sets[i](true) do
            local late = corio.now() - sent[i][#got[i] + 1]
            got[i][#got[i] + 1] = ctx .. (#got[i] + 1) .. (late < 0.1 and "" or (" late " .. late))
          end
          got[i].over = true
          if got[1].over and got[2].over then dog:cancel() end
        end)
      end
      -- a timer feeds them alternately: set 1, set 2, set 1 ...
      local n = 0
      local feeder
      feeder = corio.every(0.01, function()
        n = n + 1
        local i = (n - 1) % 2 + 1
        if n > 2 * rounds then
          feeder:cancel()
          sets[1]:stop()
          sets[2]:stop()
          return
        end
        sent[i][#sent[i] + 1] = corio.now()
        sets[i]:trigger(vids[i])
      end)
      corio.run()
      for i, name in ipairs({ "a", "b" }) do
        local want = {}
        for k = 1, rounds do want[k] = name .. k end
        local have = table.concat(got[i], " ")
        print(name, have, got[i].over)
        assert(have == table.concat(want, " ") and got[i].over, "set " .. i .. ": " .. have)
      end
      print("ok")
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("a corio thread blocked in an iterator leaves sockets and timers in other threads working", function()
    local out, status = run_child([[
      local corio = require "corio"
      local event = require "corio.event"
      local S = require "corio_support"
      local log = {}
      local result = {}
      corio.run(function()
        local a, b = S.pair(2)
        local c, d = S.pair(2)
        local ev = event.newset()
        ev:add("r", d, "readable", 2)
        -- first: the iterating thread, blocked until d has something to read
        corio.spawn(function()
          local t0 = corio.now()
          for _, reason, _, ctx in ev(true) do
            result[#result + 1] = ctx .. " " .. reason
            break
          end
          result.waited = corio.now() - t0
          log[#log + 1] = "iterator done"
        end)
        log[#log + 1] = "spawned the iterator"
        -- then a ping-pong and a ticker, which must run while it waits
        local ticks = 0
        corio.spawn(function()
          for _ = 1, 5 do corio.sleep(0.005) ticks = ticks + 1 end
        end)
        corio.spawn(function()
          while true do
            local line = b:receive()
            if not line then break end
            b:send(line .. "!\n")
          end
        end)
        for i = 1, 50 do
          a:send(i .. "\n")
          assert(a:receive() == i .. "!")
        end
        log[#log + 1] = "ping-pong done"
        while ticks < 5 do corio.sleep(0.005) end
        log[#log + 1] = "ticks done"
        c:send("wake\n")
        local deadline = corio.now() + 2
        while not result.waited and corio.now() < deadline do corio.sleep(0.005) end
        a:close() b:close() c:close() d:close()
        ev:clear()
      end)
      print(table.concat(log, ", "))
      print(result[1], result.waited)
      assert(table.concat(log, ", ") == "spawned the iterator, ping-pong done, ticks done, iterator done")
      assert(result[1] == "readable readable", tostring(result[1]))
      print("ok")
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)
end)
