// The LuaEvents event container (the LuaEvents event spec, its modified form:
// one context object and a timeout per event) on the thread's corio Loop.
//
// Every event owns its loop registrations (Timer, IoWatch, SignalWatch). When one fires,
// the event is queued once (a second firing before it is returned is absorbed) and its
// watch and timeout are stopped; a persistent event is re-armed when the iterator
// returns it. The iterator collects in cycles: a cycle lets the loop run until something
// is queued (or the blocking mode says stop) and takes the queue as its batch. In the main
// thread (where nothing can yield) the iterator runs the loop itself; in a corio thread the
// cycle is an Operation the thread waits on, so other threads' iterators and waits go on.
#include "levent.hpp"

#include "lprotect.hpp"
#include "lthread.hpp"

#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/signal_watch.hpp>
#include <corio/timer.hpp>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace corio::lua {
namespace {

constexpr const char* kSetType = "corio.event.set";
enum Slot { kContexts = 1, kSources = 2 };  // tables in the set's uservalue

struct EventSet;
class CollectOp;

struct Event {
  // An event set's registrations do not hold the loop: only its own iterator waits for
  // them, so corio.run() may end while a set still holds events.
  Event(EventSet* s, std::int64_t i, char k, bool p, Loop& loop) : set(s), id(i), kind(k), persistent(p), timer(loop) {
    timer.unref();
  }

  bool timed() const { return kind == 't' || timeout.has_value(); }
  const char* fired_reason() const {
    switch (kind) {
      case 'r': return "readable";
      case 'w': return "writable";
      case 'x': return "exception";
      case 's': return "signal";
      case 'v': return "triggered";
      default: return "timeout";
    }
  }

  EventSet* set;
  std::int64_t id;
  char kind;  // the type letter in lower case
  bool persistent;
  bool queued = false;
  const char* reason = nullptr;
  Duration interval{};                // t/T
  std::optional<Duration> timeout;    // every other type
  Timer timer;                        // t/T: the timer itself; others: the timeout
  unsigned interest = 0;              // r/w/x
  std::optional<IoWatch> watch;       // r/w/x
  std::optional<SignalWatch> signal;  // s/S
  std::int64_t source_key = 0;        // an fd or signal event replaces its predecessor
};

struct EventSet {
  explicit EventSet(Runtime& r) : rt(r), loop(r.loop) {}
  ~EventSet();

  void fire(Event* e, const char* why) {
    if (e->queued) return;  // returned once, however often it fired meanwhile
    e->queued = true;
    e->reason = why;
    ready.push_back(e->id);
    if (e->watch) e->watch->stop();  // level-triggered: it would fire again every turn
    if (e->kind != 't') e->timer.stop();
    changed();
  }

  // Something a waiting corio thread's cycle may end on happened (an event queued, the set
  // stopped, cleared, emptied, its timers gone): it looks on the next loop turn.
  void changed();

  void start_timeout(Event* e) {
    if (e->kind == 't' || !e->timeout) return;
    e->timer.start(*e->timeout, [e] { e->set->fire(e, "timeout"); });
  }

  // Starts the event's sources; returns the error registering a descriptor or signal.
  std::error_code arm(Event* e) {
    std::error_code ec;
    switch (e->kind) {
      case 't':
        e->timer.start(e->interval, [e] { e->set->fire(e, "timeout"); },
                       e->persistent ? e->interval : Duration::zero());
        break;
      case 'r':
      case 'w':
      case 'x':
        ec = e->watch->start(e->interest);
        break;
      case 's':
        ec = e->signal->start();
        break;
      default:
        break;
    }
    if (!ec) start_timeout(e);
    return ec;
  }

  // A persistent event returned by the iterator listens again; its timeout restarts.
  void rearm(Event* e) {
    e->queued = false;
    if (e->watch) (void)e->watch->start(e->interest);  // a closed fd just stays silent
    start_timeout(e);
  }

