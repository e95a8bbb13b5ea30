// RecurringTimer: the grid (no drift), jitter, immediate, one-shot, runs that last (skipped
// checks, no overlap, no burst), the gate, cancel and destruction from inside callbacks,
// a Run outliving its timer, validation and hostile durations.
#include <corio/loop.hpp>
#include <corio/recurring_timer.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::CancelReason;
using corio::Clock;
using corio::Duration;
using corio::Loop;
using corio::RecurringTimer;
using corio::TimePoint;
using corio::Timer;
using corio_test::ms;
using corio_test::run_until;

using RecurringTimerTest = corio_test::LoopFixture;

// Upper bound of lateness on a loaded 2-core machine (lower bounds are exact).
constexpr Duration kLate = 30ms;

RecurringTimer::Options every(Duration interval) {
  RecurringTimer::Options o;
  o.interval = interval;
  o.recurring = true;
  return o;
}

// The constructor's t0 lies between two clock readings around it.
struct Start {
  TimePoint before, after;
};

TEST_F(RecurringTimerTest, ChecksStayOnTheGridWithoutDrift) {
  // Each run takes 3 ms: a timer that re-armed from "now" would drift 3 ms per run.
  constexpr Duration kStep = 10ms;
  constexpr int kRuns = 20;
  std::vector<TimePoint> at;
  Start s{Clock::now(), {}};
  RecurringTimer t(loop, every(kStep), [&](RecurringTimer::Run) {
    at.push_back(Clock::now());
    std::this_thread::sleep_for(3ms);
  });
  s.after = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return at.size() >= kRuns; }, 3s));
  t.cancel();
  for (int k = 1; k <= kRuns; ++k) {
    TimePoint due_min = s.before + k * kStep, due_max = s.after + k * kStep;
    EXPECT_GE(at[k - 1], due_min) << "run " << k << " early";
    EXPECT_LT(at[k - 1], due_max + kLate) << "run " << k << " late by " << ms(at[k - 1] - due_max) << " ms";
  }
  EXPECT_EQ(t.runs(), static_cast<std::uint64_t>(kRuns));
  EXPECT_EQ(t.skipped(), 0u);
}

TEST_F(RecurringTimerTest, JitterDelaysTheFirstCheckWithinBoundsAndKeepsTheGrid) {
  constexpr int kTimers = 60;
  constexpr Duration kInterval = 5ms, kJitter = 20ms;
  RecurringTimer::Options o = every(kInterval);
  o.jitter = kJitter;
  std::vector<std::unique_ptr<RecurringTimer>> timers;
  std::vector<TimePoint> first(kTimers), second(kTimers);
  std::vector<std::optional<TimePoint>> ran(kTimers);
  Start s{Clock::now(), {}};
  for (int i = 0; i < kTimers; ++i)
    timers.push_back(std::make_unique<RecurringTimer>(loop, o, [&ran, i](RecurringTimer::Run) {
      if (!ran[i]) ran[i] = Clock::now();
    }));
  s.after = Clock::now();
  Duration lo = Duration::max(), hi = Duration::min();
  for (int i = 0; i < kTimers; ++i) {
    first[i] = timers[i]->next();
    EXPECT_GE(first[i], s.before + kInterval);
    EXPECT_LE(first[i], s.after + kInterval + kJitter);
    lo = std::min(lo, first[i] - s.before);
    hi = std::max(hi, first[i] - s.before);
  }
  EXPECT_GT(hi - lo, kJitter / 2) << "60 uniform draws over 20 ms spread over less than 10 ms";
  ASSERT_TRUE(run_until(loop, [&] { return std::all_of(ran.begin(), ran.end(), [](auto& r) { return r.has_value(); }); }));
  for (int i = 0; i < kTimers; ++i) {
    EXPECT_GE(*ran[i], first[i]);
    EXPECT_LT(*ran[i], first[i] + kLate);
    // one draw per timer: later checks stay on its grid, a whole number of intervals on
    EXPECT_EQ((timers[i]->next() - first[i]) % kInterval, Duration::zero());
    EXPECT_GT(timers[i]->next(), first[i]);
  }
}

