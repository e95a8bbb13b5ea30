// Loop::forsake: in the child of a fork(), nothing done through the parent's loop may reach
// the parent (epoll registrations are shared through the open file description), sockets'
// descriptors are closed, and the signals the loop blocked are reported, not unblocked.
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/signal_watch.hpp>
#include <corio/socket.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::IoWatch;
using corio::Loop;
using corio_test::Pipe;

// Forks; the child runs fn() and exits with its result (0: passed). Returns the child's
// exit status, or -1 if it did not exit normally.
template <class F>
int in_child(F fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(LoopForsake, AChildStoppingAWatchLeavesTheParentsRegistration) {
  Loop loop;
  Pipe p;
  int fired = 0;
  IoWatch w(loop, p.r, [&](unsigned) { ++fired; });
  ASSERT_FALSE(w.start(corio::kReadable));
  EXPECT_EQ(0, in_child([&] {
    loop.forsake();
    w.stop();  // EPOLL_CTL_DEL: on the shared instance it would remove the parent's
    return 0;
  }));
  ASSERT_EQ(1, ::write(p.w, "x", 1));
  loop.run_once(1s);
  EXPECT_EQ(1, fired);
  w.stop();
}

TEST(LoopForsake, ClosesTheChildsCopyOfEverySocketsDescriptor) {
  Loop loop;
  int fd = corio::Socket::open(AF_INET, SOCK_STREAM);
  ASSERT_GE(fd, 0);
  auto* s = new corio::Socket(loop, fd);
  EXPECT_EQ(0, in_child([&] {
    loop.forsake();
    if (fcntl(fd, F_GETFD) != -1) return 1;  // still open in the child
    if (s->fd() != -1) return 2;
    s->destroy();  // harmless afterwards
    return 0;
  }));
  EXPECT_NE(-1, fcntl(fd, F_GETFD));  // the parent's copy is untouched
  s->destroy();
}

TEST(LoopForsake, ReportsTheSignalsTheLoopBlockedAndLeavesTheMask) {
  Loop loop;
  corio::SignalWatch w(loop, SIGUSR2, [](int) {});
  ASSERT_FALSE(w.start());
  EXPECT_EQ(0, in_child([&] {
    std::uint64_t blocked = loop.forsake();
    if (!(blocked & (std::uint64_t{1} << (SIGUSR2 - 1)))) return 1;
    w.stop();  // detached: must not unblock SIGUSR2 (a child's own loop may own it now)
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    return sigismember(&now, SIGUSR2) ? 0 : 2;
  }));
  w.stop();
}

TEST(LoopForsake, ForsakeCurrentGivesTheThreadAFreshLoop) {
  EXPECT_EQ(0, in_child([] {
    Loop* before = &Loop::current();
    Loop::forsake_current();
    return &Loop::current() != before ? 0 : 1;
  }));
}

}  // namespace
