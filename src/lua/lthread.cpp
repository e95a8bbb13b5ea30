// The Lua-thread scheduler: spawn, current, sleep, suspend/resume, run, step, stop, onerror.
#include "lthread.hpp"

#include "lprotect.hpp"

#include <corio/timer.hpp>

#include <cstdio>
#include <new>
#include <utility>

namespace corio::lua {
namespace {

constexpr const char* kRuntimeKey = "corio.runtime";
constexpr const char* kSuspendedKey = "corio.suspended";  // weak set of suspend()ed threads
char kRunnerIdle;  // its address: what a runner thread yields between calls
constexpr std::size_t kMaxIdleRunners = 64;
constexpr int kMaxNestedResumes = 1000;  // LuaJIT: ~1 KiB of C stack each

constexpr const char* kForeign =
    "cannot wait in a coroutine resumed behind corio's back (by a coroutine.resume or "
    "coroutine.wrap taken before corio was loaded?)";

#if LUA_VERSION_NUM >= 504
// A waiting thread resumed: only by the end of its wait, which set rt.waking. Anything
// else (a coroutine.resume taken before corio was loaded) ends the thread with an error.
int continue_wait(lua_State* L, int, lua_KContext ctx) {
  auto* rt = reinterpret_cast<Runtime*>(ctx);
  if (rt->waking != L) return luaL_error(L, "cannot resume a thread waiting in corio");
  rt->waking = nullptr;
  return rt->waking_n;
}
#endif

}  // namespace

lua_Integer wait_id(lua_State* co) noexcept {
  if (lua_status(co) != LUA_YIELD || lua_gettop(co) < 1) return marks::kNone;
  if (lua_type(co, -1) == LUA_TNUMBER) {
    lua_Integer id = lua_tointeger(co, -1);
    return id >= marks::kFirstOperation ? id : marks::kNone;
  }
  if (lua_gettop(co) < 2 || lua_tothread(co, -1) != co) return marks::kNone;
  return lua_tointeger(co, -2);
}

void pop_marks(lua_State* co) noexcept {
  lua_Integer id = wait_id(co);
  lua_pop(co, id >= marks::kFirstOperation ? 1 : id == marks::kSuspended ? 3 : 2);
}

int loop_failed(lua_State* L, const Loop& loop) {
  char why[128];
  std::snprintf(why, sizeof why, "%s", loop.error().message().c_str());
  make_current(L);  // the loop may have resumed threads
  return luaL_error(L, "corio: the event loop failed: %s", why);
}

bool idle_runner(lua_State* co) noexcept {
  return lua_status(co) == LUA_YIELD && lua_gettop(co) == 1 && lua_touserdata(co, -1) == &kRunnerIdle;
}

namespace {

// Whether co, the root of the wait `id`, is still suspended in it. On Lua 5.4 a thread
// leaves a wait only through the wait's continuation (continue_wait, or lcoroutine.cpp's),
// which ends the thread unless the end of the wait woke it; so one still suspended is
// still in the wait (a coroutine.close()d one is dead). LuaJIT checks the marks.
bool still_waiting(lua_State* co, lua_Integer id) {
#if LUA_VERSION_NUM >= 504
  (void)id;
  return lua_status(co) == LUA_YIELD;
#else
  return lua_status(co) == LUA_YIELD && lua_gettop(co) >= 1 && lua_tointeger(co, -1) == id;
#endif
}

}  // namespace

// ---- Operation ----

Operation::Operation(Runtime& rt) : rt_(rt) {
  next_ = rt.ops;
  if (next_) next_->prev_ = this;
  rt.ops = this;
}

Operation::~Operation() {
  if (prev_)
    prev_->next_ = next_;
  else
    rt_.ops = next_;
  if (next_) next_->prev_ = prev_;
  rt_.anchors.drop(anchor_);
}

int Operation::wait(lua_State* L) {
  if (!lua_isyieldable(L)) {  // block here, running the loop, until the operation completes
    L_ = L;
    blocking_ = true;
    Loop& loop = rt_.loop;
    while (!done_ && !loop.error()) loop.run_once();  // a failed loop never completes it
    bool done = done_;
    int n = nresults_;
    delete this;
    if (!done) return loop_failed(L, loop);
    if (n < 0) {
      make_current(L);  // the loop ran other threads meanwhile
      return luaL_error(L, "not enough memory for the results of a wait");
    }
    return n;
  }
  lua_State* root = rt_.wait_root(L);
  if (!root) {
    delete this;
    return luaL_error(L, "%s", kForeign);
  }
  // The root stays anchored: nothing else may hold the corio thread a wait suspends.
  try {
    if (root == L) {
      lua_pushthread(L);
      anchor_ = rt_.anchors.hold(L);
    } else {
      anchor_ = rt_.anchors.hold_thread(root);
    }
  } catch (const std::exception&) {
    delete this;
    throw;
  }
  L_ = root;
  id_ = rt_.next_id++;
  return rt_.yield_marked(L, id_, root);
}

void Operation::complete() {
  lua_State* co = L_;
  if (anchor_ == Anchors::kNone) {
    if (!blocking_) {  // its wait() failed (a Lua error while anchoring): nobody waits
      delete this;
      return;
    }
    // a blocking wait() takes the results from its own stack
    int n = -1;
    try {
      n = push(co);
    } catch (const std::exception&) {
    }
    nresults_ = n;
    done_ = true;
    return;
  }
  Runtime& rt = rt_;
  lua_Integer id = id_;
  int anchor = std::exchange(anchor_, Anchors::kNone);
  // Only a thread still suspended in this very wait: one resumed by hand meanwhile is
  // running, dead, or suspended somewhere else, and must not be touched.
  bool waiting = still_waiting(co, id);
  int n = -1;
  if (waiting) {
    try {
      n = push(co);  // within the LUA_MINSTACK slots the waiting C function left free
    } catch (const std::exception&) {
    }
  }
  delete this;
  if (n >= 0)
    rt.resume(co, n, id);  // the results above the marks: the resume drops the marks
  else if (waiting)  // the thread cannot go on: it is dropped (collected) with a word why
    std::fputs("corio: not enough memory for the results of a wait; the waiting thread is dropped\n", stderr);
  rt.anchors.drop(anchor);  // only now: co must stay anchored while it runs
}

// ---- Runtime ----

// Callbacks for the next loop turn that must not run after the runtime is gone: the loop's
// call_soon cannot be cancelled, so one call_soon per batch runs this queue, which a dying
// runtime abandons (dead) to that call instead of deleting it.
struct Runtime::SoonQueue {
  Runtime* rt;
  std::vector<Soon> items;
  std::vector<Soon> running;
  bool scheduled = false;
};

namespace {
lua_Integer g_epochs = 0;  // runtimes made in this process (and, through fork, its parents)
}

Runtime::Runtime(lua_State* L)
    : loop(Loop::current()), main(L), epoch(++g_epochs), soon_(std::make_shared<SoonQueue>(SoonQueue{this, {}, {}})) {}

Runtime::~Runtime() {
  while (ops) delete ops;  // the state is closing: pending waits are dropped, not resumed
  soon_->rt = nullptr;  // a call still queued holds the queue, and finds no runtime
}

void Runtime::soon(const Soon& s) {
  SoonQueue* q = soon_.get();
  q->items.push_back(s);
  if (q->scheduled) return;
  try {
    loop.call_soon([q = soon_] {
      q->scheduled = false;
      if (q->rt) q->rt->run_soon();
    });
  } catch (...) {
    q->items.pop_back();
    throw;
  }
  q->scheduled = true;
}

void Runtime::run_soon() {
  SoonQueue* q = soon_.get();
  q->running.swap(q->items);  // those queued meanwhile wait for the next turn
  for (const Soon& s : q->running) s.run(*this, s);
  q->running.clear();
}

int Runtime::resume_raw(lua_State* co, lua_State* by, int nargs, lua_Integer id, int* nres) noexcept {
#if LUA_VERSION_NUM < 504
  // Each resume from C takes C stack: LuaJIT would overflow it where its own coroutine.resume
  // does not (Lua 5.4 counts C calls itself). Refused as lua_resume refuses, with a message.
  if (frames && frames->depth >= kMaxNestedResumes) {
    lua_pop(co, nargs);
    lua_pushliteral(co, "C stack overflow");
    *nres = 1;
    return LUA_ERRRUN;
  }
#endif
  ResumeFrame frame{co, by, frames, frames ? frames->depth + 1 : 1};
  frames = &frame;
  // Read at once by what co resumes in (a wait's continuation, lcoroutine.cpp's pass_down),
  // so it needs no restoring: only clearing, so that no later resume passes for this one.
  waking = id ? co : nullptr;
  waking_id = id;
  waking_n = nargs;
  root = nullptr;  // a wait sets it just before yielding: resume() tells a wait by it
#if LUA_VERSION_NUM >= 504
  // Lua 5.4 counts nested C calls from `from`: a chain of resumes ends in "C stack overflow"
  // instead of a real one.
  lua_State* from = by ? by : frame.prev ? frame.prev->co : nullptr;
  int status = lua_resume(co, from, nargs, nres);
#else
  int status = lua_resume(co, nargs);
  *nres = lua_gettop(co);
#endif
  waking = nullptr;
  frames = frame.prev;
  return status;
}

lua_State* Runtime::wait_root_up(const ResumeFrame* f) const noexcept {
  // Up the coroutine.resume chain while the resumer can wait too.
  while (f->by && lua_isyieldable(f->by)) {
    if (!f->prev || f->prev->co != f->by) return nullptr;
    f = f->prev;
  }
  return f->co;
}

int Runtime::yield_marked(lua_State* L, lua_Integer id, lua_State* wait_root, int extra) {
  root = wait_root;
  int n = extra + push_marks(L, id);
#if LUA_VERSION_NUM >= 504
  return lua_yieldk(L, n, reinterpret_cast<lua_KContext>(this), continue_wait);
#else
  return lua_yield(L, n);
#endif
}

void Runtime::resume(lua_State* co, int nargs, lua_Integer id) {
  int nres = 0;
  int status = resume_raw(co, nullptr, nargs, id, &nres);
  if (status == LUA_YIELD && root == co) return;  // it waits: an Operation (or corio.resume) holds it now
  settle(co, status, nres);
}

// What a root thread resumed by the loop did, when it does not wait.
void Runtime::settle(lua_State* co, int status, int nres) {
  if (status == LUA_YIELD) {
    if (nres == 1 && lua_touserdata(co, -1) == &kRunnerIdle) {
      finished();
      return park_runner(co);
    }
    // A plain coroutine.yield(): the thread gives the others a turn and goes on.
    lua_pop(co, nres);
    give_turn(co);
  } else if (status != LUA_OK) {
    report(co);
    if (co == sentinel) sentinel_failed = true;
#if LUA_VERSION_NUM >= 504
    if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD) {  // it failed itself
      // Nobody else can close the dead thread's pending to-be-closed variables (a socket of
      // a failed handler, say): close them now, as coroutine.wrap does on an error.
      lua_resetthread(co);
      lua_settop(co, 0);  // it leaves the error object: without it co would look suspended
      finished();
      return;
    }
#endif
    lua_pop(co, 1);  // lua_resume's own complaint (a C stack overflow): co is as it was
    if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD) finished();  // LuaJIT: dead
  } else {
    lua_settop(co, 0);
    finished();
  }
}

