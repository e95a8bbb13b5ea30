// Timer: a one-shot or repeating deadline on a Loop. The object is owned by the caller
// (intrusive, like uv_timer_t): arming it allocates nothing, destroying it disarms it.
#pragma once
#include <corio/clock.hpp>
#include <corio/handle.hpp>
#include <corio/loop.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace corio {

class Timer : public Handle {
 public:
  using Callback = std::function<void()>;

  explicit Timer(Loop& loop) noexcept : Handle(loop.handles(), HandleKind::timer) {}
  ~Timer() {
    stop();
    if (destroyed_) *destroyed_ = true;
  }

  // Fires `after` from now (never earlier), then every `repeat` if it is non-zero.
  // Restarting an armed timer re-arms it. The callback may stop, restart or destroy the timer.
  void start(Duration after, Callback cb, Duration repeat = Duration::zero());
  void start_at(TimePoint deadline, Callback cb, Duration repeat = Duration::zero());
  void stop() noexcept;
  // Handle::unref(): an unreferenced timer does not keep Loop::run() going.

  TimePoint deadline() const noexcept { return deadline_; }
  Duration repeat() const noexcept { return repeat_; }

 private:
  friend class TimerQueue;
  friend class Loop;
  static constexpr std::size_t kInactive = static_cast<std::size_t>(-1);

  void rearm(TimePoint deadline, Callback& cb, Duration repeat);
  // Into and out of the loop's queue (src/core/timer_arming.hpp).
  inline void arm(Loop& loop);
  inline void disarm(Loop& loop) noexcept;

  TimePoint deadline_{};
  Duration repeat_{};
  std::uint64_t seq_ = 0;  // insertion order breaks ties: equal deadlines fire FIFO
  std::size_t index_ = kInactive;
  bool* destroyed_ = nullptr;  // set while the callback runs: tells the loop it was destroyed
  Callback cb_;
};

}  // namespace corio
