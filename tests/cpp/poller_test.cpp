// The epoll backend's contract with the loop (src/core/poller.hpp): what it cannot poll it
// says is always ready, and a failed wait is returned, not swallowed.
#include <corio/io_watch.hpp>

#include "poller.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <set>

#include <sys/eventfd.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Poller;
using corio::PollEvent;

TEST(Poller, ARegularFileIsAlwaysReady) {
  auto poller = Poller::create();
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(poller->set(fileno(f), 0, corio::kReadable), Poller::kAlwaysReady);
  std::fclose(f);
}

TEST(Poller, APipeIsPolled) {
  auto poller = Poller::create();
  corio_test::Pipe p;
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(poller->set(p.r, 0, corio::kReadable), 0);
  ASSERT_TRUE(p.put());
  PollEvent ev[4];
  ASSERT_EQ(poller->wait(1s, ev, 4), 1);
  EXPECT_EQ(ev[0].fd, p.r);
  EXPECT_TRUE(ev[0].events & corio::kReadable);
  EXPECT_EQ(poller->set(p.r, corio::kReadable, 0), 0);
}

TEST(Poller, AClosedDescriptorIsRefused) {
  auto poller = Poller::create();
  int fd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(poller->set(fd, 0, corio::kReadable), EBADF);
}

TEST(Poller, AFailedWaitIsReturned) {
  const std::set<int> before = corio_test::descriptors_linked_to("anon_inode:[eventpoll]");
  auto poller = Poller::create();
  int epfd = -1;
  for (int fd : corio_test::descriptors_linked_to("anon_inode:[eventpoll]"))
    if (!before.count(fd)) epfd = fd;
  ASSERT_GE(epfd, 0);
  const int other = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(other, 0);
  ASSERT_EQ(::dup2(other, epfd), epfd);
  ::close(other);
  PollEvent ev[4];
  EXPECT_EQ(poller->wait(0ms, ev, 4), -EINVAL);
  EXPECT_EQ(poller->wait(std::nullopt, ev, 4), -EINVAL);  // fails at once: no wait
}

}  // namespace
