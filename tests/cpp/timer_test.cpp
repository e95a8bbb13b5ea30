// Timers: ordering, FIFO ties, cancellation (also from callbacks), self-restart,
// repetition, scale, precision, and the TimerQueue heap itself.
#include <corio/loop.hpp>
#include <corio/timer.hpp>
#include <corio/timer_queue.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::Loop;
using corio::TimePoint;
using corio::Timer;
using corio::TimerQueue;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using TimerTest = corio_test::LoopFixture;

TEST_F(TimerTest, FiresInDeadlineOrder) {
  std::vector<int> order;
  Timer a(loop), b(loop), c(loop), d(loop);
  const TimePoint base = Clock::now();
  // Armed out of order; c and d are already due so they fire in the first batch.
  a.start_at(base + 15ms, [&] { order.push_back(4); });
  b.start_at(base + 5ms, [&] { order.push_back(3); });
  c.start_at(base - 1ms, [&] { order.push_back(2); });
  d.start_at(base - 2ms, [&] { order.push_back(1); });
  EXPECT_EQ(loop.timer_count(), 4u);
  loop.run();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(loop.timer_count(), 0u);
  EXPECT_FALSE(a.active());
  EXPECT_GE(Clock::now(), base + 15ms);
}

TEST_F(TimerTest, EqualDeadlinesFireInArmingOrder) {
  constexpr int kN = 50;
  std::deque<Timer> timers;
  std::vector<int> order;
  const TimePoint when = Clock::now() + 2ms;
  // Arm in a scrambled index order: FIFO is by arming order, not by index or address.
  std::vector<int> idx(kN);
  std::iota(idx.begin(), idx.end(), 0);
  std::shuffle(idx.begin(), idx.end(), std::mt19937(7));
  for (int i = 0; i < kN; ++i) timers.emplace_back(loop);
  for (int i : idx) timers[i].start_at(when, [&order, i] { order.push_back(i); });
  // Re-arming moves a timer to the back of its deadline's queue.
  timers[idx[0]].start_at(when, [&order, i = idx[0]] { order.push_back(i); });
  loop.run();
  std::vector<int> expected(idx.begin() + 1, idx.end());
  expected.push_back(idx[0]);
  EXPECT_EQ(order, expected);
}

TEST_F(TimerTest, StopBeforeFiring) {
  int a_fired = 0, b_fired = 0;
  Timer a(loop), b(loop);
  a.start(1ms, [&] { ++a_fired; });
  b.start(3ms, [&] { ++b_fired; });
  EXPECT_TRUE(a.active());
  a.stop();
  EXPECT_FALSE(a.active());
  a.stop();  // stopping twice is harmless
  EXPECT_EQ(loop.timer_count(), 1u);
  loop.run();
  EXPECT_EQ(a_fired, 0);
  EXPECT_EQ(b_fired, 1);
}

TEST_F(TimerTest, DestroyedTimerDoesNotFire) {
  int fired = 0;
  {
    Timer t(loop);
    t.start(1ms, [&] { ++fired; });
  }
  EXPECT_EQ(loop.timer_count(), 0u);
  EXPECT_FALSE(loop.alive());
  loop.run();
  EXPECT_EQ(fired, 0);
}

TEST_F(TimerTest, StopFromAnotherCallbackInSameIteration) {
  std::vector<char> fired;
  Timer a(loop), b(loop), c(loop);
  const TimePoint base = Clock::now();
  // All three are due before the first iteration: one fire_timers batch.
  a.start_at(base - 3ms, [&] {
    fired.push_back('a');
    b.stop();
  });
  b.start_at(base - 2ms, [&] { fired.push_back('b'); });
  c.start_at(base - 1ms, [&] { fired.push_back('c'); });
  loop.run_once(0ms);
  EXPECT_EQ(fired, (std::vector<char>{'a', 'c'}));
  EXPECT_FALSE(b.active());
  EXPECT_FALSE(loop.alive());
}

