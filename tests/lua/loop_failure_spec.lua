-- A loop whose poller fails for good (its epoll descriptor closed behind its back) runs
-- nothing again: whatever in Lua runs the loop until something happens must raise
-- "corio: the event loop failed: <why>" instead of running it again and again at 100% CPU.
-- Each case breaks the loop of a child interpreter (20 s at most: a spin is a timeout).
local S = require "corio_support"

-- Breaks the child's loop: closes its epoll descriptor through a LuaSocket object.
local prelude = [[
  local corio = require "corio"
  local socket = require "socket"
  local function break_loop()
    local pid = assert(io.open("/proc/self/stat")):read("*n")
    local ls = assert(io.popen("ls -l /proc/" .. pid .. "/fd"))
    local listing = ls:read("*a")
    ls:close()
    local epoll = {}
    for fd in listing:gmatch("(%d+) %-> anon_inode:%[eventpoll%]") do epoll[#epoll + 1] = tonumber(fd) end
    assert(#epoll == 1, "epoll descriptors: " .. #epoll)
    local s = socket.tcp()
    s:setfd(epoll[1])
    s:close()
  end
  local function failed(ok, err)
    assert(not ok, "no error")
    assert(tostring(err):find("corio: the event loop failed: ", 1, true), err)
    print("raised")
  end
]]

local function child(body)
  return S.child(prelude .. body)
end

describe("a loop whose poller failed", function()
  it("a blocking wait in the main thread raises", function()
    local out = child([[
      -- Another thread takes a turn in the loop's last run: on LuaJIT the error must leave
      -- the main thread current (compiled code right after the pcall takes trace exits).
      corio.spawn(function() while true do coroutine.yield() end end)
      local function spin()
        local s = 0
        for j = 1, 200 do
          if j % 3 == 0 then s = s + 1 else s = s - 1 end
        end
        return s
      end
      for _ = 1, 100 do spin() end
      break_loop()
      local t0 = corio.now()
      local ok, err = pcall(corio.sleep, 5)
      spin()
      failed(ok, err)
      assert(corio.now() - t0 < 2, "raised after " .. corio.now() - t0 .. " s")
      failed(pcall(corio.sleep, 0))  -- and again: broken for good
    ]])
    assert.matches("raised\nraised\nstatus 0", out, 1, true)
  end)

  it("an event set iterator in the main thread raises", function()
    local out = child([[
      local set = require("corio.event").newset()
      set:add("t", 5, "timer")
      break_loop()
      failed(pcall(set(true)))
    ]])
    assert.matches("raised\nstatus 0", out, 1, true)
  end)

  it("corio.step raises; corio.run returns", function()
    local out = child([[
      break_loop()
      local t0 = corio.now()
      corio.run(function() corio.sleep(5) end)
      assert(corio.now() - t0 < 2, "run returned after " .. corio.now() - t0 .. " s")
      print("run returned")
      failed(pcall(corio.step, 0.01))
      failed(pcall(corio.step))
    ]])
    assert.matches("run returned\nraised\nraised\nstatus 0", out, 1, true)
  end)
end)
