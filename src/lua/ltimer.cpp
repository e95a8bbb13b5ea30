// corio.after / corio.every: native timers whose callback runs in a thread of its own.
// A handle stays anchored while armed, so dropping it does not cancel the timer.
#include "lprotect.hpp"
#include "lthread.hpp"
#include "ltimer.hpp"

#include <corio/timer.hpp>

#include <cstdint>
#include <cstdio>
#include <new>

namespace corio::lua {
namespace {

constexpr const char* kTimerType = "corio.timer";
constexpr int kMaxArgs = 7000;  // below LuaJIT's lua_checkstack limit (8,000 slots)

// The callback and its arguments are the handle's user values 1..nargs+1.
struct LuaTimer {
  explicit LuaTimer(Runtime& r) : rt(&r), timer(r.loop) {}
  // Tells a handle from other userdata without a registry lookup per call (luaL_checkudata
  // was ~1/5 of a timer's cost).
  static constexpr std::uint64_t kMagic = 0x636f72696f74696dull;  // "coriotim"
  std::uint64_t magic = kMagic;
  Runtime* rt;
  Timer timer;
  int anchor = Anchors::kNone;  // the handle (and so fn and args) while armed
  int nargs = 0;
  bool repeating = false;
};

LuaTimer* check_timer(lua_State* L, int idx) {
  LuaTimer* t = to_magic_userdata<LuaTimer>(L, idx);
  if (!t) luaL_argerror(L, idx, "corio timer expected");
  return t;
}

void unanchor(LuaTimer* t) {
  int anchor = t->anchor;
  t->anchor = Anchors::kNone;
  t->rt->anchors.drop(anchor);
}

void fire(LuaTimer* t) {
  Runtime& rt = *t->rt;
  lua_State* M = rt.main;
  // the handle, fn and args, a runner thread; room for the anchors above them (LuaJIT
  // grows the stack by itself)
  if (LUA_VERSION_NUM >= 504 && !lua_checkstack(M, t->nargs + 3 + Anchors::kSpare)) {
    std::fputs("corio: no stack left to call a timer's callback; not called\n", stderr);
    if (!t->repeating) unanchor(t);
    return;
  }
  rt.anchors.push(M, t->anchor);  // keeps the handle alive during the call
  int handle = lua_gettop(M);
  push_uservalues(M, handle, t->nargs + 1);
  if (!t->repeating) unanchor(t);
  rt.call_in_thread(t->nargs);
  lua_pop(M, 1);
}

// upvalues: the runtime, the handles' metatable
int start(lua_State* L, bool repeating) {
  double s = luaL_checknumber(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (repeating) luaL_argcheck(L, s > 0, 1, "interval must be positive");
  int nargs = lua_gettop(L) - 2;
  // fn and the arguments are the handle's user values (at most 65,535 on Lua 5.4), and
  // each call moves them onto a thread's stack
  if (nargs >= kMaxArgs) return luaL_error(L, "too many arguments to a timer callback (at most %d)", kMaxArgs - 1);
  Runtime& rt = runtime(L);
  auto* t = static_cast<LuaTimer*>(new_userdata_values(L, sizeof(LuaTimer), nargs + 1));
  new (t) LuaTimer(rt);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  int handle = lua_gettop(L);
  for (int i = 0; i <= nargs; ++i) {
    lua_pushvalue(L, 2 + i);
    set_uservalue_at(L, handle, i + 1);
  }
  t->nargs = nargs;
  t->repeating = repeating;
  lua_pushvalue(L, -1);
  t->anchor = rt.anchors.hold(L);
  Duration d = from_seconds(s);
  try {
    t->timer.start(d, [t] { fire(t); }, repeating ? d : Duration::zero());
  } catch (const std::exception&) {
    unanchor(t);
    throw;
  }
  return 1;
}

int l_after(lua_State* L) { return start(L, false); }
int l_every(lua_State* L) { return start(L, true); }

// timer:cancel() -> true if it was still armed.
int l_cancel(lua_State* L) {
  LuaTimer* t = check_timer(L, 1);
  bool armed = t->timer.active();
  t->timer.stop();
  unanchor(t);
  lua_pushboolean(L, armed);
  return 1;
}

int l_active(lua_State* L) {
  lua_pushboolean(L, check_timer(L, 1)->timer.active());
  return 1;
}

int l_gc(lua_State* L) {
  check_timer(L, 1)->~LuaTimer();
  return 0;
}

const luaL_Reg kMethods[] = {{"cancel", protect<l_cancel>}, {"active", protect<l_active>}, {nullptr, nullptr}};
const luaL_Reg kFunctions[] = {{"after", protect<l_after>}, {"every", protect<l_every>}, {nullptr, nullptr}};

}  // namespace

void register_timers(lua_State* L) {
  if (luaL_newmetatable(L, kTimerType)) {
    lua_pushcfunction(L, protect<l_gc>);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, kMethods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pushvalue(L, -3);  // runtime, module table, metatable -> ..., module, runtime, metatable
  lua_insert(L, -2);
  luaL_setfuncs(L, kFunctions, 2);
}

}  // namespace corio::lua
