-- A corio thread waiting in a corio call (sleep, a socket receive, suspend) belongs to the
-- loop until that wait ends. Resuming it by hand is refused with a clear message, and the
-- wait then ends normally; a thread resumed behind corio's back (a coroutine.resume taken
-- before corio was loaded) is never pushed onto, resumed or reset by a stale completion.
-- Every case runs in a child interpreter: the failure this guards against corrupts memory.
local S = require "corio_support"

local function run_child(source)
  local out = S.child(source)
  return out, tonumber(out:match("status (%d+)%s*$"))
end

local prelude = [[
local corio = require "corio"
local S = require "corio_support"
local errors = {}
corio.onerror(function(msg) errors[#errors + 1] = msg end)
local function finish()
  assert(#errors == 0, "error in a thread: " .. tostring(errors[1]))
  print("ok")
end
]]

describe("a corio thread resumed by hand", function()
  it("while sleeping: coroutine.resume fails clearly and the sleep ends normally", function()
    local out, status = run_child(prelude .. [[
      local log = {}
      local t = corio.spawn(function()
        local r = S.pack(corio.sleep(0.05))
        log[#log + 1] = "woke with " .. r.n .. " values"
      end)
      local ok, err = coroutine.resume(t, "intruder")
      assert(ok == false, "hand resume succeeded")
      assert(err:find("cannot resume a thread waiting in corio", 1, true), err)
      assert(coroutine.status(t) == "suspended")
      corio.run()
      assert(log[1] == "woke with 0 values", tostring(log[1]))
      assert(coroutine.status(t) == "dead")
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("while receiving: refused, and the data arrives intact afterwards", function()
    local out, status = run_child(prelude .. [[
      corio.run(function()
        local a, b = S.pair(2)
        local got
        local t = corio.spawn(function() got = S.pack(a:receive("*l")) end)
        for _ = 1, 3 do
          local ok, err = coroutine.resume(t, "fake line")
          assert(ok == false and err:find("waiting in corio", 1, true), tostring(err))
        end
        b:send("real line\n")
        local deadline = corio.now() + 2
        while not got and corio.now() < deadline do corio.sleep(0.001) end
        assert(got and got.n == 3 and got[1] == "real line", "got " .. tostring(got and got[1]))
        a:close()
        b:close()
      end)
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("while suspended: refused; corio.resume still hands over its values", function()
    local out, status = run_child(prelude .. [[
      local got
      local t = corio.spawn(function() got = S.pack(corio.suspend()) end)
      local ok, err = coroutine.resume(t, "wrong")
      assert(ok == false and err:find("waiting in corio", 1, true), tostring(err))
      assert(corio.resume(t, "right", nil))
      ok, err = coroutine.resume(t, "wrong again")  -- resumed soon, not yet: still refused
      assert(ok == false and err:find("waiting in corio", 1, true), tostring(err))
      corio.run()
      assert(got.n == 2 and got[1] == "right" and got[2] == nil)
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("after a plain yield or between timer callbacks: refused until the loop resumes it", function()
    local out, status = run_child(prelude .. [[
      local log = {}
      local t = corio.spawn(function()
        coroutine.yield()
        log[#log + 1] = "turn"
      end)
      local ok, err = coroutine.resume(t)
      assert(ok == false and err:find("waiting in corio", 1, true), tostring(err))
      local kept
      corio.after(0, function() kept = corio.current() end)
      corio.run()
      assert(log[1] == "turn")
      ok, err = coroutine.resume(kept, function() log[#log + 1] = "intruder ran" end)
      assert(ok == false, "an idle timer thread was resumed by hand")
      local fired = 0
      for _ = 1, 3 do corio.after(0, function() fired = fired + 1 end) end
      corio.run()
      assert(fired == 3 and #log == 1, fired .. " " .. #log)
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("behind corio's back, then blocking where it cannot yield: no stale resume", function()
    -- A resume captured before corio was loaded cannot be refused up front. Lua 5.4 still
    -- stops it at the wait (the thread dies with the message); LuaJIT cannot, so the thread
    -- runs on. Either way the sleep that completes later must leave the thread alone.
    local out, status = run_child([[
      local raw_resume = coroutine.resume
      ]] .. prelude .. [[
      local stage = "start"
      local t = corio.spawn(function()
        corio.sleep(0.02)
        stage = "resumed"
        -- not yieldable inside gsub's callback: blocks, running the loop, while the first
        -- sleep completes
        string.gsub("x", "x", function() corio.sleep(0.1) end)
        stage = "end"
      end)
      local ok, err = raw_resume(t)
      print("raw resume:", ok, err, stage)
      if _VERSION == "Lua 5.4" then
        assert(ok == false and err:find("cannot resume a thread waiting in corio", 1, true), tostring(err))
        assert(stage == "start" and coroutine.status(t) == "dead")
      else
        assert(ok == true and stage == "end", tostring(ok) .. " " .. stage)
      end
      corio.run()
      corio.sleep(0.05)
      collectgarbage()
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)

  it("behind corio's back, then waiting again: the wait is refused with a clear error", function()
    local out, status = run_child([[
      local raw_resume = coroutine.resume
      ]] .. prelude .. [[
      local t = corio.spawn(function()
        corio.sleep(0.02)
        corio.sleep(0.02)
      end)
      local ok, err = raw_resume(t)
      print("raw resume:", ok, err)
      assert(ok == false and err:find("corio", 1, true), tostring(err))
      corio.run()
      finish()
    ]])
    assert.equal(0, status, out)
    assert.matches("ok", out, 1, true)
  end)
end)
