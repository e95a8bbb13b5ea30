// TLS for the Lua sockets (ltls.cpp): core.tlscontext and the tcp client methods starttls,
// info and getpeercertificate.
#pragma once
#include "lcompat.hpp"

namespace corio::lua {

int l_starttls(lua_State* L);
int l_info(lua_State* L);
int l_getpeercertificate(lua_State* L);
void register_tls(lua_State* L);  // core.tlscontext into the module table at -1

}  // namespace corio::lua
