// Stream: connect (numeric, resolved, each address in turn, refused, timeout), echo round
// trips on IPv4 and IPv6 loopback, reads (timeouts, lines, limits), atomic writes, close,
// throttling, and frames or streams destroyed while operations are pending.
#include <corio/awaiters.hpp>
#include <corio/listener.hpp>
#include <corio/resolver.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Address;
using corio::Direction;
using corio::Error;
using corio::Loop;
using corio::Resolver;
using corio::Stream;
using corio::Task;
using corio_net_test::EchoServer;
using corio_net_test::run_task;
using corio_net_test::stream_pair;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using StreamTest = corio_test::LoopFixture;
using StreamEngine = corio_test::LoopFixture;

struct RoundTrip {
  std::error_code connect, nodelay, write, read;
  std::string line;
  std::string block;
  Address peer, local;
};

Task<void> round_trip(Loop& loop, std::string host, std::uint16_t port, RoundTrip& out, Resolver* r = nullptr) {
  Stream s(loop);
  if ((out.connect = co_await s.connect(host, port, 2s, r))) co_return;
  out.nodelay = s.set_nodelay();
  out.peer = s.peer_address();
  out.local = s.local_address();
  std::string block(100000, 'x');
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>('a' + i % 26);
  if ((out.write = co_await s.write_all("hello\n" + block, 2s))) co_return;
  auto [ec, line] = co_await s.read_line(2s);
  out.read = ec;
  out.line = line;
  auto [ec2, got] = co_await s.read_exactly(block.size(), 2s);
  if (!ec2 && got == block) out.block = "ok";
}

void expect_echo(Loop& loop, const char* host, int family) {
  EchoServer srv(loop, host);
  ASSERT_TRUE(srv.ok());
  RoundTrip rt;
  ASSERT_TRUE(run_task(loop, round_trip(loop, host, srv.port, rt)));
  ASSERT_FALSE(rt.connect) << rt.connect.message();
  EXPECT_FALSE(rt.nodelay) << rt.nodelay.message();
  EXPECT_FALSE(rt.write) << rt.write.message();
  EXPECT_FALSE(rt.read) << rt.read.message();
  EXPECT_EQ(rt.line, "hello");
  EXPECT_EQ(rt.block, "ok");
  EXPECT_EQ(rt.peer.family(), family);
  EXPECT_EQ(rt.peer.port(), srv.port);
  EXPECT_EQ(rt.local.family(), family);
}

TEST_F(StreamTest, EchoRoundTripIPv4) {
  expect_echo(loop, "127.0.0.1", AF_INET);
}

TEST_F(StreamTest, EchoRoundTripIPv6) {
  if (!corio::Listener::bind(loop, "::1", 0)) GTEST_SKIP() << "IPv6 loopback unavailable";
  expect_echo(loop, "::1", AF_INET6);
}

TEST_F(StreamTest, ConnectsToLocalhostThroughTheResolver) {
  Loop& loop = Loop::current();  // Resolver::current() runs there
  EchoServer srv(loop, "127.0.0.1");
  ASSERT_TRUE(srv.ok());
  RoundTrip rt;
  ASSERT_TRUE(run_task(loop, round_trip(loop, "localhost", srv.port, rt)));
  ASSERT_FALSE(rt.connect) << rt.connect.message();
  EXPECT_EQ(rt.line, "hello");
  EXPECT_EQ(rt.block, "ok");
  EXPECT_EQ(rt.peer.ip(), "127.0.0.1");
}