  Event* find(std::int64_t id) {
    auto it = events.find(id);
    return it == events.end() ? nullptr : it->second.get();
  }

  void erase(std::int64_t id) {
    auto it = events.find(id);
    if (it == events.end()) return;
    Event* e = it->second.get();
    if (e->timed()) --timed;
    if (e->source_key) by_source.erase(e->source_key);
    events.erase(it);
    changed();
  }

  Runtime& rt;
  Loop& loop;
  std::unordered_map<std::int64_t, std::unique_ptr<Event>> events;
  std::unordered_map<std::int64_t, std::int64_t> by_source;
  std::deque<std::int64_t> ready;  // fired since the last collection
  std::deque<std::int64_t> batch;  // collected, being returned by the iterator
  std::int64_t next_id = -1;       // ids are negative numbers, never reused
  long timed = 0;                  // events that will fire on their own (t/T, timeouts)
  std::uint64_t generation = 0;    // of the newest iterator
  std::uint64_t stopped = 0;       // iterators of this generation or older are over
  bool collecting = false;
  CollectOp* collector = nullptr;  // a corio thread's cycle in progress
};

EventSet* check_set(lua_State* L, int idx) {
  auto* p = static_cast<EventSet**>(luaL_checkudata(L, idx, kSetType));
  if (!*p) luaL_error(L, "event set has been collected");
  return *p;
}

// Pushes uservalue[slot] of the set at idx.
void push_table(lua_State* L, int idx, Slot slot) {
  get_uservalue(L, idx);
  lua_rawgeti(L, -1, slot);
  lua_remove(L, -2);
}

// t[id] = value at vidx (or nil if vidx is 0) for the set's table `slot`.
void store(lua_State* L, int set_idx, Slot slot, std::int64_t id, int vidx) {
  if (vidx) vidx = abs_index(L, vidx);
  push_table(L, set_idx, slot);
  lua_pushinteger(L, static_cast<lua_Integer>(id));
  if (vidx)
    lua_pushvalue(L, vidx);
  else
    lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void drop(lua_State* L, int set_idx, EventSet* set, std::int64_t id) {
  set->erase(id);
  store(L, set_idx, kContexts, id, 0);
  store(L, set_idx, kSources, id, 0);
}

// A descriptor from an integer, a Lua file handle or an object with getfd(); -1 if closed.
int descriptor(lua_State* L, int idx) {
  int t = lua_type(L, idx);
  if (t == LUA_TNUMBER) {
    if (!is_integer(L, idx)) luaL_argerror(L, idx, "descriptor must be an integer");
    lua_Integer fd = lua_tointeger(L, idx);
    return fd < 0 || fd > 0x7fffffff ? -1 : static_cast<int>(fd);
  }
  if (luaL_testudata(L, idx, LUA_FILEHANDLE)) return file_descriptor(L, idx);
  bool indexable = t == LUA_TTABLE || (t == LUA_TUSERDATA && lua_getmetatable(L, idx) && (lua_pop(L, 1), true));
  if (indexable) {
    lua_getfield(L, idx, "getfd");
    if (lua_isfunction(L, -1)) {
      lua_pushvalue(L, idx);
      lua_call(L, 1, 1);
      int fd = -1;
      if (is_integer(L, -1) && lua_tointeger(L, -1) >= 0 &&
          lua_tointeger(L, -1) <= 0x7fffffff)
        fd = static_cast<int>(lua_tointeger(L, -1));
      lua_pop(L, 1);
      return fd;
    }
    lua_pop(L, 1);
  }
  luaL_argerror(L, idx, "descriptor expected (an integer, a file handle or an object with getfd)");
  return -1;
}

int signal_arg(lua_State* L, int idx) {
  int signo = 0;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    if (!is_integer(L, idx)) luaL_argerror(L, idx, "signal number must be an integer");
    lua_Integer n = lua_tointeger(L, idx);
    if (n > 0 && n < 65) signo = static_cast<int>(n);
    if (!signo) luaL_argerror(L, idx, "signal number out of range");
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    signo = signal_number(lua_tostring(L, idx));
    if (!signo) luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", lua_tostring(L, idx)));
  } else {
    luaL_argerror(L, idx, "signal expected (a number or a name such as \"SIGINT\")");
  }
  return signo;
}

// A timeout argument: a number of seconds, anything else means none.
std::optional<Duration> timeout_arg(lua_State* L, int idx) {
  if (lua_type(L, idx) != LUA_TNUMBER) return std::nullopt;
  double s = lua_tonumber(L, idx);
  if (std::isnan(s)) return std::nullopt;
  return from_seconds(s);
}

int push_failure(lua_State* L, std::error_code ec) {
  std::string msg = ec.message();
  if (!msg.empty()) msg[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(msg[0])));
  lua_pushnil(L);
  lua_pushstring(L, msg.c_str());
  return 2;
}

