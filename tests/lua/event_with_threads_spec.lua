-- The event container and corio threads share the thread's loop in one script.
local event = require "corio.event"
local corio = require "corio"

describe("an event set beside corio threads", function()
  it("does not keep corio.run() going with its own events", function()
    local ev = event.newset()
    ev:add("S", "USR2", "never comes")
    ev:add("T", 60, "far away")
    local ran = false
    local t0 = corio.now()
    corio.run(function() corio.sleep(0.01); ran = true end)
    assert.is_true(ran)
    assert.is_true(corio.now() - t0 < 5, "corio.run() waited for the event set")
    assert.equal(2, #ev)
    ev:clear()
  end)

  it("keeps threads running while its iterator blocks, and a thread may trigger it", function()
    local ev = event.newset()
    local vid = ev:add("v", nil, "from a thread")
    local ticks = 0
    corio.spawn(function()
      for _ = 1, 3 do corio.sleep(0.01); ticks = ticks + 1 end
      ev:trigger(vid)
    end)
    local got = {}
    for id, reason, _, ctx in ev(2.0) do got[#got + 1] = { id, reason, ctx } end
    assert.equal(3, ticks)
    assert.same({ { vid, "triggered", "from a thread" } }, got)
  end)
end)
