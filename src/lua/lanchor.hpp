// Anchors: Lua values kept alive for C++ objects (a waiting thread, the string a queued
// send points into, an armed timer's handle). One table of slots, slots recycled by a C++
// free list: luaL_ref keeps its free list in the table itself, which made anchoring a
// waiting thread ~530 instructions per wait.
//
// The table is reached through the registry, not kept at M's stack bottom: code runs on
// the runtime thread M inside C functions (a shutdown begun from a signal, the error
// handler, a finalizer the collector runs there), where stack index 1 is that function's
// first argument. hold() and push() use two slots of M for a moment; code that leaves values
// on M while Lua runs (a timer firing) first makes room for them plus kSpare.
#pragma once
#include "lcompat.hpp"

#include <vector>

namespace corio::lua {

class Anchors {
 public:
  static constexpr int kNone = 0;
  static constexpr int kSpare = 4;  // slots M keeps free for hold() and push()

  // M: the runtime's thread, which pushes and pops for everyone.
  explicit Anchors(lua_State* M) : M_(M) {
    lua_newtable(M_);
    table_ = luaL_ref(M_, LUA_REGISTRYINDEX);
  }

  // Pops the value at the top of L and keeps it alive until drop(); returns its slot.
  int hold(lua_State* L) {
    int slot = take_slot();
    lua_rawgeti(M_, LUA_REGISTRYINDEX, table_);
    lua_xmove(L, M_, 1);
    lua_rawseti(M_, -2, slot);
    lua_pop(M_, 1);
    return slot;
  }
  // Keeps thread T alive (pushed on T's own stack for a moment: T may be a thread that is
  // not running, in the middle of a C function that resumed another).
  int hold_thread(lua_State* T) {
    int slot = take_slot();
    lua_rawgeti(M_, LUA_REGISTRYINDEX, table_);
    lua_pushthread(T);
    lua_xmove(T, M_, 1);
    lua_rawseti(M_, -2, slot);
    lua_pop(M_, 1);
    return slot;
  }
  void drop(int slot) noexcept {
    if (slot == kNone) return;
    lua_rawgeti(M_, LUA_REGISTRYINDEX, table_);
    lua_pushnil(M_);
    lua_rawseti(M_, -2, slot);
    lua_pop(M_, 1);
    free_.push_back(slot);  // never reallocates: take_slot() reserved room for every slot
  }
  void push(lua_State* L, int slot) const {
    lua_rawgeti(M_, LUA_REGISTRYINDEX, table_);
    lua_rawgeti(M_, -1, slot);
    lua_remove(M_, -2);
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
  int table_;
  int used_ = 0;
  std::vector<int> free_;
};

}  // namespace corio::lua
