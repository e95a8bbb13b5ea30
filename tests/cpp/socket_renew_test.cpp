// Socket::renew: a fresh descriptor of the asked family replaces the old one (closed), with
// the options set through set_option() and an explicit bind() applied again, so a connect
// that tries a second address keeps what the user set up.
#include <corio/socket.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using corio::Address;
// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using SocketRenew = corio_test::LoopFixture;

int get_int(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  EXPECT_EQ(::getsockopt(fd, level, name, &v, &len), 0);
  return v;
}

// A loopback port free right now.
std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  Address a = *Address::from_ip("127.0.0.1", 0);
  EXPECT_EQ(::bind(fd, a.data(), a.size()), 0);
  EXPECT_EQ(::getsockname(fd, a.data(), a.size_ptr()), 0);
  ::close(fd);
  return a.port();
}

TEST_F(SocketRenew, ReplaysOptionsAndBindOnTheFreshDescriptor) {
  corio::Socket so(loop, corio::Socket::open(AF_INET, SOCK_STREAM));
  int old = so.fd();
  ASSERT_GE(old, 0);
  int on = 1;
  ASSERT_FALSE(so.set_option(IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
  ASSERT_FALSE(so.set_option(SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
  Address bound = *Address::from_ip("127.0.0.1", free_port());
  ASSERT_FALSE(so.bind(bound));

  ASSERT_FALSE(so.renew(AF_INET, SOCK_STREAM));
  EXPECT_TRUE(so.fd() == old || fcntl(old, F_GETFD) == -1);  // closed first: its number may be reused
  EXPECT_EQ(get_int(so.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  EXPECT_EQ(get_int(so.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);
  Address now;
  ASSERT_EQ(::getsockname(so.fd(), now.data(), now.size_ptr()), 0);
  EXPECT_EQ(now.to_string(), bound.to_string());  // the same address and port (the old one is closed first)
  EXPECT_TRUE(fcntl(so.fd(), F_GETFL) & O_NONBLOCK);
}

TEST_F(SocketRenew, AnotherFamilyKeepsTheOptionsButNotTheBind) {
  corio::Socket so(loop, corio::Socket::open(AF_INET, SOCK_STREAM));
  int on = 1;
  ASSERT_FALSE(so.set_option(IPPROTO_TCP, TCP_NODELAY, &on, sizeof on));
  ASSERT_FALSE(so.bind(*Address::from_ip("127.0.0.1", 0)));
  ASSERT_FALSE(so.renew(AF_INET6, SOCK_STREAM));
  EXPECT_EQ(so.family(), AF_INET6);
  EXPECT_EQ(get_int(so.fd(), IPPROTO_TCP, TCP_NODELAY), 1);
  Address now;
  ASSERT_EQ(::getsockname(so.fd(), now.data(), now.size_ptr()), 0);
  EXPECT_EQ(now.port(), 0);  // unbound
}

TEST_F(SocketRenew, OptionsOfAClosedSocketFail) {
  corio::Socket so(loop, -1);
  int on = 1;
  EXPECT_EQ(so.set_option(IPPROTO_TCP, TCP_NODELAY, &on, sizeof on), std::errc::bad_file_descriptor);
  EXPECT_EQ(so.bind(*Address::from_ip("127.0.0.1", 0)), std::errc::bad_file_descriptor);
}

// Most sockets are connected ones (accepted): they never renew, so their options are set,
// not kept (an idle server connection that set tcp-nodelay cost ~270 B more otherwise). Were
// one renewed all the same, its fresh descriptor would start plain.
TEST_F(SocketRenew, OnlyASocketThatMayStillConnectKeepsItsOptions) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  corio::Socket connected(loop, fds[0]);
  int on = 1;
  ASSERT_FALSE(connected.set_option(SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on));
  EXPECT_EQ(get_int(connected.fd(), SOL_SOCKET, SO_KEEPALIVE), 1);  // set all the same
  ASSERT_FALSE(connected.renew(AF_INET, SOCK_STREAM));
  EXPECT_EQ(get_int(connected.fd(), SOL_SOCKET, SO_KEEPALIVE), 0);  // not kept
  ::close(fds[1]);
}

}  // namespace
