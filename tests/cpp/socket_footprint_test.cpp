// What a Socket and an IoOp cost while idle, and that their lazily made parts (the
// timeout timer, the throttle state) still work once made.
#include <corio/socket.hpp>

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Direction;
using corio::Error;
using corio::IoOp;
using corio::Loop;
using corio::Socket;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using SocketFootprint = corio_test::LoopFixture;

// The budget of an idle connection (1 KiB with its coroutine frame) leaves this much.
TEST_F(SocketFootprint, IdleSizes) {
  EXPECT_LE(sizeof(Socket), 256u);
  EXPECT_LE(sizeof(IoOp), 64u);
}

class WaitRead final : public IoOp {
 public:
  Status step(Socket& so) override {
    char c;
    std::size_t got = 0;
    std::error_code ec;
    Status st = so.read(&c, 1, got, ec);
    if (st == Status::done) error = ec;
    return st;
  }
  void finish() override { ++finished; }
  int finished = 0;
};

struct Pair {
  int fds[2] = {-1, -1};
  Pair() { (void)::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }
  ~Pair() {
    if (fds[1] >= 0) ::close(fds[1]);
  }
};

// The same op times out twice (its timer is made once and reused), and an op submitted
// without a timeout waits on.
TEST_F(SocketFootprint, AnOpWithATimeoutTimesOut) {
  Pair p;
  auto* so = new Socket(loop, p.fds[0]);
  WaitRead timed, untimed;
  for (int round = 1; round <= 2; ++round) {
    auto t0 = corio::Clock::now();
    timed.error = {};
    EXPECT_FALSE(so->submit(timed, Direction::read, 30ms));
    ASSERT_TRUE(corio_test::run_until(loop, [&] { return timed.finished == round; }, 2s));
    EXPECT_GE(ms(corio::Clock::now() - t0), 30);
    EXPECT_EQ(timed.error, Error::timeout);
    EXPECT_FALSE(timed.queued());
  }
  EXPECT_FALSE(so->submit(untimed, Direction::read));
  loop.run_once(50ms);
  EXPECT_TRUE(untimed.queued());
  EXPECT_EQ(untimed.finished, 0);
  ASSERT_EQ(::write(p.fds[1], "x", 1), 1);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return untimed.finished == 1; }, 2s));
  EXPECT_FALSE(untimed.error);
  so->destroy();
}

// A timed-out head hands over to the op queued behind it.
TEST_F(SocketFootprint, ATimedOutHeadLetsTheNextOneRun) {
  Pair p;
  auto* so = new Socket(loop, p.fds[0]);
  WaitRead head, next;
  EXPECT_FALSE(so->submit(head, Direction::read, 20ms));
  EXPECT_FALSE(so->submit(next, Direction::read, 2s));
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return head.finished == 1; }, 2s));
  EXPECT_EQ(head.error, Error::timeout);
  ASSERT_EQ(::write(p.fds[1], "y", 1), 1);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return next.finished == 1; }, 2s));
  EXPECT_FALSE(next.error);
  so->destroy();
}

// throttle() makes the state on first use; unlimited until a rate is set.
TEST_F(SocketFootprint, ThrottleIsUnlimitedUntilSet) {
  Socket so(loop, -1);
  EXPECT_FALSE(so.throttle(Direction::read).limited());
  EXPECT_EQ(so.throttle(Direction::write).rate(), 0);
  so.throttle(Direction::write).set_rate(1000, Loop::now());
  EXPECT_EQ(so.throttle(Direction::write).rate(), 1000);
  EXPECT_FALSE(so.throttle(Direction::read).limited());
}

}  // namespace
