// Anchors: Lua values kept alive for C++ objects (a waiting thread, the string a queued
// send points into, an armed timer's handle). One table of slots at the bottom of the
// runtime thread's stack, slots recycled by a C++ free list: luaL_ref keeps its free list
// in the table itself, which made anchoring a waiting thread ~530 instructions per wait.
//
// Stack room on the runtime thread M: at rest M holds only the table, inside the
// LUA_MINSTACK slots every thread has; hold() and push() use one more slot for a moment.
// Code that leaves values on M while Lua runs (a timer firing) first makes room for them
// plus kSpare, so hold() and push() never need a lua_checkstack of their own.
#pragma once
#include "lcompat.hpp"

#include <vector>

namespace corio::lua {

class Anchors {
 public:
  static constexpr int kNone = 0;
  static constexpr int kSpare = 4;  // slots M keeps free for hold() and push()

  // M: a thread no one else settles the stack of; the table goes to its index 1.
  explicit Anchors(lua_State* M) : M_(M) { lua_newtable(M_); }

  // Pops the value at the top of L and keeps it alive until drop(); returns its slot.
  int hold(lua_State* L) {
    int slot;
    if (free_.empty()) {
      slot = ++used_;
    } else {
      slot = free_.back();
      free_.pop_back();
    }
    lua_xmove(L, M_, 1);
    lua_rawseti(M_, 1, slot);
    return slot;
  }
  void drop(int slot) {
    if (slot == kNone) return;
    lua_pushnil(M_);
    lua_rawseti(M_, 1, slot);
    free_.push_back(slot);
  }
  void push(lua_State* L, int slot) const {
    lua_rawgeti(M_, 1, slot);
    lua_xmove(M_, L, 1);
  }

 private:
  lua_State* M_;
  int used_ = 0;
  std::vector<int> free_;
};

}  // namespace corio::lua
