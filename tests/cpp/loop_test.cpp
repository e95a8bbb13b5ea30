// Loop: lifetime of run(), run_once timeouts, call_soon/post ordering and threading,
// stop(), exception routing, and an idle loop's CPU cost.
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::Loop;
using corio::TimePoint;
using corio::Timer;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using LoopTest = corio_test::LoopFixture;
using LoopIdle = corio_test::LoopFixture;

TEST_F(LoopTest, RunReturnsAtOnceWithNothingToDo) {
  EXPECT_FALSE(loop.alive());
  const TimePoint t0 = Clock::now();
  loop.run();
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(LoopTest, RunReturnsWhenTheLastTimerHasFired) {
  Timer t(loop);
  int fired = 0;
  const TimePoint t0 = Clock::now();  // before start(): the deadline is later
  t.start(5ms, [&] { ++fired; });
  EXPECT_TRUE(loop.alive());
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_GE(Clock::now() - t0, 5ms);
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, RunOnceWithNothingWaitsForTheTimeout) {
  const TimePoint t0 = Clock::now();
  EXPECT_FALSE(loop.run_once(30ms));
  const Duration took = Clock::now() - t0;
  EXPECT_GE(took, 30ms);
  EXPECT_LT(took, 1s) << ms(took) << " ms";
}

TEST_F(LoopTest, RunOnceReturnsEarlyForAnEarlierTimer) {
  Timer t(loop);
  bool fired = false;
  const TimePoint t0 = Clock::now();
  t.start(10ms, [&] { fired = true; });
  EXPECT_TRUE(loop.run_once(5s));
  EXPECT_TRUE(fired);
  const Duration took = Clock::now() - t0;
  EXPECT_GE(took, 10ms);
  EXPECT_LT(took, 2s);
}

TEST_F(LoopTest, RunOnceTimeoutShorterThanTimerFiresNothing) {
  Timer t(loop);
  bool fired = false;
  t.start(10s, [&] { fired = true; });
  const TimePoint t0 = Clock::now();
  EXPECT_FALSE(loop.run_once(10ms));
  EXPECT_GE(Clock::now() - t0, 10ms);
  EXPECT_FALSE(fired);
  EXPECT_TRUE(t.active());
}

TEST_F(LoopTest, CallSoonRunsInOrder) {
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.call_soon([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty());  // never synchronously
  EXPECT_TRUE(loop.alive());
  EXPECT_TRUE(loop.run_once(0ms));
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, CallbackQueuedFromCallbackRunsOnTheNextIteration) {
  std::vector<std::string> log;
  loop.call_soon([&] {
    log.push_back("a");
    loop.call_soon([&] { log.push_back("c"); });
  });
  loop.call_soon([&] { log.push_back("b"); });
  EXPECT_TRUE(loop.run_once(0ms));
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(loop.alive());
  EXPECT_TRUE(loop.run_once(0ms));
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, SelfRequeuingCallbackDoesNotStarveTimers) {
  Timer t(loop);
  bool fired = false;
  int spins = 0;
  std::function<void()> spin = [&] {
    ++spins;
    if (!fired) loop.call_soon(spin);
  };
  loop.call_soon(spin);
  t.start(5ms, [&] { fired = true; });
  EXPECT_TRUE(corio_test::run_until(loop, [&] { return fired; }, 5s));
  EXPECT_GT(spins, 1);
  loop.run();  // the last queued spin sees `fired` and stops requeuing
}

TEST_F(LoopTest, NestedRunOnceFromACallbackRunsEachCallbackOnce) {
  // A callback may run the loop again (the Lua event sets do): callbacks of the outer
  // batch must neither run twice nor be lost, and ones queued meanwhile run once.
  std::vector<std::string> log;
  int outer1_calls = 0;
  loop.call_soon([&] {
    log.push_back("outer1");
    if (++outer1_calls > 1) return;  // run twice: fail below rather than loop forever
    loop.call_soon([&] { log.push_back("queued-by-outer1"); });
    loop.run_once(0ms);
    for (int i = 0; i < 64; ++i) loop.call_soon([] {});  // grow the queue after nesting
    log.push_back("outer1-end");
  });
  loop.call_soon([&] { log.push_back("outer2"); });
  loop.run();
  EXPECT_EQ(log, (std::vector<std::string>{"outer1", "queued-by-outer1", "outer1-end", "outer2"}));
}

TEST_F(LoopTest, StopFromATimerCallback) {
  Timer t(loop);
  int ticks = 0;
  t.start(1ms, [&] {
    if (++ticks == 3) loop.stop();
  }, 1ms);
  loop.run();
  EXPECT_EQ(ticks, 3);
  EXPECT_TRUE(t.active());  // stop() ends run(), not the work
  // A new run() starts afresh.
  loop.call_soon([&] { loop.stop(); });
  loop.run();
  t.stop();
  loop.run();
  EXPECT_GE(ticks, 3);
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, StopWhileHeld) {
  loop.hold();
  EXPECT_TRUE(loop.alive());
  bool ran = false;
  loop.call_soon([&] {
    ran = true;
    loop.stop();
  });
  loop.run();  // would block forever without stop()
  EXPECT_TRUE(ran);
  EXPECT_TRUE(loop.alive());
  loop.release();
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, PostFromAnotherThreadWakesABlockedLoop) {
  loop.hold();
  // Only bounds the test if the wakeup is broken (then the post runs ~5 s late).
  Timer watchdog(loop);
  watchdog.start(5s, [] {});
  std::atomic<long long> posted_ns{0};
  TimePoint woke{};
  std::thread::id ran_on;
  const TimePoint t0 = Clock::now();
  std::thread poster([&] {
    std::this_thread::sleep_for(50ms);
    posted_ns = Clock::now().time_since_epoch().count();
    loop.post([&] {
      woke = Clock::now();
      ran_on = std::this_thread::get_id();
      loop.release();
      watchdog.stop();
    });
  });
  loop.run();  // blocks in the poller: only the post can end it early
  poster.join();
  const TimePoint posted{Duration(posted_ns.load())};
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_GE(woke - t0, 50ms);
  EXPECT_GE(woke, posted);
  EXPECT_LT(woke - posted, 1s) << "woke " << ms(woke - posted) << " ms after the post";
  EXPECT_FALSE(loop.alive());
}

TEST_F(LoopTest, PostBeforeRunIsNotLost) {
  bool ran = false;
  std::thread([&] { loop.post([&] { ran = true; }); }).join();
  EXPECT_TRUE(corio_test::run_until(loop, [&] { return ran; }, 2s));
}

TEST_F(LoopTest, ManyPostsFromFourThreadsEachRunOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10'000;
  std::vector<std::vector<int>> hits(kThreads, std::vector<int>(kPerThread, 0));
  std::vector<int> last(kThreads, -1);
  int out_of_order = 0;
  int done = 0;
  loop.hold();
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        loop.post([&, t, i] {
          ++hits[t][i];
          if (i <= last[t]) ++out_of_order;  // one thread's posts run in its order
          last[t] = i;
          if (++done == kThreads * kPerThread) {
            loop.release();
            loop.stop();  // ends run() although the watchdog is still armed
          }
        });
      }
    });
  }
  bool watchdog_fired = false;
  Timer watchdog(loop);
  watchdog.start(20s, [&] {
    watchdog_fired = true;
    loop.stop();
  });
  go = true;
  loop.run();
  for (auto& th : threads) th.join();
  watchdog.stop();
  EXPECT_FALSE(watchdog_fired);
  EXPECT_EQ(done, kThreads * kPerThread);
  EXPECT_EQ(out_of_order, 0);
  int wrong = 0;
  for (auto& v : hits)
    for (int h : v)
      if (h != 1) ++wrong;
  EXPECT_EQ(wrong, 0);
}

