// core.leases(name): a LeaseTable (corio/lease_table.hpp) for Lua.
#pragma once
#include "lcompat.hpp"

#include <corio/lease_table.hpp>

#include <memory>

namespace corio::lua {

// The table of the core.leases userdata at idx; raises a Lua argument error otherwise.
const std::shared_ptr<LeaseTable>& check_leases(lua_State* L, int idx);
// Registers core.leases; the module table at the top.
void register_leases(lua_State* L);

}  // namespace corio::lua