void Runtime::give_turn(lua_State* co) {
  int anchor = Anchors::kNone;
  try {
    if (!lua_checkstack(co, 3)) throw std::bad_alloc();
    lua_pushthread(co);
    anchor = anchors.hold(co);
    soon(Soon{[](Runtime& rt, const Soon& s) {
                if (wait_id(s.co) == marks::kTurn) {
                  lua_pop(s.co, 2);
                  rt.resume(s.co, 0);
                }
                rt.anchors.drop(s.anchor);
              },
              co, nullptr, anchor, 0});
  } catch (const std::exception&) {
    if (anchor == Anchors::kNone)
      lua_settop(co, 0);
    else
      anchors.drop(anchor);
    std::fputs("corio: not enough memory to give a yielding thread its next turn; it is dropped\n", stderr);
    return;
  }
  push_marks(co, marks::kTurn);
}

namespace {

// report()'s work, protected on the runtime's thread: (runtime, thread or nil, error
// object or a C string as light userdata, traced).
int report_error(lua_State* M) {
  auto* rt = static_cast<Runtime*>(lua_touserdata(M, 1));
  lua_State* co = lua_tothread(M, 2);
  if (lua_islightuserdata(M, 3)) {
    lua_pushstring(M, static_cast<const char*>(lua_touserdata(M, 3)));
    lua_replace(M, 3);
  }
  const char* msg = lua_tostring(M, 3);
  if (!msg) msg = lua_pushfstring(M, "(error object is a %s value)", luaL_typename(M, 3));
  if (co && !lua_toboolean(M, 4))
    luaL_traceback(M, co, msg, 0);
  else
    lua_pushstring(M, msg);
  if (rt->handler_ref != LUA_NOREF) {
    lua_rawgeti(M, LUA_REGISTRYINDEX, rt->handler_ref);
    lua_pushvalue(M, -2);
    lua_pushvalue(M, 2);
    if (lua_pcall(M, 2, 0, 0) == LUA_OK) return 0;
    std::fprintf(stderr, "corio: error in the error handler: %s\n", lua_tostring(M, -1));
    lua_pop(M, 1);
  }
  std::fprintf(stderr, co ? "corio: error in thread: %s\n" : "corio: %s\n", lua_tostring(M, -1));
  return 0;
}

}  // namespace

