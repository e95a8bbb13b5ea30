// corio's coroutine.resume and coroutine.wrap, installed by require "corio.core".
//
// A plain coroutine running inside a corio thread (a generator over a socket) may wait in
// a corio call: the wait suspends the whole corio thread, and its results go back down to
// the coroutine, which goes on. With Lua's own resume the waiting coroutine's yield would
// reach the resume's caller as if it were a value, and the results would be lost.
//
// resume runs co; if co waits and the resumer can wait too (Runtime::wait_root decided it
// at the wait), the resumer waits as well, marked as waiting on the same wait; when that
// wait ends, the resumer checks it was woken by it and resumes co with the results. On Lua
// 5.4 resume and wrap are C functions that yield with a continuation, as lcorolib's would;
// LuaJIT cannot go on in a C function after a yield, so there each is a small Lua function
// over C parts (resume_c, up, down). Anything else is Lua's resume: the same results,
// messages and error positions (on LuaJIT, an error raised by a wrap generator that was
// tail-called carries the position of the caller's caller). A coroutine that waits while
// its resumer cannot (the main thread, asok style) keeps the wait itself, and the loop
// resumes it later. A coroutine waiting in corio cannot be resumed by hand: resume returns
// false, "cannot resume a thread waiting in corio".
#include "lprotect.hpp"
#include "lthread.hpp"

#include <cstring>