TEST_F(TimerTest, DestroyFromAnotherCallbackInSameIteration) {
  std::vector<char> fired;
  Timer a(loop);
  auto b = std::make_unique<Timer>(loop);
  const TimePoint base = Clock::now();
  a.start_at(base - 2ms, [&] {
    fired.push_back('a');
    b.reset();
  });
  b->start_at(base - 1ms, [&] { fired.push_back('b'); });
  loop.run_once(0ms);
  EXPECT_EQ(fired, (std::vector<char>{'a'}));
  EXPECT_EQ(b, nullptr);
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST_F(TimerTest, RestartsItselfFromItsCallback) {
  Timer t(loop);
  std::vector<TimePoint> fired_at;
  int after_restart = 0;
  std::function<void()> cb;
  cb = [&] {
    EXPECT_FALSE(t.active());  // a one-shot timer is disarmed while its callback runs
    fired_at.push_back(Clock::now());
    if (fired_at.size() < 3) {
      t.start(2ms, cb);
      EXPECT_TRUE(t.active());
    }
    // Uses the closure after replacing the timer's callback: the running callback
    // must stay alive until it returns (ASan would flag a use after free).
    ++after_restart;
  };
  const TimePoint t0 = Clock::now();
  t.start(2ms, cb);
  loop.run();
  ASSERT_EQ(fired_at.size(), 3u);
  EXPECT_EQ(after_restart, 3);
  EXPECT_GE(fired_at[0] - t0, 2ms);
  EXPECT_GE(fired_at[1] - fired_at[0], 2ms);
  EXPECT_GE(fired_at[2] - fired_at[1], 2ms);
  EXPECT_FALSE(t.active());
}

TEST_F(TimerTest, RestartedWithANewCallback) {
  Timer t(loop);
  std::vector<int> calls;
  t.start(1ms, [&] {
    calls.push_back(1);
    t.start(1ms, [&] { calls.push_back(2); });
    calls.push_back(3);  // still in the first callback
  });
  loop.run();
  EXPECT_EQ(calls, (std::vector<int>{1, 3, 2}));
}

TEST_F(TimerTest, RestartedThenStoppedInItsCallbackDoesNotFireAgain) {
  Timer t(loop);
  int first = 0, second = 0;
  t.start(1ms, [&] {
    ++first;
    t.start(1ms, [&] { ++second; });
    t.stop();
    t.stop();
  });
  loop.run();
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 0);
  EXPECT_FALSE(t.active());
}

TEST_F(TimerTest, DestroysItselfFromItsCallback) {
  auto t = std::make_unique<Timer>(loop);
  int after = 0;
  t->start(1ms, [&] {
    t.reset();
    ++after;  // the closure must outlive its timer until it returns
  });
  loop.run();
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(after, 1);
}

TEST_F(TimerTest, RepeatingTimerDestroysItselfFromItsCallback) {
  auto t = std::make_unique<Timer>(loop);
  int ticks = 0, after = 0;
  t->start(
      1ms,
      [&] {
        if (++ticks == 3) t.reset();
        ++after;  // touches the closure after the reset
      },
      1ms);
  loop.run();
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(after, 3);
  EXPECT_EQ(loop.timer_count(), 0u);
}

TEST_F(TimerTest, RepeatingTimerTicksUntilStopped) {
  Timer t(loop);
  std::vector<TimePoint> ticks;
  const TimePoint t0 = Clock::now();
  t.start(
      1ms,
      [&] {
        EXPECT_TRUE(t.active());  // re-armed before its callback runs
        ticks.push_back(Clock::now());
        if (ticks.size() == 5) t.stop();
      },
      3ms);
  EXPECT_EQ(t.repeat(), 3ms);
  loop.run();
  ASSERT_EQ(ticks.size(), 5u);
  EXPECT_FALSE(t.active());
  // Tick k is due at t0 + 1 ms + k * 3 ms at the earliest (missed ticks are skipped,
  // never fired early).
  for (std::size_t k = 0; k < ticks.size(); ++k) EXPECT_GE(ticks[k] - t0, 1ms + 3ms * k) << "tick " << k;
  for (std::size_t k = 1; k < ticks.size(); ++k) EXPECT_GT(ticks[k], ticks[k - 1]);
}