TEST_F(RecurringTimerTest, ImmediateRunsOnTheNextTurnAndJitterDelaysTheSecond) {
  constexpr Duration kInterval = 40ms, kJitter = 30ms;
  RecurringTimer::Options o = every(kInterval);
  o.jitter = kJitter;
  o.immediate = true;
  std::vector<TimePoint> at;
  Start s{Clock::now(), {}};
  RecurringTimer t(loop, o, [&](RecurringTimer::Run) { at.push_back(Clock::now()); });
  s.after = Clock::now();
  EXPECT_EQ(t.runs(), 0u) << "ran inside the constructor";
  EXPECT_LE(t.next(), s.after);
  loop.run_once(0ms);
  loop.run_once(0ms);
  ASSERT_EQ(at.size(), 1u) << "not run on the next turns";
  TimePoint second = t.next();
  EXPECT_GE(second, s.before + kInterval);
  EXPECT_LE(second, s.after + kInterval + kJitter);
  ASSERT_TRUE(run_until(loop, [&] { return at.size() >= 2; }));
  EXPECT_GE(at[1], second);
  EXPECT_EQ(t.next() - second, kInterval);
}

TEST_F(RecurringTimerTest, OneShotRunsOnceThenCancelStillTellsTheCallback) {
  std::vector<CancelReason> cancelled;
  int runs = 0;
  RecurringTimer::Options o;
  o.interval = 5ms;
  o.gate = [] { return false; };  // not consulted: one-shot timers have no gate
  Start s{Clock::now(), {}};
  TimePoint ran{};
  RecurringTimer t(
      loop, o, [&](RecurringTimer::Run) { ++runs, ran = Clock::now(); },
      [&](CancelReason r) { cancelled.push_back(r); });
  EXPECT_TRUE(t.active());
  loop.run();  // returns: the one-shot timer holds the loop no more after its run
  EXPECT_EQ(runs, 1);
  EXPECT_GE(ran, s.before + 5ms);
  EXPECT_FALSE(t.active());
  EXPECT_FALSE(t.running());
  EXPECT_EQ(t.next(), TimePoint::max());
  EXPECT_TRUE(t.cancel(CancelReason::gc));
  EXPECT_FALSE(t.cancel());
  EXPECT_EQ(cancelled, (std::vector<CancelReason>{CancelReason::gc}));
}

TEST_F(RecurringTimerTest, ARunThatLastsSkipsChecksWithoutOverlapOrBurst) {
  constexpr Duration kStep = 20ms;
  std::vector<TimePoint> at;
  std::vector<std::uint64_t> skipped_at;
  int alive = 0, overlaps = 0;
  std::optional<RecurringTimer::Run> held;
  Timer drop(loop);
  Start s{Clock::now(), {}};
  std::unique_ptr<RecurringTimer> t;
  t = std::make_unique<RecurringTimer>(loop, every(kStep), [&](RecurringTimer::Run run) {
    if (alive) ++overlaps;
    at.push_back(Clock::now());
    skipped_at.push_back(t->skipped());
    if (at.size() == 1) {  // the first run lasts 2.5 intervals
      ++alive;
      held.emplace(std::move(run));
      drop.start(kStep * 5 / 2, [&] {
        EXPECT_TRUE(t->running());
        held.reset();
        --alive;
        EXPECT_FALSE(t->running());
      });
    }
  });
  s.after = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return at.size() >= 4; }));
  t->cancel();
  EXPECT_EQ(overlaps, 0);
  // Checks 2 and 3 came while run 1 lasted (to 1 + 2.5); a late drop may cost one more.
  std::uint64_t skipped = skipped_at[1];
  EXPECT_GE(skipped, 2u);
  EXPECT_LE(skipped, 3u);
  // Then one run per grid point, on the grid: no catch-up burst.
  for (std::size_t i = 0; i < at.size(); ++i) {
    long long k = i == 0 ? 1 : static_cast<long long>(i + 1 + skipped);
    EXPECT_GE(at[i], s.before + k * kStep) << "run " << i;
    EXPECT_LT(at[i], s.after + k * kStep + kLate) << "run " << i << " not at its grid point " << k;
    if (i > 0) {
      EXPECT_EQ(skipped_at[i], skipped);
    }
  }
}

