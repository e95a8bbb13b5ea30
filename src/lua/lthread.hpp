// Lua threads on the corio loop: the per-state Runtime, and how a C function waits.
//
// A C function that must wait (sleep, a socket receive, ...) calls wait(). Inside a
// coroutine it yields, and the loop resumes the coroutine straight from the completing
// callback with the results as resume values. Outside one (the main chunk, a metamethod)
// it runs the loop until the operation completes: the call blocks like LuaSocket's would
// while every other thread keeps running.
//
// A suspended thread the runtime owns (waiting on an operation, in corio.suspend, between
// two turns after a plain yield) keeps marks at its stack top: the wait's id (and the
// thread). Only what matches the id pushes onto it and resumes it; a hand resume
// (coroutine.resume) is refused while the marks are there; a thread resumed behind
// corio's back has lost them (on Lua 5.4 it dies: the wait's continuation refuses it), so
// no stale completion ever touches it. docs/architecture.md, "Lua threads", tells the
// whole scheme.
#pragma once
#include "lanchor.hpp"
#include "lcompat.hpp"
#include <corio/block_pool.hpp>

#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <memory>
#include <vector>

namespace corio::lua {

struct Runtime;

// A mark's id: one of these, or an operation's sequence number.
namespace marks {
enum : lua_Integer {
  kNone = 0,
  kSuspended = 1,    // in corio.suspend(); the thread that holds the wait lies below the marks
  kSuspendedUp = 2,  // as kSuspended, for the threads the wait was passed up to
  kResuming = 3,     // corio.resume() gave it values; the loop resumes it soon
  kTurn = 4,         // after a plain coroutine.yield(), until its next turn
  kFirstOperation = lua_Integer{1} << 40,
};
}  // namespace marks

// Pushes the marks of the wait `id` on co (at most 2 values) and returns how many: an
// operation's wait is one number (the per-wait hot path: cheap to push and to test; a
// light userdata costs LuaJIT a segment lookup), the others [id, co itself].
inline int push_marks(lua_State* co, lua_Integer id) {
  lua_pushinteger(co, id);
  if (id >= marks::kFirstOperation) return 1;
  lua_pushthread(co);
  return 2;
}
// The id of the corio wait co is suspended in; marks::kNone if it is not in one.
lua_Integer wait_id(lua_State* co) noexcept;
// Pops co's marks (and, for a thread in corio.suspend(), the thread below them).
void pop_marks(lua_State* co) noexcept;
// Whether co is a timer runner waiting for its next callback (its mark: the idle value it
// yielded).
bool idle_runner(lua_State* co) noexcept;
// Raises "corio: the event loop failed: <why>" on L, which ran the loop: a loop whose
// poller failed is broken for good, so whoever waits on it must not run it again.
int loop_failed(lua_State* L, const Loop& loop);
// An operation a Lua thread waits on. Subclasses own their timers and watches; the
// runtime owns pending operations so that closing the Lua state cancels them.
class Operation {
 public:
  explicit Operation(Runtime& rt);
  virtual ~Operation();
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  // Suspends the calling C function until complete(); `return wait(L);` from it. The
  // function leaves at least 3 of its LUA_MINSTACK slots free. Raises a Lua error (this
  // deleted) if L is a coroutine resumed behind corio's back.
  int wait(lua_State* L);
  // Pushes the results onto L, which has LUA_MINSTACK free slots; returns how many.
  virtual int push(lua_State* L) = 0;
  // Delivers the results (push() onto the waiting thread, which is resumed) if the thread
  // still waits on this operation, then deletes this operation.
  void complete();
  Runtime& runtime() const noexcept { return rt_; }

