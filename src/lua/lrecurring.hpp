// core.recurring(opts, fn): a RecurringTimer (corio/recurring_timer.hpp) for Lua, the engine
// under corio.resty.timer.
#pragma once
#include "lcompat.hpp"

namespace corio::lua {

// Registers recurring into the module table at the top (runtime just below it).
void register_recurring(lua_State* L);

}  // namespace corio::lua
