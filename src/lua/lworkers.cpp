// corio.workers(n, main [, opts]): n supervised worker processes made by fork(), and
// corio.worker_index(). README, "Worker processes", tells the model; in short:
//
// The child forsakes everything of the parent's runtime (Loop::forsake: the epoll, eventfd
// and signalfd are replaced in place, the sockets' descriptors closed, signal watches
// detached), leaks it (its objects may still be collected: their destructors only touch
// that dead loop), and puts a fresh Runtime on a fresh Loop into the Runtime** box every
// corio.core function reads, so the parent's timers, threads and servers never run there.
// It runs main(i) in a thread, then its loop until nothing is left (or an error escaped
// main(i): exit 1), and _exits. SIGTERM or SIGINT begins corio.shutdown(grace) there.
//
// The parent supervises on its own loop (its timers keep running): SIGCHLD and waitpid on
// each worker's pid (never -1: io.popen's children are not ours), restarts with back-off,
// and on SIGTERM/SIGINT (or the parent's corio.shutdown) stops once: SIGTERM to every
// worker, SIGKILL after grace + margin.
#include "lprotect.hpp"
#include "lthread.hpp"

#include <corio/signal_watch.hpp>
#include <corio/timer.hpp>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace corio::lua {
namespace {

constexpr int kMaxWorkers = 1024;
constexpr double kDefaultGrace = 3;  // a worker's corio.shutdown grace when told to stop
constexpr double kKillMargin = 2;    // after grace + this, stragglers get SIGKILL
constexpr double kFirstBackoff = 0.1;  // the first restart's delay
constexpr double kMaxBackoff = 5;      // doubling up to this
constexpr double kSteady = 10;         // a worker that lived this long restarts after kFirstBackoff
constexpr int kCannotStart = 70;       // a worker's exit status when its runtime cannot be made

struct Worker {
  int index;
  pid_t pid = -1;
  TimePoint started{};
  double backoff = 0;  // the last restart delay
  std::unique_ptr<Timer> restart;
};

struct Supervisor {
  Supervisor(lua_State* l, Runtime& r, int n, double g)
      : L(l), rt(r), grace(g), chld(r.loop, SIGCHLD, [this](int) { reap(); }),
        term(r.loop, SIGTERM, [this](int) { stop(); }), intr(r.loop, SIGINT, [this](int) { stop(); }),
        deadline(r.loop) {
    for (int i = 1; i <= n; ++i) workers.push_back(Worker{i, -1, {}, 0, nullptr});
  }
  int fork_worker(Worker& w);
  void reap();
  void exited(Worker& w, int status, bool known);
  void schedule(Worker& w);
  void stop();

