// Loop: one event loop (one per thread by default). Each iteration runs the callbacks
// queued with call_soon/post, waits in the poller for exactly as long as the nearest
// timer allows (forever if none, zero if work is queued), fires due timers and
// dispatches descriptor readiness. Nothing polls: an idle loop costs no CPU.
#pragma once
#include <corio/clock.hpp>
#include <corio/handle.hpp>
#include <corio/timer_queue.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace corio {

class IoWatch;
class Poller;
class SignalSource;
class Wakeup;

namespace detail {
// A spawned (detached) coroutine frame, owned by the loop until it finishes.
struct TaskNode {
  TaskNode* prev = nullptr;
  TaskNode* next = nullptr;
  std::coroutine_handle<> frame;
};
}  // namespace detail

class Loop {
 public:
  using Callback = std::function<void()>;
  using ExceptionHandler = std::function<void(std::exception_ptr)>;

  Loop();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The calling thread's default loop, created on first use. Every API in the thread
  // (C++ tasks, every Lua module in a Lua state) shares it.
  static Loop& current();
  // In the child of a fork(): the calling thread's current loop (if made) is forsaken (see
  // forsake()) and leaked, and the next current() makes a fresh one. Returns what forsake()
  // returns (0 if there was no loop).
  static std::uint64_t forsake_current() noexcept;

  // In the child of a fork(), for a loop that must never run again: every descriptor it
  // shares with the parent is made private or let go, so nothing done through this loop or
  // its handles (a late destructor unregistering a watch) can reach the parent's. The epoll
  // and eventfd are replaced in place (dup2 of fresh ones over the same numbers), the
  // signalfd too and its watches are detached, and every started ListedHandle is told
  // (ListedHandle::forsake: a socket closes its descriptor). The signal mask is left as it
  // is: the return value has bit s-1 set for each signal s the loop had blocked itself, for
  // the caller to unblock once it has taken over the signals it wants (no gap in between).
  // The loop's memory stays valid, so its handles may still be stopped and destroyed.
  std::uint64_t forsake() noexcept;

  // Runs until stop() or until nothing (timer, watch, queued callback, hold) is left.
  void run();
  // One iteration, waiting at most `timeout` (nullopt: as long as the nearest timer
  // allows, forever if there is none). Returns whether any callback ran.
  //
  // If the poller fails (anything but EINTR: its descriptor was closed or replaced behind
  // the loop's back, say), the loop is broken for good: error() returns the failure, it
  // goes once to the exception handler as a std::system_error, stop() is called, alive()
  // is false from then on and run_once() returns false at once without waiting or running
  // anything. So run() returns instead of spinning, and a caller that must not see
  // exceptions (the Lua binding) checks error() after run_once() — nothing is thrown.
  bool run_once(std::optional<Duration> timeout = std::nullopt);
  // The poller's failure, if any (see run_once).
  std::error_code error() const noexcept { return error_; }
  // Makes run() return after the current iteration (safe from any callback).
  void stop() noexcept { stop_ = true; }

  static TimePoint now() noexcept { return Clock::now(); }

  // Runs fn on the next iteration. Not thread-safe; use post() from other threads.
  void call_soon(Callback fn);
  // Thread-safe: queues fn and wakes the loop if it is blocked.
  void post(Callback fn);

  // Exceptions escaping callbacks and spawned tasks go here; the loop goes on.
  // Default: print to stderr.
  void set_exception_handler(ExceptionHandler h) { on_exception_ = std::move(h); }
  void report(std::exception_ptr e) noexcept;

  // While held, run() keeps going with nothing else pending (e.g. waiting for post()).
  void hold() noexcept { handles_.hold(); }
  void release() noexcept { handles_.release(); }
  bool alive() const noexcept { return (handles_.refs() > 0 || !queued_.empty()) && !error_; }

  // What is live on the loop, by kind (Handle). Handles are made with it.
  HandleCounts& handles() noexcept { return handles_; }
  const HandleCounts& handles() const noexcept { return handles_; }

  // Closes the loop (libuv's uv_loop_close): fails with device_or_resource_busy while
  // anything is live — a started timer, watch or signal watch (referenced or not; the
  // loop's own descriptors aside), a socket, a spawned task not finished, a hold, a
  // queued or posted callback — and live_report() then says which. On success the
  // services and the signalfd are released and the loop is as good as new (using it
  // again makes them again): Loop::current() outlives everyone who closes it. Not from
  // inside one of the loop's callbacks.
  std::error_code close();
  // What keeps close() from succeeding, e.g. "timer: 2, io_watch: 1 (fd 7), task: 1";
  // empty if nothing.
  std::string live_report() const;

  std::size_t timer_count() const noexcept { return timers_.size(); }

  // A part of a higher layer that lives as long as the loop (the pool of buffers the socket
  // engine lends, say): found by a key of its own, destroyed with the loop after its tasks
  // (or by a successful close()).
  class Service {
   public:
    virtual ~Service() = default;
  };
  Service* service(const void* key) const noexcept;  // nullptr if none
  Service& add_service(const void* key, std::unique_ptr<Service> s);

 private:
  friend class Timer;
  friend class IoWatch;
  friend class SignalWatch;
  friend class SignalSource;
  friend void link_task(Loop&, detail::TaskNode*) noexcept;
  friend void unlink_task(Loop&, detail::TaskNode*) noexcept;

  struct FdSlot {
    IoWatch* head = nullptr;
    unsigned registered = 0;  // interest mask the poller currently holds
    bool always_ready = false;  // the poller cannot poll it (Poller::kAlwaysReady)
  };

  std::error_code update_fd(int fd, bool resync = false);
  void unlink_watch(IoWatch* w) noexcept;
  void dispatch_fd(int fd, unsigned events);
  int fire_timers();
  int run_queued();
  void release_services() noexcept;  // newest first, then the signal source (close, ~Loop)
  void fail(std::error_code ec) noexcept;
  template <class F> void guarded(F&& f) noexcept;

  std::unique_ptr<Poller> poller_;
  std::unique_ptr<Wakeup> wakeup_;
  std::unique_ptr<SignalSource> signals_;
  TimerQueue timers_;
  std::vector<FdSlot> fds_;
  std::vector<int> always_ready_;  // descriptors with always_ready set
  struct Cursor {
    IoWatch* next;
    Cursor* outer;
  };
  Cursor* cursor_ = nullptr;  // innermost descriptor dispatch in progress
  std::vector<Callback> queued_;
  std::vector<Callback> running_;
  mutable std::mutex posted_mutex_;
  std::vector<Callback> posted_;
  std::atomic<bool> sleeping_{false};
  detail::TaskNode* tasks_ = nullptr;
  std::vector<std::pair<const void*, std::unique_ptr<Service>>> services_;
  ExceptionHandler on_exception_;
  TimePoint pass_now_ = TimePoint::min();  // the time of the timer pass in progress
  HandleCounts handles_{*this};
  std::error_code error_;  // the poller's failure: the loop is broken
  bool stop_ = false;
};

// Used by spawn(): the loop owns a detached task's frame until it finishes.
void link_task(Loop& loop, detail::TaskNode* n) noexcept;
void unlink_task(Loop& loop, detail::TaskNode* n) noexcept;

}  // namespace corio