TEST_F(TimerTest, RepeatingTimerCanBeStoppedByAnotherTimer) {
  Timer rep(loop), stopper(loop);
  int ticks = 0;
  const TimePoint t0 = Clock::now();
  rep.start(1ms, [&] { ++ticks; }, 1ms);
  stopper.start(30ms, [&] { rep.stop(); });
  loop.run();  // would never return if the repeating timer stayed armed
  EXPECT_GE(Clock::now() - t0, 30ms);
  EXPECT_GE(ticks, 1);
  EXPECT_FALSE(rep.active());
}

TEST_F(TimerTest, NegativeRepeatMeansOneShot) {
  Timer t(loop);
  int fired = 0;
  t.start(0ms, [&] { ++fired; }, -5ms);
  EXPECT_EQ(t.repeat(), Duration::zero());
  loop.run();
  EXPECT_EQ(fired, 1);
}

TEST_F(TimerTest, ZeroDelayTimerFiresOnNextIteration) {
  Timer t(loop);
  int fired = 0;
  t.start(0ms, [&] { ++fired; });
  EXPECT_EQ(fired, 0);  // never synchronously from start()
  EXPECT_TRUE(corio_test::run_until(loop, [&] { return fired == 1; }));
}

TEST_F(TimerTest, HundredThousandTimersHalfStopped) {
  constexpr std::size_t kN = 100'000;
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<long long> spread(0, 50'000'000 - 1);  // [0, 50 ms) in ns
  std::deque<Timer> timers;
  std::vector<int> hits(kN, 0);
  std::vector<TimePoint> fired_deadlines;
  fired_deadlines.reserve(kN);
  std::size_t early = 0;
  const TimePoint base = Clock::now();
  for (std::size_t i = 0; i < kN; ++i) {
    timers.emplace_back(loop);
    Timer& t = timers.back();
    t.start_at(base + std::chrono::nanoseconds(spread(rng)), [&, i] {
      ++hits[i];
      fired_deadlines.push_back(timers[i].deadline());
      if (Clock::now() < timers[i].deadline()) ++early;
    });
  }
  ASSERT_EQ(loop.timer_count(), kN);
  std::vector<std::size_t> order(kN);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> stopped(kN, false);
  for (std::size_t k = 0; k < kN / 2; ++k) {
    timers[order[k]].stop();
    stopped[order[k]] = true;
  }
  ASSERT_EQ(loop.timer_count(), kN - kN / 2);

  loop.run();

  EXPECT_EQ(loop.timer_count(), 0u);
  EXPECT_EQ(fired_deadlines.size(), kN - kN / 2);
  EXPECT_TRUE(std::is_sorted(fired_deadlines.begin(), fired_deadlines.end()));
  EXPECT_EQ(early, 0u);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < kN; ++i)
    if (hits[i] != (stopped[i] ? 0 : 1)) ++wrong;
  EXPECT_EQ(wrong, 0u);
}

TEST_F(TimerTest, TenMillisecondTimerIsNeverEarly) {
  for (int round = 0; round < 3; ++round) {
    Timer t(loop);
    TimePoint fired_at{};
    const TimePoint t0 = Clock::now();
    t.start(10ms, [&] { fired_at = Clock::now(); });
    loop.run();
    const Duration took = fired_at - t0;
    EXPECT_GE(took, 10ms) << "fired after " << std::chrono::nanoseconds(took).count() << " ns";
    EXPECT_LT(took, 100ms) << "fired after " << ms(took) << " ms";
  }
}

