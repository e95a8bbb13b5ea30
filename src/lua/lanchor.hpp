// Anchors: Lua values kept alive for C++ objects (a waiting thread, the string a queued
// send points into, an armed timer's handle). One table of slots at the bottom of a thread
// of its own, slots recycled by a C++ free list: luaL_ref keeps its free list in the table
// itself, which made anchoring a waiting thread ~530 instructions per wait.
//
// The thread never runs, so its stack index 1 is always the table. (The runtime's thread M
// does run Lua — the error handler, a shutdown begun from a signal, a finalizer — and
// inside a function there index 1 is that function's first argument.) hold() and push()
// use one slot of it for a moment, within the LUA_MINSTACK every thread has.
#pragma once
#include "lcompat.hpp"

#include <vector>

namespace corio::lua {

class Anchors {
 public:
  static constexpr int kNone = 0;
  static constexpr int kSpare = 4;  // slots M keeps free for what it pushes around a call

  // The store: a new thread, kept in L's registry, with the table at its index 1.
  explicit Anchors(lua_State* L) : A_(lua_newthread(L)) {
    luaL_ref(L, LUA_REGISTRYINDEX);  // for the state's life (a forked worker's old one too)
    lua_newtable(A_);
  }

  // Pops the value at the top of L and keeps it alive until drop(); returns its slot.
  int hold(lua_State* L) {
    int slot = take_slot();
    lua_xmove(L, A_, 1);
    lua_rawseti(A_, 1, slot);
    return slot;
  }
  // Keeps thread T alive (pushed on T's own stack for a moment: T may be a thread that is
  // not running, in the middle of a C function that resumed another).
  int hold_thread(lua_State* T) {
    int slot = take_slot();
    lua_pushthread(T);
    lua_xmove(T, A_, 1);
    lua_rawseti(A_, 1, slot);
    return slot;
  }
  void drop(int slot) noexcept {
    if (slot == kNone) return;
    lua_pushnil(A_);
    lua_rawseti(A_, 1, slot);
    free_.push_back(slot);  // never reallocates: take_slot() reserved room for every slot
  }
  void push(lua_State* L, int slot) const {
    lua_rawgeti(A_, 1, slot);
    lua_xmove(A_, L, 1);
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

  lua_State* A_;
  int used_ = 0;
  std::vector<int> free_;
};

}  // namespace corio::lua