// A name with two addresses: whichever the resolver lists first refuses, the second
// accepts, so connect() must go on to it.
TEST_F(StreamTest, ConnectTriesEachAddressInTurn) {
  char path[] = "/tmp/corio-hosts-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "127.0.0.2 corio-multi.test\n127.0.0.3 corio-multi.test\n";
  ::setenv("CARES_HOSTS", path, 1);
  struct Cleanup {
    const char* p;
    ~Cleanup() {
      ::unsetenv("CARES_HOSTS");
      ::unlink(p);
    }
  } cleanup{path};

  Resolver resolver(loop);
  std::optional<std::vector<Address>> addrs;
  resolver.resolve("corio-multi.test", 0, AF_INET, [&](std::error_code ec, std::vector<Address> a) {
    EXPECT_FALSE(ec) << ec.message();
    addrs = std::move(a);
  });
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return addrs.has_value(); }));
  ASSERT_EQ(addrs->size(), 2u);
  EchoServer srv(loop, addrs->back().ip().c_str());  // only the last one listens
  ASSERT_TRUE(srv.ok());
  RoundTrip rt;
  ASSERT_TRUE(run_task(loop, round_trip(loop, "corio-multi.test", srv.port, rt, &resolver)));
  ASSERT_FALSE(rt.connect) << rt.connect.message();
  EXPECT_EQ(rt.peer.ip(), addrs->back().ip());
  EXPECT_EQ(rt.line, "hello");
}

TEST_F(StreamTest, ConnectionRefused) {
  std::uint16_t port;
  {
    auto l = corio::Listener::bind(loop, "127.0.0.1", 0);
    ASSERT_TRUE(l);
    port = l.value.address().port();
  }  // closed: nothing listens there now
  std::error_code ec, after;
  ASSERT_TRUE(run_task(loop, [](Loop& lp, std::uint16_t p, std::error_code& out, std::error_code& then) -> Task<void> {
    Stream s(lp);
    out = co_await s.connect("127.0.0.1", p, 2s);
    char c;
    then = (co_await s.read_some(&c, 1, 1s)).error;  // an error too, at once
  }(loop, port, ec, after)));
  EXPECT_EQ(ec, Error::refused) << ec.message();
  EXPECT_EQ(ec, std::errc::connection_refused);
  EXPECT_TRUE(after);
  EXPECT_NE(after, Error::timeout);
}

// A DNS server that never answers keeps the connect resolving: its timeout and close() end it.
struct SilentDns {
  int fd = -1;
  std::uint16_t port = 0;
  SilentDns() {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto a = *Address::from_ip("127.0.0.1", 0);
    ::bind(fd, a.data(), a.size());
    Address b;
    ::getsockname(fd, b.data(), b.size_ptr());
    port = b.port();
  }
  ~SilentDns() { ::close(fd); }
};

TEST_F(StreamTest, ConnectTimeoutAndCloseWhileResolving) {
  SilentDns dns;
  Resolver resolver(loop);
  ASSERT_FALSE(resolver.set_servers("127.0.0.1:" + std::to_string(dns.port)));

  std::error_code ec;
  auto start = corio::Clock::now();
  ASSERT_TRUE(run_task(loop, [](Loop& lp, Resolver& r, std::error_code& out) -> Task<void> {
    Stream s(lp);
    out = co_await s.connect("nowhere.corio.test", 80, 300ms, &r);
  }(loop, resolver, ec)));
  auto elapsed = corio::Clock::now() - start;
  EXPECT_EQ(ec, Error::timeout) << ec.message();
  EXPECT_GE(ms(elapsed), 300);
  EXPECT_LT(ms(elapsed), 2000);

  Stream s(loop);
  std::optional<std::error_code> closed;
  corio::spawn(loop, [](Stream& st, Resolver& r, std::optional<std::error_code>& out) -> Task<void> {
    out = co_await st.connect("nowhere.corio.test", 80, 5s, &r);
  }(s, resolver, closed));
  loop.run_once(50ms);
  EXPECT_FALSE(closed);
  s.close();
  ASSERT_TRUE(closed);
  EXPECT_EQ(*closed, Error::closed);
}

TEST_F(StreamTest, UnresolvableHostIsAResolveError) {
  Resolver resolver(loop);
  std::error_code ec;
  ASSERT_TRUE(run_task(loop, [](Loop& lp, Resolver& r, std::error_code& out) -> Task<void> {
    Stream s(lp);
    out = co_await s.connect("", 80, 2s, &r);
  }(loop, resolver, ec)));
  EXPECT_EQ(ec, corio::ResolveError::not_found) << ec.message();
}

