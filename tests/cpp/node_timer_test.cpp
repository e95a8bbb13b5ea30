// node_wide: the gate's checks, errors, its ttl, and 4 processes racing on one key.
#include <corio/lease_table.hpp>
#include <corio/node_timer.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lease_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::LeaseError;
using corio::LeaseTable;
using corio::LeaseTableAccess;
using corio::TimePoint;
using corio_test::Child;
using corio_test::exited_ok;
using corio_test::ms;
using corio_test::read_within;

// Each test has its own shm name, unlinked at the end.
using NodeWide = corio_test::LeaseFixture;

TEST_F(NodeWide, RequiresARecurringTimerAKeyAndATable) {
  std::error_code ec;
  auto t = LeaseTable::open(name, ec);
  ASSERT_TRUE(t);
  corio::RecurringTimer::Options o;
  o.interval = 100ms;
  EXPECT_THROW(corio::node_wide(o, t, "k"), std::invalid_argument);
  o.recurring = true;
  EXPECT_THROW(corio::node_wide(o, nullptr, "k"), std::invalid_argument);
  EXPECT_THROW(corio::node_wide(o, t, ""), std::invalid_argument);
  EXPECT_THROW(corio::node_wide(o, t, std::string(201, 'k')), std::invalid_argument);
  // The gate: true once per lease; a gate set before is asked first.
  bool inner_open = false;
  o.gate = [&] { return inner_open; };
  auto gated = corio::node_wide(o, t, "g");
  EXPECT_FALSE(gated.gate());
  EXPECT_FALSE(t->lease("g", ec));  // not taken while the inner gate is shut
  inner_open = true;
  EXPECT_TRUE(gated.gate());
  EXPECT_FALSE(gated.gate());
  auto l = t->lease("g", ec);
  ASSERT_TRUE(l);
  EXPECT_LE(l->until, Clock::now() + 99ms);  // the lease is interval - 1 ms
  EXPECT_GT(l->until, Clock::now() + 90ms);
  // Tiny intervals still give a positive ttl (half the interval).
  o.gate = nullptr;
  o.interval = 1ms;
  auto tiny = corio::node_wide(o, t, "tiny");
  EXPECT_TRUE(tiny.gate());
  l = t->lease("tiny", ec);
  ASSERT_TRUE(l);
  EXPECT_LE(l->until, Clock::now() + 500us);
}

TEST_F(NodeWide, ALeaseErrorShutsTheGateAndIsReported) {
  std::error_code ec;
  auto t = LeaseTable::open(name, ec);
  ASSERT_TRUE(t);
  // Fill the region so the key cannot get a slot.
  for (std::size_t i = 0; i < LeaseTable::kSlots; ++i) ASSERT_TRUE(t->try_acquire(std::to_string(i), 1h, ec));
  corio::RecurringTimer::Options o;
  o.interval = 50ms;
  o.recurring = true;
  std::vector<std::error_code> errors;
  auto opts = corio::node_wide(o, t, "late key", [&](std::error_code e) { errors.push_back(e); });
  EXPECT_FALSE(opts.gate());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], LeaseError::full);
  auto silent = corio::node_wide(o, t, "late key");  // no on_error: still shut, no crash
  EXPECT_FALSE(silent.gate());
}

struct Run {
  std::int64_t ns;
  std::int32_t pid;
  std::int32_t pad;
};

// 4 processes check one key's node-wide gate for 1 s at interval 0.1 s. mode "poll": each
// checks every ~1 ms (resty.timer's sub_interval at its finest); mode "grid": each checks
// on its own grid of 0.1 s with its own phase, like RecurringTimer. Either way about 10
// runs in all, never two within interval - 2 ms.
void race(const std::string& name, bool poll) {
  constexpr int kProcs = 4;
  constexpr Duration kInterval = 100ms;
  std::error_code ec;
  auto t = LeaseTable::open(name, ec);
  ASSERT_TRUE(t);
  corio_test::Pipe runs;
  ASSERT_TRUE(runs.ok());
  ::fcntl(runs.w, F_SETFL, 0);  // children write blocking
  corio::RecurringTimer::Options o;
  o.interval = kInterval;
  o.recurring = true;
  const auto gate = corio::node_wide(o, t, "tick").gate;
  const TimePoint start = Clock::now() + 100ms;  // after every fork
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < kProcs; ++i) {
    children.push_back(std::make_unique<Child>([&, i] {
      const Duration phase = poll ? Duration::zero() : kInterval * i / kProcs + 3ms;
      const Duration step = poll ? Duration(1ms) : kInterval;
      for (TimePoint next = start + phase; next < start + 1s; next += step) {
        std::this_thread::sleep_until(next);
        if (gate()) {
          // The lease's deadline tells when it was taken, under the lock: a child preempted
          // after taking it does not make two runs look closer than they were.
          std::error_code lec;
          auto l = t->lease("tick", lec);
          if (!l || l->holder != ::getpid()) return 2;
          Run r{l->until.time_since_epoch().count(), ::getpid(), 0};
          if (::write(runs.w, &r, sizeof r) != sizeof r) return 1;
        }
      }
      return 0;
    }));
  }
  corio_test::close_fd(runs.w);
  int ok = 0;
  for (auto& c : children) ok += exited_ok(c->wait(5s));
  EXPECT_EQ(ok, kProcs);
  std::vector<Run> all;
  Run r;
  while (read_within(runs.r, &r, sizeof r, 1s)) all.push_back(r);
  std::sort(all.begin(), all.end(), [](const Run& a, const Run& b) { return a.ns < b.ns; });
  EXPECT_GE(all.size(), 9u);
  EXPECT_LE(all.size(), 11u);
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto gap = std::chrono::nanoseconds(all[i].ns - all[i - 1].ns);
    EXPECT_GE(gap, kInterval - 2ms) << "runs " << i - 1 << " (pid " << all[i - 1].pid << ") and " << i << " (pid "
                                    << all[i].pid << ")";
  }
}

TEST_F(NodeWide, FourProcessesPollingRunOncePerInterval) {
  race(name, true);
}

TEST_F(NodeWide, FourProcessesOnTheirGridsRunOncePerInterval) {
  race(name, false);
}

}  // namespace
