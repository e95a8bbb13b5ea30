-- core.recurring: RecurringTimer for Lua (the engine under corio.resty.timer). Runs in
-- threads of their own that may wait, no overlap (skipped checks), the grid, errors
-- reported with a traceback, a collected handle stops its timer, a dropped run thread does
-- not wedge it, cancel from inside fn, hostile options, immediate, jitter, one-shot.
local corio = require "corio"
local core = require "corio.core"
local S = require "corio_support"

local LATE = 0.03  -- upper bound of lateness on a loaded machine (lower bounds are exact)

-- Waits (in a thread, bounded) until pred() holds.
local function wait_for(pred, limit)
  local deadline = corio.now() + (limit or 3)
  while not pred() do
    assert(corio.now() < deadline, "condition not met in time")
    corio.sleep(0.001)
  end
end

-- Collects corio.onerror's messages during fn() (in a thread).
local function with_errors(fn)
  local errors = {}
  corio.onerror(function(msg) errors[#errors + 1] = msg end)
  local ok, err = pcall(fn, errors)
  corio.onerror(nil)
  assert(ok, err)
  return errors
end

describe("core.recurring", function()
  it("runs fn in a corio thread of its own, which may wait", function()
    S.run(function()
      local threads, done = {}, 0
      local t = core.recurring({ interval = 0.005, recurring = true }, function()
        threads[#threads + 1] = corio.current()
        corio.sleep(0.001)
        done = done + 1
      end)
      wait_for(function() return done >= 3 end)
      assert.is_true(t:cancel())
      assert.is_not_nil(threads[1])
      assert.are.equal("thread", type(threads[1]))
      assert.is_false(t:active())
      assert.is_false(t:cancel())
    end)
  end)

  it("runs each timer's own fn", function()
    S.run(function()
      local counts, timers = { 0, 0, 0 }, {}
      for i = 1, 3 do
        timers[i] = core.recurring({ interval = 0.002 * i, recurring = true }, function() counts[i] = counts[i] + 1 end)
      end
      wait_for(function() return counts[3] >= 2 end)
      for i = 1, 3 do
        timers[i]:cancel()
        assert.are.equal(timers[i]:runs(), counts[i])
      end
    end)
  end)

  it("never overlaps runs: checks that come while fn waits are skipped, then back on the grid", function()
    S.run(function()
      local I = 0.02
      local alive, overlaps, at, skipped_at = 0, 0, {}, {}
      local t
      local before = corio.now()
      t = core.recurring({ interval = I, recurring = true }, function()
        if alive > 0 then overlaps = overlaps + 1 end
        alive = alive + 1
        at[#at + 1] = corio.now()
        skipped_at[#skipped_at + 1] = t:skipped()
        assert.is_true(t:running())
        if #at == 1 then corio.sleep(2.5 * I) end
        alive = alive - 1
      end)
      local after = corio.now()
      wait_for(function() return #at >= 3 end)
      t:cancel()
      assert.are.equal(0, overlaps)
      local skipped = skipped_at[2]
      assert.is_true(skipped >= 2 and skipped <= 3, "skipped " .. skipped)
      for i = 2, #at do
        local k = i + skipped
        assert.is_true(at[i] >= before + k * I - 1e-6, "run " .. i .. " early")
        assert.is_true(at[i] < after + k * I + LATE, "run " .. i .. " off its grid point " .. k)
      end
    end)
  end)

  it("keeps to the grid without drift", function()
    S.run(function()
      local I, N = 0.01, 12
      local at = {}
      local before = corio.now()
      local t = core.recurring({ interval = I, recurring = true }, function()
        at[#at + 1] = corio.now()
        corio.sleep(0.003)  -- a timer re-armed from the run's end would drift 3 ms a run
      end)
      local after = corio.now()
      wait_for(function() return #at >= N end)
      t:cancel()
      for k = 1, N do
        assert.is_true(at[k] >= before + k * I - 1e-6, "run " .. k .. " early")
        assert.is_true(at[k] < after + k * I + LATE, ("run %d late by %.1f ms"):format(k, (at[k] - after - k * I) * 1e3))
      end
      assert.are.equal(0, t:skipped())
    end)
  end)

  it("reports an error in fn with its traceback through corio.onerror and goes on", function()
    S.run(function()
      local runs = 0
      local t
      local errors = with_errors(function()
        local function failing_run()
          runs = runs + 1
          if runs == 1 then error("boom in run") end
        end
        t = core.recurring({ interval = 0.003, recurring = true }, failing_run)
        wait_for(function() return runs >= 3 end)
      end)
      t:cancel()
      assert.are.equal(1, #errors)
      assert.matches("boom in run", errors[1])
      assert.matches("stack traceback", errors[1])
      assert.matches("recurring_spec.lua:%d+: in ", errors[1])  -- where fn raised it
      local _, tracebacks = errors[1]:gsub("stack traceback", "")
      assert.are.equal(1, tracebacks)
    end)
  end)

  it("reports a non-string error object and stops nothing", function()
    S.run(function()
      local runs = 0
      local t
      local errors = with_errors(function()
        t = core.recurring({ interval = 0.003, recurring = true }, function()
          runs = runs + 1
          if runs == 1 then error({}) end
        end)
        wait_for(function() return runs >= 2 end)
      end)
      t:cancel()
      assert.matches("error object is a table value", errors[1])
    end)
  end)

  it("stops when its handle is collected, also when fn refers to the handle", function()
    S.run(function()
      local plain, cyclic = 0, 0
      local keep = {}
      -- made in a function of their own: no register of the test's frame keeps a handle
      local function make()
        keep[1] = core.recurring({ interval = 0.002, recurring = true }, function() plain = plain + 1 end)
        local t
        t = core.recurring({ interval = 0.002, recurring = true }, function()
          cyclic = cyclic + 1
          assert(t)
        end)
        keep[2] = t
      end
      make()
      wait_for(function() return plain >= 2 and cyclic >= 2 end)
      keep = nil
      -- LuaJIT may still hold a handle in a stack slot of this thread for a while (seen
      -- under load): collect again after the thread has run on, a few times at most.
      local p, c
      for _ = 1, 10 do
        collectgarbage()
        collectgarbage()
        p, c = plain, cyclic
        corio.sleep(0.03)
        if p == plain and c == cyclic then break end
      end
      assert.are.equal(p, plain)
      assert.are.equal(c, cyclic)
    end)
  end)

  it("is not wedged by a run thread that is dropped while it waits", function()
    S.run(function()
      local runs = 0
      local t = core.recurring({ interval = 0.003, recurring = true }, function()
        runs = runs + 1
        if runs == 1 then corio.suspend() end  -- nobody resumes it: garbage
      end)
      wait_for(function() return t:skipped() >= 2 end)
      assert.is_true(t:running())
      assert.are.equal(1, runs)
      collectgarbage()
      collectgarbage()
      wait_for(function() return runs >= 2 end)
      t:cancel()
    end)
  end)

  it("can be cancelled from inside fn; the run goes on to its end", function()
    S.run(function()
      local runs, ended = 0, false
      local t, cancelled
      t = core.recurring({ interval = 0.002, recurring = true }, function()
        runs = runs + 1
        cancelled = t:cancel()
        corio.sleep(0.002)
        ended = true
      end)
      wait_for(function() return ended end)
      assert.is_true(cancelled)
      assert.is_false(t:active())
      assert.is_false(t:running())
      assert.is_nil(t:next())
      corio.sleep(0.01)
      assert.are.equal(1, runs)
      assert.are.equal(1, t:runs())
    end)
  end)

  it("refuses hostile options with a message naming the field", function()
    local fn = function() end
    local function refused(opts, field)
      local ok, err = pcall(core.recurring, opts, fn)
      assert.is_false(ok, "accepted " .. field)
      assert.matches(field, err, 1, true)
      return err
    end
    refused({}, "interval")
    refused({ interval = 0 / 0 }, "interval must not be NaN")
    refused({ interval = -1 }, "interval must not be negative")
    refused({ interval = "1" }, "interval: number expected, got string")
    refused({ interval = 1, jitter = -0.5 }, "jitter must not be negative")
    refused({ interval = 1, jitter = 0 / 0 }, "jitter must not be NaN")
    refused({ interval = 1, jitter = {} }, "jitter: number expected")
    refused({ interval = 1, recurring = 1 }, "recurring: boolean expected, got number")
    refused({ interval = 1, immediate = "yes", recurring = true }, "immediate: boolean expected")
    refused({ interval = 1, immediate = true }, "immediate requires recurring")
    refused({ interval = 1, check = 0.5 }, "check requires recurring")
    refused({ interval = 1, check = 2, recurring = true }, "check must not exceed interval")
    refused({ interval = 1, check = -1, recurring = true }, "check must not be negative")
    refused({ interval = 1, recurring = true, leases = 42 }, "leases")
    assert.is_false(pcall(core.recurring, nil, fn))
    assert.is_false(pcall(core.recurring, { interval = 1 }))
    assert.is_false(pcall(core.recurring, { interval = 1 }, "not a function"))
  end)

  it("checks every `check` seconds when it is given (resty.timer's sub_interval)", function()
    local before = corio.now()
    local t = core.recurring({ interval = 0.5, check = 0.1, recurring = true }, function() end)
    local after = corio.now()
    assert.is_true(t:next() >= before + 0.1 - 1e-6 and t:next() <= after + 0.1 + 1e-6)
    t:cancel()
  end)

  it("clamps huge durations to far away", function()
    local now = corio.now()
    local t = core.recurring({ interval = math.huge, recurring = true, jitter = 1e300, check = 1e300 }, function() end)
    assert.is_true(t:active())
    assert.is_true(t:next() > now + 1e8)
    assert.is_true(t:cancel())
    local one = core.recurring({ interval = 2 ^ 63 }, function() end)
    assert.is_true(one:next() > now + 1e8)
    one:cancel()
  end)

  it("runs an immediate timer on the next turn, and the jitter delays the second run", function()
    S.run(function()
      local I, J = 0.05, 0.02
      local at = {}
      local before = corio.now()
      local t = core.recurring({ interval = I, recurring = true, immediate = true, jitter = J }, function()
        at[#at + 1] = corio.now()
      end)
      local after = corio.now()
      assert.are.equal(0, #at, "ran inside core.recurring")
      wait_for(function() return #at >= 1 end)
      assert.is_true(at[1] < before + I)
      local second = t:next()
      assert.is_true(second >= before + I - 1e-6)
      assert.is_true(second <= after + I + J + 1e-6)
      wait_for(function() return #at >= 2 end)
      assert.is_true(at[2] >= second - 1e-6)
      t:cancel()
    end)
  end)

  it("draws one jitter per timer, within [interval, interval + jitter]", function()
    S.run(function()
      local I, J, N = 0.01, 0.03, 30
      local timers, ran, first = {}, {}, {}
      local before = corio.now()
      for i = 1, N do
        timers[i] = core.recurring({ interval = I, jitter = J }, function() ran[i] = corio.now() end)
      end
      local after = corio.now()
      local lo, hi = math.huge, -math.huge
      for i = 1, N do
        first[i] = timers[i]:next()
        assert.is_true(first[i] >= before + I - 1e-6 and first[i] <= after + I + J + 1e-6)
        lo, hi = math.min(lo, first[i]), math.max(hi, first[i])
      end
      assert.is_true(hi - lo > J / 2, "30 draws over 30 ms spread over less than 15 ms")
      wait_for(function()
        for i = 1, N do if not ran[i] then return false end end
        return true
      end)
      for i = 1, N do assert.is_true(ran[i] >= first[i] - 1e-6) end
    end)
  end)

  it("runs a one-shot timer once, then it is inactive", function()
    S.run(function()
      local runs = 0
      local t = core.recurring({ interval = 0.003 }, function() runs = runs + 1 end)
      assert.is_true(t:active())
      wait_for(function() return runs == 1 end)
      corio.sleep(0.01)
      assert.are.equal(1, runs)
      assert.is_false(t:active())
      assert.is_nil(t:next())
      assert.is_false(t:cancel())
    end)
  end)

  it("runs an interval-0 recurring timer once per loop turn, after the previous run", function()
    S.run(function()
      local runs, alive, overlaps = 0, 0, 0
      local t = core.recurring({ interval = 0, recurring = true }, function()
        if alive > 0 then overlaps = overlaps + 1 end
        alive = alive + 1
        runs = runs + 1
        corio.sleep(0.001)
        alive = alive - 1
      end)
      wait_for(function() return runs >= 5 end)
      t:cancel()
      assert.are.equal(0, overlaps)
      assert.are.equal(0, t:skipped())
    end)
  end)

  it("does not keep the loop going once unref'd", function()
    local t = core.recurring({ interval = 10, recurring = true }, function() end)
    t:unref()
    local start = corio.now()
    assert.is_false(corio.step())
    assert.is_true(corio.now() - start < 1)
    t:cancel()
  end)

  it("survives the state closing with timers armed and runs in progress", function()
    local out = S.child([[
      local corio = require "corio"
      local core = require "corio.core"
      keep = {}
      for i = 1, 20 do
        keep[i] = core.recurring({ interval = 0.001, recurring = true }, function()
          corio.sleep(10)
        end)
      end
      corio.spawn(function() corio.sleep(0.02) corio.stop() end)
      corio.run()
      print("runs", keep[1]:runs(), keep[1]:running())
    ]])
    assert.matches("runs\t1\ttrue", out, 1, true)
    assert.is_nil(out:find("corio:", 1, true), out)
  end)

  it("takes a core.leases table with a key: one of the key's timers runs per interval", function()
    local name = S.unique("corio-rtimer-spec")
    S.run(function()
      local leases = assert(core.leases(name))
      local a, b = 0, 0
      local key = S.unique("key")
      local ta = core.recurring({ interval = 0.02, recurring = true, leases = leases, key = key }, function() a = a + 1 end)
      local tb = core.recurring({ interval = 0.02, recurring = true, leases = leases, key = key }, function() b = b + 1 end)
      corio.sleep(0.11)
      ta:cancel()
      tb:cancel()
      -- 5 checks each: alone they would run 10 times
      assert.is_true(a + b >= 2 and a + b <= 6, ("%d + %d runs"):format(a, b))
      local function refused(opts, what)
        local ok, err = pcall(core.recurring, opts, function() end)
        assert.is_false(ok)
        assert.matches(what, err, 1, true)
      end
      refused({ interval = 1, recurring = true, leases = leases }, "key")
      refused({ interval = 1, recurring = true, leases = leases, key = 7 }, "key")
      refused({ interval = 1, leases = leases, key = "k" }, "leases requires recurring")
      refused({ interval = 1, recurring = true, leases = leases, key = ("k"):rep(201) }, "key")
      refused({ interval = 1, recurring = true, leases = {}, key = "k" }, "leases")
    end)
    core.unlink_leases(name)
  end)

  it("reports a lease error naming the key, and the timer goes on", function()
    local name = S.unique("corio-rtimer-full")
    S.run(function()
      local leases = assert(core.leases(name))
      for i = 1, 1024 do assert(leases:acquire("held" .. i, 60)) end  -- every slot taken
      local runs, t = 0, nil
      local errors = with_errors(function(seen)
        t = core.recurring({ interval = 0.005, recurring = true, leases = leases, key = "mine" }, function()
          runs = runs + 1
        end)
        wait_for(function() return #seen >= 2 end)
        assert.are.equal(0, t:runs())
        assert.is_true(leases:erase("held1"))  -- a slot frees: the timer takes it
        wait_for(function() return runs >= 1 end)
      end)
      t:cancel()
      assert.matches("lease of key 'mine' failed", errors[1], 1, true)
      assert.is_true(t:active() == false and runs >= 1)
    end)
    core.unlink_leases(name)
  end)
end)
