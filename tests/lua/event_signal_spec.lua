-- corio.event: signal events (s/S) by number or name. The signals are sent to the
-- interpreter running busted with kill(1); every signal sent is consumed before its
-- event is deleted (once the last watch of a signal goes, its default action is back,
-- and SIGUSR1's is to terminate the process).
local event = require "corio.event"
local S = require "event_support"
local now, collect = S.now, S.collect

local PID = S.pid()
local SIGUSR1, SIGUSR2 = 10, 12 -- Linux numbering (corio is Linux-only: epoll, signalfd)

local function kill(sig)
  local ok = os.execute("kill -" .. sig .. " " .. PID)
  assert(ok == true or ok == 0, "kill failed")
end

-- Whether signal signo is blocked in this thread (/proc/self/status SigBlk).
local function blocked(signo)
  for line in io.lines("/proc/self/status") do
    local hex = line:match("^SigBlk:%s*(%x+)")
    if hex then
      local low = tonumber(hex:sub(-8), 16) -- signals 1..32
      return math.floor(low / 2 ^ (signo - 1)) % 2 == 1
    end
  end
  error("no SigBlk in /proc/self/status")
end

describe("corio.event signals", function()
  it("S: a signal by name is returned with reason 'signal'", function()
    local ev = event.newset()
    local id = ev:add("S", "SIGUSR1", "ctx")
    kill("USR1")
    local got = collect(ev, 2)
    assert.equal(1, #got)
    assert.equal(id, got[1].id)
    assert.equal("signal", got[1].why)
    assert.equal("SIGUSR1", got[1].src)
    assert.equal("ctx", got[1].ctx)
    assert.equal(1, #ev)
    assert.equal(id, ev:del(id))
  end)

  it("s: a signal by short name is returned once, then deleted", function()
    local ev = event.newset()
    local id = ev:add("s", "USR2", "once")
    kill("USR2")
    local got = collect(ev, 2)
    assert.equal(1, #got)
    assert.equal("signal", got[1].why)
    assert.equal("USR2", got[1].src)
    assert.equal(0, #ev)
    assert.is_nil(ev:del(id))
  end)

  it("accepts a signal number, returned as the source", function()
    local ev = event.newset()
    local id = ev:add("s", SIGUSR1, "n")
    kill("USR1")
    local got = collect(ev, 2)
    assert.equal(id, got[1].id)
    assert.equal("signal", got[1].why)
    assert.equal(SIGUSR1, got[1].src)
  end)

  it("accepts names in any case", function()
    local ev = event.newset()
    ev:add("s", "sigusr2", "lower")
    kill("USR2")
    assert.equal("lower", collect(ev, 2)[1].ctx)
  end)

  it("wakes a blocked iterator", function()
    local ev = event.newset()
    local id = ev:add("s", "USR1", "woken", 2) -- the timeout bounds the wait
    local t0 = now()
    os.execute("(sleep 0.05; kill -USR1 " .. PID .. ") >/dev/null 2>&1 &")
    local got = collect(ev, true, nil, t0)
    assert.equal(1, #got)
    assert.equal(id, got[1].id)
    assert.equal("signal", got[1].why)
    assert.is_true(got[1].at < 1.5, "late: " .. got[1].at)
  end)

  it("S: several signals before the iterator runs are returned once", function()
    local ev = event.newset()
    local id = ev:add("S", "USR1", "p")
    kill("USR1")
    kill("USR1")
    assert.equal(1, #collect(ev, 2))
    assert.same({}, collect(ev, 0.05))
    -- and the event is live again for the next one
    kill("USR1")
    local got = collect(ev, 2)
    assert.equal(1, #got)
    assert.equal(id, got[1].id)
    assert.equal(id, ev:del(id))
  end)

  it("distinguishes signals", function()
    local ev = event.newset()
    local u1 = ev:add("S", "USR1", "usr1")
    local u2 = ev:add("S", "USR2", "usr2")
    kill("USR2")
    local got = collect(ev, 2)
    assert.same({ u2 }, { got[1].id })
    assert.equal(1, #got)
    ev:del(u1)
    ev:del(u2)
  end)

  it("is not a timer: ev() does not block for it", function()
    local ev = event.newset()
    local id = ev:add("S", "USR1", "none")
    local t0 = now()
    assert.same({}, collect(ev))
    assert.is_true(now() - t0 < 0.5)
    ev:del(id)
  end)

  it("takes a timeout: returned with reason 'timeout' when no signal comes", function()
    local ev = event.newset()
    local t0 = now()
    local id = ev:add("s", "USR2", "late", 0.05)
    local got = collect(ev, 2, nil, t0)
    assert.equal(1, #got)
    assert.equal(id, got[1].id)
    assert.equal("timeout", got[1].why)
    assert.is_true(got[1].at >= 0.05, "early: " .. got[1].at)
    assert.is_true(got[1].at < 0.55)
    assert.equal(0, #ev)
  end)

  describe("a second event for the same signal", function()
    it("replaces the first, whose id becomes invalid", function()
      local ev = event.newset()
      local first = ev:add("S", "USR1", "first")
      local second = ev:add("s", SIGUSR1, "second") -- by number: the same signal
      assert.equal(1, #ev)
      assert.is_nil(ev:set(first, "x"))
      kill("USR1")
      local got = collect(ev, 2)
      assert.equal(1, #got)
      assert.equal(second, got[1].id)
      assert.equal("second", got[1].ctx)
      assert.is_nil(ev:del(first))
    end)

    it("keeps a pending signal (it must not take its default action)", function()
      -- In a child interpreter: before the fix the replacement unblocked SIGUSR1 for a
      -- moment and the pending signal killed the process.
      local name = os.tmpname()
      local f = assert(io.open(name, "w"))
      f:write([[
        local ev = require("corio.event").newset()
        local pid = io.open("/proc/self/stat"):read("*l"):match("^(%d+)")
        local first = ev:add("S", "USR1", "first")
        os.execute("kill -USR1 " .. pid)
        local second = ev:add("S", "SIGUSR1", "second")
        local out = {}
        for id, why, _, ctx in ev(2) do out[#out + 1] = why .. ":" .. ctx end
        io.write("survived ", #ev, " ", ev:del(first) or "nil", " ", table.concat(out, ","), "\n")
        ev:del(second)
      ]])
      f:close()
      local p = assert(io.popen(("%q %q 2>&1"):format(S.interpreter(), name)))
      local out = p:read("*a")
      p:close()
      os.remove(name)
      assert.equal("survived 1 nil signal:second\n", out)
    end)
  end)

  describe("the signal mask", function()
    -- Compared with the mask busted started with (normally: not blocked).
    local initially = blocked(SIGUSR2)

    it("blocks the signal while an event watches it and restores it after", function()
      local ev = event.newset()
      local id = ev:add("S", "USR2")
      assert.is_true(blocked(SIGUSR2))
      ev:del(id)
      assert.equal(initially, blocked(SIGUSR2))
    end)

    it("is restored by clear() and by collecting the set", function()
      local ev = event.newset()
      ev:add("S", "USR2")
      ev:clear()
      assert.equal(initially, blocked(SIGUSR2))
      do
        local tmp = event.newset()
        tmp:add("S", "USR2")
        assert.is_true(blocked(SIGUSR2))
      end
      collectgarbage()
      collectgarbage()
      assert.equal(initially, blocked(SIGUSR2))
    end)

    it("stays blocked while another event still watches the signal", function()
      local a, b = event.newset(), event.newset()
      local ia = a:add("S", "USR2")
      local ib = b:add("S", "USR2")
      a:del(ia)
      assert.is_true(blocked(SIGUSR2))
      b:del(ib)
      assert.equal(initially, blocked(SIGUSR2))
    end)
  end)

  describe("bad signals", function()
    it("an unknown name is an error that names it", function()
      local ev = event.newset()
      for _, bad in ipairs({ "SIGFOO", "NOPE", "" }) do
        local ok, err = pcall(ev.add, ev, "s", bad)
        assert.is_false(ok)
        assert.matches("unknown signal '" .. bad .. "'", err, 1, true)
      end
      assert.equal(0, #ev)
    end)

    it("SIGKILL and SIGSTOP cannot be caught", function()
      local ev = event.newset()
      for _, bad in ipairs({ "SIGKILL", "KILL", 9, "SIGSTOP", 19 }) do
        local ok, err = pcall(ev.add, ev, "S", bad)
        assert.is_false(ok, tostring(bad))
        assert.matches("cannot be caught", err)
      end
      assert.equal(0, #ev)
    end)

    it("a number out of range or not an integer is an error", function()
      local ev = event.newset()
      for _, bad in ipairs({ 0, -1, 65, 1000, 10.5 }) do
        assert.has_error(function() ev:add("s", bad) end, nil, tostring(bad))
      end
      assert.equal(0, #ev)
    end)

    it("a source that is neither a number nor a name is an error", function()
      local ev = event.newset()
      assert.has_error(function() ev:add("s") end)
      assert.has_error(function() ev:add("S", {}) end)
      assert.has_error(function() ev:add("s", true) end)
      assert.equal(0, #ev)
    end)
  end)
end)