  lua_State* L;  // the main script's thread, in corio.workers: main at 2, the box at 4
  Runtime& rt;
  double grace;
  std::vector<Worker> workers;
  SignalWatch chld, term, intr;
  Timer deadline;
  bool stopping = false;
  int live = 0;
};

// ---- the worker (child) side ----

struct ChildArgs {
  Supervisor* s;
  int index;
  std::uint64_t forsaken;  // signals the parent's loop had blocked itself
  const sigset_t* mask;    // the parent's mask before the fork
  int code;
};

int begin_from_signal(lua_State* M) {
  auto* rt = static_cast<Runtime*>(lua_touserdata(M, 1));
  if (!rt->shutdown_begun) begin_shutdown(M, *rt, lua_tonumber(M, 2));
  return 0;
}

// SIGTERM or SIGINT in a worker: corio.shutdown(grace), once, on the runtime's thread.
void stop_worker(Runtime& rt, double grace) {
  if (rt.shutdown_begun) return;
  lua_State* M = rt.main;
  if (!lua_checkstack(M, 3 + Anchors::kSpare)) {
    rt.stopping = true;
    return;
  }
  lua_pushcfunction(M, protect<begin_from_signal>);
  lua_pushlightuserdata(M, &rt);
  lua_pushnumber(M, grace);
  if (lua_pcall(M, 2, 0, 0) != LUA_OK) {
    std::fprintf(stderr, "corio.workers: the worker could not begin its shutdown: %s\n", lua_tostring(M, -1));
    lua_pop(M, 1);
    rt.stopping = true;
  }
}

// Protected, on the parent's main-script thread (ChildArgs, main, the Runtime** box): the
// fresh runtime, main(i), its loop.
int worker_body(lua_State* L) {
  auto* a = static_cast<ChildArgs*>(lua_touserdata(L, 1));
  Supervisor& s = *a->s;
  auto** box = static_cast<Runtime**>(lua_touserdata(L, 3));
  Runtime* old = *box;
  // The new runtime's own thread, anchored beside the old one's (which must stay: the old
  // objects' destructors drop their anchors on it).
  get_uservalue(L, 3);
  lua_State* M = lua_newthread(L);
  lua_rawseti(L, -2, static_cast<int>(raw_len(L, -2)) + 1);
  lua_pop(L, 1);
  auto* rt = new Runtime(M);  // on a fresh loop: the old one was forsaken
  *box = rt;
  rt->load_functions(L);
  rt->worker = a->index;
  if (old->handler_ref != LUA_NOREF) {  // corio.onerror's handler carries over
    lua_rawgeti(L, LUA_REGISTRYINDEX, old->handler_ref);
    rt->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  double grace = s.grace;
  // Leaked with the process: nothing after the loop runs their destructors.
  for (int signo : {SIGTERM, SIGINT}) {
    auto* w = new SignalWatch(rt->loop, signo, [rt, grace](int) { stop_worker(*rt, grace); });
    w->unref();  // a worker with nothing left exits
    if (auto ec = w->start()) {
      char why[128];
      std::snprintf(why, sizeof why, "%s", ec.message().c_str());
      return luaL_error(L, "watching signal %d: %s", signo, why);
    }
  }
  // Every signal was blocked across the fork: now the parent's mask, less what its loop
  // had blocked for itself, plus what this loop reads from its signalfd.
  sigset_t mask = *a->mask;
  for (int signo = 1; signo <= 64; ++signo)
    if (a->forsaken & (std::uint64_t{1} << (signo - 1))) sigdelset(&mask, signo);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);

  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");  // corio.worker = i, if corio is loaded
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "corio");
    if (lua_istable(L, -1)) {
      lua_pushinteger(L, a->index);
      lua_setfield(L, -2, "worker");
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  lua_State* co = lua_newthread(L);
  lua_pushvalue(L, 2);
  lua_pushinteger(L, a->index);
  lua_xmove(L, co, 2);
  rt->sentinel = co;
  ++rt->inflight;
  rt->resume(co, 1);
  Loop& loop = rt->loop;
  while (!rt->stopping && !rt->sentinel_failed && loop.alive()) loop.run_once();
  if (loop.error()) std::fprintf(stderr, "corio.workers: worker %d: the event loop failed: %s\n", a->index,
                                 loop.error().message().c_str());
  a->code = loop.error() || (rt->sentinel_failed && !rt->shutdown_begun) ? 1 : 0;
  return 0;
}

[[noreturn]] void run_worker(Supervisor& s, int index, const sigset_t& mask, pid_t parent) {
  // A worker whose supervisor dies stops as if told to (SIGTERM is blocked: read later).
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) kill(getpid(), SIGTERM);
  ChildArgs a{&s, index, Loop::forsake_current(), &mask, kCannotStart};
  lua_State* L = s.L;
  if (lua_checkstack(L, 8)) {
    lua_pushcfunction(L, protect<worker_body>);
    lua_pushlightuserdata(L, &a);
    lua_pushvalue(L, 2);  // main
    lua_pushvalue(L, 4);  // the box
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
      std::fprintf(stderr, "corio.workers: worker %d could not start: %s\n", index,
                   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
      a.code = kCannotStart;
    }
  }
  std::fflush(nullptr);
  _exit(a.code);  // not exit(): the parent's atexit handlers and destructors are not ours
}

// ---- the supervisor (parent) side ----

// A test hook (README): CORIO_WORKERS_FAIL_FORK=k makes the fork of worker k and above fail.
bool fork_fails(int index) {
  const char* v = std::getenv("CORIO_WORKERS_FAIL_FORK");
  return v && *v && index >= std::atoi(v);
}

int Supervisor::fork_worker(Worker& w) {
  // Everything blocked across the fork: the child takes over its signals with no gap in which
  // one would take its default action.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  std::fflush(nullptr);  // or the child would write the parent's buffered output again
  pid_t pid = -1;
  pid_t self = getpid();
  if (fork_fails(w.index))
    errno = EAGAIN;
  else
    pid = fork();
  if (pid == 0) run_worker(*this, w.index, saved, self);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) return err;
  w.pid = pid;
  w.started = Loop::now();
  ++live;
  return 0;
}

void Supervisor::reap() {
  for (Worker& w : workers) {
    if (w.pid <= 0) continue;
    int status = 0;
    pid_t r = waitpid(w.pid, &status, WNOHANG);
    if (r == w.pid) exited(w, status, true);
    else if (r < 0 && errno == ECHILD) exited(w, 0, false);  // reaped elsewhere (SIGCHLD ignored?)
  }
}

void Supervisor::exited(Worker& w, int status, bool known) {
  pid_t pid = std::exchange(w.pid, -1);
  --live;
  if (stopping) return;  // nothing counts as a crash while stopping
  double lived = to_seconds(Loop::now() - w.started);
  w.backoff = lived >= kSteady || w.backoff == 0 ? kFirstBackoff : std::min(w.backoff * 2, kMaxBackoff);
  char how[64];
  if (!known)
    std::snprintf(how, sizeof how, "exited");
  else if (WIFSIGNALED(status))
    std::snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
  else
    std::snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(status));
  std::fprintf(stderr, "corio.workers: worker %d (pid %d) %s; restarting in %g s\n", w.index, static_cast<int>(pid),
               how, w.backoff);
  schedule(w);
}

