// TLS for the Lua sockets (ltls.cpp): core.tlscontext and the tcp client methods starttls,
// info and getpeercertificate.
#pragma once
#include "lcompat.hpp"

#include <corio/tls.hpp>

#include <memory>
#include <string>

namespace corio::lua {

int l_starttls(lua_State* L);
int l_info(lua_State* L);
int l_getpeercertificate(lua_State* L);
void register_tls(lua_State* L);  // core.tlscontext into the module table at -1
// A context from the value at idx: a core.tlscontext, a params table, or nil (a verified
// client); its servername (if any) into *servername. A clear error (thrown) if it fails.
std::shared_ptr<TlsContext> tls_context_of(lua_State* L, int idx, std::string* servername);

}  // namespace corio::lua