 private:
  friend struct Runtime;
  Runtime& rt_;
  lua_Integer id_ = marks::kNone;  // the marks' id while a coroutine waits
  lua_State* L_ = nullptr;       // blocking: the thread running the loop; else the root (wait_root)
  int anchor_ = Anchors::kNone;  // the root, while a coroutine waits
  bool blocking_ = false;        // wait() runs the loop until done_
  bool done_ = false;
  int nresults_ = 0;             // of a blocking wait; -1: the results could not be pushed
  Operation* prev_ = nullptr;
  Operation* next_ = nullptr;
};

// A resume by corio in progress: which thread, resumed through coroutine.resume/wrap from
// which thread (`by`; nullptr when the loop resumed it), and the one it runs inside.
struct ResumeFrame {
  lua_State* co;
  lua_State* by;
  ResumeFrame* prev;
  int depth;  // resumes nested in this one, this one included
};

// Something to do on the next loop turn, not after the runtime is gone (Runtime::soon).
struct Soon {
  void (*run)(Runtime& rt, const Soon& s);
  lua_State* co;
  void* p;
  int anchor;
  int nargs;
};

struct Runtime {
  explicit Runtime(lua_State* L);
  ~Runtime();

  // Resumes co with nargs values from its stack top as a root (the loop resumes it: a new
  // thread, a timer callback, the end of a wait `id`, whose marks lie below the values and
  // are dropped); reports an error with traceback; a plain yield gives the others a turn.
  void resume(lua_State* co, int nargs, lua_Integer id = marks::kNone);
  // lua_resume with corio's bookkeeping: by is the thread resuming co through coroutine.resume
  // or wrap (nullptr: the loop), id the wait co leaves (nullptr: none). Raises nothing.
  int resume_raw(lua_State* co, lua_State* by, int nargs, lua_Integer id, int* nres) noexcept;
  // The thread a wait in L suspends: L, or the outermost corio-resumed coroutine of the
  // coroutine.resume chain L runs in (the wait is passed up to it); nullptr if L was
  // resumed behind corio's back (by a coroutine.resume taken before corio was loaded).
  lua_State* wait_root(lua_State* L) const noexcept {
    const ResumeFrame* f = frames;
    if (!f || f->co != L) return nullptr;
    return f->by ? wait_root_up(f) : L;  // mostly a corio thread the loop resumed: L
  }
  // Marks L (the running thread, in a C function, `extra` values of the marks already
  // pushed) as waiting on `id` for `root` and yields; `return yield_marked(...)`.
  int yield_marked(lua_State* L, lua_Integer id, lua_State* root, int extra = 0);
  // Calls the error handler (default: stderr) for the error at the top of thread co.
  // traced: the error already carries its traceback (a recurring timer's run, which
  // caught it in an xpcall to end the run first): given to the handler as it is.
  void report(lua_State* co, bool traced = false);
  // Calls the error handler (default: stderr) with msg and no thread.
  void report_message(const char* msg);
  // Starts fn (at the top of L's stack, nargs arguments above it) as a new thread and
  // leaves the thread on L's stack. A Lua error if the new stack cannot take the arguments.
  void spawn(lua_State* L, int nargs);
  // Runs fn(args...) (fn and nargs arguments at the top of main) in a thread of its own
  // until it first waits, like spawn, but in a pooled thread: a timer's callback. A new
  // coroutine per firing was most of a Lua timer's cost.
  void call_in_thread(int nargs);
  void load_functions(lua_State* L);  // once, from push_runtime
  // Queues s for the next loop turn. May throw std::bad_alloc, having queued nothing.
  void soon(const Soon& s);

  // Threads in flight (corio.shutdown waits for them): a root thread of the loop counts
  // from its start (spawn, a timer callback's runner, a coroutine whose wait corio holds)
  // until settle() sees it end (a runner: park). A count, not a set: no cost per thread.
  void finished() noexcept;
  void shutdown_over() noexcept;  // lshutdown.cpp: the stop is done; corio.run returns