namespace corio::lua {
namespace {

constexpr const char* kWaiting = "cannot resume a thread waiting in corio";
constexpr int kPassUp = -1;  // the resumed coroutine waits, and so must its resumer

// What resume returns (false, message) or wrap raises (as Lua's auxwrap: a failed
// coroutine is closed; a string message gets the position of wrap's caller, `level`,
// unless it is a memory error) for the message at L's top.
int fail(lua_State* L, lua_State* co, bool wrap, int level) {
  if (!wrap) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  make_current(L);  // co may have just run: the error must not leave LuaJIT on co
#if LUA_VERSION_NUM >= 504
  int status = lua_status(co);
  if (status != LUA_OK && status != LUA_YIELD) {  // an error in the coroutine
#if LUA_VERSION_RELEASE_NUM >= 50406
    status = lua_closethread(co, L);
#else
    status = lua_resetthread(co);
#endif
    lua_xmove(co, L, 1);
  }
  if (status == LUA_ERRMEM) return lua_error(L);
#else
  (void)co;
#endif
  if (lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, level);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

// Why co cannot be resumed from L now, in Lua's words; nullptr if it can.
const char* unresumable(lua_State* L, lua_State* co) {
  if (wait_id(co) || idle_runner(co)) return kWaiting;
#if LUA_VERSION_NUM < 504  // Lua 5.4's lua_resume checks the rest itself; LuaJIT's does not
  if (co == L) return "cannot resume running coroutine";
  int status = lua_status(co);
  if (status > LUA_YIELD) return "cannot resume dead coroutine";
  if (status == LUA_OK) {
    lua_Debug ar;
    if (lua_getstack(co, 0, &ar)) return "cannot resume running coroutine";  // it resumed L
    if (lua_gettop(co) == 0) return "cannot resume dead coroutine";
  }
#else
  (void)L;
#endif
  return nullptr;
}

// Resumes co with the nargs values at its stack top (moved there from L), leaving woken
// from wait `id`. Returns how many results it left on L (for resume: true and co's
// values; for wrap: co's values; see `flag`), or kPassUp.
int run(lua_State* L, lua_State* co, int nargs, lua_Integer id, bool wrap, bool flag, int level) {
  Runtime& rt = runtime(L);
  int nres = 0;
  int status = rt.resume_raw(co, L, nargs, id, &nres);
  if (status == LUA_YIELD && wait_id(co)) {
    if (rt.root != co) return kPassUp;
    ++rt.inflight;  // the loop resumes co from now on: a root, in flight until it ends
    if (!flag) return 0;  // co holds its wait itself: to L it is a yield of nothing
    lua_pushboolean(L, 1);
    return 1;
  }
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return fail(L, co, wrap, level);
    }
    if (flag) lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + flag;
  }
  lua_xmove(co, L, 1);
  return fail(L, co, wrap, level);
}

// Resumes co with the values of L from index `first` up.
int start(lua_State* L, lua_State* co, int first, bool wrap, bool flag, int level) {
  int nargs = lua_gettop(L) - first + 1;
  if (const char* why = unresumable(L, co)) {
    lua_pushstring(L, why);
    return fail(L, co, wrap, level);
  }
  if (!lua_checkstack(co, nargs)) {
    lua_pushliteral(L, "too many arguments to resume");
    return fail(L, co, wrap, level);
  }
  lua_xmove(L, co, nargs);
  return run(L, co, nargs, marks::kNone, wrap, flag, level);
}

// L was woken out of its wait with results (the top n values) for co, which waits on the
// same wait: checks it was the end of that wait that woke L, and resumes co with them.
int pass_down(lua_State* L, lua_State* co, bool wrap, bool flag, int level) {
  Runtime& rt = runtime(L);
  if (rt.waking != L) {  // resumed by hand, behind corio's back, out of its wait
    lua_pushstring(L, kWaiting);
    return fail(L, co, true, level);
  }
  lua_Integer id = rt.waking_id;
  int n = rt.waking_n;
  rt.waking = nullptr;
  lua_Integer co_id = wait_id(co);
  if (co_id == marks::kSuspendedUp) co_id = marks::kSuspended;  // one suspension, up a chain
  if (co_id != id) {  // co was closed (coroutine.close) while it waited
    lua_pushliteral(L, "cannot resume dead coroutine");
    return fail(L, co, wrap, level);
  }
  if (!lua_checkstack(co, n)) {
    lua_pushliteral(L, "too many results to resume");
    return fail(L, co, wrap, level);
  }
  pop_marks(co);
  lua_xmove(L, co, n);
  return run(L, co, n, id, wrap, flag, level);
}

// Marks L as waiting on the wait co waits on (passed up from co); returns how many marks.
int push_up_marks(lua_State* L, lua_State* co) {
  lua_Integer id = wait_id(co);
  return push_marks(L, id == marks::kSuspended ? marks::kSuspendedUp : id);
}

#if LUA_VERSION_NUM >= 504

// coroutine.resume and a wrap generator are C functions, as Lua's: a wait that goes up
// yields with a continuation, which passes the results down and goes on.
int resume_k(lua_State* L, int status, lua_KContext wrap);

int wait_or_return(lua_State* L, lua_State* co, int n, bool wrap) {
  if (n != kPassUp) return n;
  return lua_yieldk(L, push_up_marks(L, co), wrap, resume_k);
}

lua_State* wrapped_coroutine(lua_State* L) { return lua_tothread(L, lua_upvalueindex(2)); }

int resume_k(lua_State* L, int, lua_KContext wrap) {
  lua_State* co = wrap ? wrapped_coroutine(L) : lua_tothread(L, 1);
  return wait_or_return(L, co, pass_down(L, co, wrap, !wrap, 1), wrap);
}

// coroutine.resume(co, ...)
int l_resume(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  luaL_argexpected(L, co, 1, "thread");
  return wait_or_return(L, co, start(L, co, 2, false, true, 1), false);
}

// A wrap generator: upvalues (runtime, coroutine).
int l_generator(lua_State* L) {
  lua_State* co = wrapped_coroutine(L);
  return wait_or_return(L, co, start(L, co, 1, true, false, 1), true);
}

// coroutine.wrap(f)
int l_wrap(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_State* co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, protect<l_generator>, 2);
  return 1;
}

void install(lua_State* L, int rt, int co_table) {
  lua_pushvalue(L, rt);
  lua_pushcclosure(L, protect<l_resume>, 1);
  lua_setfield(L, co_table, "resume");
  lua_pushvalue(L, rt);
  lua_pushcclosure(L, protect<l_wrap>, 1);
  lua_setfield(L, co_table, "wrap");
}

