// LeaseTable in one process: leases, expiry, one table per name, bounds, and regions of
// another layout, owner or mode (tests/cpp/lease_process_test.cpp: processes that die).
#include <corio/lease_table.hpp>

#include <cstdint>
#include <cstring>
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

using LeaseTableTest = corio_test::LeaseFixture;

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
  // Live: never taken again, not even by its holder. A take counts against the rule only
  // if it happened (its new deadline - ttl) before the lease's end: this thread may be
  // preempted between a look at the clock and a call.
  int checks = 0;
  for (; Clock::now() < l->until; ++checks) {
    if (!t->try_acquire("job", 80ms, ec)) continue;
    auto taken = t->lease("job", ec);
    ASSERT_TRUE(taken);
    EXPECT_GE(taken->until - 80ms, l->until) << "a live lease was taken after " << checks << " checks";
    break;
  }
  EXPECT_GT(checks, 100);
  EXPECT_FALSE(ec);
  // Expired: taken at once, with a new deadline.
  auto last = t->lease("job", ec);
  ASSERT_TRUE(last);
  while (Clock::now() < last->until) std::this_thread::sleep_for(1ms);
  EXPECT_TRUE(t->try_acquire("job", 1s, ec));
  auto l2 = t->lease("job", ec);
  ASSERT_TRUE(l2);
  EXPECT_GE(l2->until, last->until + 1s);
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

}  // namespace
