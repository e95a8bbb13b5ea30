// The few Lua C API differences between Lua 5.4 and LuaJIT (the 5.1 API) the binding meets.
#pragma once
extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include <cstdio>

namespace corio::lua {

// A userdata with one Lua value attached (its uservalue / environment table).
inline void* new_userdata(lua_State* L, std::size_t size) {
#if LUA_VERSION_NUM >= 504
  return lua_newuserdatauv(L, size, 1);
#else
  return lua_newuserdata(L, size);
#endif
}

// Pops a table and attaches it to the userdata at idx.
inline void set_uservalue(lua_State* L, int idx) {
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, idx, 1);
#else
  lua_setfenv(L, idx);
#endif
}

inline void get_uservalue(lua_State* L, int idx) {
#if LUA_VERSION_NUM >= 504
  lua_getiuservalue(L, idx, 1);
#else
  lua_getfenv(L, idx);
#endif
}

// The descriptor of a Lua file handle (io.open, io.popen), -1 if closed.
inline int file_descriptor(lua_State* L, int idx) {
  void* p = luaL_checkudata(L, idx, LUA_FILEHANDLE);
#if LUA_VERSION_NUM >= 502
  auto* s = static_cast<luaL_Stream*>(p);
  if (s->closef == nullptr || s->f == nullptr) return -1;
  return fileno(s->f);
#else
  FILE* f = *static_cast<FILE**>(p);  // LuaJIT and 5.1: the FILE* comes first
  return f ? fileno(f) : -1;
#endif
}

inline int abs_index(lua_State* L, int idx) {
  return idx > 0 || idx <= LUA_REGISTRYINDEX ? idx : lua_gettop(L) + idx + 1;
}

// A number with an integral value (LuaSocket's getfd returns a float on 5.3+).
inline bool is_integer(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TNUMBER) return false;
  lua_Number n = lua_tonumber(L, idx);
  return n >= -9007199254740992.0 && n <= 9007199254740992.0 && n == static_cast<lua_Number>(static_cast<long long>(n));
}

}  // namespace corio::lua