void Runtime::report(lua_State* co, bool traced) {
  // On main, protected: the traceback and the handler allocate, and a Lua error raised
  // unprotected in a loop callback would unwind through the loop's C++ frames.
  lua_State* M = main;
  if (!lua_checkstack(M, 5 + Anchors::kSpare) || !lua_checkstack(co, 2)) {
    std::fputs("corio: error in thread (no stack left to report it)\n", stderr);
    return;
  }
  anchors.push(M, report_fn_);
  lua_pushlightuserdata(M, this);
  lua_pushthread(co);
  lua_xmove(co, M, 1);
  lua_pushvalue(co, -1);  // co keeps its error object: its __close handlers get it
  lua_xmove(co, M, 1);
  lua_pushboolean(M, traced);
  if (lua_pcall(M, 4, 0, 0) != LUA_OK) {
    std::fprintf(stderr, "corio: error in thread, and reporting it failed: %s\n",
                 lua_type(M, -1) == LUA_TSTRING ? lua_tostring(M, -1) : "?");
    lua_pop(M, 1);
  }
}

void Runtime::report_message(const char* msg) {
  lua_State* M = main;
  if (!lua_checkstack(M, 5 + Anchors::kSpare)) {
    std::fprintf(stderr, "corio: %s (no stack left to report it)\n", msg);
    return;
  }
  anchors.push(M, report_fn_);
  lua_pushlightuserdata(M, this);
  lua_pushnil(M);
  lua_pushlightuserdata(M, const_cast<char*>(msg));  // made a string inside the protected call
  lua_pushboolean(M, 1);
  if (lua_pcall(M, 4, 0, 0) != LUA_OK) {
    std::fprintf(stderr, "corio: %s (and reporting it failed: %s)\n", msg,
                 lua_type(M, -1) == LUA_TSTRING ? lua_tostring(M, -1) : "?");
    lua_pop(M, 1);
  }
}

