// IoWatch: readiness of pipes, sockets and regular files, several watches per descriptor,
// stopping/destroying watches from callbacks, errors, hang-up, out-of-band data, unref.
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <system_error>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Clock;
using corio::Duration;
using corio::IoWatch;
using corio::kError;
using corio::kHangup;
using corio::kPriority;
using corio::kReadable;
using corio::kWritable;
using corio::Loop;
using corio::TimePoint;
using corio_test::close_fd;
using corio_test::Pipe;
using corio_test::run_until;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using IoWatchTest = corio_test::LoopFixture;

struct SocketPair {
  int a = -1, b = -1;
  SocketPair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0) {
      a = sv[0];
      b = sv[1];
    }
  }
  ~SocketPair() {
    close_fd(a);
    close_fd(b);
  }
};

// A connected TCP pair over loopback (for out-of-band data, which AF_UNIX lacks).
struct TcpPair {
  int a = -1, b = -1;
  TcpPair() {
    int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(l, 1) != 0 ||
        ::getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      close_fd(l);
      return;
    }
    a = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (a >= 0 && ::connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
      b = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    close_fd(l);
  }
  ~TcpPair() {
    close_fd(a);
    close_fd(b);
  }
};

TEST_F(IoWatchTest, PipeBecomesReadableAfterAWrite) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int calls = 0;
  unsigned got = 0;
  IoWatch w(loop, p.r, [&](unsigned ev) {
    ++calls;
    got = ev;
    p.drain();
  });
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_TRUE(w.active());
  EXPECT_EQ(w.interest(), unsigned(kReadable));
  EXPECT_TRUE(loop.alive());
  EXPECT_FALSE(loop.run_once(10ms));  // nothing written yet
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(p.put());
  ASSERT_TRUE(run_until(loop, [&] { return calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(got & kReadable);
  EXPECT_FALSE(got & kWritable);
  // Level-triggered: drained, so it is quiet again; another byte fires again.
  EXPECT_FALSE(loop.run_once(10ms));
  ASSERT_TRUE(p.put());
  ASSERT_TRUE(run_until(loop, [&] { return calls == 2; }));
  w.stop();
  EXPECT_FALSE(w.active());
  EXPECT_FALSE(loop.alive());
}

TEST_F(IoWatchTest, PipeIsWritableAtOnce) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  unsigned got = 0;
  IoWatch w(loop, p.w, [&](unsigned ev) { got = ev; });
  ASSERT_FALSE(w.start(kWritable));
  const TimePoint t0 = Clock::now();
  EXPECT_TRUE(loop.run_once(5s));
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_TRUE(got & kWritable);
  EXPECT_FALSE(got & kReadable);
}

TEST_F(IoWatchTest, ChangingTheInterestOfAnActiveWatch) {
  SocketPair s;
  ASSERT_GE(s.b, 0);
  unsigned got = 0;
  IoWatch w(loop, s.a, [&](unsigned ev) { got |= ev; });
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_FALSE(loop.run_once(10ms));
  ASSERT_FALSE(w.start(kReadable | kWritable));
  ASSERT_TRUE(run_until(loop, [&] { return got != 0; }));
  EXPECT_EQ(got, unsigned(kWritable));
}

TEST_F(IoWatchTest, StartWithZeroStops) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int calls = 0;
  {
    IoWatch w(loop, p.r, [&](unsigned) { ++calls; });
    ASSERT_FALSE(w.start(kReadable));
    EXPECT_FALSE(w.start(0));
    EXPECT_FALSE(w.active());
    ASSERT_FALSE(loop.alive());  // no longer holds the loop (nor is it still listed)
    ASSERT_TRUE(p.put());
    EXPECT_FALSE(loop.run_once(10ms));
    EXPECT_EQ(calls, 0);
    ASSERT_FALSE(w.start(kReadable));  // and it can be started again
    EXPECT_TRUE(loop.run_once(2s));
    EXPECT_EQ(calls, 1);
  }
  // The watch is gone: its descriptor must not be dispatched to it any more.
  EXPECT_FALSE(loop.alive());
  EXPECT_FALSE(loop.run_once(10ms));
}

