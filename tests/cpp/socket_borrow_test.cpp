// Socket with a borrowed descriptor (set_owner, adopt(fd), as corio.wrap() uses for a LuaSocket
// object's): I/O and close() wake-ups as usual, but close(), destroy() and the destructor
// leave the descriptor open for its owner, and renew() hands the new one to the owner; an
// owned one is closed.
#include <corio/socket.hpp>

#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using corio::Direction;
using corio::Error;
using corio::Loop;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using SocketBorrow = corio_test::LoopFixture;

bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

class ReadOne final : public corio::IoOp {
 public:
  Status step(corio::Socket& so) override {
    std::error_code ec;
    Status st = so.fill(1, ec);
    if (st == Status::done) error = ec;
    return st;
  }
  void finish() override { finished = true; }
  bool finished = false;
};

// Records what the socket hands over.
struct Owner final : corio::Socket::Owner {
  int new_fd = -2;
  void replaced(int n) override { new_fd = n; }
};

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0) a = fds[0], b = fds[1];
  }
  ~Pair() {
    if (a >= 0 && is_open(a)) ::close(a);
    if (b >= 0) ::close(b);
  }
};

TEST_F(SocketBorrow, ReadsAndCloseWakesWaitersButLeavesTheDescriptorOpen) {
  Pair p;
  ASSERT_GE(p.a, 0);
  Owner owner;
  corio::Socket so(loop, -1);
  so.set_owner(&owner);
  so.adopt(p.a);
  EXPECT_TRUE(fcntl(p.a, F_GETFL) & O_NONBLOCK);
  ReadOne first, waiting;
  EXPECT_FALSE(so.submit(first, Direction::read));
  ASSERT_EQ(::write(p.b, "x", 1), 1);
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return first.finished; }));
  EXPECT_FALSE(first.error);
  EXPECT_EQ(so.input().view(), "x");
  so.input().clear();
  EXPECT_FALSE(so.submit(waiting, Direction::read));
  so.close();
  EXPECT_TRUE(waiting.finished);
  EXPECT_EQ(waiting.error, Error::closed);
  EXPECT_TRUE(so.closed());
  EXPECT_TRUE(is_open(p.a));  // still the owner's
  ASSERT_EQ(::write(p.b, "y", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(p.a, &c, 1), 1);
  EXPECT_EQ(c, 'y');
}

TEST_F(SocketBorrow, DestroyAndDestructorLeaveItOpen) {
  Pair p;
  ASSERT_GE(p.a, 0);
  Owner owner;
  {
    corio::Socket so(loop, -1);
    so.set_owner(&owner);
    so.adopt(p.a);
  }
  EXPECT_TRUE(is_open(p.a));
  auto* so = new corio::Socket(loop, -1);
  so->set_owner(&owner);
  so->adopt(p.a);
  so->destroy();
  EXPECT_TRUE(is_open(p.a));
}

// A connect attempt after a failed one renews the descriptor: the borrowed one is closed, as
// LuaSocket destroys it, and the owner learns the new one.
TEST_F(SocketBorrow, RenewHandsTheNewDescriptorToTheOwner) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  Owner owner;
  corio::Socket so(loop, -1);
  so.set_owner(&owner);
  so.adopt(fd);
  ASSERT_FALSE(so.renew(AF_INET6, SOCK_STREAM));
  EXPECT_EQ(owner.new_fd, so.fd());
  EXPECT_TRUE(so.fd() == fd || !is_open(fd));  // closed (its number may be the new one's)
  EXPECT_EQ(so.family(), AF_INET6);
  int v6only = 0;
  socklen_t len = sizeof v6only;
  ASSERT_EQ(::getsockopt(so.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len), 0);
  EXPECT_EQ(v6only, 1);  // as LuaSocket makes every inet6 socket
  so.close();
  EXPECT_TRUE(is_open(owner.new_fd));  // still borrowed
  ::close(owner.new_fd);
}

TEST_F(SocketBorrow, OwnedDescriptorIsClosed) {
  Pair p;
  ASSERT_GE(p.a, 0);
  {
    corio::Socket so(loop, p.a);
  }
  EXPECT_FALSE(is_open(p.a));
  p.a = -1;
}

// LuaSocket's setfd: the socket lets go of its descriptor without closing it (whoever took
// it owns it now), wakes its waiters, and keeps what was buffered.
TEST_F(SocketBorrow, DetachLeavesTheDescriptorOpenAndKeepsTheBuffer) {
  Pair p;
  ASSERT_GE(p.a, 0);
  corio::Socket so(loop, p.a);
  ASSERT_EQ(::write(p.b, "xy", 2), 2);
  ReadOne first, waiting;
  if (!so.submit(first, Direction::read)) {
    ASSERT_TRUE(corio_test::run_until(loop, [&] { return first.finished; }));
  }
  EXPECT_EQ(so.input().view(), "xy");
  EXPECT_FALSE(so.submit(waiting, Direction::read));
  so.detach();
  EXPECT_TRUE(waiting.finished);
  EXPECT_EQ(waiting.error, Error::closed);
  EXPECT_TRUE(is_open(p.a));
  EXPECT_EQ(so.input().view(), "xy");
}

// An open socket is a live handle of its loop (Loop::close() names it) that keeps no run()
// going; closed, it is gone.
TEST_F(SocketBorrow, AnOpenSocketIsLiveButUnreferenced) {
  Pair p;
  ASSERT_GE(p.a, 0);
  corio::Socket so(loop, p.a);
  p.a = -1;
  EXPECT_EQ(loop.handles().live(corio::HandleKind::socket), 1);
  EXPECT_EQ(loop.close(), std::errc::device_or_resource_busy);
  EXPECT_NE(loop.live_report().find("socket: 1"), std::string::npos) << loop.live_report();
  loop.run();  // returns: nothing holds it
  so.close();
  EXPECT_EQ(loop.handles().live(corio::HandleKind::socket), 0);
}

}  // namespace
