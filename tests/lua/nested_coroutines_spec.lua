-- Plain coroutines inside a corio thread (generators made with coroutine.wrap, or
-- coroutine.create + resume) may wait in corio calls: the wait suspends the whole corio
-- thread, and when it ends the nested coroutine gets the results and goes on. Elsewhere
-- coroutine.resume and coroutine.wrap behave as Lua's own.
local corio = require "corio"
local S = require "corio_support"

local run, pack = S.run, S.pack

-- A generator of the lines read from sock, as a cqueues or Copas user writes one.
local function lines(sock)
  return coroutine.wrap(function()
    while true do
      local line = sock:receive("*l")
      if not line then return end
      coroutine.yield(line)
    end
  end)
end

describe("a coroutine nested in a corio thread", function()
  it("a generator over corio.sleep yields its values in order", function()
    run(function()
      local gen = coroutine.wrap(function(a)
        for i = a, a + 2 do
          corio.sleep(0.005)
          coroutine.yield(i, "x" .. i)
        end
        return "end"
      end)
      assert.same({ n = 2, 1, "x1" }, pack(gen(1)))
      assert.same({ n = 2, 2, "x2" }, pack(gen()))
      assert.same({ n = 2, 3, "x3" }, pack(gen()))
      assert.same({ n = 1, "end" }, pack(gen()))
    end)
  end)

  it("other threads run while the generator waits", function()
    run(function()
      local ticks = 0
      local done = false
      corio.spawn(function()
        while not done do
          ticks = ticks + 1
          corio.sleep(0.002)
        end
      end)
      local gen = coroutine.wrap(function()
        corio.sleep(0.05)
        coroutine.yield("late")
      end)
      assert.equal("late", gen())
      done = true
      assert.is_true(ticks >= 5, "ticks " .. ticks)
    end)
  end)

  it("coroutine.resume gets the values of a coroutine that waited, and its status is right", function()
    run(function()
      local co = coroutine.create(function(x)
        assert.is_true(coroutine.isyieldable())
        local y = coroutine.yield(x + 1)
        corio.sleep(0.005)
        return y * 2, "done"
      end)
      assert.same({ n = 2, true, 11 }, pack(coroutine.resume(co, 10)))
      assert.equal("suspended", coroutine.status(co))
      assert.same({ n = 3, true, 42, "done" }, pack(coroutine.resume(co, 21)))
      assert.equal("dead", coroutine.status(co))
      assert.same({ n = 2, false, "cannot resume dead coroutine" }, pack(coroutine.resume(co)))
    end)
  end)

  it("a generator over a timer-fed value (corio.suspend / corio.resume)", function()
    run(function()
      local inner
      local gen = coroutine.wrap(function()
        inner = coroutine.running()
        while true do coroutine.yield(corio.suspend()) end
      end)
      local i = 0
      local feeder = corio.every(0.005, function()
        if inner and corio.resume(inner, i + 1, "tick") then i = i + 1 end
      end)
      for k = 1, 5 do
        assert.same({ n = 2, k, "tick" }, pack(gen()))
      end
      feeder:cancel()
    end)
  end)

  it("a generator over a socket loses nothing", function()
    run(function()
      local a, b = S.pair(2)
      corio.spawn(function()
        for i = 1, 20 do
          b:send("line " .. i .. "\n")
          if i % 5 == 0 then corio.sleep(0.005) end
        end
        b:close()
      end)
      local got = {}
      for line in lines(a) do got[#got + 1] = line end
      assert.equal(20, #got)
      for i = 1, 20 do assert.equal("line " .. i, got[i]) end
      a:close()
    end)
  end)

  it("two levels deep: a generator reading another generator over a socket", function()
    run(function()
      local a, b = S.pair(2)
      local numbers = coroutine.wrap(function()
        for line in lines(a) do
          corio.sleep(0.001)
          coroutine.yield(tonumber(line))
        end
      end)
      corio.spawn(function()
        for i = 1, 10 do
          corio.sleep(0.002)
          b:send(i .. "\n")
        end
        b:close()
      end)
      local sum, n = 0, 0
      for v in numbers do
        sum, n = sum + v, n + 1
      end
      assert.equal(10, n)
      assert.equal(55, sum)
      a:close()
    end)
  end)

  it("a generator erroring after a wait propagates the error with its position", function()
    run(function()
      local gen = coroutine.wrap(function()
        corio.sleep(0.005)
        error("boom")
      end)
      local ok, err = pcall(gen)
      assert.is_false(ok)
      assert.matches("nested_coroutines_spec.lua:%d+: boom", err)
      -- resume reports it as a value
      local co = coroutine.create(function()
        corio.sleep(0.005)
        error({ code = 7 })
      end)
      local ok2, obj = coroutine.resume(co)
      assert.is_false(ok2)
      assert.same({ code = 7 }, obj)
      assert.equal("dead", coroutine.status(co))
    end)
  end)

  it("Lua 5.4: a failed generator's to-be-closed variables are closed", function()
    local chunk = _VERSION == "Lua 5.4" and load([[
      local corio, closed = ...
      return coroutine.wrap(function()
        local x <close> = setmetatable({}, { __close = function(_, e) closed[#closed + 1] = e end })
        corio.sleep(0.005)
        error("failed", 0)
      end)
    ]])
    if not chunk then
      pending("no to-be-closed variables in " .. _VERSION)
      return
    end
    run(function()
      local closed = {}
      local gen = chunk(corio, closed)
      assert.is_false(pcall(gen))
      assert.same({ "failed" }, closed)
    end)
  end)

  it("a coroutine resumed from the main thread still waits on its own (asok style)", function()
    local done = false
    local co = coroutine.create(function(x)
      local gen = coroutine.wrap(function()
        corio.sleep(0.005)
        coroutine.yield(x)
      end)
      assert.equal(x, gen())
      corio.sleep(0.005)
      done = true
    end)
    assert.same({ n = 1, true }, pack(coroutine.resume(co, "v")))
    assert.equal("suspended", coroutine.status(co))
    local deadline = corio.now() + 5
    while not done and corio.now() < deadline do corio.step(0.01) end
    assert.is_true(done)
    assert.equal("dead", coroutine.status(co))
  end)
end)

describe("a coroutine resumed behind corio's back", function()
  it("waiting in corio raises a clear error instead of losing the wait (in a child)", function()
    local out = S.child([[
      local lua_wrap = coroutine.wrap  -- taken before corio is loaded
      local corio = require "corio"
      local result
      corio.run(function()
        local gen = lua_wrap(function() corio.sleep(0.001) coroutine.yield("value") end)
        result = { pcall(gen) }
      end)
      print(result[1], result[2])
      assert(result[1] == false and result[2]:find("behind corio's back", 1, true))
      print("ok")
    ]])
    assert.matches("ok\nstatus 0", out, 1, true)
  end)
end)

describe("coroutine.resume and coroutine.wrap with corio loaded", function()
  -- Lua's own functions, taken before corio is loaded, against corio's: the same results
  -- and messages for every case that involves no corio wait.
  it("behave as the originals (compared in a child)", function()
    local out = S.child([[
      local orig = { resume = coroutine.resume, wrap = coroutine.wrap }
      require "corio"
      assert(coroutine.resume ~= orig.resume, "corio did not install its resume")
      local mine = { resume = coroutine.resume, wrap = coroutine.wrap }
      local function pack(...) return { n = select("#", ...), ... } end
      local function show(t)
        local s = {}
        for i = 1, t.n do s[i] = type(t[i]) == "table" and "table" or tostring(t[i]) end
        return t.n .. ":" .. table.concat(s, ",")
      end
      local cases = {
        function(lib) return lib.resume(coroutine.create(function(...) return ... end), 1, nil, 3) end,
        function(lib)
          local co = coroutine.create(function(a) local b = coroutine.yield(a) return b end)
          local r1 = pack(lib.resume(co, "a"))
          local r2 = pack(lib.resume(co, "b"))
          local r3 = pack(lib.resume(co))
          return show(r1), show(r2), show(r3)
        end,
        function(lib) return lib.resume(coroutine.create(function() error("e1") end)) end,
        function(lib) return lib.resume(coroutine.create(function() error({}) end)) end,
        function(lib) return lib.resume(coroutine.running()) end,
        function(lib)
          local outer = coroutine.running()
          return pack(lib.resume(coroutine.create(function() return lib.resume(outer) end)))
        end,
        function(lib)
          local resume = lib.resume
          return pcall(function() local r = resume(42) return r end)
        end,
        function(lib)
          local resume = lib.resume
          return pcall(function() local r = resume() return r end)
        end,
        function(lib)
          local resume = lib.resume
          return pcall(function() return resume(42) end)
        end,
        function(lib)
          local t = { resume = lib.resume }
          return pcall(function() local r = t:resume() return r end)
        end,
        function(lib) return select(2, pcall(function() return lib.resume(42) end)) end,
        function(lib) local g = lib.wrap(function(...) return ... end) return g(1, nil, 3) end,
        function(lib)
          local g = lib.wrap(function() error("e2") end)
          return select(2, pcall(function() return g() end))
        end,
        function(lib)
          local g = lib.wrap(function() error({}) end)
          return type(select(2, pcall(function() return g() end)))
        end,
        function(lib)
          local g = lib.wrap(function() end)
          g()
          return select(2, pcall(function() return g() end))
        end,
        function(lib)
          local wrap = lib.wrap
          return select(2, pcall(function() local g = wrap(42) return g end))
        end,
        function(lib)
          local g = lib.wrap(function() error("e3") end)
          return select(2, pcall(function() local r = g() return r end))
        end,
        function(lib)
          local g = lib.wrap(function() return coroutine.isyieldable(), coroutine.running() ~= nil end)
          return g()
        end,
        function(lib)
          local g
          g = lib.wrap(function() return pcall(g) end)
          return g()
        end,
      }
      local diff = 0
      for i, case in ipairs(cases) do
        -- each case on a line of its own, same position for both libraries
        local a = show(pack(pcall(case, orig)))
        local b = show(pack(pcall(case, mine)))
        if a ~= b then
          diff = diff + 1
          print("case " .. i .. " differs:\n  lua:   " .. a .. "\n  corio: " .. b)
        end
      end
      print(diff == 0 and "same" or "different")
    ]])
    assert.matches("same\nstatus 0", out, 1, true)
  end)
end)

describe("an error out of a coroutine corio resumed, caught by pcall", function()
  -- corio's resume and wrap are C code that resumes the coroutine and, for a failed
  -- generator, raises its error. LuaJIT (before 2023-09) then went on taking the dead
  -- coroutine for the running thread: the first exit from a compiled trace after the pcall
  -- rebuilt the caller's frames on that thread and crashed the interpreter. A hot loop with
  -- a branch right after each pcall (before any C function returns) takes such exits.
  local with_hot_loop = [[
    local corio = require "corio"
    local function spin()
      local s = 0
      for j = 1, 200 do
        if j % 3 == 0 then s = s + 1 else s = s - 1 end
      end
      return s
    end
  ]]

  it("leaves the caller running: a generator failing at once (in a child)", function()
    local out = S.child(with_hot_loop .. [[
      for _ = 1, 200 do
        local ok, err = pcall(coroutine.wrap(function() error("boom") end))
        spin()
        assert(not ok and err:find("boom", 1, true), err)
      end
      print("ok")
    ]])
    assert.matches("ok\nstatus 0", out, 1, true)
  end)

  it("leaves the caller running: a generator failing after a wait, in a corio thread (in a child)", function()
    local out = S.child(with_hot_loop .. [[
      corio.run(function()
        for _ = 1, 100 do
          local ok, err = pcall(coroutine.wrap(function()
            corio.sleep(0)
            error("boom")
          end))
          spin()
          assert(not ok and err:find("boom", 1, true), err)
        end
        print("ok")
      end)
    ]])
    assert.matches("ok\nstatus 0", out, 1, true)
  end)
end)