TEST_F(IoWatchTest, ReaderAndWriterOnOneDescriptor) {
  SocketPair s;
  ASSERT_GE(s.b, 0);
  int reads = 0, writes = 0;
  IoWatch rd(loop, s.a, [&](unsigned ev) {
    EXPECT_TRUE(ev & kReadable);
    ++reads;
    char buf[64];
    while (::read(s.a, buf, sizeof buf) > 0) {
    }
  });
  IoWatch wr(loop, s.a, [&](unsigned ev) {
    EXPECT_TRUE(ev & kWritable);
    EXPECT_FALSE(ev & kReadable);  // a writer is not told about readability
    ++writes;
  });
  ASSERT_FALSE(rd.start(kReadable));
  ASSERT_FALSE(wr.start(kWritable));

  EXPECT_TRUE(loop.run_once(2s));
  EXPECT_EQ(reads, 0);
  EXPECT_EQ(writes, 1);

  ASSERT_EQ(::write(s.b, "x", 1), 1);
  ASSERT_TRUE(run_until(loop, [&] { return reads == 1; }));
  EXPECT_GE(writes, 2);

  // Stopping the writer keeps the reader and drops EPOLLOUT from the registration:
  // a writable socket no longer wakes the loop.
  wr.stop();
  EXPECT_TRUE(rd.active());
  const int writes_before = writes;
  const TimePoint t0 = Clock::now();
  EXPECT_FALSE(loop.run_once(20ms));
  EXPECT_GE(Clock::now() - t0, 20ms);
  ASSERT_EQ(::write(s.b, "y", 1), 1);
  ASSERT_TRUE(run_until(loop, [&] { return reads == 2; }));
  EXPECT_EQ(writes, writes_before);

  // And the other way round.
  ASSERT_FALSE(wr.start(kWritable));
  rd.stop();
  ASSERT_EQ(::write(s.b, "z", 1), 1);
  EXPECT_TRUE(loop.run_once(2s));
  EXPECT_EQ(reads, 2);
  EXPECT_EQ(writes, writes_before + 1);
}

TEST_F(IoWatchTest, StoppedBySiblingCallbackIsNotCalled) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int a_calls = 0, b_calls = 0;
  // Whichever runs first stops the other; the other must then not be called.
  IoWatch* pa = nullptr;
  IoWatch* pb = nullptr;
  IoWatch a(loop, p.r, [&](unsigned) {
    ++a_calls;
    pb->stop();
  });
  IoWatch b(loop, p.r, [&](unsigned) {
    ++b_calls;
    pa->stop();
  });
  pa = &a;
  pb = &b;
  ASSERT_FALSE(a.start(kReadable));
  ASSERT_FALSE(b.start(kReadable));
  ASSERT_TRUE(p.put());
  EXPECT_TRUE(loop.run_once(2s));
  EXPECT_EQ(a_calls + b_calls, 1);
  EXPECT_NE(a.active(), b.active());
}

TEST_F(IoWatchTest, DestroyedBySiblingCallbackIsNotCalled) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int calls[3] = {0, 0, 0};
  std::unique_ptr<IoWatch> w[3];
  // Each one destroys the other two: exactly one is called, whatever the order.
  for (int i = 0; i < 3; ++i) {
    w[i] = std::make_unique<IoWatch>(loop, p.r, [&, i](unsigned) {
      ++calls[i];
      for (int j = 0; j < 3; ++j)
        if (j != i) w[j].reset();
    });
  }
  for (auto& x : w) ASSERT_FALSE(x->start(kReadable));
  ASSERT_TRUE(p.put());
  EXPECT_TRUE(loop.run_once(2s));
  EXPECT_EQ(calls[0] + calls[1] + calls[2], 1);
  int left = 0;
  for (auto& x : w) left += x != nullptr;
  EXPECT_EQ(left, 1);
}

TEST_F(IoWatchTest, NestedRunFromCallbackDestroyingTheNextWatch) {
  // The outer dispatch is about to call `b` when a nested iteration destroys it: both
  // dispatches must skip it.
  Pipe p;
  ASSERT_TRUE(p.ok());
  int a_calls = 0, b_calls = 0, c_calls = 0;
  std::unique_ptr<IoWatch> a, b, c;
  c = std::make_unique<IoWatch>(loop, p.r, [&](unsigned) { ++c_calls; });
  b = std::make_unique<IoWatch>(loop, p.r, [&](unsigned) { ++b_calls; });
  a = std::make_unique<IoWatch>(loop, p.r, [&](unsigned) {
    if (++a_calls == 1)
      loop.run_once(0ms);  // the byte is still unread: everything fires again
    else
      b.reset();
  });
  // Started c, b, a: the loop calls the newest first, so a runs before b and c.
  ASSERT_FALSE(c->start(kReadable));
  ASSERT_FALSE(b->start(kReadable));
  ASSERT_FALSE(a->start(kReadable));
  ASSERT_TRUE(p.put());
  EXPECT_TRUE(loop.run_once(2s));
  EXPECT_EQ(a_calls, 2);
  EXPECT_EQ(b_calls, 0);
  EXPECT_EQ(c_calls, 2);
  EXPECT_EQ(b, nullptr);
}