  Loop& loop;
  lua_State* main;           // a thread kept in the registry for callbacks from the loop
  Anchors anchors{main};     // in a thread of their own, which never runs
  int handler_ref = LUA_NOREF;
  bool stopping = false;
  Operation* ops = nullptr;  // pending operations
  ResumeFrame* frames = nullptr;  // corio's resumes in progress, innermost first
  // The thread being resumed out of a wait, that wait and how many results it gets: a
  // thread resumed out of a wait by anything else is refused (lcoroutine.cpp, and on Lua
  // 5.4 the wait's continuation).
  lua_State* waking = nullptr;
  lua_Integer waking_id = marks::kNone;
  int waking_n = 0;
  lua_Integer next_id = marks::kFirstOperation;  // of operations' waits
  // Which runtime of this process's history this is (corio.epoch): each new one, and so a
  // forked worker's, takes the next number.
  const lua_Integer epoch;
  int worker = 0;                 // i in worker process i (lworkers.cpp); 0 elsewhere
  long inflight = 0;              // threads in flight (finished)
  lua_State* sentinel = nullptr;  // a worker's main thread: an error in it is noted
  bool sentinel_failed = false;
  // corio.shutdown (lshutdown.cpp): begun once; done when nothing is in flight or the grace
  // is over, which stops corio.run.
  bool shutdown_begun = false;
  bool shutdown_done = false;
  int hooks_ref = LUA_NOREF;      // corio.atshutdown's functions, in order
  int servers_ref = LUA_NOREF;    // weak set of listening servers corio.bind made
  std::unique_ptr<Timer> grace_timer;
  // The root of the wait begun last: tells a coroutine.resume whose coroutine just
  // yielded in a wait whether to pass the wait up or hold it (asok style).
  lua_State* root = nullptr;
  corio::BlockPool blocks;  // for the per-message operations
  // A 64 KiB buffer a receive reads into before making the Lua string.
  char* scratch() {
    if (!scratch_) scratch_.reset(new char[kScratch]);
    return scratch_.get();
  }
  static constexpr std::size_t kScratch = 64 * 1024;

 private:
  struct SoonQueue;
  lua_State* wait_root_up(const ResumeFrame* f) const noexcept;
  void settle(lua_State* co, int status, int nres);
  void give_turn(lua_State* co);
  void start_runner(lua_State* co, int nargs);
  void park_runner(lua_State* co);
  void run_soon();

  std::unique_ptr<char[]> scratch_;
  std::shared_ptr<SoonQueue> soon_;  // shared with the loop's queued call, if any
  int runner_fn_ = Anchors::kNone;  // the runner threads' body
  int report_fn_ = Anchors::kNone;  // report()'s work, run protected on main
  std::vector<int> idle_runners_;   // anchors of runner threads waiting for the next call
};

// The Runtime of the state (upvalue 1 of every corio.core function).
inline Runtime& runtime(lua_State* L) { return **static_cast<Runtime**>(lua_touserdata(L, lua_upvalueindex(1))); }
// The Runtime of the state, found in the registry (for functions without the upvalue).
Runtime& find_runtime(lua_State* L);

// Creates the runtime and leaves its userdata on the stack (the upvalue for luaL_setfuncs).
void push_runtime(lua_State* L);
// Registers spawn, current, sleep, suspend, resume, run, step, stop, onerror.
void register_threads(lua_State* L);
// Registers epoch, atshutdown, shutdown and serving (lshutdown.cpp).
void register_shutdown(lua_State* L);
// Begins the shutdown of rt on L (hooks, servers, the grace timer); rt.shutdown_begun must
// be false. May raise a Lua error (memory).
void begin_shutdown(lua_State* L, Runtime& rt, double grace);
// Registers workers and worker (lworkers.cpp).
void register_workers(lua_State* L);
// Installs corio's coroutine.resume and coroutine.wrap (lcoroutine.cpp); runtime at -2.
void register_coroutines(lua_State* L);

}  // namespace corio::lua
