-- A signal raised while an "s" event watches it, but not yet collected by the iterator, is
-- pending in the process. Deleting the event (or clearing the set) stops the last watch of
-- the signal and unblocks it: the pending instance used to be delivered then with its
-- default action, and SIGUSR1's is to terminate the process. Each case runs in a child
-- interpreter (corio_support's S.child, bounded), so a death fails the test, not busted.
local S = require "corio_support"

-- Runs the event-set code `body` (with `ev` and `id` in scope) in a child after an "s" event
-- for SIGUSR1 is added and SIGUSR1 sent to the child; returns its output and exit status.
local function after_pending_usr1(body)
  local out = S.child([[
    local event = require "corio.event"
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("*l"):match("^(%d+)")
    f:close()
    local ev = event.newset()
    local id = ev:add("s", "SIGUSR1", "ctx")
    local ok = os.execute("kill -USR1 " .. pid)  -- pending: blocked while watched
    assert(ok == true or ok == 0, "kill failed")
    ]] .. body .. [[
    io.write("survived\n")
  ]])
  return out, tonumber(out:match("status (%d+)%s*$"))
end

describe("a pending signal whose event goes away", function()
  it("ev:del(id) before the iterator collects it does not kill the process", function()
    local out, status = after_pending_usr1("assert(ev:del(id) == id)")
    assert.equal(0, status, out)
    assert.matches("survived", out)
  end)

  it("ev:clear() before the iterator collects it does not kill the process", function()
    local out, status = after_pending_usr1("ev:clear()")
    assert.equal(0, status, out)
    assert.matches("survived", out)
  end)

  it("is not delivered later either: a new event for the signal sees only new ones", function()
    local out, status = after_pending_usr1([[
      assert(ev:del(id) == id)
      ev:add("s", "SIGUSR1", "again")
      for _ in ev(false) do error("the discarded signal was returned") end
    ]])
    assert.equal(0, status, out)
    assert.matches("survived", out)
  end)
end)
