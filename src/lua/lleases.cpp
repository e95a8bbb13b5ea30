// core.leases(name) and its userdata: a LeaseTable for Lua.
//
//   local leases = core.leases("myapp")          -- raises if the region cannot be had
//   leases:acquire(key, ttl_seconds)             -- true | false | nil, message
//   leases:lease(key)                            -- holder_pid, seconds_left | nil (| nil, message)
//   leases:erase(key)                            -- boolean | nil, message
//   leases:name()                                -- "/corio.<uid>.myapp"
//   core.unlink_leases(name)                     -- true | nil, message (tests)
//
// Wrong types and ttls (not a positive number) are Lua argument errors; what the table
// refuses (a key too long, a full region, a busy lock) is nil, message, LuaSocket style.
#include "lleases.hpp"

#include "lprotect.hpp"

#include <cstdint>
#include <cstdio>
#include <new>

namespace corio::lua {
namespace {

constexpr const char* kLeasesType = "corio.leases";

struct LuaLeases {
  // Told from other userdata without a metatable lookup per call (acquire runs at each
  // check of every node-wide timer).
  static constexpr std::uint64_t kMagic = 0x636f72696f6c7365ull;  // "coriolse"
  std::uint64_t magic = kMagic;
  std::shared_ptr<LeaseTable> table;  // empty once collected
};

LuaLeases* to_leases(lua_State* L, int idx) {
  LuaLeases* u = to_magic_userdata<LuaLeases>(L, idx);
  if (!u || !u->table) luaL_argerror(L, idx, "corio leases expected");
  return u;
}

// The key at idx: a string (a number is not turned into one).
std::string_view check_key(lua_State* L, int idx) {
  luaL_checktype(L, idx, LUA_TSTRING);
  std::size_t n = 0;
  const char* s = lua_tolstring(L, idx, &n);
  return {s, n};
}

// nil, ec's message. The message is copied out of its std::string before anything that
// may raise (a raise would skip the string's destructor).
int push_error(lua_State* L, std::error_code ec) {
  char what[160];
  std::snprintf(what, sizeof what, "%s", ec.message().c_str());
  lua_pushnil(L);
  lua_pushstring(L, what);
  return 2;
}

// core.leases(name)
int l_leases(lua_State* L) {
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 1, &n);
  // The userdata first, holding nothing yet: what may raise is done before the table is
  // had, and once it is had the userdata's __gc lets go of it.
  auto* u = static_cast<LuaLeases*>(lua_newuserdata(L, sizeof(LuaLeases)));
  new (u) LuaLeases();
  luaL_getmetatable(L, kLeasesType);
  lua_setmetatable(L, -2);
  std::error_code ec;
  u->table = LeaseTable::open({name, n}, ec);
  if (!u->table) {
    char what[160];
    std::snprintf(what, sizeof what, "%s", ec.message().c_str());
    return luaL_error(L, "corio.leases(\"%s\"): %s", n <= 64 ? name : "...", what);
  }
  return 1;
}

// leases:acquire(key, ttl_seconds) -> true | false | nil, message
int l_acquire(lua_State* L) {
  LuaLeases* u = to_leases(L, 1);
  std::string_view key = check_key(L, 2);
  lua_Number ttl = luaL_checknumber(L, 3);
  luaL_argcheck(L, ttl > 0, 3, "ttl must be a positive number of seconds");  // NaN too
  std::error_code ec;
  bool mine = u->table->try_acquire(key, from_seconds(ttl), ec);
  if (ec) return push_error(L, ec);
  lua_pushboolean(L, mine);
  return 1;
}

// leases:lease(key) -> holder_pid, seconds_left (negative once expired) | nil
int l_lease(lua_State* L) {
  LuaLeases* u = to_leases(L, 1);
  std::string_view key = check_key(L, 2);
  std::error_code ec;
  auto l = u->table->lease(key, ec);
  if (ec) return push_error(L, ec);
  if (!l) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, l->holder);
  // until may be TimePoint::max(): the difference does not overflow (now >= 0)
  lua_pushnumber(L, to_seconds(l->until - Clock::now()));
  return 2;
}

// leases:erase(key) -> boolean
int l_erase(lua_State* L) {
  LuaLeases* u = to_leases(L, 1);
  std::string_view key = check_key(L, 2);
  std::error_code ec;
  bool erased = u->table->erase(key, ec);
  if (ec) return push_error(L, ec);
  lua_pushboolean(L, erased);
  return 1;
}

int l_name(lua_State* L) {
  const std::string& s = to_leases(L, 1)->table->shm_name();
  lua_pushlstring(L, s.data(), s.size());
  return 1;
}

int l_tostring(lua_State* L) {
  LuaLeases* u = to_magic_userdata<LuaLeases>(L, 1);
  if (u && u->table) {
    lua_pushfstring(L, "corio.leases: %s", u->table->shm_name().c_str());
  } else {
    lua_pushliteral(L, "corio.leases: (closed)");
  }
  return 1;
}

// Lets go of the table; the userdata stays a valid, empty LuaLeases (an empty shared_ptr
// owns nothing), so a call through a resurrected one is an argument error, not a crash.
int l_gc(lua_State* L) {
  if (LuaLeases* u = to_magic_userdata<LuaLeases>(L, 1)) u->table.reset();
  return 0;
}

// core.unlink_leases(name) -> true | nil, message
int l_unlink(lua_State* L) {
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 1, &n);
  if (std::error_code ec = LeaseTable::unlink({name, n})) return push_error(L, ec);
  lua_pushboolean(L, 1);
  return 1;
}

const luaL_Reg kMethods[] = {
    {"acquire", protect<l_acquire>},
    {"lease", protect<l_lease>},
    {"erase", protect<l_erase>},
    {"name", protect<l_name>},
    {nullptr, nullptr},
};
const luaL_Reg kFunctions[] = {
    {"leases", protect<l_leases>},
    {"unlink_leases", protect<l_unlink>},
    {nullptr, nullptr},
};

}  // namespace

const std::shared_ptr<LeaseTable>& check_leases(lua_State* L, int idx) { return to_leases(L, idx)->table; }

void register_leases(lua_State* L) {
  if (luaL_newmetatable(L, kLeasesType)) {
    lua_pushcfunction(L, protect<l_gc>);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, protect<l_tostring>);
    lua_setfield(L, -2, "__tostring");
    lua_newtable(L);
    luaL_setfuncs(L, kMethods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, kFunctions, 0);
}

}  // namespace corio::lua