// Adds an event of `type` whose source is at src_idx (0: none), context at ctx_idx.
int add_event(lua_State* L, EventSet* set, char type, int src_idx, int ctx_idx, std::optional<Duration> timeout) {
  const char kind = static_cast<char>(std::tolower(static_cast<unsigned char>(type)));
  const bool persistent = std::isupper(static_cast<unsigned char>(type));
  // Check every argument before any C++ object exists: a Lua error skips destructors.
  double interval = 0;
  int fd = -1, signo = 0;
  bool triggered = false;
  switch (kind) {
    case 't':
      if (lua_type(L, src_idx) != LUA_TNUMBER) luaL_argerror(L, src_idx, "timer interval must be a number");
      interval = lua_tonumber(L, src_idx);
      if (std::isnan(interval) || interval < 0 || (persistent && interval <= 0))
        luaL_argerror(L, src_idx, persistent ? "periodic timer interval must be positive" : "timer interval must not be negative");
      timeout.reset();  // ignored for timers, as the spec says
      break;
    case 'r':
    case 'w':
    case 'x':
      fd = descriptor(L, src_idx);
      if (fd < 0) {
        lua_pushnil(L);
        lua_pushliteral(L, "closed");
        return 2;
      }
      break;
    case 's':
      signo = signal_arg(L, src_idx);
      break;
    default:  // 'v': the source is the initial triggered state
      triggered = src_idx && lua_toboolean(L, src_idx);
      break;
  }

  const std::int64_t id = set->next_id--;
  store(L, 1, kContexts, id, ctx_idx);
  store(L, 1, kSources, id, src_idx);

  std::int64_t key = 0, predecessor = 0;
  if (fd >= 0) key = (static_cast<std::int64_t>(kind) << 32) | fd;
  if (signo) key = (static_cast<std::int64_t>('s') << 32) | signo;
  if (key) {
    auto old = set->by_source.find(key);
    if (old != set->by_source.end()) predecessor = old->second;
  }
  // An fd predecessor goes first (its descriptor may have been closed and the number
  // reused: dropping it clears the stale poller registration). A signal predecessor goes
  // only once the new watch is up, or the signal is unblocked in between and a pending
  // one takes its default action (SIGUSR1 would kill the process).
  if (predecessor && fd >= 0) {
    drop(L, 1, set, predecessor);
    predecessor = 0;
  }

  auto owned = std::make_unique<Event>(set, id, kind, persistent, set->loop);
  Event* e = owned.get();
  e->interval = from_seconds(interval);
  e->timeout = timeout;
  if (fd >= 0) {
    e->interest = kind == 'r' ? kReadable : kind == 'w' ? kWritable : kPriority;
    e->watch.emplace(set->loop, fd, [e](unsigned) { e->set->fire(e, e->fired_reason()); });
    e->watch->unref();
  }
  if (signo) {
    e->signal.emplace(set->loop, signo, [e](int) { e->set->fire(e, "signal"); });
    e->signal->unref();
  }
  if (std::error_code ec = set->arm(e)) {
    owned.reset();
    drop(L, 1, set, id);  // only its context and source were stored
    if (kind == 's') luaL_argerror(L, src_idx, "signal cannot be caught");
    return push_failure(L, ec);
  }
  if (e->timed()) ++set->timed;
  set->events.emplace(id, std::move(owned));
  if (predecessor) drop(L, 1, set, predecessor);  // before by_source[key] points at id
  if (key) {
    e->source_key = key;
    set->by_source[key] = id;
  }
  if (triggered) set->fire(e, "triggered");
  lua_pushinteger(L, static_cast<lua_Integer>(id));
  return 1;
}