void Runtime::spawn(lua_State* L, int nargs) {
  lua_State* co = lua_newthread(L);
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "too many arguments to spawn");
  lua_insert(L, -(nargs + 2));
  lua_xmove(L, co, nargs + 1);
  ++inflight;
  resume(co, nargs);  // L's stack anchors co meanwhile
}

void Runtime::finished() noexcept {
  if (inflight > 0) --inflight;  // (a thread counted twice or never is a bug; never below 0)
  if (inflight == 0 && shutdown_begun && !shutdown_done) shutdown_over();
}

// A runner is a thread that calls what it is resumed with, then yields kRunnerIdle and
// waits in the pool for the next call. The tail call keeps its stack flat.
void Runtime::call_in_thread(int nargs) {
  lua_State* M = main;
  while (!idle_runners_.empty()) {
    int slot = idle_runners_.back();
    idle_runners_.pop_back();
    anchors.push(M, slot);
    anchors.drop(slot);
    lua_State* co = lua_tothread(M, -1);
    // Resumed behind corio's back meanwhile (a callback may have kept its thread): unusable.
    if (idle_runner(co)) return start_runner(co, nargs);
    lua_pop(M, 1);
  }
  lua_State* co = lua_newthread(M);
  anchors.push(co, runner_fn_);
  start_runner(co, nargs);
}

// The runners' body and report()'s function, made once while the module loads (on L,
// where an error is caught).
void Runtime::load_functions(lua_State* L) {
  static const char kBody[] =
      "local idle, yield = ... "
      "local function run(f, ...) f(...) return run(yield(idle)) end "
      "return run";
  if (luaL_loadbuffer(L, kBody, sizeof kBody - 1, "=corio.runner") != LUA_OK) lua_error(L);
  lua_pushlightuserdata(L, &kRunnerIdle);
  lua_getglobal(L, "coroutine");
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_getfield(L, -1, "yield");
  lua_remove(L, -2);
  lua_call(L, 2, 1);
  runner_fn_ = anchors.hold(L);
  lua_pushcfunction(L, protect<report_error>);
  report_fn_ = anchors.hold(L);
}

