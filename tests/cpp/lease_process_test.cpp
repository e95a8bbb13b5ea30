// LeaseTable across processes: a region opened by several, processes that die inside the
// lock, while holding a lease, or anywhere in an update, and fork() beside another thread.
// Every child is bounded (alarm) and reaped, whatever an assertion does.
#include <corio/lease_table.hpp>

#include <atomic>
#include <string>
#include <thread>

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

using LeaseProcessTest = corio_test::LeaseFixture;

// Two processes open the region each for itself (not the table a fork inherits): the
// first's mapping must not keep the layout's flock from the second.
TEST_F(LeaseProcessTest, AProcessOpensARegionAnotherHasMapped) {
  corio_test::Pipe ready, done;
  ASSERT_TRUE(ready.ok() && done.ok());
  Child first([&] {
    std::error_code ec;
    auto t = LeaseTable::open(name, ec);
    if (!t || !t->try_acquire("first", 1h, ec)) return 1;
    ready.put();
    char c;
    return read_within(done.r, &c, 1) ? 0 : 2;  // keeps its mapping until told
  });
  char c;
  ASSERT_TRUE(read_within(ready.r, &c, 1));
  Child second([&] {
    std::error_code ec;
    auto t = LeaseTable::open(name, ec);
    if (!t) return 10 + ec.value();
    return t->try_acquire("first", 1h, ec) || ec ? 3 : 0;
  });
  const int status = second.wait();
  done.put();
  EXPECT_TRUE(exited_ok(status)) << "status " << status;
  EXPECT_TRUE(exited_ok(first.wait()));
  auto t = open_table();  // and this process, third
  ASSERT_TRUE(t);
  std::error_code ec;
  EXPECT_FALSE(t->try_acquire("first", 1h, ec));
  EXPECT_FALSE(ec) << ec.message();
}

// A child that takes the lock and is stopped: the lock is busy for the others (after
// kLockWait, not sooner, not forever); killed, its lock is recovered at once and the
// table is whole.
TEST_F(LeaseProcessTest, AHolderOfTheLockStoppedIsBusyKilledIsRecovered) {
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  ASSERT_TRUE(t->try_acquire("before", 1h, ec));
  corio_test::Pipe ready;
  ASSERT_TRUE(ready.ok());
  Child child([&] {
    if (LeaseTableAccess::lock(*t)) return 1;
    ready.put();
    for (;;) ::pause();
  });
  char c;
  ASSERT_TRUE(read_within(ready.r, &c, 1));
  child.kill(SIGSTOP);
  TimePoint t0 = Clock::now();
  EXPECT_FALSE(t->try_acquire("after", 1h, ec));
  Duration waited = Clock::now() - t0;
  EXPECT_EQ(ec, LeaseError::busy);
  EXPECT_EQ(ec.message(), "lease lock busy");
  EXPECT_GE(waited, LeaseTable::kLockWait);
  EXPECT_LT(waited, LeaseTable::kLockWait + 200ms);
  child.kill(SIGKILL);
  EXPECT_NE(child.wait(), -1);
  t0 = Clock::now();
  EXPECT_TRUE(t->try_acquire("after", 1h, ec)) << ec.message();
  EXPECT_LT(Clock::now() - t0, LeaseTable::kLockWait + 200ms);
  // Consistent: the lock works as before, the old lease is there, a live lease holds.
  EXPECT_FALSE(t->try_acquire("before", 1h, ec));
  EXPECT_FALSE(ec);
  auto l = t->lease("before", ec);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->holder, ::getpid());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(t->try_acquire("k" + std::to_string(i), 1h, ec)) << ec.message();
}

