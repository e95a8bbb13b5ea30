// Handle: the one place a loop counts what is live (by kind) and what keeps run() going
// (referenced live handles and holds); a higher layer's object as a handle of its own kind.
#include <corio/handle.hpp>
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/signal_watch.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <type_traits>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Handle;
using corio::HandleKind;
using corio::Loop;
using corio::Timer;
using corio_test::Pipe;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using HandleTest = corio_test::LoopFixture;

static_assert(std::is_base_of_v<Handle, corio::Timer>);
static_assert(std::is_base_of_v<Handle, corio::IoWatch>);
static_assert(std::is_base_of_v<Handle, corio::SignalWatch>);

// What the socket engine does with an open socket: live while open, never referenced
// by itself (an idle open socket does not keep the loop running).
class OpenSocket : public corio::ListedHandle {
 public:
  explicit OpenSocket(Loop& loop) : ListedHandle(loop.handles(), HandleKind::socket) { unref(); }
  void open() { start_handle(); }
  void close() { stop_handle(); }
};

TEST_F(HandleTest, EachKindIsCountedWhileLive) {
  const corio::HandleCounts& counts = loop.handles();
  Timer t(loop);
  t.start(1h, [] {});
  t.start(2h, [] {});  // re-armed: still one live timer
  EXPECT_EQ(counts.live(HandleKind::timer), 1);
  EXPECT_EQ(counts.refs(), 1);

  Pipe p;
  ASSERT_TRUE(p.ok());
  corio::IoWatch w(loop, p.r, [](unsigned) {});
  ASSERT_FALSE(w.start(corio::kReadable));
  ASSERT_FALSE(w.start(corio::kReadable | corio::kWritable));
  EXPECT_EQ(counts.live(HandleKind::io_watch), 1);
  w.unref();
  EXPECT_EQ(counts.live(HandleKind::io_watch), 1) << "unreferenced is still live";
  EXPECT_EQ(counts.refs(), 1);

  corio::SignalWatch s(loop, SIGUSR2, [](int) {});
  ASSERT_FALSE(s.start());
  EXPECT_EQ(counts.live(HandleKind::signal_watch), 1);
  EXPECT_EQ(counts.refs(), 2);
  // The signalfd's own watch is the loop's: counted apart from the user's watches.
  EXPECT_EQ(counts.live(HandleKind::internal), 1);

  t.stop();
  w.stop();
  s.stop();
  EXPECT_EQ(counts.live(HandleKind::timer), 0);
  EXPECT_EQ(counts.live(HandleKind::io_watch), 0);
  EXPECT_EQ(counts.live(HandleKind::signal_watch), 0);
  EXPECT_EQ(counts.refs(), 0);
}

TEST_F(HandleTest, RepeatingAndOneShotTimersLeaveTheCountWhenDone) {
  Timer once(loop), every(loop);
  int ticks = 0;
  once.start(1ms, [] {});
  every.start(1ms, [&] {
    if (++ticks == 3) every.stop();
  }, 1ms);
  EXPECT_EQ(loop.handles().live(HandleKind::timer), 2);
  loop.run();
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(loop.handles().live(HandleKind::timer), 0);
  EXPECT_EQ(loop.handles().refs(), 0);
}

TEST_F(HandleTest, ALiveUnreferencedHandleDoesNotKeepRunGoing) {
  OpenSocket sock(loop);
  sock.open();
  EXPECT_TRUE(sock.active());
  EXPECT_FALSE(sock.has_ref());
  EXPECT_EQ(loop.handles().live(HandleKind::socket), 1);
  EXPECT_FALSE(loop.alive());
  const corio::TimePoint t0 = corio::Clock::now();
  loop.run();  // returns at once
  EXPECT_LT(corio::Clock::now() - t0, 1s);

  sock.ref();  // a queued operation would hold it so
  EXPECT_TRUE(loop.alive());
  sock.unref();
  EXPECT_FALSE(loop.alive());
  sock.close();
  EXPECT_EQ(loop.handles().live(HandleKind::socket), 0);
  EXPECT_EQ(loop.handles().refs(), 0);
}

TEST_F(HandleTest, RefAgainKeepsRunGoing) {
  Timer t(loop);
  bool fired = false;
  t.unref();
  t.start(20ms, [&] { fired = true; });
  EXPECT_FALSE(loop.alive());
  t.ref();
  t.ref();  // idempotent
  EXPECT_TRUE(loop.alive());
  loop.run();  // waits for the timer now
  EXPECT_TRUE(fired);
  EXPECT_EQ(loop.handles().refs(), 0);
}

TEST_F(HandleTest, RefAndUnrefOfAStoppedHandleCountNothing) {
  Timer t(loop);
  t.unref();
  t.ref();
  t.unref();
  EXPECT_EQ(loop.handles().refs(), 0);
  t.start(1h, [] {});
  EXPECT_EQ(loop.handles().refs(), 0);  // unreferenced across a start
  t.stop();
  t.ref();
  EXPECT_EQ(loop.handles().refs(), 0);
  EXPECT_EQ(loop.handles().live(HandleKind::timer), 0);
}

TEST_F(HandleTest, HoldsAreCountedWithTheHandles) {
  loop.hold();
  loop.hold();
  EXPECT_EQ(loop.handles().holds(), 2);
  EXPECT_EQ(loop.handles().refs(), 2);
  loop.release();
  loop.release();
  EXPECT_EQ(loop.handles().holds(), 0);
  EXPECT_FALSE(loop.alive());
}

TEST_F(HandleTest, KindNames) {
  EXPECT_STREQ(corio::handle_kind_name(HandleKind::timer), "timer");
  EXPECT_STREQ(corio::handle_kind_name(HandleKind::io_watch), "io_watch");
  EXPECT_STREQ(corio::handle_kind_name(HandleKind::signal_watch), "signal_watch");
  EXPECT_STREQ(corio::handle_kind_name(HandleKind::socket), "socket");
}

// A loop destroyed before an open socket detaches it, as it does its timers and watches:
// closing or destroying the socket later touches nothing (ASan, valgrind).
TEST_F(HandleTest, AListedHandleOutlivingItsLoopIsDetached) {
  auto other = std::make_unique<Loop>();
  OpenSocket a(*other), b(*other), c(*other);
  a.open();
  b.open();
  c.open();
  b.close();  // unlinked from the middle
  b.open();
  EXPECT_EQ(other->handles().live(HandleKind::socket), 3);
  other.reset();
  EXPECT_FALSE(a.active());
  EXPECT_FALSE(b.active());
  a.close();
}

TEST_F(HandleTest, TimersAndWatchesOutliveTheirLoopHarmlessly) {
  auto loop = std::make_unique<Loop>();
  Pipe p;
  ASSERT_TRUE(p.ok());
  Timer t(*loop);
  corio::IoWatch w(*loop, p.r, [](unsigned) {});
  t.start(1h, [] {});
  ASSERT_FALSE(w.start(corio::kReadable));
  loop.reset();
  EXPECT_FALSE(t.active());  // detached: their destructors touch nothing
  EXPECT_FALSE(w.active());
}

}  // namespace
