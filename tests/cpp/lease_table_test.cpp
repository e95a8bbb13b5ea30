// LeaseTable and node_wide: leases, expiry, one table per name, bounds, foreign regions,
// and processes that die inside the lock or while holding a lease. Every child is bounded
// (alarm) and reaped, whatever an assertion does.
#include <corio/lease_table.hpp>
#include <corio/node_timer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"

namespace corio {
// The test's way into the table's lock (lease_table.hpp names it a friend).
struct LeaseTableAccess {
  static std::error_code lock(LeaseTable& t) { return t.lock(); }
  static void unlock(LeaseTable& t) { t.unlock(); }
};
}  // namespace corio

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::LeaseError;
using corio::LeaseTable;
using corio::LeaseTableAccess;
using corio::TimePoint;
using corio_test::ms;

// A forked child running fn (its exit code: fn's result), killed by alarm after 10 s if
// nothing else ends it, and killed and reaped by the destructor if the test did not.
class Child {
 public:
  explicit Child(const std::function<int()>& fn) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::alarm(10);
      ::_exit(fn());
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void kill(int sig) const { ::kill(pid_, sig); }
  // The wait status, or -1 if the child did not end within limit (then it is killed).
  int wait(Duration limit = 5s) {
    const TimePoint end = Clock::now() + limit;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return status;
      }
      if (r < 0 || Clock::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(1ms);
    }
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// Reads exactly n bytes from fd within limit.
bool read_within(int fd, void* buf, std::size_t n, Duration limit = 5s) {
  const TimePoint end = Clock::now() + limit;
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const TimePoint now = Clock::now();
    if (now >= end) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(ms(end - now)) + 1) <= 0) continue;
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Each test has its own shm name, unlinked at the end.
class LeaseTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name = "test." + std::to_string(::getpid()) + "." +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    LeaseTable::unlink(name);  // a crashed earlier run of the same pid
  }
  void TearDown() override { LeaseTable::unlink(name); }

  std::shared_ptr<LeaseTable> open_table() {
    std::error_code ec;
    auto t = LeaseTable::open(name, ec);
    EXPECT_FALSE(ec) << ec.message();
    return t;
  }
  std::string shm() const { return "/corio." + std::to_string(::geteuid()) + "." + name; }
  // Makes the shm object of the test's name by hand: size bytes of fill, mode.
  void make_object(std::size_t size, unsigned char fill, mode_t mode = 0600) {
    int fd = ::shm_open(shm().c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::fchmod(fd, mode);
    if (size > 0) {
      std::vector<unsigned char> bytes(size, fill);
      for (std::size_t i = 0; i < size; i += 7) bytes[i] = static_cast<unsigned char>(i * 31);
      ASSERT_EQ(::write(fd, bytes.data(), size), static_cast<ssize_t>(size));
    }
    ::close(fd);
  }

  std::string name;
};

TEST_F(LeaseTableTest, AcquireHoldsUntilExpiryEvenAgainstItsHolder) {
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  const TimePoint before = Clock::now();
  EXPECT_TRUE(t->try_acquire("job", 80ms, ec));
  EXPECT_FALSE(ec);
  auto l = t->lease("job", ec);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->holder, ::getpid());
  EXPECT_GE(l->until, before + 80ms);
  EXPECT_LE(l->until, Clock::now() + 80ms);
  // Live: never taken again, not even by its holder.
  int retaken = 0;
  while (Clock::now() + 2ms < l->until) retaken += t->try_acquire("job", 80ms, ec);
  EXPECT_EQ(retaken, 0);
  EXPECT_FALSE(ec);
  // Expired: taken at once, with a new deadline.
  while (Clock::now() < l->until) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(t->try_acquire("job", 1s, ec));
  auto l2 = t->lease("job", ec);
  ASSERT_TRUE(l2);
  EXPECT_GE(l2->until, l->until + 1s);
  EXPECT_FALSE(t->lease("never", ec));
  EXPECT_FALSE(ec);
}

