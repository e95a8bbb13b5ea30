// RecurringTimer: resty.timer's schedule, for C++ and (src/lua) for Lua — a one-shot or
// recurring timer with jitter, an immediate first run, runs that may last (a Lua thread, a
// Task) and never overlap, an optional gate consulted at each check (node-wide: a lease,
// corio/node_timer.hpp) and a cancel callback told why.
//
// The schedule: with t0 the start and j a uniform draw in [0, jitter], check k (k >= 1) is
// due at t0 + j + k * check (check: options.check, or interval when zero); `immediate` adds
// a check at t0 (and so the jitter delays the second). A check runs the timer if the gate
// (none: always) says so. Checks stay on that grid: the schedule never drifts. A check that
// comes while the previous run still lasts is skipped (counted in skipped()): a run that
// outlasts the interval costs the checks it covered, never a burst of catch-up runs.
// Not recurring: one check, at t0 + j + interval (no gate).
// Recurring with interval 0 (no grid): after the first check (at t0 + j, or t0 with
// immediate) the next comes on the loop turn after the run ends, so such a timer runs at
// most once per loop turn and never spins the loop while a run lasts (no check is skipped).
// Deadlines saturate: a huge interval or jitter means "never", not an overflow.
// Callbacks (expire, gate, cancel) should not throw: an exception goes to the loop's
// exception handler (Loop::report) and the timer goes on (a throwing gate says no).
#pragma once
#include <corio/clock.hpp>
#include <corio/timer.hpp>

#include <cstdint>
#include <functional>
#include <memory>

namespace corio {

class Loop;

enum class CancelReason : unsigned char {
  user,    // cancel() by its owner
  gc,      // its owner was garbage-collected (the Lua face)
  system,  // the process is shutting down
};
// "USER", "GC", "SYSTEM": resty.timer's names.
const char* cancel_reason_name(CancelReason reason) noexcept;

class RecurringTimer {
 public:
  struct Options {
    Duration interval{};      // >= 0
    bool recurring = false;
    Duration jitter{};        // >= 0
    bool immediate = false;   // requires recurring
    Duration check{};         // 0: interval; else in (0, interval] (resty.timer's sub_interval)
    std::function<bool()> gate;  // at each check of a recurring timer: whether to run now
  };

  // A run in progress. Move-only: the run ends when the last owner destroys it or calls
  // finish(), so a callback that returns at once ends it at once and one that hands it to a
  // Lua thread or a Task ends it when they do. Outliving the timer is harmless; outliving
  // the loop too, but for a live interval-0 timer, whose run's end arms the next check on
  // the loop (destroy such a timer with its loop).
  class Run {
   public:
    Run() = default;
    Run(Run&&) noexcept;
    Run& operator=(Run&&) noexcept;
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    ~Run() { finish(); }
    void finish() noexcept;
    explicit operator bool() const noexcept { return state_ != nullptr; }

   private:
    friend class RecurringTimer;
    struct State;
    explicit Run(std::shared_ptr<State> s) noexcept : state_(std::move(s)) {}
    std::shared_ptr<State> state_;
  };

  using Expire = std::function<void(Run)>;
  using Cancel = std::function<void(CancelReason)>;

  // Starts at once (an immediate check comes on the next loop turn, never inside the
  // constructor). Throws std::invalid_argument naming the option that breaks a rule (a
  // negative interval or jitter, immediate or check without recurring, check out of
  // range, no expire callback).
  RecurringTimer(Loop& loop, Options options, Expire expire, Cancel cancel = {});
  // Stops without calling the cancel callback; a run in progress goes on, unobserved.
  ~RecurringTimer();
  RecurringTimer(const RecurringTimer&) = delete;
  RecurringTimer& operator=(const RecurringTimer&) = delete;

  // Stops the timer and calls the cancel callback with reason; false (no callback) if it
  // was cancelled before. A run in progress goes on. Safe from inside expire or cancel.
  // A one-shot timer whose run came is still cancelled so (resty.timer does the same).
  bool cancel(CancelReason reason = CancelReason::user);
  // Neither cancelled nor, one-shot, expired.
  bool active() const noexcept;
  bool running() const noexcept;             // a run is in progress
  std::uint64_t runs() const noexcept;       // runs started
  std::uint64_t skipped() const noexcept;    // checks skipped because a run still lasted
  // The next check's deadline; TimePoint::max() when none is armed (inactive, or an
  // interval-0 timer waiting for its run to end).
  TimePoint next() const noexcept;
  // Handle::unref() of the underlying timer: whether it keeps Loop::run() going.
  void unref() noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace corio