TEST_F(RecurringTimerTest, ASynchronousLongRunSkipsTheChecksItCovered) {
  constexpr Duration kStep = 10ms;
  std::vector<TimePoint> at;
  Start s{Clock::now(), {}};
  RecurringTimer t(loop, every(kStep), [&](RecurringTimer::Run) {
    at.push_back(Clock::now());
    if (at.size() == 1) std::this_thread::sleep_for(kStep * 5 / 2);
  });
  s.after = Clock::now();
  ASSERT_TRUE(run_until(loop, [&] { return at.size() >= 2; }));
  EXPECT_GE(t.skipped(), 2u);
  // the next check is the first grid point after the run: 1 + the skipped ones + 1
  long long k = static_cast<long long>(2 + t.skipped());
  EXPECT_GE(at[1], s.before + k * kStep);
  EXPECT_LT(at[1], s.after + k * kStep + kLate) << "second run off the grid";
  EXPECT_LE(at[1] - at[0], kStep * 5 / 2 + kStep + kLate);
}

TEST_F(RecurringTimerTest, TheGateDecidesEachCheckOfARecurringTimer) {
  int asked = 0, runs = 0;
  RecurringTimer::Options o = every(2ms);
  o.gate = [&] { return ++asked > 2; };
  RecurringTimer t(loop, o, [&](RecurringTimer::Run) {
    ++runs;
    EXPECT_GT(asked, 2);
  });
  ASSERT_TRUE(run_until(loop, [&] { return runs >= 3; }));
  EXPECT_EQ(asked, 5);
  EXPECT_EQ(t.runs(), 3u);
  EXPECT_EQ(t.skipped(), 0u);
}

TEST_F(RecurringTimerTest, ChecksComeEveryCheckWhenItIsShorterThanTheInterval) {
  // resty.timer's sub_interval: a gate that says no is asked again one check later.
  constexpr Duration kCheck = 5ms;
  RecurringTimer::Options o = every(40ms);
  o.check = kCheck;
  int asked = 0;
  o.gate = [&] { return ++asked == 3; };
  std::vector<TimePoint> at;
  Start s{Clock::now(), {}};
  RecurringTimer t(loop, o, [&](RecurringTimer::Run) { at.push_back(Clock::now()); });
  s.after = Clock::now();
  EXPECT_GE(t.next(), s.before + kCheck);
  EXPECT_LE(t.next(), s.after + kCheck);
  ASSERT_TRUE(run_until(loop, [&] { return !at.empty(); }));
  EXPECT_EQ(asked, 3);
  EXPECT_GE(at[0], s.before + 3 * kCheck);
  EXPECT_LT(at[0], s.after + 3 * kCheck + kLate);
  EXPECT_GE(t.next(), s.before + 4 * kCheck) << "the grid is the check's";
  EXPECT_LE(t.next(), s.after + 4 * kCheck) << "the grid is the check's";
  t.cancel();
}

TEST_F(RecurringTimerTest, ExceptionsFromCallbacksAreReportedAndTheTimerGoesOn) {
  std::vector<std::string> reported;
  corio_test::capture_exceptions(loop, reported);
  int runs = 0, asked = 0;
  RecurringTimer::Options o = every(2ms);
  o.gate = [&]() -> bool {
    if (++asked == 1) throw std::runtime_error("gate failed");
    return true;
  };
  RecurringTimer t(loop, o, [&](RecurringTimer::Run) {
    if (++runs == 1) throw std::runtime_error("expire failed");
  });
  ASSERT_TRUE(run_until(loop, [&] { return runs >= 3; }));
  EXPECT_EQ(reported, (std::vector<std::string>{"gate failed", "expire failed"}));
  EXPECT_FALSE(t.running());
  loop.set_exception_handler({});
}