void Supervisor::schedule(Worker& w) {
  if (!w.restart) w.restart = std::make_unique<Timer>(rt.loop);
  Worker* wp = &w;
  w.restart->start(from_seconds(w.backoff), [this, wp] {
    if (stopping) return;
    if (int err = fork_worker(*wp)) {
      wp->backoff = std::min(wp->backoff * 2, kMaxBackoff);
      std::fprintf(stderr, "corio.workers: cannot fork worker %d: %s; retrying in %g s\n", wp->index,
                   std::strerror(err), wp->backoff);
      schedule(*wp);
    }
  });
}

void Supervisor::stop() {
  if (stopping) return;
  stopping = true;
  for (Worker& w : workers) {
    if (w.restart) w.restart->stop();
    if (w.pid > 0) kill(w.pid, SIGTERM);
  }
  deadline.start(from_seconds(grace + kKillMargin), [this] {
    for (Worker& w : workers)
      if (w.pid > 0) kill(w.pid, SIGKILL);
  });
}

// Runs the supervision; returns 0, or the errno of a fork that failed at the start (the
// workers already made are killed and reaped), -1 for a failed loop. No Lua error may be
// raised while it runs: it owns C++ objects.
int supervise(lua_State* L, Runtime& rt, int n, double grace, int* failed_index) {
  Supervisor s(L, rt, n, grace);
  for (SignalWatch* w : {&s.chld, &s.term, &s.intr})
    if (auto ec = w->start()) return ec.value();  // *failed_index stays 0: no worker yet
  for (Worker& w : s.workers) {
    if (int err = s.fork_worker(w)) {
      *failed_index = w.index;
      for (Worker& o : s.workers)
        if (o.pid > 0) {
          kill(o.pid, SIGKILL);
          waitpid(o.pid, nullptr, 0);
          o.pid = -1;
        }
      return err;
    }
  }
  Loop& loop = rt.loop;
  while (!(s.stopping && s.live == 0)) {
    if (rt.shutdown_begun) s.stop();  // corio.shutdown() in the parent stops the workers too
    loop.run_once();
    if (loop.error()) {
      for (Worker& w : s.workers)
        if (w.pid > 0) {
          kill(w.pid, SIGKILL);
          waitpid(w.pid, nullptr, 0);
        }
      return -1;
    }
  }
  return 0;  // the watches stop with s: the parent's mask is as it was
}

// corio.workers(n, main [, opts]) -> true once every worker has exited after a stop;
// nil, message if they cannot start.
int l_workers(lua_State* L) {
  if (!lua_pushthread(L)) return luaL_error(L, "corio.workers: call it from the main script, not inside a corio thread");
  lua_pop(L, 1);
  luaL_argcheck(L, lua_type(L, 1) == LUA_TNUMBER, 1, "number of workers expected");
  lua_Number nn = lua_tonumber(L, 1);
  luaL_argcheck(L, nn >= 1 && nn <= kMaxWorkers && nn == std::floor(nn), 1, "must be an integer from 1 to 1024");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  double grace = kDefaultGrace;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "grace");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TNUMBER) return luaL_argerror(L, 3, "opts.grace must be a number");
      grace = lua_tonumber(L, -1);
      luaL_argcheck(L, std::isfinite(grace) && grace >= 0, 3, "opts.grace must be a finite number >= 0");
    }
  }
  Runtime& rt = runtime(L);
  if (rt.shutdown_begun) {  // the supervision would stop them at once
    lua_pushnil(L);
    lua_pushliteral(L, "cannot start workers: the runtime is shutting down");
    return 2;
  }
  lua_settop(L, 3);
  lua_pushvalue(L, lua_upvalueindex(1));  // the box, at 4
  int failed = 0;
  int err = supervise(L, rt, static_cast<int>(nn), grace, &failed);
  make_current(L);  // the loop ran threads
  if (err < 0) return loop_failed(L, rt.loop);
  if (err > 0) {
    lua_pushnil(L);
    if (failed > 0)
      lua_pushfstring(L, "cannot fork worker %d: %s", failed, std::strerror(err));
    else
      lua_pushfstring(L, "cannot watch the signals: %s", std::strerror(err));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// corio.worker_index() -> i in worker i, nil elsewhere.
int l_worker(lua_State* L) {
  int i = runtime(L).worker;
  if (i > 0)
    lua_pushinteger(L, i);
  else
    lua_pushnil(L);
  return 1;
}

const luaL_Reg kFunctions[] = {
    {"workers", protect<l_workers>},
    {"worker", protect<l_worker>},
    {nullptr, nullptr},
};

}  // namespace

void register_workers(lua_State* L) {
  lua_pushvalue(L, -2);  // module table, runtime -> ..., runtime
  luaL_setfuncs(L, kFunctions, 1);
}

}  // namespace corio::lua
