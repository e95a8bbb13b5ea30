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

// A userdata with n Lua values attached: 5.4 user values; LuaJIT, a table as environment.
inline void* new_userdata_values(lua_State* L, std::size_t size, int n) {
#if LUA_VERSION_NUM >= 504
  return lua_newuserdatauv(L, size, n);
#else
  void* p = lua_newuserdata(L, size);
  lua_createtable(L, n, 0);
  lua_setfenv(L, -2);
  return p;
#endif
}

// Pops a value into the i-th (from 1) value of the userdata at idx (absolute).
inline void set_uservalue_at(lua_State* L, int idx, int i) {
#if LUA_VERSION_NUM >= 504
  lua_setiuservalue(L, idx, i);
#else
  lua_getfenv(L, idx);
  lua_insert(L, -2);
  lua_rawseti(L, -2, i);
  lua_pop(L, 1);
#endif
}

// Pushes values 1..n of the userdata at idx (absolute).
inline void push_uservalues(lua_State* L, int idx, int n) {
#if LUA_VERSION_NUM >= 504
  for (int i = 1; i <= n; ++i) lua_getiuservalue(L, idx, i);
#else
  lua_getfenv(L, idx);
  for (int i = 1; i <= n; ++i) lua_rawgeti(L, -i, i);
  lua_remove(L, -(n + 1));
#endif
}

// The raw length of the table or userdata at idx.
inline std::size_t raw_len(lua_State* L, int idx) {
#if LUA_VERSION_NUM >= 502
  return lua_rawlen(L, idx);
#else
  return lua_objlen(L, idx);
#endif
}

// The full userdata at idx as a T (or a type that starts with one), told by T's magic
// number instead of a metatable lookup per call; nullptr if it is not one. A light
// userdata has length 0.
template <class T>
T* to_magic_userdata(lua_State* L, int idx) {
  auto* p = static_cast<T*>(lua_touserdata(L, idx));
#if LUA_VERSION_NUM >= 502
  std::size_t size = lua_rawlen(L, idx);
#else
  std::size_t size = lua_objlen(L, idx);
#endif
  return p && size >= sizeof(T) && p->magic == T::kMagic ? p : nullptr;
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

// Makes L (running the calling C function) LuaJIT's current thread again before that
// function raises. After a lua_resume LuaJIT's current thread stays the resumed one until
// the function returns; an error that a pcall catches leaves it there (LuaJIT before
// 2023-09, issue #1066), and the caller's next trace exit rebuilds its frames on that
// thread: a crash (docs/architecture.md, "Lua threads"). lua_cpcall makes L current on
// entry, so even its own failure (out of memory) leaves L current.
inline void make_current(lua_State* L) {
#if LUA_VERSION_NUM < 504  // LuaJIT
  if (!lua_checkstack(L, 3)) return;  // no room for lua_cpcall's frame: out of memory
  if (lua_cpcall(L, [](lua_State*) { return 0; }, nullptr) != 0) lua_pop(L, 1);
#else
  (void)L;  // Lua 5.4 keeps no such state: lua_resume's caller stays the running thread
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