// ev:add(type [, source [, context [, timeout]]])
int l_add(lua_State* L) {
  EventSet* set = check_set(L, 1);
  size_t len;
  const char* type = luaL_checklstring(L, 2, &len);
  if (len != 1 || !std::strchr("vVtTrRwWxXsS", type[0]))
    return luaL_argerror(L, 2, "invalid event type (one of v V t T r R w W x X s S)");
  lua_settop(L, 5);
  return add_event(L, set, type[0], 3, 4, timeout_arg(L, 5));
}

// ev:once([context]): an immediate one-shot virtual event.
int l_once(lua_State* L) {
  EventSet* set = check_set(L, 1);
  lua_settop(L, 2);
  lua_pushboolean(L, 1);
  return add_event(L, set, 'v', 3, 2, std::nullopt);
}

// The event id argument; the draft's ev:del(type, id) form is accepted too.
std::int64_t id_arg(lua_State* L) {
  int idx = lua_type(L, 2) == LUA_TSTRING && lua_type(L, 3) == LUA_TNUMBER ? 3 : 2;
  return static_cast<std::int64_t>(luaL_checkinteger(L, idx));
}

// ev:set(id [, context [, timeout]])
int l_set(lua_State* L) {
  EventSet* set = check_set(L, 1);
  std::int64_t id = static_cast<std::int64_t>(luaL_checkinteger(L, 2));
  lua_settop(L, 4);
  Event* e = set->find(id);
  if (!e) {
    lua_pushnil(L);
    return 1;
  }
  store(L, 1, kContexts, id, 3);
  if (!lua_isnil(L, 4) && e->kind != 't') {
    bool was = e->timed();
    e->timeout = timeout_arg(L, 4);
    set->timed += static_cast<long>(e->timed()) - static_cast<long>(was);
    e->timer.stop();
    if (!e->queued) set->start_timeout(e);
    set->changed();
  }
  lua_pushinteger(L, static_cast<lua_Integer>(id));
  return 1;
}

// ev:trigger(id)
int l_trigger(lua_State* L) {
  EventSet* set = check_set(L, 1);
  std::int64_t id = static_cast<std::int64_t>(luaL_checkinteger(L, 2));
  Event* e = set->find(id);
  if (!e || e->kind != 'v') {
    lua_pushnil(L);
    return 1;
  }
  set->fire(e, "triggered");
  lua_pushinteger(L, static_cast<lua_Integer>(id));
  return 1;
}

// ev:del(id)
int l_del(lua_State* L) {
  EventSet* set = check_set(L, 1);
  std::int64_t id = id_arg(L);
  if (!set->find(id)) {
    lua_pushnil(L);
    return 1;
  }
  drop(L, 1, set, id);
  lua_pushinteger(L, static_cast<lua_Integer>(id));
  return 1;
}

// ev:stop(): the running iterator returns nil next; queued events stay for the next one.
int l_stop(lua_State* L) {
  EventSet* set = check_set(L, 1);
  set->stopped = set->generation;
  set->changed();
  return 0;
}

