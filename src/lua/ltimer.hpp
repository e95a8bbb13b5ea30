// corio.after / corio.every and the timer handle they return.
#pragma once
#include "lcompat.hpp"

namespace corio::lua {

// Registers after and every into the module table at the top (runtime just below it).
void register_timers(lua_State* L);

}  // namespace corio::lua
