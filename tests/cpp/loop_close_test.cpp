// Loop::close(): refused (EBUSY) while anything is live — every kind, referenced or not —
// with a report saying what; on success the loop gives back its services and signalfd and
// can be used again.
#include <corio/handle.hpp>
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/signal_watch.hpp>
#include <corio/task.hpp>
#include <corio/timer.hpp>
#include <corio/awaiters.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <system_error>
#include <thread>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Loop;
using corio::Timer;
using corio_test::Pipe;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using LoopClose = corio_test::LoopFixture;

const std::error_code kBusy = std::make_error_code(std::errc::device_or_resource_busy);

// close() refuses and live_report() names what is live.
void expect_busy(Loop& loop, const std::string& report) {
  EXPECT_EQ(loop.close(), kBusy);
  EXPECT_EQ(loop.live_report(), report);
}

TEST_F(LoopClose, AnIdleLoopClosesAndCanBeUsedAgain) {
  EXPECT_EQ(loop.live_report(), "");
  EXPECT_FALSE(loop.close());
  EXPECT_FALSE(loop.close());
  Timer t(loop);
  bool fired = false;
  t.start(1ms, [&] { fired = true; });
  loop.run();
  EXPECT_TRUE(fired);
}

TEST_F(LoopClose, ATimerReferencedOrNotKeepsItOpen) {
  Timer t(loop);
  t.start(1h, [] {});
  expect_busy(loop, "timer: 1");
  t.unref();
  expect_busy(loop, "timer: 1");
  t.stop();
  EXPECT_FALSE(loop.close());
}

TEST_F(LoopClose, WatchesAreReportedWithTheirDescriptors) {
  Pipe p, q;
  ASSERT_TRUE(p.ok() && q.ok());
  corio::IoWatch a(loop, p.r, [](unsigned) {}), b(loop, q.w, [](unsigned) {});
  ASSERT_FALSE(a.start(corio::kReadable));
  ASSERT_FALSE(b.start(corio::kWritable));
  b.unref();  // an idle socket's watch: not holding run(), still live
  const std::string fds = std::to_string(p.r) + ", " + std::to_string(q.w);
  const std::string report = loop.live_report();
  EXPECT_EQ(loop.close(), kBusy);
  EXPECT_EQ(report.rfind("io_watch: 2 (fd ", 0), 0u) << report;
  EXPECT_NE(report.find(std::to_string(p.r)), std::string::npos) << report;
  EXPECT_NE(report.find(std::to_string(q.w)), std::string::npos) << report;
  a.stop();
  expect_busy(loop, "io_watch: 1 (fd " + std::to_string(q.w) + ")");
  b.stop();
  EXPECT_FALSE(loop.close());
}

TEST_F(LoopClose, ASignalWatchIsReportedButNotTheSignalfdsOwnWatch) {
  corio::SignalWatch w(loop, SIGUSR2, [](int) {});
  ASSERT_FALSE(w.start());
  w.unref();
  expect_busy(loop, "signal_watch: 1 (signal " + std::to_string(SIGUSR2) + ")");
  w.stop();  // the signalfd stays open, watched by the loop itself
  EXPECT_FALSE(loop.close());
}

TEST_F(LoopClose, AnOpenSocketHandleIsLive) {
  struct OpenSocket : corio::ListedHandle {
    explicit OpenSocket(Loop& l) : ListedHandle(l.handles(), corio::HandleKind::socket) { unref(); }
    void open() { start_handle(); }
  } sock(loop);
  sock.open();
  EXPECT_FALSE(loop.alive());
  expect_busy(loop, "socket: 1");
}

corio::Task<void> sleeper(Loop& loop, bool& done) {
  co_await corio::sleep_for(loop, 20ms);
  done = true;
}

TEST_F(LoopClose, ASpawnedTaskKeepsItOpenUntilItFinishes) {
  bool done = false;
  corio::spawn(loop, sleeper(loop, done));
  expect_busy(loop, "timer: 1, task: 1");
  loop.run();
  EXPECT_TRUE(done);
  EXPECT_FALSE(loop.close());
}

TEST_F(LoopClose, HoldsAndQueuedCallbacksKeepItOpen) {
  loop.hold();
  expect_busy(loop, "hold: 1");
  loop.release();
  loop.call_soon([] {});
  std::thread([&] { loop.post([] {}); }).join();
  expect_busy(loop, "callback: 2");
  EXPECT_TRUE(loop.run_once(0ms));
  EXPECT_FALSE(loop.close());
}

TEST_F(LoopClose, EverythingAtOnce) {
  Timer t(loop);
  t.start(1h, [] {});
  loop.hold();
  loop.call_soon([] {});
  expect_busy(loop, "timer: 1, hold: 1, callback: 1");
  t.stop();
  loop.release();
  loop.run_once(0ms);
}

TEST_F(LoopClose, ClosingGivesBackTheServicesAndTheSignalfd) {
  struct Flagged : Loop::Service {
    bool& gone;
    explicit Flagged(bool& g) : gone(g) {}
    ~Flagged() override { gone = true; }
  };
  static const char key = 0;
  bool gone = false;
  loop.add_service(&key, std::make_unique<Flagged>(gone));
  const auto before = corio_test::descriptors_linked_to("anon_inode:[signalfd]");
  {
    corio::SignalWatch w(loop, SIGUSR2, [](int) {});
    ASSERT_FALSE(w.start());
  }
  EXPECT_EQ(corio_test::descriptors_linked_to("anon_inode:[signalfd]").size(), before.size() + 1);

  Timer t(loop);
  t.start(1h, [] {});
  EXPECT_EQ(loop.close(), kBusy);  // refused: nothing is given back
  EXPECT_FALSE(gone);
  t.stop();
  EXPECT_FALSE(loop.close());
  EXPECT_TRUE(gone);
  EXPECT_EQ(loop.service(&key), nullptr);
  EXPECT_EQ(corio_test::descriptors_linked_to("anon_inode:[signalfd]"), before);

  // As good as new: a signal watch makes its signalfd again.
  corio::SignalWatch w(loop, SIGUSR2, [](int) {});
  EXPECT_FALSE(w.start());
}

}  // namespace