TEST_F(StreamTest, ReadTimeoutWhileATimerKeepsFiring) {
  auto [a, b] = stream_pair(loop);
  ASSERT_TRUE(a.is_open() && b.is_open());
  int ticks = 0;
  corio::Timer timer(loop);
  timer.start(20ms, [&] { ++ticks; }, 20ms);

  corio::Result<std::size_t> r1, r2;
  corio::Duration waited{};
  char buf[16];
  ASSERT_TRUE(run_task(loop, [](Stream& s, char* buf, corio::Result<std::size_t>& out, corio::Duration& w) -> Task<void> {
    auto t0 = corio::Clock::now();
    out = co_await s.read_some(buf, 16, 300ms);
    w = corio::Clock::now() - t0;
  }(a, buf, r1, waited)));
  EXPECT_EQ(r1.error, Error::timeout);
  EXPECT_EQ(r1.error, std::errc::timed_out);
  EXPECT_GE(ms(waited), 300);
  EXPECT_LT(ms(waited), 2000);
  EXPECT_GE(ticks, 5);  // the loop went on meanwhile

  // The stream is still usable after a timeout.
  ASSERT_EQ(::write(b.fd(), "xy", 2), 2);
  ASSERT_TRUE(run_task(loop, [](Stream& s, char* buf, corio::Result<std::size_t>& out) -> Task<void> {
    out = co_await s.read_some(buf, 16, 2s);
  }(a, buf, r2)));
  ASSERT_FALSE(r2.error) << r2.error.message();
  EXPECT_EQ(std::string(buf, r2.value), "xy");
}

TEST_F(StreamTest, ReadLineStripsCRLFAndKeepsUnterminatedBytes) {
  auto [a, b] = stream_pair(loop);
  std::vector<corio::Result<std::string>> lines;
  std::string rest;
  corio::spawn(loop, [](Stream& s, std::vector<corio::Result<std::string>>& out, std::string& rest) -> Task<void> {
    for (int i = 0; i < 4; ++i) out.push_back(co_await s.read_line(2s));
    char buf[64];
    auto [ec, n] = co_await s.read_some(buf, sizeof buf, 2s);  // what the last line left
    if (!ec) rest.assign(buf, n);
    auto end = co_await s.read_some(buf, sizeof buf, 2s);
    out.push_back({end.error, {}});
  }(a, lines, rest));
  // Arrives in pieces: a line may straddle reads.
  for (const char* piece : {"hel", "lo\r\nwor", "ld\n", "\nlast"}) {
    ASSERT_EQ(::write(b.fd(), piece, std::strlen(piece)), static_cast<ssize_t>(std::strlen(piece)));
    loop.run_once(10ms);
  }
  b.close();
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return lines.size() == 5; }));
  EXPECT_EQ(lines[0].value, "hello");
  EXPECT_EQ(lines[1].value, "world");
  EXPECT_FALSE(lines[2].error);
  EXPECT_EQ(lines[2].value, "");
  EXPECT_EQ(lines[3].error, Error::closed);  // end of stream before a "\n"
  EXPECT_EQ(rest, "last");
  EXPECT_EQ(lines[4].error, Error::closed);
}

TEST_F(StreamTest, LineOverTheLimitIsRefusedWithoutGrowing) {
  auto [a, b] = stream_pair(loop);
  a.socket().set_limit(1000);
  std::string big(1 << 20, 'x');  // no newline in a whole MiB
  corio::spawn(loop, [](Stream& s, const std::string& data) -> Task<void> {
    (void)co_await s.write_all(data, 5s);
  }(b, big));
  std::optional<corio::Result<std::string>> line;
  corio::spawn(loop, [](Stream& s, std::optional<corio::Result<std::string>>& out) -> Task<void> {
    out = co_await s.read_line(5s);
  }(a, line));
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return line.has_value(); }));
  EXPECT_EQ(line->error, Error::line_too_long);
  EXPECT_GT(a.socket().input().size(), 1000u);  // kept: nothing is lost
  EXPECT_LE(a.socket().input().size(), 16u * 1024);  // but far from the MiB sent
  b.close();
}

