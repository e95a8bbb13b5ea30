// The LuaEvents event container (corio.event): event.newset and the set's methods.
#pragma once
#include "lcompat.hpp"

namespace corio::lua {

void register_event_set(lua_State* L);  // creates the metatable once per state
int newset(lua_State* L);

}  // namespace corio::lua
