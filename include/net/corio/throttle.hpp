// Throttle: a token bucket limiting a byte rate, with a burst of at most one second's worth.
#pragma once
#include <corio/clock.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace corio {

class Throttle {
 public:
  // bytes_per_second <= 0 (or NaN, or infinite): unlimited.
  void set_rate(double bytes_per_second, TimePoint now) {
    rate_ = bytes_per_second > 0 && std::isfinite(bytes_per_second) ? bytes_per_second : 0;
    tokens_ = 0;  // start empty: the first second is not a free burst
    last_ = now;
  }
  bool limited() const noexcept { return rate_ > 0; }
  double rate() const noexcept { return rate_; }  // 0: unlimited

  // How many of `want` bytes may go now (0: wait until ready_at()).
  std::size_t allow(std::size_t want, TimePoint now) {
    if (!limited()) return want;
    refill(now);
    // Compared as doubles: a huge rate (1e300) has more tokens than a size_t holds.
    if (tokens_ >= static_cast<double>(want)) return want;
    return tokens_ >= 1 ? static_cast<std::size_t>(tokens_) : 0;
  }
  void spend(std::size_t n) noexcept {
    if (limited()) tokens_ -= static_cast<double>(n);
  }
  // When the next byte (at least min(want, a tenth of a second's worth)) is available.
  TimePoint ready_at(std::size_t want) const noexcept {
    double need = std::min(static_cast<double>(want), std::max(1.0, rate_ / 10)) - tokens_;
    if (need <= 0) return last_;
    return last_ + from_seconds(need / rate_);
  }

 private:
  void refill(TimePoint now) {
    double dt = to_seconds(now - last_);
    last_ = now;
    tokens_ = std::min(rate_, tokens_ + dt * rate_);  // burst: one second's worth
  }

  double rate_ = 0;
  double tokens_ = 0;
  TimePoint last_{};
};

}  // namespace corio