// Each write_all is one queued operation: two concurrent writers never interleave.
TEST_F(StreamTest, ConcurrentWriteAllDoNotInterleave) {
  auto [a, b] = stream_pair(loop);
  constexpr std::size_t kSize = 4u << 20;
  const std::string one(kSize, 'a'), two(kSize, 'b');
  std::error_code e1 = Error::timeout, e2 = Error::timeout;
  auto writer = [](Stream& s, const std::string& data, std::error_code& out) -> Task<void> {
    out = co_await s.write_all(data, 10s);
  };
  corio::spawn(loop, writer(a, one, e1));
  corio::spawn(loop, writer(a, two, e2));
  std::string got;
  bool done = false;
  corio::spawn(loop, [](Stream& s, std::string& out, bool& d) -> Task<void> {
    std::vector<char> buf(256 * 1024);
    while (out.size() < 2 * kSize) {
      auto [ec, n] = co_await s.read_some(buf.data(), buf.size(), 10s);
      if (ec) break;
      out.append(buf.data(), n);
    }
    d = true;
  }(b, got, done));
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return done; }, 20s));
  EXPECT_FALSE(e1) << e1.message();
  EXPECT_FALSE(e2) << e2.message();
  ASSERT_EQ(got.size(), 2 * kSize);
  std::string_view first(got.data(), kSize), second(got.data() + kSize, kSize);
  bool ab = first == one && second == two;
  bool ba = first == two && second == one;
  EXPECT_TRUE(ab || ba) << "the two blocks were interleaved";
}

TEST_F(StreamTest, CloseWakesEveryPendingReader) {
  auto [a, b] = stream_pair(loop);
  std::vector<std::pair<int, std::error_code>> woken;
  for (int i = 0; i < 3; ++i)
    corio::spawn(loop, [](Stream& s, int id, std::vector<std::pair<int, std::error_code>>& out) -> Task<void> {
      char buf[8];
      auto [ec, n] = co_await s.read_some(buf, sizeof buf, 10s);
      out.emplace_back(id, ec);
    }(a, i, woken));
  loop.run_once(10ms);
  EXPECT_TRUE(woken.empty());
  a.close();  // resumes all three before returning
  ASSERT_EQ(woken.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(woken[i].first, i);  // in the order they waited
    EXPECT_EQ(woken[i].second, Error::closed);
  }
  EXPECT_FALSE(a.is_open());
  char c;
  std::optional<corio::Result<std::size_t>> after;
  corio::spawn(loop, [](Stream& s, char* c, std::optional<corio::Result<std::size_t>>& out) -> Task<void> {
    out = co_await s.read_some(c, 1);
  }(a, &c, after));
  ASSERT_TRUE(after);  // no wait on a closed stream
  EXPECT_EQ(after->error, Error::closed);
}

TEST_F(StreamTest, ThrottledWriteTakesItsTime) {
  auto [a, b] = stream_pair(loop);
  constexpr std::size_t kSize = 300000;
  a.socket().throttle(Direction::write).set_rate(200000, Loop::now());
  std::error_code wrote = Error::timeout;
  corio::Duration took{};
  std::size_t received = 0;
  corio::spawn(loop, [](Stream& s, std::size_t& total) -> Task<void> {
    char buf[65536];
    for (;;) {
      auto [ec, n] = co_await s.read_some(buf, sizeof buf, 5s);
      if (ec) co_return;
      total += n;
    }
  }(b, received));
  ASSERT_TRUE(run_task(loop, [](Stream& s, std::error_code& out, corio::Duration& t) -> Task<void> {
    std::string data(kSize, 'z');
    auto t0 = corio::Clock::now();
    out = co_await s.write_all(data, 10s);
    t = corio::Clock::now() - t0;
  }(a, wrote, took), 10s));
  EXPECT_FALSE(wrote) << wrote.message();
  EXPECT_GE(ms(took), 1300);
  EXPECT_LT(ms(took), 2200);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return received == kSize; }));
  EXPECT_EQ(a.socket().bytes_out, kSize);
  b.close();  // ends the reader's task
}

Task<void> pending_reader(Stream s, bool& resumed) {
  char buf[16];
  (void)co_await s.read_some(buf, sizeof buf, 10s);
  resumed = true;
}