TEST_F(LoopTest, ExceptionGoesToTheHandlerAndTheLoopGoesOn) {
  std::vector<std::string> errors;
  corio_test::capture_exceptions(loop, errors);
  std::vector<int> ran;
  loop.call_soon([&] { ran.push_back(1); });
  loop.call_soon([] { throw std::runtime_error("boom"); });
  loop.call_soon([&] { ran.push_back(2); });
  Timer a(loop), b(loop);
  a.start(1ms, [] { throw std::logic_error("timer boom"); });
  b.start(2ms, [&] { ran.push_back(3); });
  loop.call_soon([] { throw 42; });
  loop.run();
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(errors, (std::vector<std::string>{"boom", "<non-std exception>", "timer boom"}));
}

TEST_F(LoopTest, DefaultExceptionHandlerPrintsToStderr) {
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("printed-by-default"); });
  loop.call_soon([] { throw 7; });
  loop.call_soon([&] { after = true; });
  testing::internal::CaptureStderr();
  loop.run();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_NE(err.find("printed-by-default"), std::string::npos) << err;
  EXPECT_NE(err.find("unknown type"), std::string::npos) << err;
}

TEST_F(LoopTest, ThrowingHandlerFallsBackToStderr) {
  loop.set_exception_handler([](std::exception_ptr) { throw std::runtime_error("handler failed"); });
  bool after = false;
  loop.call_soon([] { throw std::runtime_error("original"); });
  loop.call_soon([&] { after = true; });
  testing::internal::CaptureStderr();
  loop.run();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(after);
  EXPECT_NE(err.find("handler failed"), std::string::npos) << err;
}

