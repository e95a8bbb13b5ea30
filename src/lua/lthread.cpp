// The Lua-thread scheduler: spawn, current, sleep, suspend/resume, run, step, stop, onerror.
#include "lthread.hpp"

#include "lprotect.hpp"

#include <corio/timer.hpp>

#include <cstdio>

namespace corio::lua {
namespace {

constexpr const char* kRuntimeKey = "corio.runtime";
constexpr const char* kSuspendedKey = "corio.suspended";  // weak set of suspend()ed threads
char kRunnerIdle;  // its address: what a runner thread yields between calls
constexpr std::size_t kMaxIdleRunners = 64;

int resume_compat(lua_State* co, int nargs, int* nres) {
#if LUA_VERSION_NUM >= 504
  return lua_resume(co, nullptr, nargs, nres);
#else
  int status = lua_resume(co, nargs);
  *nres = lua_gettop(co);
  return status;
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
  L_ = L;
  if (lua_isyieldable(L)) {
    lua_pushthread(L);
    anchor_ = rt_.anchors.hold(L);
    rt_.op_yield = L;
    return lua_yield(L, 0);
  }
  // Not in a coroutine: block here, running the loop, until the operation completes.
  while (!done_) rt_.loop.run_once();
  int n = nresults_;
  delete this;
  return n;
}

void Operation::complete(int n) {
  if (anchor_ == Anchors::kNone) {  // a blocking wait() picks the results up from the stack
    done_ = true;
    nresults_ = n;
    return;
  }
  Runtime& rt = rt_;
  lua_State* co = L_;
  int anchor = anchor_;
  anchor_ = Anchors::kNone;
  delete this;
  rt.resume(co, n);
  rt.anchors.drop(anchor);  // only now: co must stay anchored while it runs
}

// ---- Runtime ----

Runtime::Runtime(lua_State* L) : loop(Loop::current()), main(L) {}

Runtime::~Runtime() {
  while (ops) delete ops;  // the state is closing: pending waits are dropped, not resumed
}

void Runtime::resume(lua_State* co, int nargs) {
  lua_State* outer = op_yield;  // resumes nest (a thread spawning another)
  op_yield = nullptr;
  int nres = 0;
  int status = resume_compat(co, nargs, &nres);
  // co's own wait, not a wait of a coroutine co resumed itself (which yielded back to co)
  bool waiting = op_yield == co;
  op_yield = outer;
  if (status == LUA_YIELD) {
    if (waiting) return;  // an Operation (or suspend) holds it now
    if (nres == 1 && lua_touserdata(co, -1) == &kRunnerIdle) return park_runner(co);
    // A plain coroutine.yield(): the thread gives the others a turn and goes on.
    lua_pop(co, nres);
    lua_pushthread(co);
    int anchor = anchors.hold(co);
    loop.call_soon([this, co, anchor] {
      resume(co, 0);
      anchors.drop(anchor);
    });
  } else if (status != LUA_OK) {
    report(co);
#if LUA_VERSION_NUM >= 504
    // Nobody else can close the dead thread's pending to-be-closed variables (a socket of
    // a failed handler, say): close them now, as coroutine.wrap does on an error.
    lua_resetthread(co);
    lua_settop(co, 0);  // it leaves the error object: without it co would look suspended
#endif
  } else {
    lua_settop(co, 0);
  }
}

void Runtime::report(lua_State* co) {
  lua_State* M = main;
  const char* msg = lua_tostring(co, -1);
  if (!msg) msg = lua_pushfstring(co, "(error object is a %s value)", luaL_typename(co, -1));
  luaL_traceback(M, co, msg, 0);
  if (handler_ref != LUA_NOREF) {
    lua_rawgeti(M, LUA_REGISTRYINDEX, handler_ref);
    lua_pushvalue(M, -2);
    lua_pushthread(co);
    lua_xmove(co, M, 1);
    if (lua_pcall(M, 2, 0, 0) == LUA_OK) {
      lua_pop(M, 1);
      return;
    }
    std::fprintf(stderr, "corio: error in the error handler: %s\n", lua_tostring(M, -1));
    lua_pop(M, 1);
  }
  std::fprintf(stderr, "corio: error in thread: %s\n", lua_tostring(M, -1));
  lua_pop(M, 1);
}

void Runtime::spawn(lua_State* L, int nargs) {
  lua_State* co = lua_newthread(L);
  if (!lua_checkstack(co, nargs + 1)) luaL_error(L, "too many arguments to spawn");
  lua_insert(L, -(nargs + 2));
  lua_xmove(L, co, nargs + 1);
  resume(co, nargs);  // L's stack anchors co meanwhile
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
    // Resumed by someone else meanwhile (it is a thread a callback may have kept): unusable.
    if (lua_status(co) == LUA_YIELD && lua_gettop(co) == 0) return start_runner(co, nargs);
    lua_pop(M, 1);
  }
  lua_State* co = lua_newthread(M);
  anchors.push(co, runner_fn_);
  start_runner(co, nargs);
}

// The runners' body, made once while the module loads (on L, where an error is caught).
void Runtime::load_runner(lua_State* L) {
  static const char kBody[] =
      "local idle, yield = ... "
      "local function run(f, ...) f(...) return run(yield(idle)) end "
      "return run";
  luaL_loadbuffer(L, kBody, sizeof kBody - 1, "=corio.runner");
  lua_pushlightuserdata(L, &kRunnerIdle);
  lua_getglobal(L, "coroutine");
  luaL_checktype(L, -1, LUA_TTABLE);
  lua_getfield(L, -1, "yield");
  lua_remove(L, -2);
  lua_call(L, 2, 1);
  runner_fn_ = anchors.hold(L);
}

// co (at the top of main, which anchors it meanwhile) takes fn and args from below it.
void Runtime::start_runner(lua_State* co, int nargs) {
  lua_State* M = main;
  lua_insert(M, -(nargs + 2));
  // (a new or idle runner has LUA_MINSTACK free slots: only many arguments need the check)
  if (nargs + 1 > LUA_MINSTACK - 1 && !lua_checkstack(co, nargs + 1)) {  // a stack at its limit already
    lua_pop(M, nargs + 2);
    std::fputs("corio: a timer callback has too many arguments for a new thread; not called\n", stderr);
    return;
  }
  lua_xmove(M, co, nargs + 1);
  resume(co, nargs + 1);
  lua_pop(M, 1);
}

// The runner finished a call: keep it for the next one (a bounded number of them; the
// rest are left to the collector).
void Runtime::park_runner(lua_State* co) {
  lua_pop(co, 1);
  if (idle_runners_.size() >= kMaxIdleRunners) return;
  lua_pushthread(co);
  idle_runners_.push_back(anchors.hold(co));
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
    timer_.start(d, [this] { complete(0); });
  }

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
  lua_getfield(L, LUA_REGISTRYINDEX, kSuspendedKey);
  lua_pushthread(L);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_settop(L, 0);
  runtime(L).op_yield = L;  // a deliberate wait: unanchored, so an unreachable thread is collected
  return lua_yield(L, 0);
}

// corio.resume(thread, ...) -> true, or nil, message: resumes a suspend()ed thread soon.
int l_resume(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_State* co = lua_tothread(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, kSuspendedKey);
  lua_pushvalue(L, 1);
  lua_rawget(L, -2);
  if (!lua_toboolean(L, -1)) {
    lua_pushnil(L);
    lua_pushliteral(L, "thread is not suspended");
    return 2;
  }
  lua_pop(L, 1);
  if (!lua_checkstack(co, lua_gettop(L) - 2)) {  // Lua 5.4's lua_xmove does not grow co's stack
    lua_pushnil(L);
    lua_pushliteral(L, "too many arguments to resume");
    return 2;
  }
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  int nargs = lua_gettop(L) - 1;
  lua_xmove(L, co, nargs);
  lua_pushvalue(L, 1);
  Runtime* rt = &runtime(L);
  int anchor = rt->anchors.hold(L);
  rt->loop.call_soon([rt, co, nargs, anchor] {
    rt->resume(co, nargs);
    rt->anchors.drop(anchor);
  });
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
  lua_pushboolean(L, rt.loop.run_once(timeout));
  return 1;
}

int l_stop(lua_State* L) {
  runtime(L).stopping = true;
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
  (*p)->load_runner(L);
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