// The frame owning the stream and its queued read is destroyed: ~IoOp dequeues the read
// and ~Stream releases the socket (ASan checks both).
TEST_F(StreamTest, FrameDestroyedWhileReadPending) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  bool resumed = false;
  {
    Task<void> t = pending_reader(Stream(loop, fds[0]), resumed);
    t.await_suspend(std::noop_coroutine()).resume();  // start it by hand: it owns its frame
    loop.run_once(10ms);
    EXPECT_FALSE(t.done());
  }  // frame destroyed here
  loop.run_once(20ms);
  EXPECT_FALSE(resumed);
  EXPECT_EQ(::send(fds[1], "late", 4, MSG_NOSIGNAL), -1);  // closed with the stream
  EXPECT_EQ(errno, EPIPE);
  ::close(fds[1]);
}

// Same, with the frame destroyed by its loop, and a second reader queued behind the first.
TEST_F(StreamTest, LoopDestroyedWithReadsPending) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  bool resumed = false;
  {
    Loop loop;
    Stream shared(loop, fds[0]);
    corio::spawn(loop, [](Stream& s, bool& r) -> Task<void> {
      char buf[4];
      (void)co_await s.read_some(buf, sizeof buf, 10s);
      r = true;
    }(shared, resumed));
    corio::spawn(loop, pending_reader(Stream(loop, ::dup(fds[1])), resumed));
    corio::spawn(loop, [](Stream& s, bool& r) -> Task<void> {
      char buf[4];
      (void)co_await s.read_some(buf, sizeof buf, 10s);  // queued behind the first
      r = true;
    }(shared, resumed));
    loop.run_once(10ms);
    // `shared` is destroyed first (its readers are cancelled, not resumed), then the loop
    // destroys the three frames.
  }
  EXPECT_FALSE(resumed);
  ::close(fds[1]);
}

// A reader whose frame goes away while queued behind another leaves the first undisturbed.
TEST_F(StreamTest, QueuedReaderDestroyedLeavesTheOthers) {
  auto [a, b] = stream_pair(loop);
  std::optional<corio::Result<std::size_t>> first, third;
  char buf1[8], buf2[8], buf3[8];
  corio::spawn(loop, [](Stream& s, char* buf, std::optional<corio::Result<std::size_t>>& out) -> Task<void> {
    out = co_await s.read_some(buf, 8, 5s);
  }(a, buf1, first));
  bool second_resumed = false;
  {
    Task<void> t = [](Stream& s, char* buf, bool& r) -> Task<void> {
      (void)co_await s.read_some(buf, 8, 5s);
      r = true;
    }(a, buf2, second_resumed);
    t.await_suspend(std::noop_coroutine()).resume();
  }
  corio::spawn(loop, [](Stream& s, char* buf, std::optional<corio::Result<std::size_t>>& out) -> Task<void> {
    out = co_await s.read_some(buf, 8, 5s);
  }(a, buf3, third));
  ASSERT_EQ(::write(b.fd(), "12345678", 8), 8);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return first.has_value(); }));
  ASSERT_EQ(::write(b.fd(), "abc", 3), 3);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return third.has_value(); }));
  EXPECT_FALSE(second_resumed);
  EXPECT_EQ(std::string(buf1, first->value), "12345678");
  EXPECT_EQ(std::string(buf3, third->value), "abc");
}

TEST_F(StreamTest, EmptyAndMovedFromStreamsFailWithClosed) {
  Stream empty;
  auto [a, b] = stream_pair(loop);
  Stream moved = std::move(a);
  std::vector<std::error_code> errors;
  ASSERT_TRUE(run_task(loop, [](Stream& e, Stream& gone, std::vector<std::error_code>& out) -> Task<void> {
    char c;
    out.push_back((co_await e.read_some(&c, 1)).error);
    out.push_back(co_await e.write_all("x"));
    out.push_back(co_await gone.connect("127.0.0.1", 1));
    out.push_back((co_await gone.read_line()).error);
  }(empty, a, errors)));
  ASSERT_EQ(errors.size(), 4u);
  for (auto& ec : errors) EXPECT_EQ(ec, Error::closed);
  EXPECT_EQ(empty.fd(), -1);
  EXPECT_TRUE(moved.is_open());
}