void new_tables(lua_State* L, int set_idx) {
  lua_createtable(L, 2, 0);
  lua_newtable(L);
  lua_rawseti(L, -2, kContexts);
  lua_newtable(L);
  lua_rawseti(L, -2, kSources);
  set_uservalue(L, set_idx);
}

// ev:clear(): deletes every event, queued ones too, and ends the running iteration.
int l_clear(lua_State* L) {
  EventSet* set = check_set(L, 1);
  set->events.clear();
  set->by_source.clear();
  set->ready.clear();
  set->batch.clear();
  set->timed = 0;
  set->stopped = set->generation;
  set->changed();
  new_tables(L, 1);
  return 0;
}

// Returns the next event of the batch (pushing its 4 values) or 0 if the batch is done.
int deliver(lua_State* L, int set_idx, EventSet* set) {
  while (!set->batch.empty()) {
    std::int64_t id = set->batch.front();
    set->batch.pop_front();
    Event* e = set->find(id);
    if (!e || !e->queued) continue;  // deleted (or re-armed) since it was collected
    lua_pushinteger(L, static_cast<lua_Integer>(id));
    lua_pushstring(L, e->reason);
    push_table(L, set_idx, kSources);
    lua_rawgeti(L, -1, static_cast<lua_Integer>(id));
    lua_remove(L, -2);
    push_table(L, set_idx, kContexts);
    lua_rawgeti(L, -1, static_cast<lua_Integer>(id));
    lua_remove(L, -2);
    if (e->persistent)
      set->rearm(e);
    else
      drop(L, set_idx, set, id);
    return 4;
  }
  return 0;
}

enum class Mode { kBlock, kNever, kSeconds, kIfTimers };
enum Cycles { kNone = 0, kBlocked = 1, kLookedOnce = 2 };

// An iteration (ev(block) makes one; its iterator function holds it).
struct Iteration {
  std::uint64_t gen;  // of the set's iterators; stop() ends this one and older ones
  Mode mode;
  double seconds;
  Cycles cycles;  // cycles started: a non-blocking iteration collects once

  // Blocking iterators collect again and again, the others once; in nil mode a cycle that
  // blocked for a timer may be followed by one last look without blocking.
  bool blocks(const EventSet* set) const {
    return mode == Mode::kBlock || (mode == Mode::kIfTimers && set->timed > 0);
  }
};

// A cycle in the main thread: runs the loop until something is queued, the mode's time
// is up, the set is stopped, cleared or empty.
void run_cycle(EventSet* set, const Iteration& it) {
  std::optional<TimePoint> deadline;
  if (it.mode == Mode::kSeconds) deadline = Loop::now() + from_seconds(it.seconds);
  set->collecting = true;
  try {
    for (;;) {
      std::optional<Duration> wait = Duration::zero();
      if (set->ready.empty()) {
        if (it.blocks(set))
          wait.reset();
        else if (deadline)
          wait = std::max(Duration::zero(), *deadline - Loop::now());
      }
      set->loop.run_once(wait);
      if (set->loop.error()) break;  // broken for good: l_collect raises
      if (!set->ready.empty() || it.gen <= set->stopped || set->events.empty()) break;
      if (wait == Duration::zero() || (deadline && Loop::now() >= *deadline)) break;
    }
  } catch (const std::exception&) {
    set->collecting = false;
    throw;
  }
  set->collecting = false;
}

// A cycle in a corio thread: the thread waits on it while the loop runs, and it ends on
// the same conditions as run_cycle's, looked at once per loop turn after a change.
class CollectOp final : public Operation {
 public:
  CollectOp(EventSet* set, const Iteration& it)
      : Operation(set->rt), set_(set), gen_(it.gen), mode_(it.mode), timer_(set->loop) {
    if (mode_ == Mode::kSeconds) deadline_ = Loop::now() + from_seconds(it.seconds);
    // A queued event or a non-blocking mode: one loop turn (poll, timers, descriptors), as
    // run_cycle's run_once(0).
    zero_ = !set->ready.empty() || (!it.blocks(set) && (!deadline_ || *deadline_ <= Loop::now()));
    if (zero_)
      timer_.start(Duration::zero(), [this] {
        turned_ = true;
        changed();
      });
    else if (deadline_)
      timer_.start_at(*deadline_, [this] { changed(); });
    set->collecting = true;
    set->collector = this;
    set->loop.hold();  // a thread waits on the set: corio.run() goes on
  }