TEST_F(RecurringTimerTest, CancelFromInsideExpire) {
  std::vector<CancelReason> cancelled;
  std::unique_ptr<RecurringTimer> t;
  t = std::make_unique<RecurringTimer>(
      loop, every(1ms),
      [&](RecurringTimer::Run) {
        EXPECT_TRUE(t->cancel(CancelReason::system));
        EXPECT_FALSE(t->active());
        EXPECT_TRUE(t->running());
      },
      [&](CancelReason r) { cancelled.push_back(r); });
  loop.run();  // ends: the cancelled timer is not re-armed
  EXPECT_EQ(t->runs(), 1u);
  EXPECT_FALSE(t->running());
  EXPECT_EQ(cancelled, (std::vector<CancelReason>{CancelReason::system}));
  EXPECT_STREQ(corio::cancel_reason_name(cancelled[0]), "SYSTEM");
}

TEST_F(RecurringTimerTest, CancelTwiceAndFromTheCancelCallback) {
  int calls = 0;
  std::unique_ptr<RecurringTimer> t;
  t = std::make_unique<RecurringTimer>(loop, every(1ms), [](RecurringTimer::Run) {}, [&](CancelReason) {
    ++calls;
    EXPECT_FALSE(t->cancel());  // already cancelled: no second call
  });
  EXPECT_TRUE(t->cancel());
  EXPECT_FALSE(t->cancel(CancelReason::gc));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(t->active());
  EXPECT_EQ(t->next(), TimePoint::max());
  loop.run();
  EXPECT_EQ(t->runs(), 0u);
}

TEST_F(RecurringTimerTest, DestroyedInsideExpireOrTheCancelCallback) {
  std::unique_ptr<RecurringTimer> a, b;
  int a_runs = 0;
  a = std::make_unique<RecurringTimer>(loop, every(1ms), [&](RecurringTimer::Run) {
    ++a_runs;
    a.reset();
  });
  b = std::make_unique<RecurringTimer>(loop, every(1ms), [](RecurringTimer::Run) {}, [&](CancelReason) { b.reset(); });
  EXPECT_TRUE(b->cancel());
  EXPECT_EQ(b, nullptr);
  loop.run();
  EXPECT_EQ(a, nullptr);
  EXPECT_EQ(a_runs, 1);
}

TEST_F(RecurringTimerTest, ARunOutlivesItsTimerHarmlessly) {
  std::optional<RecurringTimer::Run> kept;
  auto t = std::make_unique<RecurringTimer>(loop, every(1ms), [&](RecurringTimer::Run r) { kept.emplace(std::move(r)); });
  ASSERT_TRUE(run_until(loop, [&] { return kept.has_value(); }));
  EXPECT_TRUE(t->running());
  EXPECT_TRUE(static_cast<bool>(*kept));
  t.reset();  // stops silently; the run goes on, unobserved
  kept->finish();
  EXPECT_FALSE(static_cast<bool>(*kept));
  kept->finish();  // twice: harmless
  RecurringTimer::Run moved = std::move(*kept);
  EXPECT_FALSE(static_cast<bool>(moved));
}

TEST(RecurringTimerLoopTest, TheLoopMayDieFirst) {
  std::optional<RecurringTimer::Run> kept;
  std::unique_ptr<RecurringTimer> t;
  {
    Loop loop;
    t = std::make_unique<RecurringTimer>(loop, every(1ms), [&](RecurringTimer::Run r) { kept.emplace(std::move(r)); });
    ASSERT_TRUE(run_until(loop, [&] { return kept.has_value(); }));
  }
  EXPECT_TRUE(t->running());
  kept.reset();  // the run ends after its loop: nothing re-arms on the dead loop's queue
  EXPECT_FALSE(t->running());
  t.reset();
}

TEST_F(RecurringTimerTest, IntervalZeroRunsAtMostOncePerTurnAndWaitsForTheRun) {
  std::optional<RecurringTimer::Run> kept;
  int runs = 0;
  RecurringTimer t(loop, every(0ms), [&](RecurringTimer::Run r) {
    if (++runs == 3) kept.emplace(std::move(r));
  });
  EXPECT_EQ(runs, 0);
  for (int i = 0; i < 6; ++i) loop.run_once(0ms);
  EXPECT_EQ(runs, 3) << "one run per turn, none while the third lasts";
  EXPECT_TRUE(t.running());
  EXPECT_EQ(t.skipped(), 0u);
  EXPECT_EQ(t.next(), TimePoint::max());
  kept.reset();
  EXPECT_NE(t.next(), TimePoint::max());
  loop.run_once(0ms);
  EXPECT_EQ(runs, 4);
  t.cancel();
}

