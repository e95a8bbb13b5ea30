// corio.after / corio.every: native timers whose callback runs in a thread of its own.
// A handle stays anchored while armed, so dropping it does not cancel the timer.
#include "lthread.hpp"
#include "ltimer.hpp"

#include <corio/timer.hpp>

#include <new>

namespace corio::lua {
namespace {

constexpr const char* kTimerType = "corio.timer";

struct LuaTimer {
  LuaTimer(Runtime& r) : rt(&r), timer(r.loop) {}
  Runtime* rt;
  Timer timer;
  int anchor = Anchors::kNone;  // the handle (and so fn and args) while armed
  int nargs = 0;
  bool repeating = false;
};

void unanchor(LuaTimer* t) {
  int anchor = t->anchor;
  t->anchor = Anchors::kNone;
  t->rt->anchors.drop(anchor);
}

void fire(LuaTimer* t) {
  Runtime& rt = *t->rt;
  lua_State* M = rt.main;
  lua_checkstack(M, t->nargs + 4);
  rt.anchors.push(M, t->anchor);  // keeps the handle alive during the call
  get_uservalue(M, -1);
  for (int i = 1; i <= t->nargs + 1; ++i) lua_rawgeti(M, -i, i);
  if (!t->repeating) unanchor(t);
  rt.spawn(M, t->nargs);
  lua_pop(M, 3);  // thread, uservalue, handle
}

int start(lua_State* L, bool repeating) {
  double s = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (repeating) luaL_argcheck(L, s > 0, 1, "interval must be positive");
  int nargs = lua_gettop(L) - 2;
  Runtime& rt = runtime(L);
  auto* t = static_cast<LuaTimer*>(new_userdata(L, sizeof(LuaTimer)));
  new (t) LuaTimer(rt);
  luaL_setmetatable(L, kTimerType);
  lua_createtable(L, nargs + 1, 0);  // {fn, args...}
  for (int i = 0; i <= nargs; ++i) {
    lua_pushvalue(L, 2 + i);
    lua_rawseti(L, -2, i + 1);
  }
  set_uservalue(L, -2);
  t->nargs = nargs;
  t->repeating = repeating;
  lua_pushvalue(L, -1);
  t->anchor = rt.anchors.hold(L);
  Duration d = from_seconds(s);
  t->timer.start(d, [t] { fire(t); }, repeating ? d : Duration::zero());
  return 1;
}

int l_after(lua_State* L) { return start(L, false); }
int l_every(lua_State* L) { return start(L, true); }

// timer:cancel() -> true if it was still armed.
int l_cancel(lua_State* L) {
  auto* t = static_cast<LuaTimer*>(luaL_checkudata(L, 1, kTimerType));
  bool armed = t->timer.active();
  t->timer.stop();
  unanchor(t);
  lua_pushboolean(L, armed);
  return 1;
}

int l_active(lua_State* L) {
  auto* t = static_cast<LuaTimer*>(luaL_checkudata(L, 1, kTimerType));
  lua_pushboolean(L, t->timer.active());
  return 1;
}

int l_gc(lua_State* L) {
  auto* t = static_cast<LuaTimer*>(luaL_checkudata(L, 1, kTimerType));
  t->~LuaTimer();
  return 0;
}

const luaL_Reg kMethods[] = {{"cancel", l_cancel}, {"active", l_active}, {nullptr, nullptr}};
const luaL_Reg kFunctions[] = {{"after", l_after}, {"every", l_every}, {nullptr, nullptr}};

}  // namespace

void register_timers(lua_State* L) {
  if (luaL_newmetatable(L, kTimerType)) {
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, kMethods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushvalue(L, -2);  // module table, runtime
  luaL_setfuncs(L, kFunctions, 1);
}

}  // namespace corio::lua
