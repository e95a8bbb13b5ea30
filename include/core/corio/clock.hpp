// Time inside corio: CLOCK_MONOTONIC (std::chrono::steady_clock on Linux), nanoseconds.
#pragma once
#include <chrono>

namespace corio {

using Clock = std::chrono::steady_clock;
using Duration = Clock::duration;
using TimePoint = Clock::time_point;

// Seconds as a double (the Lua face) to a Duration, rounded up so a wait is never short.
inline Duration from_seconds(double s) noexcept {
  if (!(s > 0)) return Duration::zero();
  if (s > 1e9) s = 1e9;  // ~31 years: "forever" without overflowing int64 ns
  auto ns = static_cast<long long>(s * 1e9);
  if (static_cast<double>(ns) < s * 1e9) ++ns;
  return std::chrono::nanoseconds(ns);
}

inline double to_seconds(Duration d) noexcept { return std::chrono::duration<double>(d).count(); }

}  // namespace corio