  ~CollectOp() override {
    if (set_) {
      set_->collecting = false;
      set_->collector = nullptr;
    }
    set_ ? set_->loop.release() : runtime().loop.release();
  }

  // The waiting thread takes the cycle's batch.
  int push(lua_State*) override {
    if (set_) {
      for (auto id : set_->ready) set_->batch.push_back(id);
      set_->ready.clear();
    }
    return 0;
  }

  void changed() {
    if (noted_) return;
    try {
      runtime().soon(Soon{[](Runtime&, const Soon& s) { static_cast<CollectOp*>(s.p)->look(); }, nullptr, this,
                          Anchors::kNone, 0});
      noted_ = true;
    } catch (const std::exception&) {  // out of memory: the next change tries again
    }
  }

  void set_gone() noexcept { set_ = nullptr; }  // the state is closing

 private:
  void look() {
    noted_ = false;
    if (!set_ || over()) complete();
  }

  bool over() const {
    return (zero_ && turned_) || !set_->ready.empty() || gen_ <= set_->stopped || set_->events.empty() ||
           (deadline_ && Loop::now() >= *deadline_) || (mode_ == Mode::kIfTimers && set_->timed == 0);
  }

  EventSet* set_;
  std::uint64_t gen_;
  Mode mode_;
  std::optional<TimePoint> deadline_;
  Timer timer_;  // the deadline, or the one turn of a zero cycle
  bool zero_ = false;
  bool turned_ = false;
  bool noted_ = false;  // a look is queued for the next loop turn
};

void EventSet::changed() {
  if (collector) collector->changed();
}

EventSet::~EventSet() {
  if (collector) collector->set_gone();
}

// An error at the caller of the iterator (level 2: level 1 is the Lua iterator function).
int iterator_error(lua_State* L, const char* msg) {
  luaL_where(L, 2);
  lua_pushstring(L, msg);
  lua_concat(L, 2);
  return lua_error(L);
}

// step(set, iteration) -> id, reason, source, context (the next event); nothing (the
// iteration is over); or false (a collection cycle must run first: collect()).
int l_step(lua_State* L) {
  EventSet* set = check_set(L, 1);
  auto* it = static_cast<Iteration*>(lua_touserdata(L, 2));
  if (set->collecting) return iterator_error(L, "event set iterator called while the set is collecting events");
  if (it->gen <= set->stopped) return 0;
  if (int n = deliver(L, 1, set)) return n;
  if (set->events.empty()) return 0;
  bool blocking = it->blocks(set);
  if (!blocking && it->cycles == kLookedOnce) return 0;
  it->cycles = blocking ? kBlocked : kLookedOnce;
  lua_pushboolean(L, 0);
  return 1;
}

// collect(set, iteration): one collection cycle; its events become the batch step() returns.
int l_collect(lua_State* L) {
  EventSet* set = check_set(L, 1);
  auto* it = static_cast<Iteration*>(lua_touserdata(L, 2));
  if (lua_isyieldable(L) && set->rt.wait_root(L)) {  // a corio thread: wait, as any corio call
    lua_settop(L, 0);
    return (new CollectOp(set, *it))->wait(L);
  }
  run_cycle(set, *it);
  if (set->loop.error()) return loop_failed(L, set->loop);
  for (auto id : set->ready) set->batch.push_back(id);
  set->ready.clear();
  return 0;
}

