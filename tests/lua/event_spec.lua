-- corio.event: the LuaEvents container API (the LuaEvents event spec, modified form:
-- one context object and a timeout per event). Virtual events, timers, timeouts, ids,
-- set/trigger/once/del, and the seed's own example. Blocking modes, stop/clear: see
-- event_blocking_spec.lua; descriptors: event_io_spec.lua; signals: event_signal_spec.lua.
local event = require "corio.event"
local S = require "event_support"
local now, collect = S.now, S.collect

local function whys(list)
  local r = {}
  for i, e in ipairs(list) do r[i] = e.why end
  return r
end

local ctxs = S.ctxs

describe("corio.event", function()
  describe("module", function()
    it("exports newset", function()
      assert.is_table(event)
      assert.is_function(event.newset)
    end)

    it("is the same native container as corio.core", function()
      assert.equal(require("corio.core").newset, event.newset)
    end)
  end)

  describe("newset", function()
    it("accepts no argument, zero and a positive numobj", function()
      for _, n in ipairs({ false, 0, 1, 5 }) do
        local ev = n and event.newset(n) or event.newset()
        assert.is_userdata(ev)
        assert.equal(0, #ev)
      end
    end)

    it("rejects a negative numobj", function()
      assert.has_error(function() event.newset(-1) end)
      local ok, err = pcall(event.newset, -1)
      assert.is_false(ok)
      assert.matches("must not be negative", err)
    end)

    it("rejects a non-numeric numobj", function()
      assert.has_error(function() event.newset("many") end)
    end)

    it("returns independent containers", function()
      local a, b = event.newset(), event.newset()
      assert.are_not.equal(a, b)
      a:add("V")
      assert.equal(1, #a)
      assert.equal(0, #b)
    end)

    it("has a readable tostring", function()
      local ev = event.newset()
      ev:add("V")
      assert.matches("^event set %(1 events%)", tostring(ev))
    end)
  end)

  describe("ev:add", function()
    it("returns distinct negative integer ids", function()
      local ev = event.newset()
      local seen = {}
      for _, t in ipairs({ "v", "V", "v" }) do
        local id = ev:add(t)
        assert.is_number(id)
        assert.is_true(S.is_integer(id))
        assert.is_true(id < 0)
        assert.is_nil(seen[id])
        seen[id] = true
      end
      local t1 = ev:add("t", 10)
      local t2 = ev:add("T", 10)
      assert.is_true(t1 < 0 and t2 < 0 and t1 ~= t2)
      assert.is_nil(seen[t1])
      assert.equal(5, #ev)
    end)

    it("never reuses an id after a delete", function()
      local ev = event.newset()
      local a = ev:add("V")
      ev:del(a)
      local b = ev:add("V")
      assert.are_not.equal(a, b)
    end)

    it("rejects an unknown type letter", function()
      local ev = event.newset()
      for _, t in ipairs({ "q", "", "vv", "h", "m", "read" }) do
        local ok, err = pcall(ev.add, ev, t)
        assert.is_false(ok, t)
        assert.matches("invalid event type", err)
      end
      assert.has_error(function() ev:add() end)
      assert.has_error(function() ev:add(1) end)
      assert.equal(0, #ev)
    end)

    it("is a method of the set only", function()
      local ev = event.newset()
      assert.has_error(function() ev.add({}, "v") end)
    end)
  end)

  describe("#ev", function()
    it("counts the events in the set", function()
      local ev = event.newset()
      assert.equal(0, #ev)
      local a = ev:add("V")
      ev:add("t", 10)
      ev:once("x")
      assert.equal(3, #ev)
      ev:del(a)
      assert.equal(2, #ev)
      ev:clear()
      assert.equal(0, #ev)
    end)
  end)

  describe("virtual events", function()
    it("are not triggered when added with a nil source", function()
      local ev = event.newset()
      local id = ev:add("v", nil, "ctx")
      assert.same({}, collect(ev, false))
      assert.equal(1, #ev)
      assert.equal(id, ev:del(id))
    end)

    it("are returned with reason 'triggered' after ev:trigger", function()
      local ev = event.newset()
      local ctx = {}
      local id = ev:add("v", nil, ctx)
      assert.equal(id, ev:trigger(id))
      local got = collect(ev, false)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("triggered", got[1].why)
      assert.is_nil(got[1].src)
      assert.equal(ctx, got[1].ctx) -- the very same object
    end)

    it("take a truthy source as the initial triggered state", function()
      local ev = event.newset()
      local on = ev:add("v", true, "on")
      local tbl = ev:add("v", {}, "table")
      ev:add("v", false, "off")
      local got = collect(ev, false)
      assert.equal(2, #got)
      assert.same({ on, tbl }, { got[1].id, got[2].id })
      assert.same({ "triggered", "triggered" }, whys(got))
      assert.equal(true, got[1].src)
      assert.equal(1, #ev) -- the untriggered one stays
    end)

    it("one-shot: are deleted once returned", function()
      local ev = event.newset()
      local id = ev:add("v", true, "once")
      assert.equal(1, #collect(ev, false))
      assert.equal(0, #ev)
      assert.is_nil(ev:del(id))
      assert.is_nil(ev:trigger(id))
      assert.is_nil(ev:set(id, "again"))
    end)

    it("persistent: stay in the set and can be triggered again", function()
      local ev = event.newset()
      local id = ev:add("V", nil, "p")
      for _ = 1, 3 do
        assert.equal(id, ev:trigger(id))
        local got = collect(ev, false)
        assert.equal(1, #got)
        assert.equal(id, got[1].id)
        assert.equal("triggered", got[1].why)
        assert.equal("p", got[1].ctx)
        assert.equal(1, #ev)
      end
      assert.same({}, collect(ev, false)) -- not triggered: nothing
    end)

    it("are returned once however often they were triggered before", function()
      local ev = event.newset()
      local p = ev:add("V", true, "p")
      local o = ev:add("v", nil, "o")
      for _ = 1, 5 do
        assert.equal(p, ev:trigger(p))
        assert.equal(o, ev:trigger(o))
      end
      local got = collect(ev, false)
      assert.same({ p, o }, { got[1].id, got[2].id })
      assert.equal(2, #got)
      assert.same({}, collect(ev, false))
    end)

    it("triggered inside the loop body come back in a later cycle", function()
      local ev = event.newset()
      local id = ev:add("V", true, "p")
      local n = 0
      for got in ev(true) do
        n = n + 1
        assert.equal(id, got)
        if n < 3 then ev:trigger(id) else ev:del(id) end
      end
      assert.equal(3, n)
    end)
  end)

  describe("ev:trigger", function()
    it("returns nil for an invalid or deleted id", function()
      local ev = event.newset()
      assert.is_nil(ev:trigger(-1))
      assert.is_nil(ev:trigger(12345))
      local id = ev:add("V")
      ev:del(id)
      assert.is_nil(ev:trigger(id))
    end)

    it("returns nil for a non-virtual event", function()
      local ev = event.newset()
      local t = ev:add("t", 10)
      local T = ev:add("T", 10)
      assert.is_nil(ev:trigger(t))
      assert.is_nil(ev:trigger(T))
      assert.same({}, collect(ev, false))
      assert.equal(2, #ev)
    end)
  end)

  describe("ev:once", function()
    it("adds an immediate one-shot virtual event", function()
      local ev = event.newset()
      local ctx = function() end
      local id = ev:once(ctx)
      assert.is_true(S.is_integer(id) and id < 0)
      assert.equal(1, #ev)
      local got = collect(ev, false)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("triggered", got[1].why)
      assert.equal(ctx, got[1].ctx)
      assert.equal(0, #ev)
      assert.is_nil(ev:del(id))
    end)

    it("works without a context", function()
      local ev = event.newset()
      local id = ev:once()
      local got = collect(ev, false)
      assert.equal(id, got[1].id)
      assert.is_nil(got[1].ctx)
    end)

    it("delivers in the order of the calls", function()
      local ev = event.newset()
      ev:once("a"); ev:once("b"); ev:once("c")
      assert.same({ "a", "b", "c" }, ctxs(collect(ev, false)))
    end)

    it("can be cancelled with ev:del before it is returned", function()
      local ev = event.newset()
      local id = ev:once("gone")
      assert.equal(id, ev:del(id))
      assert.same({}, collect(ev, false))
    end)
  end)

  describe("ev:del", function()
    it("returns the id, then nil once deleted", function()
      local ev = event.newset()
      local id = ev:add("V")
      assert.equal(id, ev:del(id))
      assert.is_nil(ev:del(id))
      assert.equal(0, #ev)
    end)

    it("returns nil for an id that never existed", function()
      local ev = event.newset()
      assert.is_nil(ev:del(-1))
      assert.is_nil(ev:del(7))
    end)

    it("accepts the draft's ev:del(type, id) form", function()
      local ev = event.newset()
      local tid = ev:add("T", 1.0, "counter")
      assert.equal(tid, ev:del("t", tid))
      assert.is_nil(ev:del("t", tid))
      assert.equal(0, #ev)
    end)

    it("stops a timer: it is never returned", function()
      local ev = event.newset()
      local id = ev:add("t", 0.02)
      ev:add("V") -- keeps the set non-empty so the iterator really waits
      ev:del(id)
      assert.same({}, collect(ev, 0.1))
    end)

    it("only deletes events of its own set", function()
      local a, b = event.newset(), event.newset()
      local id = a:add("V")
      assert.is_nil(b:del(id))
      assert.equal(1, #a)
    end)
  end)

  describe("ev:set", function()
    it("replaces the context and returns the id", function()
      local ev = event.newset()
      local id = ev:add("v", nil, "old")
      local new = {}
      assert.equal(id, ev:set(id, new))
      ev:trigger(id)
      local got = collect(ev, false)
      assert.equal(new, got[1].ctx)
    end)

    it("without a context clears it", function()
      local ev = event.newset()
      local id = ev:add("v", true, "old")
      assert.equal(id, ev:set(id))
      assert.is_nil(collect(ev, false)[1].ctx)
    end)

    it("returns nil for a deleted or invalid id", function()
      local ev = event.newset()
      local id = ev:add("V")
      ev:del(id)
      assert.is_nil(ev:set(id, "x"))
      assert.is_nil(ev:set(-99, "x"))
      assert.is_nil(ev:set(3, "x", 1))
    end)

    it("changes the context of a timer", function()
      local ev = event.newset()
      local tid = ev:add("T", 0.02, "first")
      assert.equal(tid, ev:set(tid, "second"))
      local got = collect(ev, 1)
      assert.equal(1, #got)
      assert.equal("second", got[1].ctx)
      ev:del(tid)
    end)

    it("adds a timeout to an event", function()
      local ev = event.newset()
      local id = ev:add("v", nil, "v")
      local t0 = now()
      assert.equal(id, ev:set(id, "v", 0.05))
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.equal("timeout", got[1].why)
      assert.equal("v", got[1].ctx)
      assert.is_true(got[1].at >= 0.05, "early: " .. got[1].at)
      assert.is_true(got[1].at < 0.55, "late: " .. got[1].at)
    end)

    it("restarts the timeout with a new value", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("v", nil, "v", 0.03)
      ev:set(id, "v", 0.1)
      local got = collect(ev, 1, nil, t0)
      assert.equal("timeout", got[1].why)
      assert.is_true(got[1].at >= 0.1, "early: " .. got[1].at)
    end)

    it("keeps the timeout when the timeout argument is nil", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("v", nil, "old", 0.05)
      ev:set(id, "new", nil)
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.equal("timeout", got[1].why)
      assert.equal("new", got[1].ctx)
      assert.is_true(got[1].at >= 0.05)
    end)

    it("removes the timeout with a non-nil non-number", function()
      for _, none in ipairs({ false, "none", {} }) do
        local ev = event.newset()
        local id = ev:add("v", nil, "v", 0.03)
        assert.equal(id, ev:set(id, "v", none))
        -- ev() would block for a timeout; without one it only looks once.
        local t0 = now()
        assert.same({}, collect(ev, nil))
        assert.same({}, collect(ev, 0.1))
        assert.is_true(now() - t0 < 0.6)
        assert.equal(1, #ev)
      end
    end)

    it("ignores the timeout of a timer", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("t", 0.1, "t")
      ev:set(id, "t", 0.01)
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.is_true(got[1].at >= 0.1, "early: " .. got[1].at)
    end)
  end)

  describe("timers", function()
    it("t: expires once after the interval with reason 'timeout'", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("t", 0.05, "ctx")
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("timeout", got[1].why)
      assert.equal(0.05, got[1].src) -- the source is the interval
      assert.equal("ctx", got[1].ctx)
      assert.is_true(got[1].at >= 0.05, "early: " .. got[1].at)
      assert.is_true(got[1].at < 0.55, "late: " .. got[1].at)
      assert.equal(0, #ev)
      assert.is_nil(ev:del(id))
    end)

    it("t: a zero interval expires at once", function()
      local ev = event.newset()
      local id = ev:add("t", 0, "now")
      local got = collect(ev, false)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("timeout", got[1].why)
    end)

    it("T: expires periodically until deleted", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("T", 0.04, "tick")
      local got = collect(ev, true, function(_, list)
        if #list == 3 then ev:del(id) end
      end, t0)
      assert.equal(3, #got)
      for i, e in ipairs(got) do
        assert.equal(id, e.id)
        assert.equal("timeout", e.why)
        assert.equal("tick", e.ctx)
        assert.is_true(e.at >= 0.04 * i, "tick " .. i .. " early: " .. e.at)
      end
      assert.is_true(got[3].at < 0.12 + 0.5)
      assert.equal(0, #ev)
    end)

    it("fire in the order of their deadlines", function()
      local ev = event.newset()
      ev:add("t", 0.09, "c")
      ev:add("t", 0.03, "a")
      ev:add("t", 0.06, "b")
      local got = collect(ev, true)
      assert.same({ "a", "b", "c" }, ctxs(got))
      assert.same({ "timeout", "timeout", "timeout" }, whys(got))
    end)

    it("reject a non-numeric interval", function()
      local ev = event.newset()
      for _, t in ipairs({ "t", "T" }) do
        for _, bad in ipairs({ "1", "soon", {}, true }) do
          local ok, err = pcall(ev.add, ev, t, bad)
          assert.is_false(ok)
          assert.matches("interval must be a number", err)
        end
        assert.has_error(function() ev:add(t) end)
        assert.has_error(function() ev:add(t, nil, "ctx") end)
      end
      assert.equal(0, #ev)
    end)

    it("reject a negative interval", function()
      local ev = event.newset()
      assert.has_error(function() ev:add("t", -1) end)
      assert.has_error(function() ev:add("T", -0.5) end)
      assert.has_error(function() ev:add("t", 0 / 0) end)
      assert.equal(0, #ev)
    end)

    it("T: needs a positive interval", function()
      local ev = event.newset()
      local ok, err = pcall(ev.add, ev, "T", 0)
      assert.is_false(ok)
      assert.matches("must be positive", err)
      assert.equal(0, #ev)
    end)

    it("t: ignores the timeout argument", function()
      local ev = event.newset()
      local t0 = now()
      ev:add("t", 0.08, "t", 0.01)
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.is_true(got[1].at >= 0.08, "early: " .. got[1].at)
    end)
  end)

  describe("timeouts", function()
    it("return an untriggered event with reason 'timeout'", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("v", nil, "late", 0.05)
      local got = collect(ev, 1, nil, t0)
      assert.equal(1, #got)
      assert.equal(id, got[1].id)
      assert.equal("timeout", got[1].why)
      assert.equal("late", got[1].ctx)
      assert.is_true(got[1].at >= 0.05, "early: " .. got[1].at)
      assert.is_true(got[1].at < 0.55)
      assert.equal(0, #ev) -- one-shot: gone
    end)

    it("are cancelled by a trigger", function()
      local ev = event.newset()
      local id = ev:add("v", nil, "x", 0.03)
      ev:trigger(id)
      local got = collect(ev, false)
      assert.equal("triggered", got[1].why)
      assert.equal(0, #ev)
      assert.same({}, collect(ev, 0.08))
    end)

    it("a non-numeric timeout means none", function()
      local ev = event.newset()
      ev:add("v", nil, "x", "soon")
      ev:add("v", nil, "y", false)
      assert.same({}, collect(ev, nil)) -- no timer: ev() does not block
      assert.same({}, collect(ev, 0.05))
      assert.equal(2, #ev)
    end)

    it("are re-applied to a persistent event each time it is returned", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("V", nil, "p", 0.04)
      local got = collect(ev, true, function(_, list)
        if #list == 3 then ev:del(id) end
      end, t0)
      assert.same({ "timeout", "timeout", "timeout" }, whys(got))
      for i = 2, 3 do
        assert.is_true(got[i].at - got[i - 1].called >= 0.04, "re-applied early")
      end
      assert.is_true(got[1].at >= 0.04)
    end)

    it("restart when a persistent event is returned triggered", function()
      local ev = event.newset()
      local t0 = now()
      local id = ev:add("V", true, "p", 0.06)
      local got = collect(ev, true, function(_, list)
        if #list == 2 then ev:del(id) end
      end, t0)
      assert.same({ "triggered", "timeout" }, whys(got))
      assert.is_true(got[2].at - got[1].called >= 0.06)
    end)
  end)

  describe("the iterator", function()
    it("returns id, reason, source, context", function()
      local ev = event.newset()
      local src, ctx = { "s" }, { "c" }
      local id = ev:add("v", src, ctx)
      local n = 0
      for i, why, s, c, extra in ev(false) do
        n = n + 1
        assert.equal(id, i)
        assert.equal("triggered", why)
        assert.equal(src, s)
        assert.equal(ctx, c)
        assert.is_nil(extra)
      end
      assert.equal(1, n)
    end)

    it("returns an empty set's nil at once", function()
      local ev = event.newset()
      for _, block in ipairs({ true, false, 5 }) do
        local t0 = now()
        assert.same({}, collect(ev, block))
        assert.is_true(now() - t0 < 0.5)
      end
      local t0 = now()
      assert.same({}, collect(ev))
      assert.is_true(now() - t0 < 0.5)
    end)

    it("accepts contexts of any type", function()
      local ev = event.newset()
      local values = { 1, "s", true, false, {}, print, coroutine.create(function() end) }
      for _, v in ipairs(values) do ev:once(v) end
      local got = collect(ev, false)
      assert.equal(#values, #got)
      for i, v in ipairs(values) do assert.equal(v, got[i].ctx) end
    end)

    it("releases the context of a returned one-shot event", function()
      local ev = event.newset()
      local weak = setmetatable({}, { __mode = "v" })
      weak[1] = {}
      ev:once(weak[1])
      collect(ev, false)
      collectgarbage()
      collectgarbage()
      assert.is_nil(weak[1])
    end)
  end)

  describe("several sets", function()
    it("are independent although they share the thread's loop", function()
      local a, b = event.newset(), event.newset()
      local t0 = now()
      a:add("t", 0.06, "a")
      b:add("t", 0.02, "b")
      b:once("b-once")
      local got = collect(a, 1, nil, t0)
      assert.same({ "a" }, ctxs(got))
      assert.is_true(got[1].at >= 0.06)
      -- b's timer expired while a was waiting: it is ready without blocking.
      assert.same({ "b-once", "b" }, ctxs(collect(b, false)))
    end)
  end)

  describe("garbage collection", function()
    it("of a set with live events leaves the loop usable", function()
      do
        local ev = event.newset()
        ev:add("T", 0.01, "orphan")
        ev:add("v", nil, "v", 0.01)
        ev:once("x")
      end
      collectgarbage()
      collectgarbage()
      local ev = event.newset()
      local t0 = now()
      ev:add("t", 0.03, "alive")
      local got = collect(ev, 1, nil, t0)
      assert.same({ "alive" }, ctxs(got))
      assert.is_true(got[1].at >= 0.03)
    end)
  end)

  describe("the seed's example", function()
    -- The spec's example with 2.5 / 5.0 / 1.0 s shortened to 0.05 / 0.15 / 0.05 s:
    -- the periodic timer triggers the virtual event, which adds a one-shot timer.
    it("returns the events in order with their reasons", function()
      local ev = event.newset(1)
      local t0 = now()
      ev:add("t", 0.05, "One-shot timer expired")
      local tid = ev:add("T", 0.15, "Periodic timer triggered")
      local vid = ev:add("v", nil, "Virtual event triggered")
      local retriggered = {}
      local got = collect(ev, true, function(e, list)
        if e.id == tid then
          retriggered[#retriggered + 1] = ev:trigger(vid) or "nil"
        elseif e.id == vid then
          ev:add("t", 0.05, "One second later ...")
        end
        if #list == 5 then ev:stop() end
      end, t0)

      assert.same({
        "One-shot timer expired",
        "Periodic timer triggered",
        "Virtual event triggered",
        "One second later ...",
        "Periodic timer triggered",
      }, ctxs(got))
      assert.same({ "timeout", "timeout", "triggered", "timeout", "timeout" }, whys(got))
      assert.equal(vid, got[3].id)
      -- The virtual event is one-shot: the second trigger finds it gone.
      assert.same({ vid, "nil" }, retriggered)
      assert.is_true(got[1].at >= 0.05, "one-shot early")
      assert.is_true(got[2].at >= 0.15, "periodic early")
      assert.is_true(got[4].at - got[3].at >= 0.05, "later timer early")
      assert.is_true(got[5].at >= 0.30, "second period early")
      assert.is_true(got[5].at < 0.30 + 0.5, "second period late")
      assert.equal(1, #ev) -- the periodic timer is still there
      assert.equal(tid, ev:del(tid))
    end)
  end)
end)
