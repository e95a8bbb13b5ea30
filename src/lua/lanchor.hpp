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
    int slot = take_slot();
    lua_xmove(L, M_, 1);
    lua_rawseti(M_, 1, slot);
    return slot;
  }
  // Keeps thread T alive (pushed on T's own stack for a moment: T may be a thread that is
  // not running, in the middle of a C function that resumed another).
  int hold_thread(lua_State* T) {
    int slot = take_slot();
    lua_pushthread(T);
    lua_xmove(T, M_, 1);
    lua_rawseti(M_, 1, slot);
    return slot;
  }
  void drop(int slot) noexcept {
    if (slot == kNone) return;
    lua_pushnil(M_);
    lua_rawseti(M_, 1, slot);
    free_.push_back(slot);  // never reallocates: take_slot() reserved room for every slot
  }
  void push(lua_State* L, int slot) const {
    lua_rawgeti(M_, 1, slot);
    lua_xmove(M_, L, 1);
  }

 private:
  // May throw std::bad_alloc, before anything changed.
  int take_slot() {
    if (!free_.empty()) {
      int slot = free_.back();
      free_.pop_back();
      return slot;
    }
    if (free_.capacity() <= static_cast<std::size_t>(used_)) free_.reserve(2 * static_cast<std::size_t>(used_) + 16);
    return ++used_;
  }

  lua_State* M_;
  int used_ = 0;
  std::vector<int> free_;
};

}  // namespace corio::lua
