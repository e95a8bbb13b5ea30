// Timer lateness: how long after its deadline a 1 ms timer fires, on an otherwise idle
// loop. Prints p50/p99/max lateness and the count fired early (must be 0).
// Usage: timer_lateness [count=2000] [delay_us=1000]
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main(int argc, char** argv) {
  const int count = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto delay = std::chrono::microseconds(argc > 2 ? std::atoi(argv[2]) : 1000);
  corio::Loop loop;
  corio::Timer timer(loop);
  std::vector<double> late_us;
  late_us.reserve(count);
  int early = 0;
  corio::TimePoint deadline;
  std::function<void()> arm = [&] {
    deadline = corio::Loop::now() + delay;
    timer.start_at(deadline, [&] {
      auto late = corio::Loop::now() - deadline;
      if (late.count() < 0) ++early;
      late_us.push_back(std::chrono::duration<double, std::micro>(late).count());
      if (static_cast<int>(late_us.size()) < count) arm();
    });
  };
  arm();
  loop.run();
  std::sort(late_us.begin(), late_us.end());
  auto pct = [&](double p) { return late_us[static_cast<size_t>(p * (late_us.size() - 1))]; };
  std::printf("timer_lateness count=%d delay_us=%lld p50_us=%.1f p99_us=%.1f max_us=%.1f early=%d\n", count,
              static_cast<long long>(delay.count()), pct(0.50), pct(0.99), late_us.back(), early);
  return early == 0 ? 0 : 1;
}
