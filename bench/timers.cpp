// N one-shot timers, deadlines uniform in [0, 1 s), every second one cancelled, run until
// the rest have fired: the workload and output line of ../shared/bench/timers_*.
// Usage: timers [N=1000000]
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <sys/resource.h>

namespace {

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

double cpu_s() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

std::uint64_t next_rand(std::uint64_t* s) {  // xorshift64*, as the peers use
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  corio::Loop loop;
  std::size_t fired = 0;
  std::allocator<corio::Timer> alloc;
  corio::Timer* timers = alloc.allocate(n);
  std::uint64_t seed = 42;
  double cpu0 = cpu_s();
  std::uint64_t t0 = now_ns();
  for (std::size_t i = 0; i < n; ++i) {
    new (&timers[i]) corio::Timer(loop);
    timers[i].start(std::chrono::nanoseconds(next_rand(&seed) % 1000000000ull), [&fired] { ++fired; });
  }
  std::uint64_t t1 = now_ns();
  std::size_t cancelled = 0;
  for (std::size_t i = 1; i < n; i += 2, ++cancelled) timers[i].stop();
  std::uint64_t t2 = now_ns();
  loop.run();
  std::uint64_t t3 = now_ns();
  double cpu3 = cpu_s();
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  std::printf(
      "impl=corio-cpp timers=%zu cancelled=%zu fired=%zu setup_ms=%.1f cancel_ms=%.1f run_ms=%.1f wall_ms=%.1f "
      "cpu_ms=%.1f ns_per_timer=%.0f cpu_ns_per_timer=%.0f maxrss_mb=%.0f ok=%d\n",
      n, cancelled, fired, (t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6, (t3 - t0) / 1e6, (cpu3 - cpu0) * 1e3,
      static_cast<double>(t3 - t0) / static_cast<double>(n), (cpu3 - cpu0) * 1e9 / static_cast<double>(n),
      ru.ru_maxrss / 1024.0, fired == n - n / 2);
  for (std::size_t i = 0; i < n; ++i) timers[i].~Timer();
  alloc.deallocate(timers, n);
  return fired == n - n / 2 ? 0 : 1;
}