TEST_F(LoopTest, HoldKeepsRunGoingUntilReleased) {
  loop.hold();
  Timer t(loop);
  int fired = 0;
  const TimePoint t0 = Clock::now();
  t.start(20ms, [&] {
    ++fired;
    loop.release();
  });
  loop.run();
  EXPECT_EQ(fired, 1);
  EXPECT_GE(Clock::now() - t0, 20ms);
  EXPECT_FALSE(loop.alive());
}

// The poller's descriptor replaced behind the loop's back: epoll_wait fails (EINVAL) on every
// call. The failure is reported once and run() returns, where it used to retry forever at
// 100% CPU. A post runs on every iteration, so the watchdog ends a spinning run() in 2 s.
TEST_F(LoopTest, APollerFailureIsReportedAndRunReturns) {
  const std::set<int> before = corio_test::descriptors_linked_to("anon_inode:[eventpoll]");
  Loop loop;  // not the fixture's: its descriptor is the one made now
  std::vector<int> made;
  for (int fd : corio_test::descriptors_linked_to("anon_inode:[eventpoll]"))
    if (!before.count(fd)) made.push_back(fd);
  ASSERT_EQ(made.size(), 1u) << "the loop's epoll descriptor";
  std::vector<std::string> errors;
  corio_test::capture_exceptions(loop, errors);
  Timer t(loop);
  t.start(10s, [] {});  // something to run for
  const int other = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_EQ(::dup2(other, made[0]), made[0]);
  ::close(other);

  std::atomic<bool> returned{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 200 && !returned; ++i) std::this_thread::sleep_for(10ms);
    if (!returned) loop.post([&] { loop.stop(); });
  });
  const TimePoint t0 = Clock::now();
  loop.run();
  const Duration took = Clock::now() - t0;
  returned = true;
  watchdog.join();

  EXPECT_LT(took, 1s) << "run() went on for " << ms(took) << " ms";
  EXPECT_EQ(loop.error(), std::errc::invalid_argument) << loop.error().message();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("waiting for events failed"), std::string::npos) << errors[0];
  EXPECT_FALSE(loop.alive());
  // Broken for good: run_once() neither waits nor reports again.
  const TimePoint t1 = Clock::now();
  EXPECT_FALSE(loop.run_once(5s));
  EXPECT_LT(Clock::now() - t1, 1s);
  EXPECT_EQ(errors.size(), 1u);
  t.stop();
  corio_test::expect_closes(loop);  // nothing left: a broken loop closes too
}

TEST_F(LoopTest, CurrentIsOnePerThread) {
  Loop* mine = &Loop::current();
  EXPECT_EQ(mine, &Loop::current());
  Loop* other = nullptr;
  std::thread([&] { other = &Loop::current(); }).join();
  EXPECT_NE(other, nullptr);
  EXPECT_NE(other, mine);
}

Duration cpu_time() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& v) { return std::chrono::seconds(v.tv_sec) + std::chrono::microseconds(v.tv_usec); };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

TEST_F(LoopIdle, TwoSecondTimerCostsNoCpu) {
  Timer t(loop);
  int fired = 0;
  const Duration cpu0 = cpu_time();
  const TimePoint t0 = Clock::now();
  t.start(2s, [&] { ++fired; });
  loop.run();
  const Duration wall = Clock::now() - t0;
  const Duration cpu = cpu_time() - cpu0;
  EXPECT_EQ(fired, 1);
  EXPECT_GE(wall, 2s);
  EXPECT_LT(cpu, 50ms) << "an idle loop burned " << ms(cpu) << " ms of CPU in " << ms(wall) << " ms";
}

}  // namespace
