// ConnectOp, the engine's connect (and bind) under both faces: each address in turn with a
// fresh descriptor after a failed attempt, each attempt with its own timeout, a zero timeout
// that leaves the attempt going on, a connected socket that answers "already connected",
// "*" as the loopback (connect) or the wildcard (bind), and close() ending a lookup.
#include <corio/connect_op.hpp>
#include <corio/listener.hpp>

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <optional>
#include <vector>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Address;
using corio::ConnectOp;
using corio::Error;
using corio::Loop;
using corio_test::ms;
using ConnectOpTest = corio_test::LoopFixture;

// The op as a face would use it: finish() records the end.
struct Probe final : ConnectOp {
  void finish() override { finished = true; }
  bool finished = false;
};

// A plain blocking listener on ip (no loop involved), port chosen by the kernel.
struct Listening {
  int fd = -1;
  Address address;
  explicit Listening(const char* ip, int backlog = 16) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address = *Address::from_ip(ip, 0);
    if (::bind(fd, address.data(), address.size()) != 0 || ::listen(fd, backlog) != 0) return;
    ::getsockname(fd, address.data(), address.size_ptr());
  }
  ~Listening() { ::close(fd); }
};

// A listener on ip whose backlog is full: a further SYN is dropped, so a connect waits.
struct Silent {
  Listening l;
  std::vector<int> fillers;
  explicit Silent(const char* ip = "127.0.0.1") : l(ip, 0) {
    for (int i = 0; i < 4; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(c, l.address.data(), l.address.size());
      fillers.push_back(c);
    }
  }
  ~Silent() {
    for (int c : fillers) ::close(c);
  }
};

bool run_op(Loop& loop, corio::Socket& so, Probe& op, ConnectOp::Target t, std::optional<corio::Duration> timeout,
            ConnectOp::Action action = ConnectOp::Action::connect) {
  if (op.start(so, std::move(t), action, timeout)) return true;
  return corio_test::run_until(loop, [&] { return op.finished; }, 5s);
}

Address peer_of(int fd) {
  Address a;
  ::getpeername(fd, a.data(), a.size_ptr());
  return a;
}

// A hosts file naming two addresses, read by c-ares through CARES_HOSTS while it lives.
struct TwoAddresses {
  char path[32] = "/tmp/corio-hosts-XXXXXX";
  TwoAddresses() {
    int fd = ::mkstemp(path);
    const char text[] = "127.0.0.2 two.corio.test\n127.0.0.3 two.corio.test\n";
    EXPECT_EQ(::write(fd, text, sizeof text - 1), static_cast<ssize_t>(sizeof text - 1));
    ::close(fd);
    ::setenv("CARES_HOSTS", path, 1);
  }
  ~TwoAddresses() {
    ::unsetenv("CARES_HOSTS");
    ::unlink(path);
  }
};

int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  ::getsockopt(fd, level, name, &v, &len);
  return v;
}

