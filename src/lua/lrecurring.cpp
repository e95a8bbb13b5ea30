// core.recurring(opts, fn) -> handle: a RecurringTimer whose runs are calls of fn, each in a
// corio thread of its own; the run lasts until fn returns or raises (it may sleep, wait on
// sockets, ...), and a check that comes meanwhile is skipped.
//
// Unlike corio.every, an armed timer is not anchored: its owner keeps the handle, and a
// collected handle stops the timer (resty.timer's facade anchors detached timers itself).
// So the loop finds the handle through a weak table, never through a strong reference that
// fn's upvalues (often the handle itself) would turn into a cycle nobody collects.
//
// A run's thread holds a token (a userdata owning the RecurringTimer::Run): fn's end
// finishes it, and so does the collector if the thread is dropped while it waits, so a
// lost thread cannot wedge the timer.
#include "lrecurring.hpp"

#include "lleases.hpp"
#include "lprotect.hpp"
#include "lthread.hpp"

#include <corio/node_timer.hpp>
#include <corio/recurring_timer.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <utility>


namespace corio::lua {
namespace {

constexpr const char* kHandleType = "corio.recurring";
constexpr const char* kRunType = "corio.recurring.run";
constexpr const char* kHandlesKey = "corio.recurring.handles";  // weak values: light userdata -> handle
constexpr const char* kTrampolineKey = "corio.recurring.body";
constexpr const char* kPrepareKey = "corio.recurring.prepare";

struct LuaRecurring {
  explicit LuaRecurring(Runtime& r) : rt(&r) {}
  static constexpr std::uint64_t kMagic = 0x636f72696f726563ull;  // "coriorec"
  std::uint64_t magic = kMagic;
  Runtime* rt;
  std::unique_ptr<RecurringTimer> timer;  // empty until made, and after __gc
};

struct LuaRun {
  static constexpr std::uint64_t kMagic = 0x636f72696f72756eull;  // "coriorun"
  std::uint64_t magic = kMagic;
  RecurringTimer::Run run;
};

LuaRecurring* check_handle(lua_State* L, int idx) {
  auto* h = to_magic_userdata<LuaRecurring>(L, idx);
  if (!h) luaL_argerror(L, idx, "corio recurring timer expected");
  return h;
}

// The thread body, compiled once per state: a Lua function, so that fn may yield (LuaJIT
// cannot yield across a C call). fn comes as the token's user value, taken from it: a
// pooled runner keeps its last arguments while idle, and fn (whose upvalues often hold the
// handle) must not be kept alive by them. The error handler adds the traceback where fn
// failed; the run ends before the error is reported.
constexpr char kBody[] =
    "local xpcall, traced, take, finish, report = ... "
    "return function(run) "
    "local ok, err = xpcall(take(run), traced) "
    "finish(run) "
    "if not ok then report(err) end "
    "end";

// xpcall's handler: the message with the traceback of where it was raised.
int traced(lua_State* L) {
  const char* msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                        ? lua_tostring(L, 1)
                        : lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

// take(token) -> fn, which the token no longer holds.
int take_fn(lua_State* L) {
  if (!to_magic_userdata<LuaRun>(L, 1)) return luaL_argerror(L, 1, "corio recurring run expected");
  lua_settop(L, 1);
  push_uservalues(L, 1, 1);
  lua_pushnil(L);
  set_uservalue_at(L, 1, 1);
  return 1;
}

int finish_run(lua_State* L) {
  if (auto* r = to_magic_userdata<LuaRun>(L, 1)) r->run.finish();
  return 0;
}

int run_gc(lua_State* L) {
  if (auto* r = to_magic_userdata<LuaRun>(L, 1)) r->~LuaRun();
  return 0;
}

// upvalue 1: the runtime
int report_run_error(lua_State* L) {
  lua_settop(L, 1);
  runtime(L).report(L, true);
  make_current(L);  // the report ran the handler on the runtime's thread
  return 0;
}

struct FireArgs {
  LuaRecurring* h;
  RecurringTimer::Run* run;
};

// fire()'s allocations, protected (a memory error must not unwind through the loop):
// (FireArgs) -> body, token, or nothing if the handle is being collected. The Run moves
// into the token only when nothing can fail any more.
int prepare_run(lua_State* M) {
  auto* a = static_cast<FireArgs*>(lua_touserdata(M, 1));
  lua_settop(M, 0);
  lua_getfield(M, LUA_REGISTRYINDEX, kHandlesKey);
  lua_pushlightuserdata(M, a->h);
  lua_rawget(M, 1);
  if (to_magic_userdata<LuaRecurring>(M, 2) != a->h) return 0;  // being collected: its __gc stops it
  lua_getfield(M, LUA_REGISTRYINDEX, kTrampolineKey);  // 3
  void* p = new_userdata_values(M, sizeof(LuaRun), 1);  // 4
  push_uservalues(M, 2, 1);
  set_uservalue_at(M, 4, 1);
  luaL_getmetatable(M, kRunType);
  new (p) LuaRun{LuaRun::kMagic, std::move(*a->run)};
  lua_setmetatable(M, 4);
  return 2;
}

// A check decided to run: fn(), in a runner thread, with the run's token.
void fire(LuaRecurring* h, RecurringTimer::Run run) {
  Runtime& rt = *h->rt;
  lua_State* M = rt.main;
  // prepare_run's frame and results; room for the anchors above them
  if (!lua_checkstack(M, LUA_MINSTACK + Anchors::kSpare)) {
    std::fputs("corio: no stack left to run a recurring timer; the run is skipped\n", stderr);
    return;
  }
  int top = lua_gettop(M);
  FireArgs args{h, &run};
  lua_getfield(M, LUA_REGISTRYINDEX, kPrepareKey);
  lua_pushlightuserdata(M, &args);
  if (lua_pcall(M, 1, LUA_MULTRET, 0) != LUA_OK) {
    std::fprintf(stderr, "corio: a recurring timer's run is skipped: %s\n",
                 lua_type(M, -1) == LUA_TSTRING ? lua_tostring(M, -1) : "?");
  } else if (lua_gettop(M) == top + 2) {
    rt.call_in_thread(1);
  }
  lua_settop(M, top);
}

// ---- options ----

// opts[name] as seconds: nil -> -1 (absent, unless required); a number that is not NaN
// and not negative; huge is clamped later by from_seconds.
double seconds_field(lua_State* L, const char* name, bool required) {
  lua_getfield(L, 1, name);
  int type = lua_type(L, -1);
  if (type == LUA_TNIL && !required) {
    lua_pop(L, 1);
    return -1;
  }
  if (type != LUA_TNUMBER) {
    lua_pushfstring(L, "%s: number expected, got %s", name, lua_typename(L, type));
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  double s = lua_tonumber(L, -1);
  lua_pop(L, 1);
  if (std::isnan(s)) luaL_argerror(L, 1, lua_pushfstring(L, "%s must not be NaN", name));
  if (s < 0) luaL_argerror(L, 1, lua_pushfstring(L, "%s must not be negative", name));
  return s;
}

bool bool_field(lua_State* L, const char* name) {
  lua_getfield(L, 1, name);
  int type = lua_type(L, -1);
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (type != LUA_TNIL && type != LUA_TBOOLEAN) {
    lua_pushfstring(L, "%s: boolean expected, got %s", name, lua_typename(L, type));
    luaL_argerror(L, 1, lua_tostring(L, -1));
  }
  return b;
}

// The lease options, checked; the table stays at stack index 3 (nil without leases).
struct LeaseArgs {
  bool on = false;
  std::size_t key_len = 0;
  const char* key = nullptr;
};
LeaseArgs lease_args(lua_State* L, bool recurring);
void apply_leases(lua_State* L, const LeaseArgs& a, RecurringTimer::Options& o, Runtime& rt);

// ---- core.recurring ----

// upvalues: the runtime, the handles' metatable
int l_recurring(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  // Every Lua error first: nothing that owns anything is alive yet.
  double interval = seconds_field(L, "interval", true);
  double jitter = seconds_field(L, "jitter", false);
  double check = seconds_field(L, "check", false);
  bool recurring = bool_field(L, "recurring");
  bool immediate = bool_field(L, "immediate");
  if (immediate && !recurring) luaL_argerror(L, 1, "immediate requires recurring");
  if (check > 0 && !recurring) luaL_argerror(L, 1, "check requires recurring");
  if (check > interval) luaL_argerror(L, 1, "check must not exceed interval");
  LeaseArgs leases = lease_args(L, recurring);  // at index 3

  Runtime& rt = runtime(L);
  auto* h = static_cast<LuaRecurring*>(new_userdata_values(L, sizeof(LuaRecurring), 1));
  new (h) LuaRecurring(rt);  // owns nothing yet: a Lua error now leaks nothing
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_setmetatable(L, -2);
  int handle = lua_gettop(L);
  lua_pushvalue(L, 2);
  set_uservalue_at(L, handle, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, kHandlesKey);
  lua_pushlightuserdata(L, h);
  lua_pushvalue(L, handle);
  lua_rawset(L, -3);
  lua_pop(L, 1);

  // C++ from here: errors are exceptions (protect<> makes them Lua errors).
  RecurringTimer::Options o;
  o.interval = from_seconds(interval);
  o.recurring = recurring;
  o.jitter = from_seconds(jitter);
  o.immediate = immediate;
  o.check = from_seconds(check);
  if (leases.on) apply_leases(L, leases, o, rt);
  h->timer = std::make_unique<RecurringTimer>(rt.loop, std::move(o), [h](RecurringTimer::Run run) {
    fire(h, std::move(run));
  });
  lua_pushvalue(L, handle);
  return 1;
}

// handle:cancel() -> true if it was active. A run in progress goes on.
int l_cancel(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  bool was = h->timer && h->timer->active();
  if (h->timer) h->timer->cancel(CancelReason::user);
  lua_pushboolean(L, was);
  return 1;
}

int l_active(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  lua_pushboolean(L, h->timer && h->timer->active());
  return 1;
}

int l_running(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  lua_pushboolean(L, h->timer && h->timer->running());
  return 1;
}

int l_runs(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  lua_pushinteger(L, h->timer ? static_cast<lua_Integer>(h->timer->runs()) : 0);
  return 1;
}

int l_skipped(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  lua_pushinteger(L, h->timer ? static_cast<lua_Integer>(h->timer->skipped()) : 0);
  return 1;
}

// handle:next() -> the next check's time on corio.now()'s clock, or nil.
int l_next(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  TimePoint next = h->timer ? h->timer->next() : TimePoint::max();
  if (next == TimePoint::max())
    lua_pushnil(L);
  else
    lua_pushnumber(L, to_seconds(next.time_since_epoch()));
  return 1;
}

int l_unref(lua_State* L) {
  LuaRecurring* h = check_handle(L, 1);
  if (h->timer) h->timer->unref();
  return 0;
}

int l_gc(lua_State* L) {
  check_handle(L, 1)->~LuaRecurring();  // stops the timer, silently
  return 0;
}

const luaL_Reg kMethods[] = {
    {"cancel", protect<l_cancel>}, {"active", protect<l_active>},   {"running", protect<l_running>},
    {"runs", protect<l_runs>},     {"skipped", protect<l_skipped>}, {"next", protect<l_next>},
    {"unref", protect<l_unref>},   {nullptr, nullptr},
};

// ---- leases: node-wide timers (the node layer's seam, lleases.hpp and node_timer.hpp) ----

LeaseArgs lease_args(lua_State* L, bool recurring) {
  LeaseArgs a;
  lua_getfield(L, 1, "leases");  // index 3
  if (lua_isnil(L, 3)) return a;
  if (!lua_isuserdata(L, 3)) luaL_argerror(L, 1, "leases: a core.leases table expected");
  check_leases(L, 3);
  if (!recurring) luaL_argerror(L, 1, "leases requires recurring");
  lua_getfield(L, 1, "key");
  if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 1, "key: string expected with leases");
  a.key = lua_tolstring(L, -1, &a.key_len);  // stays on the stack (index 4)
  a.on = true;
  return a;
}

// Gates o on key's lease; a lease error is reported (the check does not run, the timer goes on).
void apply_leases(lua_State* L, const LeaseArgs& a, RecurringTimer::Options& o, Runtime& rt) {
  std::string key(a.key, a.key_len);
  std::string what = "recurring timer: the lease of key '" + key + "' failed: ";
  o = node_wide(std::move(o), check_leases(L, 3), std::move(key), [rt = &rt, what](std::error_code ec) {
    rt->report_message((what + ec.message() + "; the check did not run").c_str());
  });
}


}  // namespace

void register_recurring(lua_State* L) {
  if (luaL_newmetatable(L, kHandleType)) {
    lua_pushcfunction(L, protect<l_gc>);
    lua_setfield(L, -2, "__gc");
    lua_newtable(L);
    luaL_setfuncs(L, kMethods, 0);
    lua_setfield(L, -2, "__index");
  }
  if (luaL_newmetatable(L, kRunType)) {
    lua_pushcfunction(L, protect<run_gc>);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_newtable(L);  // the weak table the loop finds handles in
  lua_newtable(L);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kHandlesKey);
  // runtime, module, metatable
  if (luaL_loadbuffer(L, kBody, sizeof kBody - 1, "=corio.recurring") != LUA_OK) lua_error(L);
  lua_getglobal(L, "xpcall");
  luaL_checktype(L, -1, LUA_TFUNCTION);
  lua_pushcfunction(L, protect<traced>);
  lua_pushcfunction(L, protect<take_fn>);
  lua_pushcfunction(L, protect<finish_run>);
  lua_pushvalue(L, -8);  // the runtime
  lua_pushcclosure(L, protect<report_run_error>, 1);
  lua_call(L, 5, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, kTrampolineKey);
  lua_pushcfunction(L, prepare_run);  // raises only Lua errors (memory): no protect<>
  lua_setfield(L, LUA_REGISTRYINDEX, kPrepareKey);
  // runtime, module, metatable -> module.recurring with (runtime, metatable) as upvalues
  lua_pushvalue(L, -3);
  lua_insert(L, -2);
  lua_pushcclosure(L, protect<l_recurring>, 2);
  lua_setfield(L, -2, "recurring");
}

}  // namespace corio::lua
