// LeaseTable costs, ns per call: try_acquire of a live lease (the common "not my turn"
// check of a node-wide timer), of an expired one (a take), the shm mutex's uncontended
// lock + unlock alone, and a live check while a second process checks the same key
// without pause (the lock's cache line bouncing between them).
// Usage: lease [N=1000000]
#include <corio/lease_table.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace corio {
// The benchmark's way into the table's lock (lease_table.hpp names it a friend).
struct LeaseTableAccess {
  static std::error_code lock(LeaseTable& t) { return t.lock(); }
  static void unlock(LeaseTable& t) { t.unlock(); }
};
}  // namespace corio

namespace {

using namespace std::chrono_literals;

template <class F>
double ns_per(std::size_t n, F&& f) {
  const auto t0 = corio::Clock::now();
  for (std::size_t i = 0; i < n; ++i) f();
  return std::chrono::duration<double, std::nano>(corio::Clock::now() - t0).count() / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
  const std::string name = "bench." + std::to_string(::getpid());
  std::error_code ec;
  auto t = corio::LeaseTable::open(name, ec);
  if (!t) {
    std::fprintf(stderr, "lease: %s\n", ec.message().c_str());
    return 1;
  }
  // A few hundred other keys, so probing is not of an empty table.
  for (int i = 0; i < 300; ++i) t->try_acquire("other-" + std::to_string(i), 1h, ec);
  bool ok = t->try_acquire("live", 1h, ec);
  std::size_t wrong = 0;

  const double live_ns = ns_per(n, [&] { wrong += t->try_acquire("live", 1h, ec); });
  const double take_ns = ns_per(n, [&] { wrong += !t->try_acquire("expired", 1ns, ec); });
  const double lock_ns = ns_per(n, [&] {
    if (corio::LeaseTableAccess::lock(*t)) ++wrong;
    corio::LeaseTableAccess::unlock(*t);
  });

  // Contended: a child checks the same live key in a loop until killed.
  double contended_ns = -1;
  pid_t child = ::fork();
  if (child == 0) {
    ::alarm(60);
    std::error_code cec;
    for (;;) t->try_acquire("live", 1h, cec);
  }
  if (child > 0) {
    ::usleep(20000);  // the child is spinning
    contended_ns = ns_per(n, [&] { wrong += t->try_acquire("live", 1h, ec); });
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
  }
  ok = ok && wrong == 0 && !ec && child > 0;
  corio::LeaseTable::unlink(name);
  std::printf("bench=lease impl=corio-cpp n=%zu live_ns=%.1f take_ns=%.1f lock_unlock_ns=%.1f contended_live_ns=%.1f ok=%d\n",
              n, live_ns, take_ns, lock_ns, contended_ns, ok);
  return ok ? 0 : 1;
}
