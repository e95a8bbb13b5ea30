#include <corio/timer.hpp>

#include <corio/loop.hpp>

#include <utility>

namespace corio {

void Timer::start(Duration after, Callback cb, Duration repeat) {
  start_at(Loop::now() + after, std::move(cb), repeat);
}

void Timer::start_at(TimePoint deadline, Callback cb, Duration repeat) {
  stop();
  deadline_ = deadline;
  repeat_ = repeat < Duration::zero() ? Duration::zero() : repeat;
  cb_ = std::move(cb);
  loop_->arm(this);
}

void Timer::stop() noexcept {
  if (active()) loop_->disarm(this);
}

void Loop::arm(Timer* t) {
  if (t->deadline_ <= pass_now_) t->deadline_ = pass_now_ + Duration(1);
  t->seq_ = timers_.next_seq();
  timers_.push(t);
  if (t->ref_) ++refs_;
}

void Loop::disarm(Timer* t) noexcept {
  timers_.erase(t);
  if (t->ref_) --refs_;
}

void Timer::unref() noexcept {
  if (!ref_) return;
  if (active()) --loop_->refs_;
  ref_ = false;
}

}  // namespace corio