TEST(Clock, FromSecondsNeverRoundsDown) {
  using corio::from_seconds;
  EXPECT_EQ(from_seconds(0), Duration::zero());
  EXPECT_EQ(from_seconds(-1.5), Duration::zero());
  EXPECT_EQ(from_seconds(std::numeric_limits<double>::quiet_NaN()), Duration::zero());
  EXPECT_EQ(from_seconds(1e300), std::chrono::seconds(1'000'000'000));  // clamped, no overflow
  EXPECT_EQ(from_seconds(1.5), 1500ms);
  EXPECT_EQ(from_seconds(1e-9), std::chrono::nanoseconds(1));
  EXPECT_EQ(from_seconds(1e-10), std::chrono::nanoseconds(1));  // a positive wait is never zero
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> any(0.0, 100.0);
  int short_waits = 0;
  for (int i = 0; i < 10000; ++i) {
    const double s = any(rng);
    const long long ns = from_seconds(s).count();
    if (static_cast<double>(ns) < s * 1e9) ++short_waits;
    EXPECT_LE(static_cast<double>(ns), s * 1e9 + 1.0) << s;
  }
  EXPECT_EQ(short_waits, 0);
  EXPECT_DOUBLE_EQ(corio::to_seconds(2500ms), 2.5);
}

// ---- TimerQueue directly ----

// Timers given deadlines (and sequence numbers) by their loop, then handed to a separate
// TimerQueue. The guard empties that queue first, so ~Timer never sees a foreign index.
struct QueueFixture {
  Loop loop;
  std::deque<Timer> timers;
  TimerQueue q;
  struct Drain {
    TimerQueue& q;
    ~Drain() {
      while (!q.empty()) q.erase(q.top());
    }
  } drain{q};
  ~QueueFixture() { corio_test::expect_closes(loop); }  // the timers were only lent to q

  Timer& make(TimePoint deadline) {
    timers.emplace_back(loop);
    Timer& t = timers.back();
    t.start_at(deadline, [] {});
    t.stop();  // keeps deadline and sequence, frees the index for our queue
    return t;
  }
};

// Random pushes and erases of timers with deadlines from `deadline`; the top is checked
// against a reference after every step, then the queue is drained in order.
void random_push_erase(unsigned seed, const std::function<TimePoint(std::mt19937&)>& deadline) {
  QueueFixture f;
  std::mt19937 rng(seed);
  constexpr int kN = 3000;
  std::vector<Timer*> all;
  for (int i = 0; i < kN; ++i) all.push_back(&f.make(deadline(rng)));
  // Reference: (deadline, arming order) — arming order is the index in `all`.
  std::set<std::pair<TimePoint, int>> ref;
  std::vector<int> in, out(kN);
  std::iota(out.begin(), out.end(), 0);
  std::shuffle(out.begin(), out.end(), rng);
  auto check_top = [&] {
    ASSERT_EQ(f.q.size(), ref.size());
    ASSERT_EQ(f.q.empty(), ref.empty());
    if (ref.empty()) return;
    ASSERT_EQ(f.q.top(), all[ref.begin()->second]);
    ASSERT_EQ(f.q.next_deadline(), ref.begin()->first);
  };
  for (int step = 0; step < 4 * kN; ++step) {
    bool do_push = !out.empty() && (in.empty() || rng() % 3 != 0);
    if (do_push) {
      int i = out.back();
      out.pop_back();
      f.q.push(all[i]);
      ref.emplace(all[i]->deadline(), i);
      in.push_back(i);
    } else if (!in.empty()) {
      std::size_t k = rng() % in.size();
      if (rng() % 3 == 0)  // the top, as firing does: moves the wheel's window on
        k = static_cast<std::size_t>(std::find(in.begin(), in.end(), ref.begin()->second) - in.begin());
      int i = in[k];
      in[k] = in.back();
      in.pop_back();
      f.q.erase(all[i]);
      ref.erase({all[i]->deadline(), i});
      out.push_back(i);
    }
    check_top();
    if (testing::Test::HasFatalFailure()) return;
  }
  // Drain by popping the top: strictly increasing (deadline, arming order).
  std::pair<TimePoint, int> prev{TimePoint::min(), -1};
  while (!f.q.empty()) {
    Timer* t = f.q.top();
    int i = static_cast<int>(std::find(all.begin(), all.end(), t) - all.begin());
    std::pair<TimePoint, int> cur{t->deadline(), i};
    EXPECT_LT(prev, cur);
    prev = cur;
    f.q.erase(t);
  }
}

TEST(TimerQueue, TopIsAlwaysTheMinimumUnderRandomPushAndErase) {
  // Few distinct deadlines, so ties (broken by arming order) are common.
  const TimePoint base = Clock::now();
  random_push_erase(99, [base](std::mt19937& rng) {
    return base + std::chrono::microseconds(std::uniform_int_distribution<int>(0, 200)(rng));
  });
}

// Deadlines spread over the past (straight into the heap), the wheel's window of slots and
// beyond it (the heap again), with ties inside slots: the wheel's slots, its moves into
// the heap and erases from either side keep the exact order.
TEST(TimerQueue, ExactOrderAcrossTheWheelAndTheHeap) {
  // A whole second, so that whole multiples of 4 ms fall on slot boundaries too.
  const TimePoint base = std::chrono::ceil<std::chrono::seconds>(Clock::now());
  random_push_erase(7, [base](std::mt19937& rng) {
    if (rng() % 2 == 0) {  // ties, many at a slot's first instant, some beyond the window at first
      int k = std::uniform_int_distribution<int>(-5, 200)(rng);
      return base + std::chrono::milliseconds(4 * (k <= 100 ? k : k + 1000));
    }
    return base + std::chrono::microseconds(std::uniform_int_distribution<int>(-50'000, 6'000'000)(rng));
  });
}

TEST(TimerQueue, EraseTopMiddleAndLast) {
  QueueFixture f;
  const TimePoint base = Clock::now();
  std::vector<Timer*> t;
  for (int i = 0; i < 10; ++i) t.push_back(&f.make(base + std::chrono::milliseconds(10 - i)));
  for (Timer* x : t) f.q.push(x);
  EXPECT_EQ(f.q.top(), t[9]);
  f.q.erase(t[9]);  // the top
  EXPECT_EQ(f.q.top(), t[8]);
  f.q.erase(t[0]);  // the latest deadline
  f.q.erase(t[4]);  // somewhere in the middle
  EXPECT_EQ(f.q.size(), 7u);
  std::vector<Timer*> popped;
  while (!f.q.empty()) {
    popped.push_back(f.q.top());
    f.q.erase(f.q.top());
  }
  EXPECT_EQ(popped, (std::vector<Timer*>{t[8], t[7], t[6], t[5], t[3], t[2], t[1]}));
}

}  // namespace

namespace {

// A callback that re-arms its timer in the past must not monopolise the loop: each pass
// fires only timers armed before it, so the other timer and run_once() still get their turn.
TEST_F(TimerTest, RearmingInThePastDoesNotStarveTheLoop) {
  corio::Timer greedy(loop), other(loop);
  int greedy_runs = 0;
  bool other_ran = false;
  std::function<void()> again = [&] {
    if (++greedy_runs < 1000) greedy.start_at(corio::Clock::now() - 1ms, again);
  };
  greedy.start(0ms, again);
  other.start(0ms, [&] { other_ran = true; });
  int iterations = 0;
  while (!other_ran && iterations < 100) {
    loop.run_once(50ms);
    ++iterations;
  }
  EXPECT_TRUE(other_ran);
  EXPECT_LT(greedy_runs, 10) << "the greedy timer ran many times in one pass";
  greedy.stop();
}

// The callback survives its timer being stopped and restarted without a new callback.
TEST_F(TimerTest, RepeatingCallbackKeptAcrossTicks) {
  corio::Timer t(loop);
  int ticks = 0;
  t.start(1ms, [&] { if (++ticks == 3) t.stop(); }, 1ms);
  loop.run();
  EXPECT_EQ(ticks, 3);
}

}  // namespace

namespace {

TEST_F(TimerTest, UnreferencedTimerDoesNotHoldRun) {
  corio::Timer background(loop), work(loop);
  bool background_fired = false, work_fired = false;
  background.start(10s, [&] { background_fired = true; });
  background.unref();
  work.start(1ms, [&] { work_fired = true; });
  auto t0 = corio::Clock::now();
  loop.run();
  EXPECT_TRUE(work_fired);
  EXPECT_FALSE(background_fired);
  EXPECT_LT(corio::Clock::now() - t0, 1s);
  EXPECT_TRUE(background.active());  // still armed: it fires if the loop is run on
}

}  // namespace