// co (at the top of main, which anchors it meanwhile) takes fn and args from below it.
void Runtime::start_runner(lua_State* co, int nargs) {
  lua_State* M = main;
  lua_insert(M, -(nargs + 2));
  // (LuaJIT grows a stack lua_xmove pushes onto by itself)
  // (a new or idle runner has LUA_MINSTACK free slots: only many arguments need the check)
  if (LUA_VERSION_NUM >= 504 && nargs + 1 > LUA_MINSTACK - 1 && !lua_checkstack(co, nargs + 1)) {
    lua_pop(M, nargs + 2);
    std::fputs("corio: a timer callback has too many arguments for a new thread; not called\n", stderr);
    return;
  }
  lua_xmove(M, co, nargs + 1);
  ++inflight;
  resume(co, nargs + 1);
  lua_pop(M, 1);
}

// The runner finished a call: keep it for the next one (a bounded number of them; the
// rest are left to the collector). The idle value it yielded stays on its stack as its
// mark: a hand resume is refused, and one behind corio's back takes it away.
void Runtime::park_runner(lua_State* co) {
  if (idle_runners_.size() >= kMaxIdleRunners) return;
  lua_pushthread(co);
  try {
    int anchor = anchors.hold(co);
    try {
      idle_runners_.push_back(anchor);
    } catch (...) {
      anchors.drop(anchor);
    }
  } catch (const std::exception&) {
    lua_pop(co, 1);  // not kept: the collector takes it
  }
}

Runtime& find_runtime(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kRuntimeKey);
  auto* p = static_cast<Runtime**>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (!p || !*p) luaL_error(L, "corio.core is not loaded");
  return **p;
}

namespace {

int l_runtime_gc(lua_State* L) {
  auto* p = static_cast<Runtime**>(lua_touserdata(L, 1));
  delete *p;
  *p = nullptr;
  return 0;
}

// ---- the Lua functions ----

class SleepOp final : public Operation {
 public:
  SleepOp(Runtime& rt, Duration d) : Operation(rt), timer_(rt.loop) {
    timer_.start(d, [this] { complete(); });
  }
  int push(lua_State*) override { return 0; }

