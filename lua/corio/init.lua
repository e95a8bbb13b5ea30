-- corio: the native Lua API. The event container is corio.event.
local core = require "corio.core"

local corio = {
  version = core.version,
  now = core.now,  -- monotonic seconds
}

return corio