TEST_F(ConnectOpTest, ARefusedAddressIsFollowedByTheNextOnAFreshDescriptor) {
  TwoAddresses hosts;
  Listening live("127.0.0.3");  // nothing listens on 127.0.0.2 at that port: refused
  corio::Socket so(loop, corio::Socket::open(AF_INET, SOCK_STREAM));
  int on = 1;
  ASSERT_FALSE(so.set_option(SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
  Probe op;
  ConnectOp::Target t;
  t.host = "two.corio.test";
  t.port = live.address.port();
  ASSERT_TRUE(run_op(loop, so, op, t, 2s));
  ASSERT_FALSE(op.error) << op.error.message();
  EXPECT_EQ(peer_of(so.fd()).ip(), "127.0.0.3");
  EXPECT_EQ(get_int(so.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);  // applied again
  so.close();
}

TEST_F(ConnectOpTest, ATimedOutAttemptMovesOnToTheNextAddressWithItsOwnTimeout) {
  TwoAddresses hosts;
  Silent silent("127.0.0.2");  // 127.0.0.3 listens on its port
  int live = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Address a = *Address::from_ip("127.0.0.3", silent.l.address.port());
  ASSERT_EQ(::bind(live, a.data(), a.size()), 0);
  ASSERT_EQ(::listen(live, 16), 0);
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.host = "two.corio.test";
  t.port = a.port();
  auto start = corio::Clock::now();
  ASSERT_TRUE(run_op(loop, so, op, t, 200ms));
  ASSERT_FALSE(op.error) << op.error.message();
  EXPECT_EQ(peer_of(so.fd()).ip(), "127.0.0.3");
  EXPECT_GE(ms(corio::Clock::now() - start), 200);  // the first had its whole timeout
  so.close();
  ::close(live);
}

TEST_F(ConnectOpTest, TheLastAttemptsErrorIsTheAnswer) {
  Silent silent;
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.address = silent.l.address;
  auto start = corio::Clock::now();
  ASSERT_TRUE(run_op(loop, so, op, t, 200ms));
  EXPECT_EQ(op.error, Error::timeout);
  EXPECT_GE(ms(corio::Clock::now() - start), 200);
  so.close();
}

TEST_F(ConnectOpTest, StarConnectsToTheLoopback) {
  Listening live("127.0.0.1");
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.host = "*";
  t.port = live.address.port();
  ASSERT_TRUE(run_op(loop, so, op, t, 2s));
  ASSERT_FALSE(op.error) << op.error.message();
  EXPECT_EQ(peer_of(so.fd()).ip(), "127.0.0.1");
  so.close();
}

TEST_F(ConnectOpTest, AConnectedSocketAnswersAlreadyConnectedAndKeepsItsConnection) {
  Listening live("127.0.0.1");
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.address = live.address;
  t.family = AF_INET;  // a socket of a set family keeps its descriptor (tcp() would not)
  ASSERT_TRUE(run_op(loop, so, op, t, 2s));
  ASSERT_FALSE(op.error) << op.error.message();
  int fd = so.fd();
  // Linux completes an asynchronous connect on the next connect() (0, as LuaSocket sees
  // too); after that the answer is EISCONN, and no fresh descriptor is tried.
  Probe completes, again;
  ASSERT_TRUE(run_op(loop, so, completes, t, 2s));
  EXPECT_FALSE(completes.error) << completes.error.message();
  ASSERT_TRUE(run_op(loop, so, again, t, 2s));
  EXPECT_EQ(again.error, std::errc::already_connected);
  EXPECT_EQ(so.fd(), fd);
  EXPECT_EQ(peer_of(fd).port(), live.address.port());
  so.close();
}

TEST_F(ConnectOpTest, AZeroTimeoutStopsAfterTheFirstAttemptWhichGoesOn) {
  Silent silent;
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.address = silent.l.address;
  ASSERT_FALSE(op.start(so, t, ConnectOp::Action::connect, corio::Duration::zero()));
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return op.finished; }, 1s));
  EXPECT_EQ(op.error, Error::timeout);
  EXPECT_GE(so.fd(), 0);  // the descriptor stays, its connect in progress
  so.close();
}

TEST_F(ConnectOpTest, BindTriesTheWildcardAndReportsAnAddressInUse) {
  Listening busy("127.0.0.1");
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.host = "127.0.0.1";
  t.port = busy.address.port();
  ASSERT_TRUE(run_op(loop, so, op, t, 1s, ConnectOp::Action::bind));
  EXPECT_EQ(op.error, std::errc::address_in_use);

  corio::Socket any(loop, -1);
  Probe op2;
  ConnectOp::Target w;
  w.host = "*";
  w.family = AF_INET;
  ASSERT_TRUE(run_op(loop, any, op2, w, 1s, ConnectOp::Action::bind));
  ASSERT_FALSE(op2.error) << op2.error.message();
  Address a;
  ::getsockname(any.fd(), a.data(), a.size_ptr());
  EXPECT_EQ(a.ip(), "0.0.0.0");
  EXPECT_EQ(any.family(), AF_INET);
}

TEST_F(ConnectOpTest, CloseEndsALookupInFlight) {
  // A name no hosts file knows and a DNS server that never answers.
  int dns = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  Address d = *Address::from_ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(dns, d.data(), d.size()), 0);
  ::getsockname(dns, d.data(), d.size_ptr());
  ASSERT_FALSE(corio::Resolver::of(loop).set_servers(d.to_string()));
  corio::Socket so(loop, -1);
  Probe op;
  ConnectOp::Target t;
  t.host = "nowhere.corio.test";
  t.port = 80;
  ASSERT_FALSE(op.start(so, t, ConnectOp::Action::connect, 5s));
  loop.run_once(50ms);
  EXPECT_FALSE(op.finished);
  so.close();
  EXPECT_TRUE(op.finished);
  EXPECT_EQ(op.error, Error::closed);
  EXPECT_LT(so.fd(), 0);  // nothing connected afterwards
  ::close(dns);
}

}  // namespace
