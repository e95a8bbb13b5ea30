-- An idle event set blocks in the kernel until its deadline: no CPU, no polling step.
local event = require "corio.event"
local corio = require "corio"

describe("an idle event set", function()
  it("waits 2 s for a timer using almost no CPU", function()
    local ev = event.newset()
    ev:add("t", 2.0, "late")
    local wall0, cpu0 = corio.now(), os.clock()
    local got = {}
    for _, reason, _, ctx in ev(true) do got[#got + 1] = reason .. ":" .. ctx end
    local wall, cpu = corio.now() - wall0, os.clock() - cpu0
    assert.same({ "timeout:late" }, got)
    assert.is_true(wall >= 2.0, "fired early: " .. wall)
    assert.is_true(wall < 3.0, "fired far too late: " .. wall)
    assert.is_true(cpu < 0.05, "idle wait used " .. cpu .. " s of CPU")
  end)

  it("never fires a 10 ms timer early (and not absurdly late)", function()
    local ev = event.newset()
    for _ = 1, 20 do
      local t0 = corio.now()  -- before add: the deadline counts from the add
      ev:add("t", 0.010, "t")
      local id = ev(true)()
      local dt = corio.now() - t0
      assert.is_number(id)
      assert.is_true(dt >= 0.010, "early by " .. (0.010 - dt))
      assert.is_true(dt < 0.100, "late by " .. dt)
    end
  end)
end)