// ---- the engine under the awaiters ----

// A head cancelled (its frame destroyed) hands over to the next reader at once, even when
// the bytes it needs are already buffered and the descriptor will not become readable.
TEST_F(StreamEngine, CancelledHeadLetsTheNextReaderUseBufferedBytes) {
  auto [a, b] = stream_pair(loop);
  ASSERT_EQ(::write(b.fd(), "abc", 3), 3);  // a partial line: buffered by the line reader
  std::optional<corio::Result<std::size_t>> got;
  char buf[8];
  {
    Task<void> line_reader = [](Stream& s) -> Task<void> { (void)co_await s.read_line(5s); }(a);
    line_reader.await_suspend(std::noop_coroutine()).resume();
    loop.run_once(10ms);
    corio::spawn(loop, [](Stream& s, char* buf, std::optional<corio::Result<std::size_t>>& out) -> Task<void> {
      out = co_await s.read_some(buf, 8, 5s);
    }(a, buf, got));
    EXPECT_FALSE(got);
  }  // the line reader's frame goes
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return got.has_value(); }, 1s));
  ASSERT_FALSE(got->error) << got->error.message();
  EXPECT_EQ(std::string(buf, got->value), "abc");
}

// An op submitted from another op's finish() that is told to wait is not stepped again
// until its descriptor is ready (a connect stepped early would look done).
class CountingRead final : public corio::IoOp {
 public:
  explicit CountingRead(std::function<void()> then) : then_(std::move(then)) {}
  Status step(corio::Socket& so) override {
    ++steps;
    std::error_code ec;
    Status st = so.fill(1, ec);
    if (st == Status::done) error = ec;
    return st;
  }
  void finish() override {
    finished = true;
    if (then_) then_();
  }
  int steps = 0;
  bool finished = false;

 private:
  std::function<void()> then_;
};

TEST_F(StreamEngine, OpSubmittedFromFinishWaitsForReadiness) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  auto* so = new corio::Socket(loop, fds[0]);
  CountingRead second(nullptr);
  CountingRead first([&] {
    so->input().clear();
    EXPECT_FALSE(so->submit(second, Direction::read));  // nothing to read: it waits
  });
  EXPECT_FALSE(so->submit(first, Direction::read));
  ASSERT_EQ(::write(fds[1], "x", 1), 1);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return first.finished; }));
  EXPECT_EQ(second.steps, 1);  // stepped once by submit(), not again by the dispatch
  ASSERT_EQ(::write(fds[1], "y", 1), 1);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return second.finished; }));
  EXPECT_EQ(second.steps, 2);
  so->destroy();
  ::close(fds[1]);
}

}  // namespace

namespace {

// A socket whose last read has completed keeps its epoll interest (so a reader coming back
// costs no epoll_ctl), but only a queued operation keeps Loop::run() going: an idle open
// stream must not hang run() until its peer happens to send something.
TEST_F(StreamTest, RunReturnsWhenNoOperationIsQueuedThoughStreamsStayOpen) {
  Loop& loop = Loop::current();
  auto [a, b] = stream_pair(loop);
  std::string got;
  corio::spawn([](Stream& s, std::string& out) -> Task<void> {
    auto [ec, chunk] = co_await s.read_chunk();  // waits: the data comes later
    if (!ec) out = chunk;
  }(b, got));
  corio::spawn([](Stream& s) -> Task<void> {
    co_await corio::sleep_for(10ms);
    co_await s.write_all("ping");
  }(a));
  corio::Timer watchdog(loop);
  bool timed_out = false;
  watchdog.start(2s, [&] {
    timed_out = true;
    loop.stop();
  });
  watchdog.unref();  // does not itself keep run() going
  auto t0 = corio::Loop::now();
  loop.run();
  EXPECT_FALSE(timed_out);
  EXPECT_LT(corio::Loop::now() - t0, 1s);
  EXPECT_EQ(got, "ping");
  EXPECT_TRUE(a.is_open());
  EXPECT_TRUE(b.is_open());
}

}  // namespace