// The iterator ev(block) returns: a Lua function over step and collect, so that it can
// wait in a corio thread (a C function cannot go on after a yield on LuaJIT).
const char kIterator[] = R"(
local step, collect = ...
return function(set, iteration)
  return function()
    while true do
      local id, reason, source, context = step(set, iteration)
      if id ~= false then
        if id == nil then return end
        return id, reason, source, context
      end
      collect(set, iteration)
    end
  end
end
)";

// ev([block]) returns iterator, ev, nil. Upvalue: the iterator factory.
int l_call(lua_State* L) {
  EventSet* set = check_set(L, 1);
  int t = lua_type(L, 2);
  if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER)
    return luaL_argerror(L, 2, "block must be true, false, a number of seconds or nil");
  Iteration it{++set->generation, Mode::kIfTimers, 0, kNone};
  if (t == LUA_TBOOLEAN) it.mode = lua_toboolean(L, 2) ? Mode::kBlock : Mode::kNever;
  if (t == LUA_TNUMBER) {
    it.mode = Mode::kSeconds;
    it.seconds = lua_tonumber(L, 2);
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  *static_cast<Iteration*>(lua_newuserdata(L, sizeof(Iteration))) = it;
  lua_call(L, 2, 1);
  lua_pushvalue(L, 1);
  lua_pushnil(L);
  return 3;
}

int l_len(lua_State* L) {
  lua_pushinteger(L, static_cast<lua_Integer>(check_set(L, 1)->events.size()));
  return 1;
}

int l_tostring(lua_State* L) {
  auto* p = static_cast<EventSet**>(luaL_checkudata(L, 1, kSetType));
  if (*p)
    lua_pushfstring(L, "event set (%d events): %p", static_cast<int>((*p)->events.size()), static_cast<void*>(*p));
  else
    lua_pushliteral(L, "event set (collected)");
  return 1;
}

int l_gc(lua_State* L) {
  auto* p = static_cast<EventSet**>(luaL_checkudata(L, 1, kSetType));
  delete *p;
  *p = nullptr;
  return 0;
}

const luaL_Reg kMethods[] = {
    {"add", protect<l_add>}, {"set", protect<l_set>},   {"trigger", protect<l_trigger>}, {"once", protect<l_once>},
    {"del", protect<l_del>}, {"stop", protect<l_stop>}, {"clear", protect<l_clear>},     {nullptr, nullptr},
};

const luaL_Reg kMeta[] = {
    {"__len", protect<l_len>}, {"__tostring", protect<l_tostring>}, {"__gc", protect<l_gc>}, {nullptr, nullptr},
};

}  // namespace

void register_event_set(lua_State* L) {
  if (!luaL_newmetatable(L, kSetType)) {
    lua_pop(L, 1);
    return;
  }
  luaL_setfuncs(L, kMeta, 0);
  lua_newtable(L);
  luaL_setfuncs(L, kMethods, 0);
  lua_setfield(L, -2, "__index");
  if (luaL_loadbuffer(L, kIterator, sizeof kIterator - 1, "=corio.event") != LUA_OK) lua_error(L);
  lua_pushcfunction(L, protect<l_step>);
  lua_pushcfunction(L, protect<l_collect>);
  lua_call(L, 2, 1);
  lua_pushcclosure(L, protect<l_call>, 1);
  lua_setfield(L, -2, "__call");
  lua_pop(L, 1);
}

// event.newset([numobj])
int newset(lua_State* L) {
  lua_Integer numobj = luaL_optinteger(L, 1, 0);
  luaL_argcheck(L, numobj >= 0, 1, "number of associated objects must not be negative");
  auto* p = static_cast<EventSet**>(new_userdata(L, sizeof(EventSet*)));
  *p = nullptr;
  luaL_setmetatable(L, kSetType);
  new_tables(L, lua_gettop(L));
  *p = new EventSet(find_runtime(L));
  return 1;
}

}  // namespace corio::lua
