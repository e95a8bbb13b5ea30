// Lua threads on the corio loop: the per-state Runtime, and how a C function waits.
//
// A C function that must wait (sleep, a socket receive, ...) calls wait(). Inside a
// coroutine it yields, and the loop resumes the coroutine straight from the completing
// callback with the results as resume values. Outside one (the main chunk, a metamethod)
// it runs the loop until the operation completes: the call blocks like LuaSocket's would
// while every other thread keeps running.
#pragma once
#include "lanchor.hpp"
#include "lcompat.hpp"
#include <corio/block_pool.hpp>

#include <corio/loop.hpp>

#include <memory>
#include <vector>

namespace corio::lua {

struct Runtime;

// An operation a Lua thread waits on. Subclasses own their timers and watches; the
// runtime owns pending operations so that closing the Lua state cancels them.
class Operation {
 public:
  explicit Operation(Runtime& rt);
  virtual ~Operation();
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  // Suspends the calling C function until complete(); `return wait(L);` from it.
  int wait(lua_State* L);
  // The n results are on waiting_state() (push them first); resumes the waiter and
  // deletes this operation.
  void complete(int n);
  lua_State* waiting_state() const noexcept { return L_; }
  Runtime& runtime() const noexcept { return rt_; }

 private:
  friend struct Runtime;
  Runtime& rt_;
  lua_State* L_ = nullptr;
  int anchor_ = Anchors::kNone;  // a yielded coroutine
  bool done_ = false;
  int nresults_ = 0;
  Operation* prev_ = nullptr;
  Operation* next_ = nullptr;
};

struct Runtime {
  explicit Runtime(lua_State* L);
  ~Runtime();

  // Resumes co with nargs values from its stack top; reports an error with traceback.
  void resume(lua_State* co, int nargs);
  // Calls the error handler (default: stderr) for an error raised in thread co.
  void report(lua_State* co);
  // Starts fn (at the top of L's stack, nargs arguments above it) as a new thread and
  // leaves the thread on L's stack.
  void spawn(lua_State* L, int nargs);
  // Runs fn(args...) (fn and nargs arguments at the top of main) in a thread of its own
  // until it first waits, like spawn, but in a pooled thread: a timer's callback. A new
  // coroutine per firing was most of a Lua timer's cost.
  void call_in_thread(int nargs);
  void load_runner(lua_State* L);  // once, from push_runtime

  Loop& loop;
  lua_State* main;           // a thread kept in the registry for callbacks from the loop
  Anchors anchors{main};     // at the bottom of main's stack
  int handler_ref = LUA_NOREF;
  bool stopping = false;
  Operation* ops = nullptr;  // pending operations
  // Set by Operation::wait (and suspend) to the yielding thread: its yield is a wait, not
  // a plain yield. A thread, not a flag: the yield may go to a coroutine.resume instead.
  lua_State* op_yield = nullptr;
  corio::BlockPool blocks;  // for the per-message operations
  // A 64 KiB buffer a receive reads into before making the Lua string.
  char* scratch() {
    if (!scratch_) scratch_.reset(new char[kScratch]);
    return scratch_.get();
  }
  static constexpr std::size_t kScratch = 64 * 1024;

 private:
  std::unique_ptr<char[]> scratch_;
  void start_runner(lua_State* co, int nargs);
  void park_runner(lua_State* co);
  int runner_fn_ = Anchors::kNone;  // the runner threads' body
  std::vector<int> idle_runners_;   // anchors of runner threads waiting for the next call
};

// The Runtime of the state (upvalue 1 of every corio.core function).
inline Runtime& runtime(lua_State* L) { return **static_cast<Runtime**>(lua_touserdata(L, lua_upvalueindex(1))); }

// Creates the runtime and leaves its userdata on the stack (the upvalue for luaL_setfuncs).
void push_runtime(lua_State* L);
// Registers spawn, current, sleep, suspend, resume, run, step, stop, onerror, after, every.
void register_threads(lua_State* L);

}  // namespace corio::lua
