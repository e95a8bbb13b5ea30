// Datagram: send_to / recv_from round trips on IPv4 and IPv6 loopback, receive timeout,
// close waking a receiver, and empty sockets.
#include <corio/datagram.hpp>
#include <corio/task.hpp>
#include <corio/timer.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Address;
using corio::Datagram;
using corio::Error;
using corio::Loop;
using corio::Result;
using corio::Task;
using corio_net_test::run_task;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using DatagramTest = corio_test::LoopFixture;

// Binds a datagram socket to ip:0 (nullopt if that family is unavailable).
std::optional<Datagram> bound(Loop& loop, const char* ip, int family) {
  auto d = Datagram::open(loop, family);
  if (!d) return std::nullopt;
  if (d.value.bind(*Address::from_ip(ip, 0))) return std::nullopt;
  return std::move(d.value);
}

void expect_round_trip(Loop& loop, const char* ip, int family) {
  auto server = bound(loop, ip, family);
  auto client = bound(loop, ip, family);
  ASSERT_TRUE(server && client);
  Address server_at = server->address();
  ASSERT_NE(server_at.port(), 0);

  // The server echoes one datagram back to its sender.
  corio::spawn(loop, [](Datagram& d) -> Task<void> {
    char buf[1500];
    auto [ec, got] = co_await d.recv_from(buf, sizeof buf, 5s);
    if (!ec) (void)co_await d.send_to({buf, got.size}, got.from, 5s);
  }(*server));

  Result<std::size_t> sent;
  Result<Datagram::Received> echoed;
  char buf[1500];
  ASSERT_TRUE(run_task(loop, [](Datagram& d, Address to, char* buf, Result<std::size_t>& s,
                                Result<Datagram::Received>& r) -> Task<void> {
    s = co_await d.send_to("ping over udp", to, 2s);
    r = co_await d.recv_from(buf, 1500, 2s);
  }(*client, server_at, buf, sent, echoed)));
  ASSERT_FALSE(sent.error) << sent.error.message();
  EXPECT_EQ(sent.value, 13u);
  ASSERT_FALSE(echoed.error) << echoed.error.message();
  EXPECT_EQ(std::string(buf, echoed.value.size), "ping over udp");
  EXPECT_EQ(echoed.value.from.family(), family);
  EXPECT_EQ(echoed.value.from.ip(), ip);
  EXPECT_EQ(echoed.value.from.port(), server_at.port());
}

TEST_F(DatagramTest, SendToRecvFromIPv4) {
  expect_round_trip(loop, "127.0.0.1", AF_INET);
}

TEST_F(DatagramTest, SendToRecvFromIPv6) {
  if (!bound(loop, "::1", AF_INET6)) GTEST_SKIP() << "IPv6 loopback unavailable";
  expect_round_trip(loop, "::1", AF_INET6);
}

TEST_F(DatagramTest, RecvTimesOutWhileTheLoopGoesOn) {
  auto d = bound(loop, "127.0.0.1", AF_INET);
  ASSERT_TRUE(d);
  int ticks = 0;
  corio::Timer timer(loop);
  timer.start(20ms, [&] { ++ticks; }, 20ms);
  Result<Datagram::Received> r;
  corio::Duration waited{};
  ASSERT_TRUE(run_task(loop, [](Datagram& d, Result<Datagram::Received>& out, corio::Duration& w) -> Task<void> {
    char buf[64];
    auto t0 = corio::Clock::now();
    out = co_await d.recv_from(buf, sizeof buf, 250ms);
    w = corio::Clock::now() - t0;
  }(*d, r, waited)));
  EXPECT_EQ(r.error, Error::timeout);
  EXPECT_GE(ms(waited), 250);
  EXPECT_LT(ms(waited), 2000);
  EXPECT_GE(ticks, 5);
}

TEST_F(DatagramTest, CloseWakesAReceiver) {
  auto d = bound(loop, "127.0.0.1", AF_INET);
  ASSERT_TRUE(d);
  std::optional<Result<Datagram::Received>> r;
  corio::spawn(loop, [](Datagram& d, std::optional<Result<Datagram::Received>>& out) -> Task<void> {
    char buf[64];
    out = co_await d.recv_from(buf, sizeof buf, 10s);
  }(*d, r));
  loop.run_once(10ms);
  EXPECT_FALSE(r);
  d->close();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->error, Error::closed);
  EXPECT_EQ(d->fd(), -1);
  EXPECT_EQ(d->bind(*Address::from_ip("127.0.0.1", 0)), Error::closed);
}

TEST_F(DatagramTest, EmptySocketFailsWithClosed) {
  Datagram empty;
  Result<std::size_t> sent;
  ASSERT_TRUE(run_task(loop, [](Datagram& d, Result<std::size_t>& out) -> Task<void> {
    out = co_await d.send_to("x", *Address::from_ip("127.0.0.1", 9));
  }(empty, sent)));
  EXPECT_EQ(sent.error, Error::closed);
}

}  // namespace
