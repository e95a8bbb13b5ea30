// A clean stop of the runtime: corio.epoch, corio.atshutdown, corio.shutdown, and the
// registry of listening servers shutdown closes (core.serving, called by corio.bind).
//
// shutdown([grace]) runs once: the hooks (each a thread of its own, in registration order,
// so an error in one is reported with its traceback and the rest still run), then closes
// every registered server, then lets the loop go on until no spawned thread is in flight
// (Runtime::finished) or the grace is over, and stops corio.run. The grace timer is not
// referenced: a loop with nothing else to do ends at once, timers or not.
#include "lprotect.hpp"
#include "lsocket.hpp"
#include "lthread.hpp"

#include <corio/timer.hpp>

#include <cmath>

namespace corio::lua {
namespace {

constexpr double kDefaultGrace = 5;

// A table in the registry at *ref, made on first use (weak keys if asked); pushed.
void push_table(lua_State* L, int* ref, bool weak) {
  if (*ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, *ref);
    return;
  }
  lua_newtable(L);
  if (weak) {
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  lua_pushvalue(L, -1);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

int l_epoch(lua_State* L) {
  lua_pushinteger(L, runtime(L).epoch);
  return 1;
}

// corio.atshutdown(fn) -> true; false once shutdown has begun (fn will not run).
int l_atshutdown(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  Runtime& rt = runtime(L);
  if (rt.shutdown_begun) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 1);
  push_table(L, &rt.hooks_ref, false);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, static_cast<int>(raw_len(L, -2)) + 1);
  lua_pushboolean(L, 1);
  return 1;
}

// core.serving(server): shutdown closes it (weakly held).
int l_serving(lua_State* L) {
  luaL_checktype(L, 1, LUA_TUSERDATA);
  Runtime& rt = runtime(L);
  lua_settop(L, 1);
  push_table(L, &rt.servers_ref, true);
  lua_pushvalue(L, 1);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  return 0;
}

// corio.shutdown([grace]) -> true the first time, false after. From the main script (not
// a coroutine) it runs the loop itself until the stop is done.
int l_shutdown(lua_State* L) {
  double grace = kDefaultGrace;
  if (!lua_isnoneornil(L, 1)) {
    grace = luaL_checknumber(L, 1);
    luaL_argcheck(L, !std::isnan(grace) && grace >= 0, 1, "grace must be a number >= 0");
  }
  Runtime& rt = runtime(L);
  if (rt.shutdown_begun) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 0);
  begin_shutdown(L, rt, grace);
  if (!lua_isyieldable(L)) {
    Loop& loop = rt.loop;
    while (!rt.shutdown_done && loop.alive()) loop.run_once();
    if (loop.error()) return loop_failed(L, loop);
    make_current(L);  // the loop ran threads
    rt.shutdown_over();
    rt.stopping = false;  // consumed here: a later corio.run() is not stopped by it
  }
  lua_pushboolean(L, 1);
  return 1;
}

const luaL_Reg kFunctions[] = {
    {"epoch", protect<l_epoch>},     {"atshutdown", protect<l_atshutdown>}, {"shutdown", protect<l_shutdown>},
    {"serving", protect<l_serving>}, {nullptr, nullptr},
};

}  // namespace

void Runtime::shutdown_over() noexcept {
  shutdown_done = true;
  stopping = true;
  if (grace_timer) grace_timer->stop();
}

void begin_shutdown(lua_State* L, Runtime& rt, double grace) {
  rt.shutdown_begun = true;
  luaL_checkstack(L, 6, "shutdown");
  if (rt.hooks_ref != LUA_NOREF) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt.hooks_ref);
    int n = static_cast<int>(raw_len(L, -1));
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      rt.spawn(L, 0);  // an error is reported (traceback, corio.onerror) by the thread
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, rt.hooks_ref);
    rt.hooks_ref = LUA_NOREF;
  }
  if (rt.servers_ref != LUA_NOREF) {
    // Listed first, in a table that holds them (closing wakes the accepting threads, which
    // run at once and may collect garbage), then closed.
    lua_newtable(L);
    int n = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt.servers_ref);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lua_pop(L, 1);
      lua_pushvalue(L, -1);
      lua_rawseti(L, -4, ++n);
    }
    lua_pop(L, 1);
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      if (LSocket* s = to_magic_userdata<LSocket>(L, -1); s && s->sock) close_socket(s);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  if (rt.inflight == 0) return rt.shutdown_over();
  if (!std::isinf(grace)) {
    rt.grace_timer = std::make_unique<Timer>(rt.loop);
    rt.grace_timer->unref();  // only threads in flight keep the loop going
    Runtime* r = &rt;
    rt.grace_timer->start(from_seconds(grace), [r] { r->shutdown_over(); });
  }
}

void register_shutdown(lua_State* L) {
  lua_pushvalue(L, -2);  // module table, runtime -> ..., runtime
  luaL_setfuncs(L, kFunctions, 1);
}

}  // namespace corio::lua