// A child killed inside the lock while the parent waits for it: the waiter is woken.
TEST_F(LeaseProcessTest, AWaiterIsWokenWhenTheHolderOfTheLockDies) {
  auto t = open_table();
  ASSERT_TRUE(t);
  corio_test::Pipe ready;
  Child child([&] {
    if (LeaseTableAccess::lock(*t)) return 1;
    ready.put();
    ::usleep(30000);
    ::raise(SIGKILL);
    return 2;
  });
  char c;
  ASSERT_TRUE(read_within(ready.r, &c, 1));
  std::error_code ec;
  const TimePoint t0 = Clock::now();
  EXPECT_TRUE(t->try_acquire("k", 1h, ec)) << ec.message();
  EXPECT_LT(Clock::now() - t0, LeaseTable::kLockWait);
  const int status = child.wait();
  EXPECT_TRUE(status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// A child killed while holding a lease: the lease stays its until it expires, then the
// next process takes it.
TEST_F(LeaseProcessTest, ALeaseOfAKilledHolderIsTakenWhenItExpires) {
  auto t = open_table();
  ASSERT_TRUE(t);
  corio_test::Pipe ready;
  Child child([&] {
    std::error_code ec;
    if (!t->try_acquire("job", 200ms, ec)) return 1;
    ready.put();
    for (;;) ::pause();
  });
  char c;
  ASSERT_TRUE(read_within(ready.r, &c, 1));
  child.kill(SIGKILL);
  EXPECT_NE(child.wait(), -1);
  std::error_code ec;
  auto l = t->lease("job", ec);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->holder, child.pid());
  TimePoint taken{};
  while (Clock::now() < l->until + 300ms) {
    if (t->try_acquire("job", 1h, ec)) {
      taken = Clock::now();
      break;
    }
    ASSERT_FALSE(ec) << ec.message();
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_NE(taken, TimePoint{}) << "not taken within ttl + 300 ms";
  EXPECT_GE(taken, l->until);
  EXPECT_EQ(t->lease("job", ec)->holder, ::getpid());
}

// A child inserting, taking and erasing keys without pause, killed at 30 moments: after
// each, every half-done update it left is harmless — each key is there at most once, and
// once they are erased all 1024 slots can be had (no slot lost to a torn key).
TEST_F(LeaseProcessTest, KilledAtRandomMomentsLeavesATableThatWorks) {
  auto t = open_table();
  ASSERT_TRUE(t);
  constexpr int kKeys = 500;
  std::error_code ec;
  for (int round = 0; round < 30; ++round) {
    corio_test::Pipe ready;
    Child child([&] {
      std::error_code cec;
      ready.put();
      for (unsigned i = static_cast<unsigned>(round) * 7919;; ++i) {
        const std::string key = "k" + std::to_string(i % kKeys);
        t->try_acquire(key, 1ns, cec);
        if (i % 3 == 0) t->erase(key, cec);
        if (cec) return 1;
      }
    });
    char c;
    ASSERT_TRUE(read_within(ready.r, &c, 1));
    std::this_thread::sleep_for(std::chrono::microseconds(500 + (round * 1237) % 9000));
    child.kill(SIGKILL);
    const int status = child.wait();
    ASSERT_TRUE(status >= 0 && WIFSIGNALED(status)) << "round " << round << ": status " << status;
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "k" + std::to_string(i);
      int copies = 0;
      while (t->erase(key, ec)) ++copies;
      ASSERT_FALSE(ec) << ec.message();
      ASSERT_LE(copies, 1) << "round " << round << ": " << key << " was there " << copies << " times";
    }
    for (std::size_t i = 0; i < LeaseTable::kSlots; ++i) {
      ASSERT_TRUE(t->try_acquire("fill" + std::to_string(i), 1h, ec)) << "round " << round << ", " << i << ": "
                                                                      << ec.message();
    }
    for (std::size_t i = 0; i < LeaseTable::kSlots; ++i) ASSERT_TRUE(t->erase("fill" + std::to_string(i), ec));
  }
}

// The registry's lock is not inherited locked by a child forked while another thread
// used it (pthread_atfork): every child opens a table of its own and exits.
TEST_F(LeaseProcessTest, ForkWhileAnotherThreadOpensTables) {
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    std::error_code ec;
    auto keep = LeaseTable::open(name, ec);  // so each open below is a lookup under the lock
    while (!stop.load()) LeaseTable::open(name, ec);
  });
  int failed = 0;
  for (int i = 0; i < 100 && failed < 2; ++i) {
    Child child([&] {
      std::error_code ec;
      auto t = LeaseTable::open(name + ".child", ec);
      return t && t->try_acquire("k" + std::to_string(i), 1h, ec) ? 0 : 1;
    });
    const int status = child.wait(3s);
    EXPECT_TRUE(exited_ok(status)) << "child " << i << ": status " << status;
    failed += !exited_ok(status);
  }
  stop = true;
  churn.join();
  LeaseTable::unlink(name + ".child");
  EXPECT_EQ(failed, 0);
}

}  // namespace
