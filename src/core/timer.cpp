#include <corio/timer.hpp>

#include "timer_arming.hpp"

#include <utility>

namespace corio {

void Timer::start(Duration after, Callback cb, Duration repeat) { rearm(Loop::now() + after, cb, repeat); }

void Timer::start_at(TimePoint deadline, Callback cb, Duration repeat) { rearm(deadline, cb, repeat); }

void Timer::rearm(TimePoint deadline, Callback& cb, Duration repeat) {
  Loop& loop = this->loop();
  if (active()) loop.timers_.erase(this);  // re-armed: it stays live, the counts stay
  deadline_ = deadline;
  repeat_ = repeat < Duration::zero() ? Duration::zero() : repeat;
  cb_ = std::move(cb);
  arm(loop);
}

void Timer::stop() noexcept {
  if (active()) disarm(loop());
}

}  // namespace corio
