-- corio.resty.timer: Kong's lua-resty-timer API, rule by rule (validation in Kong's words,
-- arguments with nils, jitter, immediate, the grid and the overlap rule, cancel results and
-- reasons, errors), and node-wide keys within one process. Several processes: the
-- resty_timer_node_spec.
local corio = require "corio"
local S = require "corio_support"
local resty_timer = require "corio.resty.timer"

local pack, unpack = S.pack, S.unpack

local function opts(extra)
  local o = { interval = 0.05, recurring = true, expire = function() end }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

-- Collects corio.onerror's messages while fn runs (S.run fails on any).
local function with_errors(fn)
  local errors = {}
  local ok, err = pcall(S.run, 10, function()
    corio.onerror(function(msg) errors[#errors + 1] = msg end)
    fn()
  end)
  corio.onerror(nil)
  assert(ok, err)
  return errors
end

local function shm_name()
  return ("spec%d_%d"):format(math.random(1, 1e9), os.time())
end

describe("corio.resty.timer", function()
  it("is callable, has new and Kong's reasons", function()
    assert.equal("USER", resty_timer.CANCEL_USER)
    assert.equal("GC", resty_timer.CANCEL_GC)
    assert.equal("SYSTEM", resty_timer.CANCEL_SYSTEM)
    S.run(function()
      local a = assert(resty_timer(opts()))
      local b = assert(resty_timer.new(opts()))
      assert.is_function(a.cancel)
      assert.is_true(a:cancel())
      assert.is_true(b:cancel())
    end)
  end)

  describe("validates as Kong does, naming the option", function()
    local cases = {
      { { interval = "xxx" }, "expected 'interval' to be a number" },
      { { interval = -1 }, "expected 'interval' to be greater than or equal to 0" },
      { { interval = 0 / 0 }, "expected 'interval' to be greater than or equal to 0" },
      { { expire = "string" }, "expected 'expire' to be a function" },
      { { expire = false }, "expected 'expire' to be a function" },
      { { recurring = false, immediate = true }, "the 'immediate' option requires 'recurring'" },
      { { cancel = 42 }, "expected 'cancel' to be a function" },
      { { sub_interval = "x", immediate = true, key_name = "k", shm_name = "s" }, "expected 'sub_interval' to be a number" },
      { { sub_interval = 0.01, immediate = true, shm_name = "s" }, "'key_name' is required when specifying 'sub_interval'" },
      { { sub_interval = 0.01, key_name = "k", shm_name = "s" }, "'immediate' is required when specifying 'sub_interval'" },
      { { sub_interval = -1, immediate = true, key_name = "k", shm_name = "s" }, "expected 'sub_interval' to be greater than or equal to 0" },
      { { sub_interval = 1, immediate = true, key_name = "k", shm_name = "s" }, "expected 'sub_interval' to be less than or equal to 'interval'" },
      { { jitter = "1" }, "expected 'jitter' to be a number" },
      { { jitter = -0.5 }, "expected 'jitter' to be greater than or equal to 0" },
      { { jitter = 0 / 0 }, "expected 'jitter' to be greater than or equal to 0" },
      { { key_name = 42, shm_name = "s" }, "expected 'key_name' to be a string" },
      { { key_name = "k" }, "'shm_name' is required when specifying 'key_name'" },
      { { key_name = "k", shm_name = "a/b" }, "shm by name 'a/b' not usable" },
      { { key_name = "k", shm_name = "" }, "shm by name '' not usable" },
      { { key_name = "k", shm_name = ("x"):rep(65) }, "not usable" },
    }
    for _, case in ipairs(cases) do
      local o, message = case[1], case[2]
      it(message, function()
        local ok, err = pcall(resty_timer, opts(o))
        assert.is_false(ok)
        assert.equal("string", type(err))
        assert.truthy(err:find(message, 1, true), err)
      end)
    end

    it("takes a numeric string as Kong's tonumber does", function()
      S.run(function()
        local t = assert(resty_timer(opts({ interval = "0.05" })))
        assert.equal(0.05, t.interval)
        t:cancel()
      end)
    end)
  end)

  it("takes math.huge as interval and jitter: armed, never due, cancellable", function()
    local ran = false
    S.run(function()
      local a = assert(resty_timer(opts({ interval = math.huge, expire = function() ran = true end })))
      local b = assert(resty_timer(opts({ interval = 0.01, jitter = math.huge, recurring = false,
        expire = function() ran = true end })))
      corio.sleep(0.05)
      assert.is_true(a:cancel())
      assert.is_true(b:cancel())
    end)
    assert.is_false(ran)
  end)

  it("checks every millisecond for Kong's sub_interval = 0, not every loop turn, and runs once per interval", function()
    local name = shm_name()
    local count, cpu = 0, nil
    S.run(function()
      local c0 = os.clock()
      local t = resty_timer({ interval = 0.05, sub_interval = 0, immediate = true, recurring = true,
        shm_name = name, key_name = "zero", expire = function() count = count + 1 end })
      corio.sleep(0.22)
      t:cancel()
      cpu = os.clock() - c0
    end)
    require("corio.core").unlink_leases(name)
    assert.is_true(count >= 4 and count <= 6, "count " .. count)  -- at 0, 0.05, 0.10, 0.15, 0.20
    assert.is_true(cpu < 0.15, ("%.3f s of CPU in 0.22 s: the checks spin"):format(cpu))
  end)

  it("neither stores nor alters opts: one table makes many timers", function()
    S.run(function()
      local o = opts({ jitter = 0.01, immediate = true, cancel = function() end })
      local before = {}
      for k, v in pairs(o) do before[k] = v end
      local timers = {}
      for i = 1, 20 do timers[i] = assert(resty_timer(o, i)) end
      for k, v in pairs(before) do assert.equal(v, o[k]) end
      for k in pairs(o) do assert.is_not_nil(before[k]) end
      for _, t in ipairs(timers) do
        for _, v in pairs(t) do assert.are_not.equal(o, v) end
        t:cancel()
      end
    end)
  end)

  it("reproduces the seed's usage example as printed", function()
    local lines = {}
    local function say(...)
      local parts = pack(...)
      for i = 1, parts.n do parts[i] = tostring(parts[i]) end
      lines[#lines + 1] = table.concat(parts, "", 1, parts.n)
    end
    local object = { name = "myName" }
    function object:timer_callback(...)
      say("starting ", self.name, ": ", ...)
    end
    function object.cancel_callback(reason, self, ...)
      say("stopping ", self.name, ": ", ...)
      if reason == resty_timer.CANCEL_USER then
        say("user")
      end
    end
    function object:start()
      if self.timer then return end
      self.timer = resty_timer({
        interval = 0.05,
        expire = self.timer_callback,
        cancel = self.cancel_callback,
      }, self, 1, " two ", 3)
    end
    function object:stop()
      if self.timer then
        self.timer:cancel()
        self.timer = nil
      end
    end
    S.run(function()
      object:start()
      corio.sleep(0.12)
      object:stop()
    end)
    assert.same({ "starting myName: 1 two 3", "stopping myName: 1 two 3", "user" }, lines)
  end)

  it("gives expire and cancel the arguments of new, nils kept", function()
    local got_expire, got_cancel
    S.run(function()
      local t = resty_timer(opts({
        recurring = false,
        interval = 0.01,
        expire = function(...) got_expire = pack(...) end,
        cancel = function(...) got_cancel = pack(...) end,
      }), "a", nil, "c", nil)
      corio.sleep(0.05)
      t:cancel()
    end)
    assert.same({ n = 4, "a", nil, "c", nil }, got_expire)
    assert.same({ n = 5, "USER", "a", nil, "c", nil }, got_cancel)
  end)

  it("passes 200 arguments", function()
    local args = {}
    for i = 1, 200 do args[i] = i end
    local got
    S.run(function()
      resty_timer(opts({ recurring = false, interval = 0, expire = function(...) got = pack(...) end }),
        unpack(args, 1, 200))
      corio.sleep(0.02)
    end)
    assert.equal(200, got.n)
    assert.equal(200, got[200])
  end)

  it("runs a one-shot timer once, after the interval", function()
    local count, at = 0, nil
    S.run(function()
      local t0 = corio.now()
      local t = resty_timer(opts({ recurring = false, interval = 0.05,
        expire = function() count = count + 1; at = corio.now() - t0 end }))
      corio.sleep(0.3)
      assert.is_true(t:cancel())  -- as Kong's: an expired one-shot still cancels once
      assert.same({ nil, "already cancelled" }, { t:cancel() })
    end)
    assert.equal(1, count)
    assert.is_true(at >= 0.05 and at < 0.15, "at " .. tostring(at))
  end)

  it("runs each expiry in a corio thread of its own, which may sleep", function()
    local threads, slept = {}, 0
    S.run(function()
      local t = resty_timer(opts({ interval = 0.03, expire = function()
        threads[#threads + 1] = corio.current()
        local t0 = corio.now()
        corio.sleep(0.005)
        slept = math.max(slept, corio.now() - t0)
      end }))
      corio.sleep(0.15)
      t:cancel()
    end)
    assert.is_true(#threads >= 3)
    assert.is_not_nil(threads[1])
    assert.is_true(slept >= 0.005)
  end)

  it("keeps a recurring schedule on the grid: no drift", function()
    local times = {}
    local t0
    S.run(function()
      t0 = corio.now()
      local t = resty_timer(opts({ interval = 0.04, expire = function()
        times[#times + 1] = corio.now() - t0
        corio.sleep(0.01)  -- work that would make a naive re-arm drift
      end }))
      corio.sleep(0.5)
      t:cancel()
    end)
    assert.is_true(#times >= 9, "runs " .. #times)
    for k = 1, #times do
      -- run k is due at k * interval; late by load at most, never by the sum of earlier runs
      assert.is_true(times[k] >= k * 0.04 - 0.001 and times[k] < k * 0.04 + 0.03,
        ("run %d at %.4f"):format(k, times[k]))
    end
  end)

  it("never overlaps itself: a run that outlasts the interval skips the checks it covers", function()
    local starts, running, most = {}, 0, 0
    local t0
    S.run(function()
      t0 = corio.now()
      local first = true
      local t = resty_timer(opts({ interval = 0.04, expire = function()
        starts[#starts + 1] = corio.now() - t0
        running = running + 1
        most = math.max(most, running)
        if first then
          first = false
          corio.sleep(0.1)  -- covers the checks at 0.08 and 0.12
        end
        running = running - 1
      end }))
      corio.sleep(0.3)
      t:cancel()
    end)
    assert.equal(1, most)
    -- first at 0.04, it lasts to 0.14; the next check on the grid after that is 0.16
    assert.is_true(starts[1] < 0.07, tostring(starts[1]))
    assert.is_true(starts[2] >= 0.16 - 0.001 and starts[2] < 0.19, tostring(starts[2]))
    assert.is_true(starts[3] >= 0.20 - 0.001 and starts[3] < 0.23, tostring(starts[3]))
  end)

  it("puts the first run of jittered timers in [interval, interval + jitter]", function()
    local at = {}
    S.run(function()
      local t0 = corio.now()
      for i = 1, 30 do
        resty_timer(opts({ recurring = false, detached = true, interval = 0.05, jitter = 0.2,
          expire = function() at[i] = corio.now() - t0 end }))
      end
      corio.sleep(0.35)
    end)
    local lo, hi = math.huge, -math.huge
    for i = 1, 30 do
      assert.is_not_nil(at[i], "timer " .. i .. " did not run")
      assert.is_true(at[i] >= 0.05 and at[i] < 0.25 + 0.04, tostring(at[i]))
      lo, hi = math.min(lo, at[i]), math.max(hi, at[i])
    end
    assert.is_true(hi - lo > 0.05, "jitter spread " .. (hi - lo))  -- 30 uniform draws over 0.2 s
  end)

  it("runs an immediate timer at once and puts the jitter on the second run", function()
    local at = {}
    S.run(function()
      local t0 = corio.now()
      local timers = {}
      for i = 1, 10 do
        at[i] = {}
        timers[i] = resty_timer(opts({ interval = 0.05, jitter = 0.1, immediate = true,
          expire = function() table.insert(at[i], corio.now() - t0) end }))
      end
      corio.sleep(0.2)
      for _, t in ipairs(timers) do t:cancel() end
    end)
    local spread = {}
    for i = 1, 10 do
      assert.is_true(at[i][1] < 0.02, "first run at " .. tostring(at[i][1]))
      assert.is_true(at[i][2] >= 0.05 and at[i][2] < 0.15 + 0.04, "second at " .. tostring(at[i][2]))
      spread[#spread + 1] = at[i][2]
    end
    table.sort(spread)
    assert.is_true(spread[10] - spread[1] > 0.01)
  end)

  describe("cancel", function()
    it("returns every result of the cancel callback, nils included", function()
      S.run(function()
        local t = resty_timer(opts({ cancel = function() return 1, nil, 3, nil end }))
        local r = pack(t:cancel())
        assert.same({ n = 4, 1, nil, 3, nil }, r)
        assert.same({ n = 2, nil, "already cancelled" }, pack(t:cancel()))
      end)
    end)

    it("returns true without a callback, stops the runs, and nil + message when repeated", function()
      local count = 0
      S.run(function()
        local t = resty_timer(opts({ interval = 0.02, expire = function() count = count + 1 end }))
        corio.sleep(0.05)
        assert.is_true(t:cancel())
        local seen = count
        corio.sleep(0.1)
        assert.equal(seen, count)
        assert.same({ n = 2, nil, "already cancelled" }, pack(t:cancel()))
      end)
    end)

    it("can be called from inside expire", function()
      local count, reason = 0, nil
      S.run(function()
        local t
        t = resty_timer(opts({ interval = 0.02, immediate = true,
          expire = function() count = count + 1; t:cancel() end,
          cancel = function(r) reason = r end }))
        corio.sleep(0.1)
      end)
      assert.equal(1, count)
      assert.equal("USER", reason)
    end)
  end)

  describe("garbage collection", function()
    it("cancels a timer that is not detached with CANCEL_GC when its object is collected", function()
      local count, reason = 0, nil
      S.run(function()
        local object = { name = "just-a-timer" }
        object.timer = resty_timer({ interval = 0.02, recurring = true,
          expire = function() count = count + 1 end,
          cancel = function(r, obj) reason = obj.name .. " " .. r end }, object)
        object = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.equal("just-a-timer GC", reason)
        corio.sleep(0.1)
      end)
      assert.equal(0, count)
    end)

    it("keeps a detached timer running unreferenced", function()
      local count = 0
      local weak = setmetatable({}, { __mode = "v" })
      S.run(function()
        weak.t = resty_timer({ interval = 0.02, recurring = true, detached = true,
          expire = function() count = count + 1 end })
        collectgarbage()
        collectgarbage()
        corio.sleep(0.11)
        assert.is_not_nil(weak.t)
        weak.t:cancel()
      end)
      assert.is_true(count >= 3, "count " .. count)
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak.t)  -- cancelled: collectable
    end)

    it("lets a detached one-shot timer be collected once it has run", function()
      local weak = setmetatable({}, { __mode = "v" })
      local count = 0
      S.run(function()
        weak.t = resty_timer({ interval = 0.01, detached = true, expire = function() count = count + 1 end })
        corio.sleep(0.05)
      end)
      collectgarbage()
      collectgarbage()
      assert.equal(1, count)
      assert.is_nil(weak.t)
    end)
  end)

  it("reports an error in expire with its traceback and keeps the timer running", function()
    local count = 0
    local errors = with_errors(function()
      local function world() error("oops") end
      local function hello() world() end
      local t = resty_timer(opts({ interval = 0.02, expire = function() count = count + 1; hello() end }))
      corio.sleep(0.11)
      t:cancel()
    end)
    assert.is_true(count >= 3)
    assert.is_true(#errors >= 3)
    assert.truthy(errors[1]:find("oops", 1, true))
    assert.truthy(errors[1]:find("hello", 1, true), errors[1])
    assert.truthy(errors[1]:find("world", 1, true), errors[1])
  end)

  it("reports an error in cancel with its traceback; cancel returns nil and the message", function()
    local r
    local errors = with_errors(function()
      local function boom() error("cancel-boom") end
      local t = resty_timer(opts({ cancel = function() boom() end }))
      r = pack(t:cancel())
      corio.sleep(0.01)
    end)
    assert.is_nil(r[1])
    assert.truthy(r[2]:find("cancel-boom", 1, true))
    assert.equal(1, #errors)
    assert.truthy(errors[1]:find("boom", 1, true))
    assert.truthy(errors[1]:find("traceback", 1, true), errors[1])
  end)

  describe("CANCEL_SYSTEM", function()
    it("fires once per live timer at corio.shutdown(), then new() says the process is exiting", function()
      local out = S.child([[
        local corio = require "corio"
        local rt = require "corio.resty.timer"
        local keep = {}
        for i = 1, 3 do
          keep[i] = rt({ interval = 0.05, recurring = true, expire = function() end,
            cancel = function(reason, n) print("cancel", reason, n) end }, i)
        end
        rt({ interval = 0.05, recurring = true, detached = true, expire = function() end,
          cancel = function(reason, n) print("cancel", reason, n) end }, "detached")
        local gone = rt({ interval = 0.05, recurring = true, expire = function() end,
          cancel = function(reason, n) print("cancel", reason, n) end }, "cancelled-before")
        gone:cancel()
        corio.spawn(function() corio.sleep(0.12) corio.shutdown(1) end)
        corio.run()
        print("after", keep[1]:cancel())
        print("new", rt({ interval = 1, expire = print }))
      ]])
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.same({
        "cancel\tUSER\tcancelled-before",
        "cancel\tSYSTEM\t1",
        "cancel\tSYSTEM\t2",
        "cancel\tSYSTEM\t3",
        "cancel\tSYSTEM\tdetached",
        "after\tnil\talready cancelled",
        "new\tnil\tprocess exiting",
        "status 0",
      }, lines)
    end)

    it("fires once per live timer at the end of the main script", function()
      local out = S.child([[
        local corio = require "corio"
        local rt = require "corio.resty.timer"
        local function cb(reason, n) print("cancel", reason, n) end
        keep = { rt({ interval = 0.05, recurring = true, expire = function() end, cancel = cb }, 1) }
        rt({ interval = 0.05, recurring = true, detached = true, expire = function() end, cancel = cb }, 2)
        local lost = rt({ interval = 0.05, recurring = true, expire = function() end, cancel = cb }, 3)
        corio.after(0.08, corio.stop)
        corio.run()
        print("end of script")
      ]])
      local lines = {}
      for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      table.sort(lines)
      assert.same({
        "cancel\tSYSTEM\t1",
        "cancel\tSYSTEM\t2",
        "cancel\tSYSTEM\t3",
        "end of script",
        "status 0",
      }, lines)
    end)
  end)

  describe("node-wide keys in one process", function()
    it("runs several timers of one key once per interval between them", function()
      local name = shm_name()
      local count, timers = 0, {}
      S.run(function()
        for i = 1, 10 do
          timers[i] = resty_timer({ interval = 0.1, sub_interval = 0.001, recurring = true, immediate = true,
            shm_name = name, key_name = "my_key", expire = function() count = count + 1 end })
        end
        corio.sleep(0.55)  -- immediate + 5 intervals
        for _, t in ipairs(timers) do t:cancel() end
      end)
      require("corio.core").unlink_leases(name)
      assert.is_true(count == 6 or count == 5, "count " .. count)
    end)

    it("hands the key over to another timer once the runner is cancelled (sub_interval)", function()
      local name = shm_name()
      local runs = {}
      S.run(function()
        local t = {}
        local t0 = corio.now()
        local o = { interval = 0.1, sub_interval = 0.01, recurring = true, immediate = true,
          shm_name = name, key_name = "handover",
          expire = function(id) runs[#runs + 1] = { id, corio.now() - t0 }; if id == 1 then t[1]:cancel() end end }
        t[1] = resty_timer(o, 1)
        corio.sleep(0.05)
        t[2] = resty_timer(o, 2)
        corio.sleep(0.05 + 0.015)
        t[2]:cancel()
      end)
      require("corio.core").unlink_leases(name)
      assert.equal(2, #runs)
      assert.equal(1, runs[1][1])
      assert.equal(2, runs[2][1])
      -- the lease of run 1 lasts interval - 1 ms; the second takes it at its next check
      assert.is_true(runs[2][2] >= 0.099 and runs[2][2] < 0.1 + 0.01 + 0.01, tostring(runs[2][2]))
    end)

    it("refuses a region of the name that another program laid out", function()
      local name = shm_name()
      local uid = io.popen("id -u"):read("*l")
      local path = ("/dev/shm/corio.%s.%s"):format(uid, name)
      local f = assert(io.open(path, "wb"))
      f:write(("garbage!"):rep(1000))
      f:close()
      local ok, err = pcall(resty_timer, opts({ shm_name = name, key_name = "k" }))
      os.remove(path)
      assert.is_false(ok)
      assert.truthy(err:find("not usable", 1, true), err)
      assert.truthy(err:find("another layout", 1, true), err)
    end)
  end)
end)
