-- corio threads and timers: spawn, current, sleep, suspend/resume, run, step, stop, now,
-- after/every and cancel, onerror (with traceback; the default handler prints to stderr),
-- pcall/corio.xpcall around yielding calls, and that finished threads are collected.
local corio = require "corio"
local S = require "corio_support"

local unpack = S.unpack

-- Spawns fn(...) if given, then runs the loop until nothing is left, one step at a time
-- so that the wait is bounded: fails if work is still left after `limit` seconds. (A
-- watchdog timer would itself keep corio.run() going; run() is tested in a child process.)
local function run_bounded(limit, fn, ...)
  if fn then corio.spawn(fn, ...) end
  local deadline = corio.now() + limit
  while corio.step() do  -- without a timeout: false at once when nothing is left
    assert(corio.now() < deadline, "the loop still has work after " .. limit .. " s")
  end
end

-- Collects errors reported by corio.onerror during fn(); the default handler afterwards.
local function with_errors(fn)
  local errors = {}
  corio.onerror(function(msg, thread) errors[#errors + 1] = { msg = msg, thread = thread } end)
  local ok, err = pcall(fn, errors)
  corio.onerror(nil)
  assert(ok, err)
  return errors
end

-- Runs a Lua chunk in a child interpreter (S.child); returns its combined output and its
-- exit status.
local function child(source)
  local out = S.child(source)
  return out, tonumber(out:match("status (%d+)%s*$"))
end

describe("corio threads", function()
  describe("spawn", function()
    it("returns the thread and runs it at once until it first waits", function()
      local log = {}
      local t = corio.spawn(function()
        log[#log + 1] = "start"
        corio.sleep(0)
        log[#log + 1] = "after sleep"
      end)
      assert.equal("thread", type(t))
      assert.same({ "start" }, log)
      run_bounded(5)
      assert.same({ "start", "after sleep" }, log)
    end)

    it("passes its arguments, nils included", function()
      local got
      corio.spawn(function(...) got = { n = select("#", ...), ... } end, 1, nil, "three", nil)
      assert.same({ n = 4, 1, nil, "three", nil }, got)
    end)

    it("runs a thread that never waits to the end inside spawn", function()
      local ran = false
      local t = corio.spawn(function() ran = true end)
      assert.is_true(ran)
      assert.equal("dead", coroutine.status(t))
    end)

    it("rejects a non-function", function()
      assert.has_error(function() corio.spawn(42) end)
      assert.has_error(function() corio.spawn() end)
    end)

    it("nested 100,000 deep ends in a clear error, not a C stack overflow (in a child)", function()
      local out, status = child([[
        local corio = require "corio"
        local depth, first = 0, nil
        corio.onerror(function(msg) first = first or msg end)
        local function nest(n)
          depth = math.max(depth, n)
          if n < 100000 then corio.spawn(nest, n + 1) end
        end
        corio.spawn(nest, 1)
        corio.run()
        print("depth", depth)
        assert(first and first:find("C stack overflow", 1, true), tostring(first))
        print("ok")
      ]])
      assert.equal(0, status, out)
      assert.matches("ok", out)
    end)

    -- The handler runs on the runtime's own thread, inside a C function: the threads it
    -- starts must anchor themselves there as anywhere (this crashed Lua 5.4 once).
    it("may be started by the error handler, and may wait there (in a child)", function()
      local out, status = child([[
        local corio = require "corio"
        local ran = 0
        corio.onerror(function(msg)
          corio.spawn(function() corio.sleep(0.01) ran = ran + 1 end)
        end)
        corio.spawn(function() error("boom") end)
        corio.after(0.01, function() error("boom2") end)
        corio.run()
        print("ran", ran)
      ]])
      assert.equal(0, status, out)
      assert.matches("ran\t2", out, 1, true)
    end)

    it("nests: a thread spawning another runs the child first until it waits", function()
      local log = {}
      run_bounded(5, function()
        log[#log + 1] = "parent"
        corio.spawn(function()
          log[#log + 1] = "child"
          corio.sleep(0.01)
          log[#log + 1] = "child again"
        end)
        log[#log + 1] = "parent again"
      end)
      assert.same({ "parent", "child", "parent again", "child again" }, log)
    end)
  end)

  describe("current", function()
    it("is nil in the main thread", function()
      assert.is_nil(corio.current())
    end)

    it("is the thread spawn returned, inside it", function()
      local inside
      local t = corio.spawn(function()
        inside = corio.current()
        corio.sleep(0)
        assert(corio.current() == inside)
      end)
      assert.equal(t, inside)
      run_bounded(5)
    end)
  end)

  describe("sleep", function()
    it("sleeps this thread only: sleepers overlap", function()
      local done = {}
      local elapsed = S.time(run_bounded, 5, function()
        for i, d in ipairs({ 0.15, 0.05, 0.1 }) do
          corio.spawn(function()
            corio.sleep(d)
            done[#done + 1] = i
          end)
        end
      end)
      assert.same({ 2, 3, 1 }, done)
      assert.is_true(elapsed >= 0.14 and elapsed < 0.5, "elapsed " .. elapsed)
    end)

    it("waits at least the time asked", function()
      S.run(function()
        for _, d in ipairs({ 0.001, 0.02, 0.06 }) do
          local t0 = corio.now()
          corio.sleep(d)
          local e = corio.now() - t0
          assert(e >= d * 0.95 and e < d + 0.2, ("sleep(%g) took %g"):format(d, e))
        end
      end)
    end)

    it("with 0 gives the other threads a turn", function()
      local log = {}
      run_bounded(5, function()
        for _, name in ipairs({ "a", "b" }) do
          corio.spawn(function()
            for i = 1, 3 do
              log[#log + 1] = name .. i
              corio.sleep(0)
            end
          end)
        end
      end)
      assert.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, log)
    end)

    it("with a negative time counts as 0, and without an argument too", function()
      local log = {}
      local elapsed = S.time(run_bounded, 5, function()
        corio.spawn(function()
          log[#log + 1] = "a1"
          corio.sleep(-5)
          log[#log + 1] = "a2"
        end)
        corio.spawn(function()
          log[#log + 1] = "b1"
          corio.sleep()
          log[#log + 1] = "b2"
        end)
      end)
      assert.same({ "a1", "b1", "a2", "b2" }, log)
      assert.is_true(elapsed < 0.5, "elapsed " .. elapsed)
    end)

    it("in the main thread blocks while the other threads keep running", function()
      local ticks = 0
      local ticker = corio.every(0.01, function() ticks = ticks + 1 end)
      local elapsed = S.time(corio.sleep, 0.2)
      ticker:cancel()
      assert.is_true(elapsed >= 0.19 and elapsed < 1, "elapsed " .. elapsed)
      assert.is_true(ticks >= 10 and ticks <= 21, "ticks " .. ticks)
    end)

    it("returns no values", function()
      S.run(function()
        assert.equal(0, select("#", corio.sleep(0)))
        assert.equal(0, select("#", corio.sleep(0.001)))
      end)
    end)
  end)

  describe("suspend and resume", function()
    it("hands resume's values to suspend", function()
      local got
      local t = corio.spawn(function() got = S.pack(corio.suspend()) end)
      assert.equal("suspended", coroutine.status(t))
      assert.is_true(corio.resume(t, 1, nil, "x"))
      assert.is_nil(got)  -- resumed soon, from the loop, not inside resume()
      run_bounded(5)
      assert.same({ n = 3, 1, nil, "x" }, got)
    end)

    it("resumes from another thread", function()
      local log = {}
      S.run(function()
        local waiter = corio.spawn(function()
          log[#log + 1] = "waiting"
          local v = corio.suspend()
          log[#log + 1] = "woken with " .. v
        end)
        corio.sleep(0.02)
        log[#log + 1] = "resuming"
        assert.is_true(corio.resume(waiter, "hello"))
        corio.sleep(0.01)
      end)
      assert.same({ "waiting", "resuming", "woken with hello" }, log)
    end)

    it("refuses to resume a thread that is not suspended", function()
      S.run(function()
        local sleeper = corio.spawn(function() corio.sleep(0.05) end)
        local dead = corio.spawn(function() end)
        local plain = coroutine.create(function() end)
        for _, t in ipairs({ sleeper, dead, plain, corio.current() }) do
          local ok, err = corio.resume(t)
          assert.is_nil(ok)
          assert.equal("thread is not suspended", err)
        end
        corio.sleep(0.1)  -- the sleeper wakes normally, undisturbed
        assert.equal("dead", coroutine.status(sleeper))
      end)
    end)

    it("refuses a second resume of the same suspension", function()
      local got = {}
      local t = corio.spawn(function()
        got[#got + 1] = corio.suspend()
        got[#got + 1] = corio.suspend()
      end)
      assert.is_true(corio.resume(t, "first"))
      local ok, err = corio.resume(t, "second")
      assert.is_nil(ok)
      assert.equal("thread is not suspended", err)
      run_bounded(5)
      assert.same({ "first" }, got)
      assert.is_true(corio.resume(t, "third"))
      run_bounded(5)
      assert.same({ "first", "third" }, got)
    end)

    it("is an error outside a coroutine", function()
      assert.has_error(function() corio.suspend() end)
    end)

    it("does not keep the loop running while a thread is suspended", function()
      local t = corio.spawn(function() corio.suspend() end)
      local elapsed = S.time(run_bounded, 5)
      assert.is_true(elapsed < 1)
      assert.equal("suspended", coroutine.status(t))
      assert.is_true(corio.resume(t))
      run_bounded(5)
      assert.equal("dead", coroutine.status(t))
    end)

    it("rejects a non-thread", function()
      assert.has_error(function() corio.resume("nope") end)
    end)
  end)

  describe("plain coroutine.yield", function()
    it("inside a corio thread gives the others a turn and goes on", function()
      local log = {}
      run_bounded(5, function()
        for _, name in ipairs({ "a", "b" }) do
          corio.spawn(function()
            log[#log + 1] = name .. 1
            coroutine.yield("ignored")
            log[#log + 1] = name .. 2
          end)
        end
      end)
      assert.same({ "a1", "b1", "a2", "b2" }, log)
    end)
  end)

  describe("a coroutine of the user's own", function()
    it("that waits on corio yields to its resumer and is then resumed by the loop", function()
      local done = false
      local co = coroutine.create(function()
        corio.sleep(0.01)
        done = true
      end)
      assert.is_true(coroutine.resume(co))
      assert.equal("suspended", coroutine.status(co))
      assert.is_false(done)
      run_bounded(5)
      assert.is_true(done)
      assert.equal("dead", coroutine.status(co))
    end)
  end)

  describe("a corio thread resuming a coroutine that waits", function()
    it("waits with it: the coroutine's wait suspends the whole thread", function()
      local log = {}
      local t = corio.spawn(function()
        local gen = coroutine.wrap(function()
          corio.sleep(0.01)  -- suspends the thread; when it ends, gen goes on
          log[#log + 1] = "gen done"
        end)
        gen()
        log[#log + 1] = "after gen"
        coroutine.yield()
        log[#log + 1] = "after yield"
      end)
      run_bounded(5)
      assert.same({ "gen done", "after gen", "after yield" }, log)
      assert.equal("dead", coroutine.status(t))
    end)

    it("and so in a corio.suspend() inside the coroutine, which corio.resume ends", function()
      local log = {}
      local inner
      corio.spawn(function()
        local co = coroutine.create(function()
          inner = coroutine.running()
          local v = corio.suspend()
          log[#log + 1] = "inner got " .. v
        end)
        coroutine.resume(co)
        coroutine.yield()
        log[#log + 1] = "outer went on"
      end)
      assert.is_true(corio.resume(inner, "value"))
      run_bounded(5)
      assert.same({ "inner got value", "outer went on" }, log)
    end)
  end)

  describe("run", function()
    it("runs until no thread or timer is left (in a child, under a time limit)", function()
      local out, status = child([[
        local corio = require "corio"
        local function timed(fn, ...)
          local t0 = corio.now()
          corio.run(fn, ...)
          return corio.now() - t0
        end
        -- nothing to do: returns at once
        assert(timed() < 0.5, "idle run")
        -- fn(...) is spawned with its arguments; threads and timers are waited for
        local log = {}
        local e = timed(function(a, b)
          log[#log + 1] = a .. tostring(b)
          corio.after(0.05, function() log[#log + 1] = "timer" end)
          corio.spawn(function() corio.sleep(0.02) log[#log + 1] = "thread" end)
        end, "x", nil)
        assert(table.concat(log, ",") == "xnil,thread,timer", table.concat(log, ","))
        assert(e >= 0.045 and e < 1, "run with work: " .. e)
        -- a cancelled timer does not hold the loop
        corio.after(5, function() end):cancel()
        assert(timed() < 0.5, "cancelled timer")
        -- a suspended thread nobody resumes does not hold it either
        local t = corio.spawn(function() corio.suspend() end)
        assert(timed() < 0.5, "suspended thread")
        corio.resume(t)
        assert(timed() < 0.5 and coroutine.status(t) == "dead", "resumed thread")
        -- a repeating timer holds it until cancelled
        local n = 0
        local every
        every = corio.every(0.01, function() n = n + 1 if n == 3 then every:cancel() end end)
        e = timed()
        assert(n == 3 and e >= 0.025 and e < 1, "every: " .. n .. " " .. e)
        -- stop() called before run() does not end the next run early
        corio.stop()
        local done = false
        corio.spawn(function() corio.sleep(0.02) done = true end)
        corio.run()
        assert(done, "stop before run")
        print("run ok")
      ]])
      assert.equal(0, status, out)
      assert.matches("run ok", out)
    end)

    it("ends on stop() even while timers are armed, and can run again", function()
      local ticks = 0
      local ticker = corio.every(0.01, function()
        ticks = ticks + 1
        if ticks == 3 then corio.stop() end
      end)
      local dog = corio.after(5, corio.stop)
      corio.run()
      assert.equal(3, ticks)
      assert.is_true(ticker:active())
      corio.after(0.035, corio.stop)
      corio.run()
      ticker:cancel()
      dog:cancel()
      assert.is_true(ticks >= 4 and ticks <= 7, "ticks " .. ticks)
      run_bounded(5)
    end)

    it("stop() from a thread ends run() with other threads still sleeping", function()
      local late = false
      corio.spawn(function() corio.sleep(0.3) late = true end)
      local elapsed = S.time(corio.run, function()
        corio.sleep(0.01)
        corio.stop()
      end)
      assert.is_true(elapsed < 0.25, "elapsed " .. elapsed)
      assert.is_false(late)
      run_bounded(5)
      assert.is_true(late)
    end)
  end)

  describe("step", function()
    it("returns false when nothing ran within the timeout", function()
      local elapsed, ran = S.time(corio.step, 0.05)
      assert.is_false(ran)
      assert.is_true(elapsed < 1)
    end)

    it("returns false at once without a timeout when nothing is left", function()
      local elapsed, ran = S.time(corio.step)
      assert.is_false(ran)
      assert.is_true(elapsed < 0.5)
    end)

    it("dispatches one round and returns true", function()
      local log = {}
      corio.spawn(function()
        log[#log + 1] = 1
        corio.sleep(0)
        log[#log + 1] = 2
        corio.sleep(0.02)
        log[#log + 1] = 3
      end)
      assert.same({ 1 }, log)
      local deadline = corio.now() + 5
      while #log < 3 and corio.now() < deadline do
        assert.is_true(corio.step(1))
      end
      assert.same({ 1, 2, 3 }, log)
      assert.is_false(corio.step(0))
    end)

    it("waits for the next event without a timeout", function()
      local fired = false
      corio.after(0.03, function() fired = true end)
      local elapsed, ran = S.time(corio.step)
      assert.is_true(ran)
      assert.is_true(fired)
      assert.is_true(elapsed >= 0.025 and elapsed < 1, "elapsed " .. elapsed)
    end)
  end)

  describe("now", function()
    it("is a monotonic number of seconds", function()
      local a = corio.now()
      assert.is_number(a)
      corio.sleep(0.02)
      local b = corio.now()
      assert.is_true(b - a >= 0.019 and b - a < 1)
      assert.is_true(corio.now() >= b)
    end)
  end)

  describe("after", function()
    it("calls fn(...) once, after the delay, in a thread of its own", function()
      local got, thread, at
      local t0 = corio.now()
      corio.after(0.05, function(...)
        got = S.pack(...)
        thread = corio.current()
        at = corio.now() - t0
        corio.sleep(0.01)  -- it may wait: it is a thread
      end, "a", nil, 3)
      run_bounded(5)
      assert.same({ n = 3, "a", nil, 3 }, got)
      assert.equal("thread", type(thread))
      assert.is_true(at >= 0.045 and at < 1, "at " .. at)
    end)

    it("fires in deadline order", function()
      local log = {}
      for _, d in ipairs({ 0.03, 0.01, 0.02, 0 }) do
        corio.after(d, function() log[#log + 1] = d end)
      end
      run_bounded(5)
      assert.same({ 0, 0.01, 0.02, 0.03 }, log)
    end)

    it("is cancelled by :cancel(), which tells whether it was armed", function()
      local fired = false
      local t = corio.after(0.02, function() fired = true end)
      assert.is_true(t:active())
      assert.is_true(t:cancel())
      assert.is_false(t:active())
      assert.is_false(t:cancel())
      local elapsed = S.time(run_bounded, 5)
      assert.is_false(fired)
      assert.is_true(elapsed < 0.5)  -- a cancelled timer does not hold the loop
      local t2 = corio.after(0, function() end)
      run_bounded(5)
      assert.is_false(t2:active())
      assert.is_false(t2:cancel())  -- already fired
    end)

    it("keeps running when its handle is dropped", function()
      local fired = false
      corio.after(0.02, function() fired = true end)
      collectgarbage("collect")
      collectgarbage("collect")
      run_bounded(5)
      assert.is_true(fired)
    end)

    it("rejects bad arguments", function()
      assert.has_error(function() corio.after("soon", function() end) end)
      assert.has_error(function() corio.after(1) end)
      assert.has_error(function() corio.after(1, function() end).cancel({}) end)
    end)

    -- Callbacks run in pooled threads: a thread is reused only once its callback is over.
    it("gives each callback still running a thread of its own", function()
      local threads, finished = {}, 0
      for i = 1, 200 do
        corio.after(0.001 * (i % 10), function()
          threads[i] = corio.current()
          corio.sleep(0.02)  -- still waiting when the later ones fire
          assert(corio.current() == threads[i])
          finished = finished + 1
        end)
      end
      run_bounded(5)
      assert.equal(200, finished)
      local distinct = {}
      for i = 1, 200 do distinct[threads[i]] = true end
      local n = 0
      for _ in pairs(distinct) do n = n + 1 end
      assert.equal(200, n)
    end)

    it("reuses the threads of finished callbacks, and failures do not break that", function()
      local seen, ran = {}, 0
      local errors = with_errors(function()
        for i = 1, 100 do
          corio.after(0.001 * i, function()
            seen[corio.current()] = true
            ran = ran + 1
            if i % 10 == 0 then error("callback " .. i) end
          end)
        end
        run_bounded(5)
      end)
      assert.equal(100, ran)
      assert.equal(10, #errors)
      assert.matches("callback 10", errors[1].msg, 1, true)
      local n = 0
      for _ in pairs(seen) do n = n + 1 end
      assert.is_true(n <= 11, n .. " threads for 100 callbacks")  -- one, plus one per failure
    end)

    it("is not disturbed by a callback's thread resumed by its keeper", function()
      local kept
      corio.after(0, function() kept = corio.current() end)
      run_bounded(5)
      assert.equal("suspended", coroutine.status(kept))  -- idle in the pool
      coroutine.resume(kept, function() end)  -- misuse: runs that function, yields again
      coroutine.resume(kept)  -- kills it
      local got = {}
      for i = 1, 3 do corio.after(0, function(x) got[#got + 1] = x end, i) end
      run_bounded(5)
      assert.same({ 1, 2, 3 }, got)
    end)

    it("leaves no memory behind after 100,000 callbacks", function()
      local function batch(n)
        local done = 0
        for _ = 1, n do corio.after(0, function() done = done + 1 end) end
        run_bounded(20)
        assert(done == n, "only " .. done .. " of " .. n)
      end
      batch(1000)
      collectgarbage("collect")
      collectgarbage("collect")
      local before = collectgarbage("count")
      for _ = 1, 100 do batch(1000) end
      collectgarbage("collect")
      collectgarbage("collect")
      local grown = collectgarbage("count") - before
      assert.is_true(grown < 256, ("grew by %.1f KiB"):format(grown))
    end)
  end)

  describe("every", function()
    it("repeats fn(...) at its interval until cancelled", function()
      local times, t0 = {}, corio.now()
      local timer
      timer = corio.every(0.02, function(tag)
        assert(tag == "tag")
        times[#times + 1] = corio.now() - t0
        if #times == 5 then timer:cancel() end
      end, "tag")
      run_bounded(5)
      assert.equal(5, #times)
      assert.is_true(times[1] >= 0.018, "first " .. times[1])
      assert.is_true(times[5] >= 0.095 and times[5] < 1, "fifth " .. times[5])
      assert.is_false(timer:active())
    end)

    it("is cancelled from outside and holds the loop while armed", function()
      local n = 0
      local timer = corio.every(0.01, function() n = n + 1 end)
      corio.after(0.055, function() assert(timer:cancel()) end)
      run_bounded(5)
      assert.is_true(n >= 2 and n <= 6, "n " .. n)
    end)

    it("rejects an interval that is not positive", function()
      assert.has_error(function() corio.every(0, function() end) end)
      assert.has_error(function() corio.every(-1, function() end) end)
    end)

    it("runs each callback in a new thread: a slow callback does not delay the next", function()
      local started, running, max_running = 0, 0, 0
      local timer = corio.every(0.01, function()
        started = started + 1
        running = running + 1
        if running > max_running then max_running = running end
        corio.sleep(0.035)
        running = running - 1
      end)
      corio.after(0.055, function() timer:cancel() end)
      run_bounded(5)
      assert.is_true(started >= 3, "started " .. started)
      assert.is_true(max_running >= 2, "max_running " .. max_running)
    end)
  end)

  describe("errors in threads", function()
    it("go to the onerror handler with a traceback and the thread", function()
      local thread
      local errors = with_errors(function()
        thread = corio.spawn(function()
          corio.sleep(0)
          local function inner_function_name() error("boom in thread") end
          inner_function_name()
        end)
        run_bounded(5)
      end)
      assert.equal(1, #errors)
      assert.matches("boom in thread", errors[1].msg)
      assert.matches("stack traceback", errors[1].msg)
      assert.matches("inner_function_name", errors[1].msg)
      assert.equal(thread, errors[1].thread)
    end)

    it("are reported for errors raised before the first wait too", function()
      local errors = with_errors(function()
        local t = corio.spawn(function() error("at once") end)
        assert.equal("dead", coroutine.status(t))
      end)
      assert.equal(1, #errors)
      assert.matches("at once", errors[1].msg)
    end)

    it("do not stop the other threads or the loop", function()
      local ticks = 0
      local errors = with_errors(function()
        run_bounded(5, function()
          corio.spawn(function()
            for _ = 1, 10 do
              corio.sleep(0.005)
              ticks = ticks + 1
            end
          end)
          for i = 1, 3 do
            corio.spawn(function()
              corio.sleep(0.01 * i)
              error("failure " .. i)
            end)
          end
          corio.after(0.015, function() error("timer failure") end)
        end)
      end)
      assert.equal(10, ticks)
      assert.equal(4, #errors)
      local all = ""
      for _, e in ipairs(errors) do all = all .. e.msg .. "\n" end
      for _, word in ipairs({ "failure 1", "failure 2", "failure 3", "timer failure" }) do
        assert.matches(word, all, 1, true)
      end
    end)

    it("describe a non-string error object", function()
      local errors = with_errors(function()
        corio.spawn(function() error({ code = 1 }) end)
      end)
      assert.equal(1, #errors)
      assert.matches("error object is a table value", errors[1].msg)
    end)

    it("are printed to stderr by the default handler, and the loop goes on", function()
      local out, status = child([[
        local corio = require "corio"
        local after = false
        corio.spawn(function() corio.sleep(0.01) error("default handler test") end)
        corio.spawn(function() corio.sleep(0.03) after = true end)
        corio.run()
        print(after and "loop went on" or "loop stopped")
      ]])
      assert.equal(0, status, out)
      assert.matches("default handler test", out)
      assert.matches("stack traceback", out)
      assert.matches("loop went on", out)
    end)

    it("in the handler itself are printed to stderr without crashing", function()
      local out, status = child([[
        local corio = require "corio"
        corio.onerror(function(msg) error("handler broke") end)
        corio.spawn(function() error("original error") end)
        corio.run()
        print("still alive")
      ]])
      assert.equal(0, status, out)
      assert.matches("handler broke", out)
      assert.matches("original error", out)
      assert.matches("still alive", out)
    end)

    -- The handler runs on the runtime's own thread, inside a lua_pcall: threads it starts
    -- anchor and drop their waits while a function runs there (once, the anchors were
    -- found at that thread's index 1, which was then the handler call's argument).
    it("may start threads that wait, and close a socket another thread waits on", function()
      local out, status = child([[
        local corio = require "corio"
        local udp = assert(corio.udp4())
        assert(udp:setsockname("127.0.0.1", 0))
        corio.spawn(function()
          print("waiter", udp:receivefrom())
        end)
        corio.onerror(function()
          corio.spawn(function()
            udp:close()
            print("closed")
            corio.sleep(0.01)
            print("slept")
          end)
          corio.spawn(function()
            corio.sleep(0.005)
            collectgarbage()
            corio.sleep(0.01)
            print("second")
          end)
          print("handler done")
        end)
        corio.spawn(function() corio.sleep(0.01) error("boom") end)
        local dog = corio.after(5, function() print("WATCHDOG") os.exit(3) end)
        corio.spawn(function() corio.sleep(0.1) dog:cancel() end)
        corio.run()
        print("end")
      ]])
      assert.equal(0, status, out)
      assert.matches("waiter\tnil\tclosed\nclosed\nhandler done\n", out)
      assert.matches("slept", out, 1, true)
      assert.matches("second", out, 1, true)
      assert.matches("\nend\n", out, 1, true)
    end)

    it("close the failed thread's to-be-closed variables (Lua 5.4)", function()
      local chunk = _VERSION == "Lua 5.4" and load([[
        local corio, closed = ...
        local mt = { __close = function(o, e) closed[#closed + 1] = o.name .. ": " .. tostring(e) end }
        corio.spawn(function()
          local a <close> = setmetatable({ name = "a" }, mt)
          error("at once", 0)
        end)
        corio.spawn(function()
          local b <close> = setmetatable({ name = "b" }, mt)
          corio.sleep(0.01)
          error("after a wait", 0)
        end)
      ]])
      if not chunk then
        pending("no to-be-closed variables in " .. _VERSION)
        return
      end
      local closed = {}
      local errors = with_errors(function()
        chunk(corio, closed)
        run_bounded(5)
      end)
      assert.equal(2, #errors)
      assert.same({ "a: at once", "b: after a wait" }, closed)
    end)

    it("onerror(nil) restores the default and rejects a non-function", function()
      assert.has_error(function() corio.onerror(42) end)
      corio.onerror(nil)
    end)
  end)

  describe("pcall and corio.xpcall", function()
    it("pcall works around yielding calls", function()
      S.run(function()
        local ok, a, b = pcall(function(x)
          corio.sleep(0.01)
          return x, "second"
        end, "first")
        assert.is_true(ok)
        assert.equal("first", a)
        assert.equal("second", b)
        local ok2, err = pcall(function()
          corio.sleep(0.01)
          error("after a wait", 0)
        end)
        assert.is_false(ok2)
        assert.equal("after a wait", err)
        assert.is_true(pcall(corio.sleep, 0.01))  -- the waiting function itself, protected
      end)
    end)

    it("nested pcalls around socket waits", function()
      S.run(function()
        local a, b = S.pair(2)
        local ok, line = pcall(function()
          return select(2, pcall(function()
            corio.spawn(function() corio.sleep(0.01) b:send("through pcall\n") end)
            return a:receive()
          end))
        end)
        assert.is_true(ok)
        assert.equal("through pcall", line)
        a:close()
        b:close()
      end)
    end)

    it("corio.xpcall passes arguments and results across yields", function()
      S.run(function()
        local r = S.pack(corio.xpcall(function(x, y)
          corio.sleep(0.01)
          return x + y, nil, "z"
        end, debug.traceback, 2, 3))
        assert.same({ n = 4, true, 5, nil, "z" }, r)
      end)
    end)

    it("corio.xpcall calls the handler on an error after a yield", function()
      S.run(function()
        local seen
        local ok, res = corio.xpcall(function(msg)
          corio.sleep(0.01)
          error(msg, 0)
        end, function(e)
          seen = e
          return "handled: " .. e
        end, "bad")
        assert.is_false(ok)
        assert.equal("handled: bad", res)
        assert.equal("bad", seen)
      end)
    end)

    it("corio.xpcall defaults the handler to debug.traceback", function()
      S.run(function()
        local ok, res = corio.xpcall(function()
          corio.sleep(0)
          error("oops")
        end)
        assert.is_false(ok)
        assert.matches("oops", res)
        assert.matches("stack traceback", res)
      end)
    end)
  end)

  describe("finished threads", function()
    local function kib()
      collectgarbage("collect")
      collectgarbage("collect")
      return collectgarbage("count")
    end

    it("100,000 spawned and finished leave no memory behind", function()
      local function batch(n, wait)
        local done = 0
        for _ = 1, n do
          corio.spawn(function()
            if wait then corio.sleep(0) end
            done = done + 1
          end)
        end
        run_bounded(20)
        assert(done == n, "only " .. done .. " of " .. n .. " finished")
      end
      batch(1000, true)  -- warm up (tables and free lists reach their working size)
      local before = kib()
      local t0 = corio.now()
      for _ = 1, 50 do batch(1000, false) end
      for _ = 1, 50 do batch(1000, true) end
      local elapsed = corio.now() - t0
      local grown = kib() - before
      assert.is_true(grown < 256, ("grew by %.1f KiB"):format(grown))
      assert.is_true(elapsed < 20, "took " .. elapsed)
    end)

    it("including 100,000 alive at once, once they are gone", function()
      local n = 100000
      local function round()
        local done = 0
        for _ = 1, n do
          corio.spawn(function()
            corio.sleep(0.01)
            done = done + 1
          end)
        end
        run_bounded(30)
        assert(done == n, "only " .. done .. " of " .. n .. " finished")
      end
      local before = kib()
      round()
      -- what may stay after the first round is the registry's grown array (about 16
      -- bytes a slot, reused), never the threads themselves
      local first = kib() - before
      assert.is_true(first < 4096, ("grew by %.1f KiB"):format(first))
      before = kib()
      round()
      local second = kib() - before
      assert.is_true(second < 64, ("the second round grew by %.1f KiB"):format(second))
    end)

    it("suspended threads nobody can resume are collected", function()
      local before = kib()
      local weak = setmetatable({}, { __mode = "k" })
      for _ = 1, 1000 do
        weak[corio.spawn(function() corio.suspend() end)] = true
      end
      run_bounded(5)
      kib()
      local left = 0
      for _ in pairs(weak) do left = left + 1 end
      assert.equal(0, left)
      assert.is_true(kib() - before < 64)
    end)
  end)
end)