 private:
  Timer timer_;
};

// corio.spawn(fn, ...) -> thread: runs fn(...) now, until it first waits.
int l_spawn(lua_State* L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  runtime(L).spawn(L, lua_gettop(L) - 1);
  return 1;
}

// corio.current() -> the running coroutine, or nil in the main thread.
int l_current(lua_State* L) {
  if (lua_pushthread(L)) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  return 1;
}

// corio.sleep(seconds): per thread; 0 gives the others a turn; negative counts as 0.
int l_sleep(lua_State* L) {
  double s = luaL_optnumber(L, 1, 0);
  lua_settop(L, 0);
  return (new SleepOp(runtime(L), from_seconds(s)))->wait(L);
}

// corio.suspend(): waits until corio.resume(thread, ...) and returns its values.
int l_suspend(lua_State* L) {
  if (!lua_isyieldable(L)) return luaL_error(L, "corio.suspend: not inside a coroutine");
  Runtime& rt = runtime(L);
  lua_State* root = rt.wait_root(L);
  if (!root) return luaL_error(L, "%s", kForeign);
  lua_settop(L, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, kSuspendedKey);
  lua_pushthread(L);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  // Below the marks, the thread that holds the wait: what corio.resume() resumes. Not
  // anchored: a suspended thread nobody can resume is garbage.
  if (root == L) {
    lua_pushthread(L);
  } else {
    lua_pushthread(root);
    lua_xmove(root, L, 1);
  }
  return rt.yield_marked(L, marks::kSuspended, root, 1);
}

// corio.resume(thread, ...) -> true, or nil, message: resumes a suspend()ed thread soon.
int l_resume(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_State* co = lua_tothread(L, 1);
  int nargs = lua_gettop(L) - 1;
  lua_getfield(L, LUA_REGISTRYINDEX, kSuspendedKey);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  bool listed = lua_toboolean(L, -1);
  lua_pop(L, 1);
  // Still in that suspension: a thread resumed behind corio's back has left it.
  lua_State* root = nullptr;
  if (listed && wait_id(co) == marks::kSuspended && lua_gettop(co) >= 3) root = lua_tothread(co, -3);
  if (!root || (root != co && wait_id(root) != marks::kSuspendedUp)) {
    lua_pushnil(L);
    lua_pushliteral(L, "thread is not suspended");
    return 2;
  }
  if (!lua_checkstack(root, nargs + 2)) {
    lua_pushnil(L);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  Runtime& rt = runtime(L);
  int anchor = rt.anchors.hold_thread(root);
  Soon s{[](Runtime& rt, const Soon& s) {
           lua_State* root = s.co;
           if (wait_id(root) == marks::kResuming && lua_gettop(root) >= s.nargs + 2) {
             lua_pop(root, 2);
             rt.resume(root, s.nargs, marks::kSuspended);
           }
           rt.anchors.drop(s.anchor);
         },
         root, nullptr, anchor, nargs};
  try {
    rt.soon(s);
  } catch (const std::exception&) {
    rt.anchors.drop(anchor);
    throw;
  }
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  lua_rawset(L, -3);  // no longer suspended: a second resume is refused
  lua_pop(L, 1);
  // The values wait on the root's stack, under marks of their own until the loop resumes it.
  pop_marks(root);
  lua_xmove(L, root, nargs);
  push_marks(root, marks::kResuming);
  lua_pushboolean(L, 1);
  return 1;
}

// corio.run([fn]): spawns fn, then runs until nothing is left to wait for, or stop().
int l_run(lua_State* L) {
  Runtime& rt = runtime(L);
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    rt.spawn(L, lua_gettop(L) - 1);
  }
  lua_settop(L, 0);
  rt.stopping = false;
  while (!rt.stopping && rt.loop.alive()) rt.loop.run_once();
  rt.stopping = false;
  return 0;
}

// corio.step([timeout]) -> whether anything ran. Without a timeout it waits for the next
// event, unless nothing is left that could ever produce one.
int l_step(lua_State* L) {
  Runtime& rt = runtime(L);
  std::optional<Duration> timeout;
  if (!lua_isnoneornil(L, 1)) timeout = from_seconds(luaL_checknumber(L, 1));
  if (!timeout && !rt.loop.alive()) timeout = Duration::zero();
  bool ran = rt.loop.run_once(timeout);
  if (rt.loop.error()) return loop_failed(L, rt.loop);  // else a caller's step loop would spin
  lua_pushboolean(L, ran);
  return 1;
}

int l_stop(lua_State* L) {
  runtime(L).stopping = true;
  return 0;
}

// core.report(message): an error a facade caught (with its traceback) to the handler, threadless.
int l_report(lua_State* L) {
  runtime(L).report_message(luaL_checkstring(L, 1));
  return 0;
}

// corio.onerror(fn): fn(message_with_traceback, thread) for errors in threads; nil: stderr.
int l_onerror(lua_State* L) {
  Runtime& rt = runtime(L);
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  luaL_unref(L, LUA_REGISTRYINDEX, rt.handler_ref);
  rt.handler_ref = LUA_NOREF;
  if (!lua_isnil(L, 1)) {
    lua_settop(L, 1);
    rt.handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  return 0;
}

const luaL_Reg kFunctions[] = {
    {"spawn", protect<l_spawn>},     {"current", protect<l_current>}, {"sleep", protect<l_sleep>},
    {"suspend", protect<l_suspend>}, {"resume", protect<l_resume>},   {"run", protect<l_run>},
    {"step", protect<l_step>},       {"stop", protect<l_stop>},       {"onerror", protect<l_onerror>},
    {"report", protect<l_report>},
    {nullptr, nullptr},
};

}  // namespace

void push_runtime(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kRuntimeKey);
  if (!lua_isnil(L, -1)) return;
  lua_pop(L, 1);
  auto* p = static_cast<Runtime**>(new_userdata(L, sizeof(Runtime*)));
  *p = nullptr;
  lua_newtable(L);
  lua_pushcfunction(L, protect<l_runtime_gc>);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  // The runtime's own thread, for callbacks from the loop; anchored by the userdata.
  lua_newtable(L);
  lua_State* M = lua_newthread(L);
  lua_rawseti(L, -2, 1);
  set_uservalue(L, -2);
  *p = new Runtime(M);  // may throw (the loop cannot be made): the caller is protected
  (*p)->load_functions(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, kRuntimeKey);

  lua_newtable(L);  // the weak set of suspended threads
  lua_newtable(L);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, kSuspendedKey);
}

void register_threads(lua_State* L) {
  lua_pushvalue(L, -2);  // module table, runtime -> ..., runtime
  luaL_setfuncs(L, kFunctions, 1);
}

}  // namespace corio::lua
