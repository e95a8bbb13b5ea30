-- corio.event: the LuaEvents event container (the LuaEvents event spec).
--   local event = require "corio.event"
--   local ev = event.newset()
--   ev:add("t", 1.5, "hello"); for id, reason, source, context in ev(true) do ... end
-- The container is native (src/lua/levent.cpp) and runs on the thread's corio loop,
-- so it shares that loop with every other corio API in the same Lua state.
local core = require "corio.core"

return {
  newset = core.newset,
}
