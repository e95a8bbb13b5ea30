// A node-wide timer in C++: of every process running this (or Lua's resty.timer with the same
// shm_name and key_name "[lua-resty-timer]<key>"), one runs it per interval. Each run prints
// "run <pid> <CLOCK_MONOTONIC seconds>"; SIGTERM or SIGINT cancels it (CancelReason::system).
//
//   node_timer <shm name> <key> [interval s = 1] [seconds to run = forever] [sub_interval s = interval]
#include <corio/loop.hpp>
#include <corio/node_timer.hpp>
#include <corio/recurring_timer.hpp>
#include <corio/signal_watch.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <shm name> <key> [interval] [seconds] [sub_interval]\n", argv[0]);
    return 2;
  }
  double interval = argc > 3 ? std::atof(argv[3]) : 1.0;
  double seconds = argc > 4 ? std::atof(argv[4]) : 0.0;
  double check = argc > 5 ? std::atof(argv[5]) : 0.0;
  auto& loop = corio::Loop::current();
  std::error_code ec;
  auto leases = corio::LeaseTable::open(argv[1], ec);
  if (!leases) {
    std::fprintf(stderr, "%s: %s\n", argv[1], ec.message().c_str());
    return 1;
  }
  corio::RecurringTimer::Options o;
  o.interval = corio::from_seconds(interval);
  o.check = corio::from_seconds(check);
  o.recurring = true;
  o.immediate = check > 0;  // as resty.timer's sub_interval
  corio::RecurringTimer timer(
      loop, corio::node_wide(std::move(o), leases, argv[2], [](std::error_code e) {
        std::fprintf(stderr, "lease: %s\n", e.message().c_str());
      }),
      [](corio::RecurringTimer::Run) {
        std::printf("run %d %.6f\n", static_cast<int>(getpid()), corio::to_seconds(corio::Loop::now().time_since_epoch()));
        std::fflush(stdout);
      },
      [&loop](corio::CancelReason why) {
        std::printf("cancel %s\n", corio::cancel_reason_name(why));
        loop.stop();
      });
  auto stop = [&](int) { timer.cancel(corio::CancelReason::system); };
  corio::SignalWatch term(loop, SIGTERM, stop), intr(loop, SIGINT, stop);
  term.unref();  // the timer keeps the loop going, not the watches
  intr.unref();
  if (term.start() || intr.start()) return 1;
  corio::Timer end(loop);
  if (seconds > 0) end.start(corio::from_seconds(seconds), [&] { timer.cancel(corio::CancelReason::system); });
  loop.run();
}
