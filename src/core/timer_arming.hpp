// How a Timer enters and leaves its loop's queue, shared by Timer::start/stop (timer.cpp)
// and the loop's timer pass (loop.cpp); inline, as both are hot.
#pragma once
#include <corio/loop.hpp>
#include <corio/timer.hpp>

namespace corio {

inline void Timer::arm(Loop& loop) {
  // A timer armed during a timer pass for a deadline already past is moved just after that
  // pass's time: it fires next iteration instead of starving the loop.
  if (deadline_ <= loop.pass_now_) deadline_ = loop.pass_now_ + Duration(1);
  seq_ = loop.timers_.next_seq();
  try {
    loop.timers_.push(this);
  } catch (...) {
    stop_handle();  // a re-armed timer was live, and is not queued now
    throw;
  }
  start_handle();  // nothing to count if it was live already
}

inline void Timer::disarm(Loop& loop) noexcept {
  loop.timers_.erase(this);
  stop_handle();
}

}  // namespace corio
