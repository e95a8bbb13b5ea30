// The C++/Lua boundary. No C++ exception may unwind through Lua's frames: Debian's Lua 5.4
// is C, so an exception through lua_* frames aborts the process, and LuaJIT turns it into
// an opaque "C++ exception" error. Every lua_CFunction of the binding is registered as
// protect<f>: a std::exception escaping f becomes a Lua error, raised once f's frames are
// gone (std::bad_alloc as Lua's "not enough memory", anything else with its what()).
//
// Only std::exception is caught, never (...): on LuaJIT (x64, external unwinding) a Lua
// error is itself a foreign exception that must pass through untouched; on Lua 5.4
// lua_error and lua_yield longjmp over this frame, which holds nothing to destroy.
#pragma once
#include "lcompat.hpp"

#include <cstdio>
#include <exception>
#include <new>

namespace corio::lua {

template <lua_CFunction F>
int protect(lua_State* L) {
  char what[256];
  bool memory = false;
  try {
    return F(L);
  } catch (const std::bad_alloc&) {
    memory = true;
  } catch (const std::exception& e) {
    std::snprintf(what, sizeof what, "%s", e.what());
  }
  make_current(L);  // f may have run the loop or resumed a thread (lcompat.hpp)
  if (memory) {
    lua_pushliteral(L, "not enough memory");
    return lua_error(L);
  }
  return luaL_error(L, "%s", what);
}

}  // namespace corio::lua