TEST_F(LeaseTableTest, TtlMustBePositiveAndHugeOnesClamp) {
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  EXPECT_FALSE(t->try_acquire("k", 0s, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(t->try_acquire("k", -5s, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(t->lease("k", ec));  // the failed calls left nothing
  EXPECT_TRUE(t->try_acquire("k", Duration::max(), ec));
  EXPECT_FALSE(ec);
  auto l = t->lease("k", ec);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->until, TimePoint::max());
  EXPECT_FALSE(t->try_acquire("k", 1ns, ec));
}

TEST_F(LeaseTableTest, OneTablePerNamePerProcess) {
  auto a = open_table();
  auto b = open_table();
  ASSERT_TRUE(a);
  EXPECT_EQ(a.get(), b.get());
  std::error_code ec;
  ASSERT_TRUE(a->try_acquire("k", 10s, ec));
  EXPECT_EQ(a->shm_name(), shm());
  // Dropped and opened again: another mapping of the same region.
  a.reset();
  b.reset();
  auto c = open_table();
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->try_acquire("k", 10s, ec));
  ASSERT_TRUE(c->lease("k", ec));
  // Unlinked: the old table still works; an open makes a new, empty region.
  EXPECT_FALSE(LeaseTable::unlink(name));
  EXPECT_EQ(LeaseTable::unlink(name), std::errc::no_such_file_or_directory);
  auto d = open_table();
  ASSERT_TRUE(d);
  EXPECT_NE(c.get(), d.get());
  EXPECT_FALSE(d->lease("k", ec));
  EXPECT_TRUE(d->try_acquire("k", 10s, ec));
  EXPECT_TRUE(c->lease("k", ec));
}

TEST_F(LeaseTableTest, ManyKeysEraseAndReuse) {
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  constexpr int kKeys = 1000;
  for (int i = 0; i < kKeys; ++i) ASSERT_TRUE(t->try_acquire("key-" + std::to_string(i), 1h, ec)) << i;
  for (int i = 0; i < kKeys; ++i) {
    ASSERT_FALSE(t->try_acquire("key-" + std::to_string(i), 1h, ec)) << i;
    ASSERT_FALSE(ec);
  }
  for (int i = 0; i < kKeys; i += 2) ASSERT_TRUE(t->erase("key-" + std::to_string(i), ec));
  EXPECT_FALSE(t->erase("key-0", ec));
  EXPECT_FALSE(t->erase("nope", ec));
  for (int i = 0; i < kKeys; ++i) {
    bool there = t->lease("key-" + std::to_string(i), ec).has_value();
    ASSERT_EQ(there, i % 2 == 1) << i;
  }
  for (int i = 0; i < kKeys; i += 2) ASSERT_TRUE(t->try_acquire("key-" + std::to_string(i), 1h, ec)) << i;
  // Keys are bytes: a prefix, an embedded NUL, a 200-byte key are all distinct keys.
  const std::string nul("key-1\0x", 7);
  EXPECT_TRUE(t->try_acquire(nul, 1h, ec));
  EXPECT_FALSE(t->try_acquire(nul, 1h, ec));
  EXPECT_TRUE(t->try_acquire("key-", 1h, ec));
  EXPECT_TRUE(t->try_acquire(std::string(200, 'k'), 1h, ec));
  EXPECT_FALSE(ec);
}

TEST_F(LeaseTableTest, FullRegionIsAClearError) {
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  for (std::size_t i = 0; i < LeaseTable::kSlots; ++i) ASSERT_TRUE(t->try_acquire(std::to_string(i), 1h, ec)) << i;
  EXPECT_FALSE(t->try_acquire("one more", 1h, ec));
  EXPECT_EQ(ec, LeaseError::full);
  EXPECT_EQ(ec.message(), "lease region full (1024 keys)");
  // Existing keys still answer, even with every slot taken (no probe runs forever).
  EXPECT_FALSE(t->try_acquire("7", 1h, ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(t->lease("absent", ec));
  EXPECT_FALSE(ec);
  EXPECT_FALSE(t->erase("absent", ec));
  ASSERT_TRUE(t->erase("7", ec));
  EXPECT_TRUE(t->try_acquire("one more", 1h, ec));
  EXPECT_FALSE(t->try_acquire("another", 1h, ec));
  EXPECT_EQ(ec, LeaseError::full);
}

TEST_F(LeaseTableTest, BadNamesAndKeys) {
  for (std::string bad : {std::string(), std::string(65, 'a'), std::string("a/b"), std::string("/x"),
                          std::string("a b"), std::string("x\0y", 3), std::string("caf\xc3\xa9")}) {
    std::error_code ec;
    EXPECT_FALSE(LeaseTable::open(bad, ec)) << bad;
    EXPECT_EQ(ec, LeaseError::bad_name) << bad;
    EXPECT_EQ(ec.message(), "shm name must be 1-64 of [A-Za-z0-9_.-]");
    EXPECT_EQ(LeaseTable::unlink(bad), LeaseError::bad_name);
  }
  std::error_code ec;
  auto t = open_table();
  ASSERT_TRUE(t);
  for (std::string bad : {std::string(), std::string(201, 'k')}) {
    EXPECT_FALSE(t->try_acquire(bad, 1s, ec));
    EXPECT_EQ(ec, LeaseError::bad_key);
    EXPECT_EQ(ec.message(), "key must be 1-200 bytes");
    EXPECT_FALSE(t->lease(bad, ec));
    EXPECT_EQ(ec, LeaseError::bad_key);
    EXPECT_FALSE(t->erase(bad, ec));
    EXPECT_EQ(ec, LeaseError::bad_key);
  }
  const std::string longest(64, 'n');
  auto u = LeaseTable::open(longest, ec);
  EXPECT_TRUE(u) << ec.message();
  LeaseTable::unlink(longest);
}

TEST_F(LeaseTableTest, GarbageOfAnySizeIsForeign) {
  auto probe = open_table();  // the layout's size, from a real region
  ASSERT_TRUE(probe);
  struct stat st;
  {
    int fd = ::shm_open(shm().c_str(), O_RDONLY, 0);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::fstat(fd, &st), 0);
    ::close(fd);
  }
  probe.reset();
  const auto size = static_cast<std::size_t>(st.st_size);
  for (std::size_t garbage : {size, size - 1, size + 4096, std::size_t{100}}) {
    ASSERT_FALSE(LeaseTable::unlink(name));
    make_object(garbage, 0xa5);
    std::error_code ec;
    EXPECT_FALSE(LeaseTable::open(name, ec)) << garbage;
    EXPECT_EQ(ec, LeaseError::foreign) << garbage;
    EXPECT_EQ(ec.message(), "shm region has another layout or owner");
  }
}

TEST_F(LeaseTableTest, AnotherLayoutOrLooseModeIsForeign) {
  std::error_code ec;
  // Each header field of a real region changed in turn: magic, version, header size, slot
  // count, slot size, key max (the header's first 6 fields).
  const std::size_t offsets[] = {0, 8, 12, 16, 20, 24};
  for (std::size_t off : offsets) {
    auto t = open_table();
    ASSERT_TRUE(t);
    t->try_acquire("k", 1h, ec);  // taken in the first round, live after
    ASSERT_TRUE(t->lease("k", ec));
    t.reset();
    int fd = ::shm_open(shm().c_str(), O_RDWR, 0);
    ASSERT_GE(fd, 0);
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    static_cast<unsigned char*>(p)[off] ^= 0x40;
    EXPECT_FALSE(LeaseTable::open(name, ec)) << off;
    EXPECT_EQ(ec, LeaseError::foreign) << off;
    static_cast<unsigned char*>(p)[off] ^= 0x40;  // restored: usable again, lease kept
    auto again = LeaseTable::open(name, ec);
    ASSERT_TRUE(again) << off << ": " << ec.message();
    EXPECT_TRUE(again->lease("k", ec)) << off;
    ::munmap(p, 4096);
  }
  // A region others may read or write is refused, even if well laid out.
  ASSERT_FALSE(LeaseTable::unlink(name));
  auto t = open_table();
  ASSERT_TRUE(t);
  t.reset();
  int fd = ::shm_open(shm().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  ::fchmod(fd, 0644);
  ::close(fd);
  EXPECT_FALSE(LeaseTable::open(name, ec));
  EXPECT_EQ(ec, LeaseError::foreign);
}

TEST_F(LeaseTableTest, ACreatorThatDiedHalfWayLeavesARegionTheNextLaysOut) {
  // shm_open'd but never sized, then sized but never given its magic: both laid out.
  make_object(0, 0);
  auto t = open_table();
  ASSERT_TRUE(t);
  std::error_code ec;
  ASSERT_TRUE(t->try_acquire("k", 1h, ec));
  t.reset();
  int fd = ::shm_open(shm().c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 0, 8);  // the magic, written last, is missing
  auto u = open_table();
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->lease("k", ec));  // laid out afresh
  EXPECT_EQ(*static_cast<std::uint64_t*>(p), 0x31534c6f69726f63ull);
  ::munmap(p, 4096);
}

// Two processes open the region each for itself (not the table a fork inherits): the
// first's mapping must not keep the layout's flock from the second.
TEST_F(LeaseTableTest, AProcessOpensARegionAnotherHasMapped) {
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
TEST_F(LeaseTableTest, AHolderOfTheLockStoppedIsBusyKilledIsRecovered) {
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
TEST_F(LeaseTableTest, AWaiterIsWokenWhenTheHolderOfTheLockDies) {
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
TEST_F(LeaseTableTest, ALeaseOfAKilledHolderIsTakenWhenItExpires) {
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
TEST_F(LeaseTableTest, KilledAtRandomMomentsLeavesATableThatWorks) {
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
TEST_F(LeaseTableTest, ForkWhileAnotherThreadOpensTables) {
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

TEST(NodeWide, RequiresARecurringTimerAKeyAndATable) {
  std::error_code ec;
  auto t = LeaseTable::open("test." + std::to_string(::getpid()) + ".nodewide", ec);
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
  LeaseTable::unlink("test." + std::to_string(::getpid()) + ".nodewide");
}

TEST(NodeWide, ALeaseErrorShutsTheGateAndIsReported) {
  std::error_code ec;
  const std::string name = "test." + std::to_string(::getpid()) + ".nodewide_err";
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
  LeaseTable::unlink(name);
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
          Run r{Clock::now().time_since_epoch().count(), ::getpid(), 0};
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
  LeaseTable::unlink(name);
}

TEST(NodeWide, FourProcessesPollingRunOncePerInterval) {
  race("test." + std::to_string(::getpid()) + ".race_poll", true);
}

TEST(NodeWide, FourProcessesOnTheirGridsRunOncePerInterval) {
  race("test." + std::to_string(::getpid()) + ".race_grid", false);
}

}  // namespace
