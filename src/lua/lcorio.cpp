// The corio.core module: the native binding every Lua face of corio is built on.
#include "lcompat.hpp"
#include "levent.hpp"
#include "lleases.hpp"
#include "lmqtt.hpp"
#include "ltls.hpp"
#include "lprotect.hpp"
#include "lrecurring.hpp"
#include "lsocket.hpp"
#include "lthread.hpp"
#include "ltimer.hpp"

#include <corio/loop.hpp>

#include <exception>

namespace {

int l_now(lua_State* L) {
  lua_pushnumber(L, corio::to_seconds(corio::Loop::now().time_since_epoch()));
  return 1;
}

const luaL_Reg kFunctions[] = {
    {"newset", corio::lua::protect<corio::lua::newset>},
    {"now", corio::lua::protect<l_now>},
    {nullptr, nullptr},
};

// Creating the loop can throw (no descriptor left for epoll or eventfd): protected.
int open_core(lua_State* L) {
  // The C++ runtime came in with this module (dlopen): its thread-local exception state is
  // made on first use, by ld.so, which aborts the process if that allocation fails. Touch
  // it now, so the first exception (a std::bad_alloc, say) finds it made.
  [[maybe_unused]] volatile int touched = std::uncaught_exceptions();  // pure: kept by volatile
  corio::lua::register_event_set(L);
  corio::lua::push_runtime(L);
  lua_newtable(L);
  luaL_setfuncs(L, kFunctions, 0);
  corio::lua::register_threads(L);
  corio::lua::register_shutdown(L);
  corio::lua::register_workers(L);
  corio::lua::register_timers(L);
  corio::lua::register_recurring(L);
  corio::lua::register_sockets(L);
  corio::lua::register_wrap(L);
  corio::lua::register_coroutines(L);
  corio::lua::register_leases(L);
  corio::lua::register_tls(L);
  corio::lua::register_mqtt(L);
  lua_pushliteral(L, "0.1.0");
  lua_setfield(L, -2, "version");
  return 1;  // the runtime below the module stays anchored in the registry
}

}  // namespace

extern "C" __attribute__((visibility("default"))) int luaopen_corio_core(lua_State* L) {
  return corio::lua::protect<open_core>(L);
}