TEST_F(IoWatchTest, StartOnAClosedDescriptorFails) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  ::close(fds[0]);
  ::close(fds[1]);
  int calls = 0;
  IoWatch w(loop, fds[0], [&](unsigned) { ++calls; });
  std::error_code ec = w.start(kReadable);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor) << ec.message();
  EXPECT_FALSE(w.active());
  EXPECT_EQ(w.interest(), 0u);
  EXPECT_FALSE(loop.alive());
  loop.run();  // returns: nothing holds the loop

  IoWatch neg(loop, -1, [&](unsigned) { ++calls; });
  EXPECT_EQ(neg.start(kReadable), std::errc::bad_file_descriptor);
  EXPECT_FALSE(neg.active());
  EXPECT_FALSE(loop.alive());
  EXPECT_EQ(calls, 0);
}

TEST_F(IoWatchTest, RegularFileIsAlwaysReady) {
  char path[] = "/tmp/corio_io_watch_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  ASSERT_EQ(::write(fd, "data", 4), 4);
  int calls = 0;
  unsigned got = 0;
  IoWatch w(loop, fd, [&](unsigned ev) {
    ++calls;
    got = ev;
  });
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_TRUE(w.active());
  const TimePoint t0 = Clock::now();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(loop.run_once(5s));
  EXPECT_LT(Clock::now() - t0, 2s);  // never blocks while it is watched
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(got, unsigned(kReadable));
  w.stop();
  EXPECT_FALSE(loop.alive());
  const TimePoint t1 = Clock::now();
  EXPECT_FALSE(loop.run_once(20ms));  // and is forgotten once stopped
  EXPECT_GE(Clock::now() - t1, 20ms);
  EXPECT_EQ(calls, 3);
  // Restarting for writing works too.
  ASSERT_FALSE(w.start(kWritable));
  EXPECT_TRUE(loop.run_once(5s));
  EXPECT_EQ(got, unsigned(kWritable));
  w.stop();
  ::close(fd);
}

TEST_F(IoWatchTest, RegularFileWatchStoppedFromItsCallback) {
  char path[] = "/tmp/corio_io_watch_XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  int calls = 0;
  IoWatch* self = nullptr;
  IoWatch w(loop, fd, [&](unsigned) {
    ++calls;
    self->stop();
  });
  self = &w;
  ASSERT_FALSE(w.start(kReadable));
  loop.run();  // returns once the watch has stopped itself
  EXPECT_EQ(calls, 1);
  ::close(fd);
}

TEST_F(IoWatchTest, ClosingTheWriterIsAHangupForTheReader) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  unsigned got = 0;
  IoWatch w(loop, p.r, [&](unsigned ev) { got = ev; });
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_FALSE(loop.run_once(10ms));
  close_fd(p.w);
  ASSERT_TRUE(run_until(loop, [&] { return got != 0; }));
  EXPECT_TRUE(got & kHangup);
  EXPECT_TRUE(got & kReadable);  // a reader learns of the hang-up by reading
  char c;
  EXPECT_EQ(::read(p.r, &c, 1), 0);  // EOF
  w.stop();
}

TEST_F(IoWatchTest, ClosingTheReaderIsAnErrorForTheWriter) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  unsigned got = 0;
  IoWatch w(loop, p.w, [&](unsigned ev) { got = ev; });
  ASSERT_FALSE(w.start(kWritable));
  close_fd(p.r);
  ASSERT_TRUE(run_until(loop, [&] { return got != 0; }));
  EXPECT_TRUE(got & kError);
  EXPECT_TRUE(got & kWritable);
  w.stop();
}

