// Coroutine spawn/switch micro-benchmark (C++): ns per spawn of a task that ends at once,
// per co_await of a nested task (a switch into and out of a coroutine), and per yield
// through the loop (sleep_for(0): timer queue + one loop iteration + resume).
// Usage: spawn [N=1000000]
#include <corio/awaiters.hpp>
#include <corio/loop.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace {

double since_ns(std::chrono::steady_clock::time_point t0, long n) {
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
}

long counter = 0;

corio::Task<void> nothing() {
  ++counter;
  co_return;
}

corio::Task<int> child(int i) { co_return i + 1; }

corio::Task<void> await_children(long n) {
  long sum = 0;
  for (long i = 0; i < n; ++i) sum += co_await child(static_cast<int>(i & 1));
  counter += sum;
}

corio::Task<void> yielder(long n) {
  for (long i = 0; i < n; ++i) co_await corio::sleep_for(corio::Duration::zero());
}

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::atol(argv[1]) : 1000000;
  auto& loop = corio::Loop::current();

  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < n; ++i) corio::spawn(loop, nothing());
  double spawn_ns = since_ns(t0, n);

  t0 = std::chrono::steady_clock::now();
  corio::spawn(loop, await_children(n));
  double await_ns = since_ns(t0, n);

  long yields = n / 10;
  t0 = std::chrono::steady_clock::now();
  corio::spawn(loop, yielder(yields));
  loop.run();
  double yield_ns = since_ns(t0, yields);

  std::printf("impl=corio-cpp n=%ld spawn_ns=%.0f switch_ns=%.0f yield_ns=%.0f ok=%d\n", n, spawn_ns, await_ns, yield_ns,
              counter >= n ? 1 : 0);
  return 0;
}
