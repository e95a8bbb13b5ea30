-- corio.shutdown, corio.atshutdown, corio.epoch. A runtime shuts down once, so each case
-- runs in a child interpreter (bounded: 20 s) and prints what it saw.
local S = require "corio_support"
local corio = require "corio"

-- Runs source in a child; returns its output and exit status.
local function child(source)
  return S.child_in("", "local corio = require 'corio'\n" .. source)
end

describe("corio.shutdown", function()
  it("runs the hooks once each, in order; an error in one is reported with a traceback and the rest run", function()
    local out, status = child([[
      local log = {}
      corio.onerror(function(msg)
        log[#log + 1] = (msg:find("hook b failed", 1, true) and "err" or "?") .. (msg:find("stack traceback", 1, true) and "+tb" or "")
      end)
      assert(corio.atshutdown(function() log[#log + 1] = "a" end))
      corio.atshutdown(function() error("hook b failed") end)
      corio.atshutdown(function() log[#log + 1] = "c" end)
      print("first", corio.shutdown(1))
      print("second", corio.shutdown(1))
      print("log", table.concat(log, ","))
      print("late", corio.atshutdown(function() print("LATE HOOK RAN") end))
      print("workers", corio.workers(1, function() print("WORKER RAN") end))
      corio.shutdown(1)
    ]])
    assert.equal(0, status, out)
    assert.matches("first\ttrue", out, 1, true)
    assert.matches("second\tfalse", out, 1, true)
    assert.matches("log\ta,err+tb,c\n", out, 1, true)
    assert.matches("late\tfalse", out, 1, true)
    assert.not_matches("LATE HOOK RAN", out, 1, true)
    assert.matches("workers\tnil\tcannot start workers: the runtime is shutting down", out, 1, true)
    assert.not_matches("WORKER RAN", out, 1, true)
  end)

  it("closes the servers corio.bind and corio.serve made: a connect afterwards is refused", function()
    local out, status = child([[
      local bound = assert(corio.bind("127.0.0.1", 0))
      local served = assert(corio.serve("127.0.0.1", 0, function(c) c:close() end))
      local p1 = tonumber((select(2, bound:getsockname())))
      local p2 = tonumber((select(2, served:getsockname())))
      local c = assert(corio.connect("127.0.0.1", p2))  -- served before
      c:close()
      local t0 = corio.now()
      print("shutdown", corio.shutdown(5))
      print("took", corio.now() - t0)
      for _, p in ipairs({ p1, p2 }) do
        local c2, err = corio.connect("127.0.0.1", p)
        print("after", c2 and "connected" or err)
      end
    ]])
    assert.equal(0, status, out)
    assert.matches("shutdown\ttrue", out, 1, true)
    local _, refused = out:gsub("after\tconnection refused", "")
    assert.equal(2, refused, out)
    assert.is_true(tonumber(out:match("took\t(%S+)")) < 1, out)  -- the accepting thread ended
  end)

  it("waits for the threads in flight, not for the grace", function()
    local out, status = child([[
      local finished = 0
      for i = 1, 3 do
        corio.spawn(function() corio.sleep(0.1 * i) finished = finished + 1 end)
      end
      local t0 = corio.now()
      corio.shutdown(5)
      print("finished", finished, "took", corio.now() - t0)
    ]])
    assert.equal(0, status, out)
    local n, took = out:match("finished\t(%d+)\ttook\t(%S+)")
    assert.equal("3", n, out)
    assert.is_true(tonumber(took) >= 0.25 and tonumber(took) < 1.5, out)
  end)

  it("stops at the grace when a thread is still in flight", function()
    local out, status = child([[
      local finished = false
      corio.spawn(function() corio.sleep(10) finished = true end)
      local t0 = corio.now()
      corio.shutdown(0.3)
      print("finished", finished, "took", corio.now() - t0)
    ]])
    assert.equal(0, status, out)
    local f, took = out:match("finished\t(%a+)\ttook\t(%S+)")
    assert.equal("false", f, out)
    assert.is_true(tonumber(took) >= 0.25 and tonumber(took) < 1.5, out)
  end)

  it("returns at once with nothing in flight, corio.every timers or not", function()
    local out, status = child([[
      local ticks = 0
      corio.every(0.01, function() ticks = ticks + 1 end)
      corio.after(60, function() end)
      local t0 = corio.now()
      corio.shutdown(5)
      print("took", corio.now() - t0)
    ]])
    assert.equal(0, status, out)
    assert.is_true(tonumber(out:match("took\t(%S+)")) < 0.1, out)
  end)

  it("called in a thread under corio.run, makes corio.run return once the threads are done", function()
    local out, status = child([[
      local ticks, done = 0, false
      corio.every(0.02, function() ticks = ticks + 1 end)
      corio.spawn(function() corio.sleep(0.3) done = true end)
      corio.after(0.05, function() print("in timer", corio.shutdown(3)) end)
      local t0 = corio.now()
      corio.run()
      print("run returned", done, corio.now() - t0)
    ]])
    assert.equal(0, status, out)
    assert.matches("in timer\ttrue", out, 1, true)
    local d, took = out:match("run returned\t(%a+)\t(%S+)")
    assert.equal("true", d, out)
    assert.is_true(tonumber(took) >= 0.25 and tonumber(took) < 1.5, out)
  end)

  it("refuses a hostile grace without beginning; math.huge waits for every thread", function()
    local out, status = child([[
      for _, g in ipairs({ -1, 0/0, "soon", {}, true, -math.huge }) do
        local ok, err = pcall(corio.shutdown, g)
        print("grace", tostring(g), ok, (tostring(err):gsub("^.-: ", "")))
      end
      local done = false
      corio.spawn(function() corio.sleep(0.2) done = true end)
      print("huge", corio.shutdown(math.huge), done)
    ]])
    assert.equal(0, status, out)
    local _, refused = out:gsub("grace\t[^\n]*\tfalse\tbad argument #1", "")
    assert.equal(6, refused, out)
    assert.matches("huge\ttrue\ttrue", out, 1, true)
  end)
end)

describe("corio.epoch", function()
  it("is an integer that stays the same within a runtime", function()
    local e = corio.epoch()
    assert.equal("number", type(e))
    assert.equal(e, math.floor(e))
    assert.equal(e, corio.epoch())
  end)
end)