TEST_F(IoWatchTest, OutOfBandDataFiresPriorityWatch) {
  TcpPair t;
  ASSERT_GE(t.a, 0);
  ASSERT_GE(t.b, 0);
  unsigned got = 0;
  IoWatch w(loop, t.b, [&](unsigned ev) { got |= ev; });
  ASSERT_FALSE(w.start(kPriority));
  EXPECT_FALSE(loop.run_once(10ms));
  EXPECT_EQ(got, 0u);
  ASSERT_EQ(::send(t.a, "!", 1, MSG_OOB), 1);
  ASSERT_TRUE(run_until(loop, [&] { return (got & kPriority) != 0; }));
  w.stop();
  char c = 0;
  EXPECT_EQ(::recv(t.b, &c, 1, MSG_OOB), 1);
  EXPECT_EQ(c, '!');
}

TEST_F(IoWatchTest, DescriptorClosedBehindItsBackCanBeStopped) {
  int calls = 0;
  {
    Pipe p;
    ASSERT_TRUE(p.ok());
    IoWatch w(loop, p.r, [&](unsigned) { ++calls; });
    ASSERT_FALSE(w.start(kReadable));
    const int old_fd = p.r;
    close_fd(p.r);  // the loop is not told
    w.stop();
    EXPECT_FALSE(w.active());
    EXPECT_FALSE(loop.alive());

    // The number, probably reused at once, can be watched afresh.
    Pipe q;
    ASSERT_TRUE(q.ok());
    IoWatch w2(loop, q.r, [&](unsigned) {
      ++calls;
      q.drain();
    });
    ASSERT_FALSE(w2.start(kReadable)) << "fd " << q.r << " (was " << old_fd << ")";
    ASSERT_TRUE(q.put());
    ASSERT_TRUE(run_until(loop, [&] { return calls == 1; }));
  }
  {
    // Destroyed, not stopped, after its descriptor was closed.
    Pipe p;
    ASSERT_TRUE(p.ok());
    IoWatch w(loop, p.r, [&](unsigned) { ++calls; });
    ASSERT_FALSE(w.start(kReadable));
    close_fd(p.r);
  }
  EXPECT_FALSE(loop.alive());
  EXPECT_EQ(calls, 1);
}

TEST_F(IoWatchTest, UnreferencedWatchDoesNotKeepRunGoing) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int calls = 0;
  IoWatch w(loop, p.r, [&](unsigned) {
    ++calls;
    p.drain();
  });
  w.unref();
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_TRUE(w.active());
  ASSERT_FALSE(loop.alive());
  loop.run();  // returns at once; it would block forever if the watch held the loop
  EXPECT_EQ(calls, 0);

  // It is still dispatched while something else keeps the loop running.
  ASSERT_TRUE(p.put());
  corio::Timer t(loop);
  t.start(20ms, [] {});
  loop.run();
  EXPECT_EQ(calls, 1);
  w.stop();
}

TEST_F(IoWatchTest, UnrefAfterStart) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  IoWatch w(loop, p.r, [&](unsigned) {});
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_TRUE(loop.alive());
  w.unref();
  w.unref();  // idempotent
  EXPECT_FALSE(loop.alive());
  w.stop();
  EXPECT_FALSE(loop.alive());
  ASSERT_FALSE(w.start(kReadable));
  EXPECT_FALSE(loop.alive());  // stays unreferenced across restarts
}

}  // namespace

namespace {

// A descriptor closed while its watch is active, its number reused by a new pipe: a new
// watch on that number must still be told about readiness (the kernel dropped the old
// registration silently, the loop must not trust its own record of it).
TEST_F(IoWatchTest, NumberReusedAfterCloseBehindTheLoopsBack) {
  int a[2];
  ASSERT_EQ(pipe(a), 0);
  auto stale = std::make_unique<corio::IoWatch>(loop, a[0], [](unsigned) {});
  ASSERT_FALSE(stale->start(corio::kReadable));
  close(a[0]);
  close(a[1]);
  int b[2];
  ASSERT_EQ(pipe(b), 0);
  ASSERT_EQ(b[0], a[0]) << "the test needs the descriptor number to be reused";
  bool fired = false;
  corio::IoWatch fresh(loop, b[0], [&](unsigned) { fired = true; });
  ASSERT_FALSE(fresh.start(corio::kReadable));
  ASSERT_EQ(write(b[1], "x", 1), 1);
  for (int i = 0; i < 10 && !fired; ++i) loop.run_once(std::chrono::milliseconds(50));
  EXPECT_TRUE(fired);
  stale.reset();  // removing the stale watch keeps the fresh one registered
  fired = false;
  for (int i = 0; i < 10 && !fired; ++i) loop.run_once(std::chrono::milliseconds(50));
  EXPECT_TRUE(fired);
  close(b[0]);
  close(b[1]);
}

}  // namespace