TEST_F(RecurringTimerTest, AnUnreferencedTimerDoesNotHoldRun) {
  int runs = 0;
  RecurringTimer t(loop, every(1ms), [&](RecurringTimer::Run) { ++runs; });
  t.unref();
  loop.run();  // returns at once
  EXPECT_EQ(runs, 0);
  EXPECT_TRUE(t.active());
  t.cancel();
}

TEST_F(RecurringTimerTest, ValidationNamesTheOption) {
  auto message = [&](RecurringTimer::Options o, RecurringTimer::Expire e = [](RecurringTimer::Run) {}) -> std::string {
    try {
      RecurringTimer t(loop, std::move(o), std::move(e));
    } catch (const std::invalid_argument& ex) {
      return ex.what();
    }
    return "(accepted)";
  };
  RecurringTimer::Options o = every(10ms);
  o.interval = -1ns;
  EXPECT_NE(message(o).find("interval"), std::string::npos) << message(o);
  o = every(10ms);
  o.jitter = -1ms;
  EXPECT_NE(message(o).find("jitter"), std::string::npos) << message(o);
  o = {};
  o.interval = 10ms;
  o.immediate = true;
  EXPECT_NE(message(o).find("immediate"), std::string::npos) << message(o);
  o = {};
  o.interval = 10ms;
  o.check = 5ms;
  EXPECT_NE(message(o).find("check"), std::string::npos) << message(o);
  o = every(10ms);
  o.check = 11ms;
  EXPECT_NE(message(o).find("check"), std::string::npos) << message(o);
  o.check = -1ms;
  EXPECT_NE(message(o).find("check"), std::string::npos) << message(o);
  EXPECT_NE(message(every(1ms), nullptr).find("expire"), std::string::npos);
  o = every(10ms);
  o.check = 10ms;
  EXPECT_EQ(message(o), "(accepted)");
}

TEST_F(RecurringTimerTest, HostileDurationsSaturateInsteadOfOverflowing) {
  TimePoint now = Clock::now();
  RecurringTimer::Options o = every(Duration::max());
  o.jitter = Duration::max();
  o.check = Duration::max();
  RecurringTimer huge(loop, o, [](RecurringTimer::Run) { ADD_FAILURE() << "ran"; });
  EXPECT_GT(huge.next(), now + std::chrono::hours(24 * 365 * 100));
  RecurringTimer::Options one;
  one.interval = Duration::max() - 1ns;
  RecurringTimer far(loop, one, [](RecurringTimer::Run) { ADD_FAILURE() << "ran"; });
  EXPECT_EQ(far.next(), TimePoint::max());
  o = every(corio::from_seconds(1e300));  // the Lua face's "forever"
  RecurringTimer lua_huge(loop, o, [](RecurringTimer::Run) { ADD_FAILURE() << "ran"; });
  EXPECT_GT(lua_huge.next(), now + std::chrono::hours(24 * 365 * 30));
  loop.run_once(1ms);  // nothing due: the loop waits without complaint
  o = every(Duration::min());
  EXPECT_THROW(RecurringTimer(loop, o, [](RecurringTimer::Run) {}), std::invalid_argument);
  o = every(1ms);
  o.jitter = Duration::min();
  EXPECT_THROW(RecurringTimer(loop, o, [](RecurringTimer::Run) {}), std::invalid_argument);
}

TEST(CancelReasonTest, Names) {
  EXPECT_STREQ(corio::cancel_reason_name(CancelReason::user), "USER");
  EXPECT_STREQ(corio::cancel_reason_name(CancelReason::gc), "GC");
  EXPECT_STREQ(corio::cancel_reason_name(CancelReason::system), "SYSTEM");
}

}  // namespace