#else  // LuaJIT

char kPassUpMark;  // its address: what resume_c and down return when the wait goes up

// Errors wrap raises get the position of level 2: the generator's caller (level 1 is the
// Lua function the user called, or the one that tail-replaced it).
const char kTrampoline[] = R"(
local resume_c, wrap_c, up, down_r, down_w, UP = ...
local function resumed(co, ok, ...)
  if ok == UP then return resumed(co, down_r(co, up(co))) end
  return ok, ...
end
local function resume(...)
  return resumed((...), resume_c(...))
end
local function wrapped(co, ok, ...)
  if ok == UP then return wrapped(co, down_w(co, up(co))) end
  return ...
end
local function generator(co)
  return function(...) return wrapped(co, wrap_c(co, ...)) end
end
return resume, generator
)";

int passed_up(lua_State* L, int n) {
  if (n != kPassUp) return n;
  lua_pushlightuserdata(L, &kPassUpMark);
  return 1;
}

// resume_c(co, ...): coroutine.resume's work. A bad argument is named as LuaJIT's own
// message names it, from the call of the Lua function the user called (level 1).
int l_resume(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  if (!co) {
    lua_Debug ar;
    const char* name = "?";
    bool method = false;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "n", &ar) && ar.name) {
      name = ar.name;
      method = ar.namewhat && std::strcmp(ar.namewhat, "method") == 0;
    }
    if (method)
      lua_pushfstring(L, "calling '%s' on bad self (coroutine expected)", name);
    else
      lua_pushfstring(L, "bad argument #1 to '%s' (coroutine expected)", name);
    return fail(L, nullptr, true, 2);
  }
  return passed_up(L, start(L, co, 2, false, true, 2));
}

// wrap_c(co, ...): a generator's work; its results follow a true, as resume's.
int l_wrap_resume(lua_State* L) { return passed_up(L, start(L, lua_tothread(L, 1), 2, true, true, 2)); }

// up(co): co (resumed by this thread) waits in corio: this thread waits as well.
int l_up(lua_State* L) {
  lua_State* co = lua_tothread(L, 1);
  lua_settop(L, 0);
  return lua_yield(L, push_up_marks(L, co));
}

// down(co, results...): this thread was woken out of up() with results for co.
int l_down_resume(lua_State* L) { return passed_up(L, pass_down(L, lua_tothread(L, 1), false, true, 2)); }
int l_down_wrap(lua_State* L) { return passed_up(L, pass_down(L, lua_tothread(L, 1), true, true, 2)); }

// coroutine.wrap(f): upvalue the trampoline's generator factory.
int l_wrap(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_State* co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_call(L, 1, 1);
  return 1;
}

void install(lua_State* L, int rt, int co_table) {
  if (luaL_loadbuffer(L, kTrampoline, sizeof kTrampoline - 1, "=corio.coroutine") != LUA_OK) lua_error(L);
  for (lua_CFunction f : {protect<l_resume>, protect<l_wrap_resume>, protect<l_up>, protect<l_down_resume>,
                          protect<l_down_wrap>}) {
    lua_pushvalue(L, rt);
    lua_pushcclosure(L, f, 1);
  }
  lua_pushlightuserdata(L, &kPassUpMark);
  lua_call(L, 6, 2);  // -> resume, generator factory
  lua_pushcclosure(L, protect<l_wrap>, 1);
  lua_setfield(L, co_table, "wrap");
  lua_setfield(L, co_table, "resume");
}

#endif

}  // namespace

void register_coroutines(lua_State* L) {
  int rt = lua_gettop(L) - 1;  // runtime, module table
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_getfield(L, -1, "coroutine");
  lua_remove(L, -2);
  if (lua_istable(L, -1)) install(L, rt, lua_gettop(L));  // else no coroutine library to replace
  lua_pop(L, 1);
}

}  // namespace corio::lua
