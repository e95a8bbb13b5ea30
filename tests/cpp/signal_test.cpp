// SignalWatch: delivery through the loop, the thread's signal mask while watching and
// after, several watches of one signal, refused signals, and signal_number().
#include <corio/loop.hpp>
#include <corio/signal_watch.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Loop;
using corio::signal_number;
using corio::SignalWatch;
using corio_test::run_until;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using Signal = corio_test::LoopFixture;

bool blocked(int signo) {
  sigset_t cur;
  sigemptyset(&cur);
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, signo) == 1;
}

void set_blocked(int signo, bool block) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, &one, nullptr);
}

bool pending(int signo) {
  sigset_t p;
  sigemptyset(&p);
  sigpending(&p);
  return sigismember(&p, signo) == 1;
}

TEST_F(Signal, WatchReceivesARaisedSignal) {
  ASSERT_FALSE(blocked(SIGUSR1));
  std::vector<int> got;
  {
    SignalWatch w(loop, SIGUSR1, [&](int s) { got.push_back(s); });
    EXPECT_EQ(w.signo(), SIGUSR1);
    ASSERT_FALSE(w.start());
    EXPECT_TRUE(w.active());
    EXPECT_TRUE(loop.alive());
    EXPECT_TRUE(blocked(SIGUSR1));  // delivered through the signalfd, not a handler
    ASSERT_EQ(::raise(SIGUSR1), 0);  // directed at this thread
    ASSERT_TRUE(run_until(loop, [&] { return !got.empty(); }));
    EXPECT_EQ(got, std::vector<int>{SIGUSR1});
    EXPECT_FALSE(pending(SIGUSR1));
    // A second one is delivered too.
    ASSERT_EQ(::raise(SIGUSR1), 0);
    ASSERT_TRUE(run_until(loop, [&] { return got.size() == 2; }));
  }
  EXPECT_FALSE(blocked(SIGUSR1)) << "the mask is restored once the last watch is gone";
  EXPECT_FALSE(loop.alive());
}

TEST_F(Signal, StopRestoresTheMask) {
  ASSERT_FALSE(blocked(SIGUSR2));
  SignalWatch w(loop, SIGUSR2, [](int) {});
  ASSERT_FALSE(w.start());
  EXPECT_TRUE(blocked(SIGUSR2));
  w.stop();
  EXPECT_FALSE(w.active());
  EXPECT_FALSE(blocked(SIGUSR2));
  EXPECT_FALSE(loop.alive());
  // Restartable.
  ASSERT_FALSE(w.start());
  EXPECT_TRUE(blocked(SIGUSR2));
  w.stop();
  EXPECT_FALSE(blocked(SIGUSR2));
}

TEST_F(Signal, SignalBlockedBeforehandStaysBlocked) {
  set_blocked(SIGUSR2, true);
  {
    Loop loop;
    int calls = 0;
    SignalWatch w(loop, SIGUSR2, [&](int) { ++calls; });
    ASSERT_FALSE(w.start());
    ASSERT_EQ(::raise(SIGUSR2), 0);
    EXPECT_TRUE(run_until(loop, [&] { return calls == 1; }));
  }
  EXPECT_TRUE(blocked(SIGUSR2));
  EXPECT_FALSE(pending(SIGUSR2));
  set_blocked(SIGUSR2, false);
}

TEST_F(Signal, TwoWatchesOfOneSignalBothReceiveIt) {
  int a_calls = 0, b_calls = 0;
  SignalWatch a(loop, SIGUSR1, [&](int s) {
    EXPECT_EQ(s, SIGUSR1);
    ++a_calls;
  });
  SignalWatch b(loop, SIGUSR1, [&](int s) {
    EXPECT_EQ(s, SIGUSR1);
    ++b_calls;
  });
  ASSERT_FALSE(a.start());
  ASSERT_FALSE(b.start());
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(run_until(loop, [&] { return a_calls == 1 && b_calls == 1; }));

  // Stopping one keeps the signal blocked and delivered to the other.
  a.stop();
  EXPECT_TRUE(blocked(SIGUSR1));
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(run_until(loop, [&] { return b_calls == 2; }));
  EXPECT_EQ(a_calls, 1);
  b.stop();
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST_F(Signal, WatchStoppedBySiblingCallbackIsNotCalled) {
  int calls = 0;
  std::unique_ptr<SignalWatch> a, b;
  a = std::make_unique<SignalWatch>(loop, SIGUSR1, [&](int) {
    ++calls;
    b.reset();
  });
  b = std::make_unique<SignalWatch>(loop, SIGUSR1, [&](int) {
    ++calls;
    a.reset();
  });
  ASSERT_FALSE(a->start());
  ASSERT_FALSE(b->start());
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(run_until(loop, [&] { return calls > 0; }));
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE((a == nullptr) != (b == nullptr));
  a.reset();
  b.reset();
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST_F(Signal, DifferentSignalsGoToTheirOwnWatches) {
  std::vector<int> got1, got2;
  SignalWatch w1(loop, SIGUSR1, [&](int s) { got1.push_back(s); });
  SignalWatch w2(loop, SIGUSR2, [&](int s) { got2.push_back(s); });
  ASSERT_FALSE(w1.start());
  ASSERT_FALSE(w2.start());
  ASSERT_EQ(::raise(SIGUSR2), 0);
  ASSERT_TRUE(run_until(loop, [&] { return !got2.empty(); }));
  EXPECT_TRUE(got1.empty());
  EXPECT_EQ(got2, std::vector<int>{SIGUSR2});
}

TEST_F(Signal, UncatchableOrInvalidSignalsAreRefused) {
  for (int s : {SIGKILL, SIGSTOP, 0, -1, 65, 1000}) {
    SignalWatch w(loop, s, [](int) {});
    std::error_code ec = w.start();
    EXPECT_EQ(ec, std::errc::invalid_argument) << "signal " << s << ": " << ec.message();
    EXPECT_FALSE(w.active());
  }
  EXPECT_FALSE(loop.alive());
}

TEST_F(Signal, LoopDestroyedBeforeItsWatch) {
  ASSERT_FALSE(blocked(SIGUSR1));
  auto loop = std::make_unique<Loop>();
  SignalWatch w(*loop, SIGUSR1, [](int) {});
  ASSERT_FALSE(w.start());
  loop.reset();
  EXPECT_FALSE(w.active());  // detached by the loop: its destructor is harmless
  EXPECT_FALSE(blocked(SIGUSR1));
}

TEST_F(Signal, ExceptionFromASignalCallbackGoesToTheHandler) {
  std::vector<std::string> errors;
  corio_test::capture_exceptions(loop, errors);
  int other = 0;
  SignalWatch a(loop, SIGUSR1, [](int) { throw std::runtime_error("sig boom"); });
  SignalWatch b(loop, SIGUSR1, [&](int) { ++other; });
  ASSERT_FALSE(a.start());
  ASSERT_FALSE(b.start());
  ASSERT_EQ(::raise(SIGUSR1), 0);
  ASSERT_TRUE(run_until(loop, [&] { return !errors.empty() && other == 1; }));
  EXPECT_EQ(errors, std::vector<std::string>{"sig boom"});
}

// Runs fn in a forked child (a signal's default action must kill the child, not the test)
// and returns its wait status; a child still running after 5 s is killed.
template <class F>
int status_of_child(F fn) {
  const pid_t pid = ::fork();
  if (pid == 0) _exit(fn());
  if (pid < 0) return -1;
  int status = 0;
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    ::usleep(10'000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return status;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exit status " + std::to_string(WEXITSTATUS(status));
}

// A signal raised while watched but not yet read from the signalfd is pending; it used to
// be delivered with its default action (SIGUSR1: terminate) once the last watch stopped.
TEST_F(Signal, StoppingTheLastWatchDiscardsAPendingSignal) {
  const int status = status_of_child([] {
    Loop loop;
    SignalWatch w(loop, SIGUSR1, [](int) {});
    if (w.start() || ::raise(SIGUSR1) != 0 || !pending(SIGUSR1)) return 3;
    w.stop();
    return blocked(SIGUSR1) || pending(SIGUSR1) ? 2 : 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe(status);
}

TEST_F(Signal, DestroyingTheLoopDiscardsAPendingSignal) {
  const int status = status_of_child([] {
    auto loop = std::make_unique<Loop>();
    SignalWatch w(*loop, SIGUSR2, [](int) {});
    if (w.start() || ::raise(SIGUSR2) != 0) return 3;
    loop.reset();
    return blocked(SIGUSR2) || pending(SIGUSR2) ? 2 : 0;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe(status);
}

// The thread had it blocked before: it stays blocked, and pending, as it would have been.
TEST_F(Signal, APendingSignalTheThreadBlockedItselfStaysPending) {
  const int status = status_of_child([] {
    set_blocked(SIGUSR1, true);
    Loop loop;
    SignalWatch w(loop, SIGUSR1, [](int) {});
    if (w.start() || ::raise(SIGUSR1) != 0) return 3;
    w.stop();
    return blocked(SIGUSR1) && pending(SIGUSR1) ? 0 : 2;
  });
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << describe(status);
}

TEST_F(Signal, SignalNumberParsesNames) {
  EXPECT_EQ(signal_number("SIGINT"), SIGINT);
  EXPECT_EQ(signal_number("INT"), SIGINT);
  EXPECT_EQ(signal_number("int"), SIGINT);
  EXPECT_EQ(signal_number("sigint"), SIGINT);
  EXPECT_EQ(signal_number("TERM"), SIGTERM);
  EXPECT_EQ(signal_number("SIGHUP"), SIGHUP);
  EXPECT_EQ(signal_number("usr1"), SIGUSR1);
  EXPECT_EQ(signal_number("SIGCHLD"), SIGCHLD);
  EXPECT_EQ(signal_number("RTMIN"), SIGRTMIN);
  EXPECT_EQ(signal_number("SIGRTMIN+2"), SIGRTMIN + 2);
  EXPECT_EQ(signal_number("RTMAX-1"), SIGRTMAX - 1);
  EXPECT_EQ(signal_number("NOPE"), 0);
  EXPECT_EQ(signal_number("SIGNOPE"), 0);
  EXPECT_EQ(signal_number(""), 0);
  EXPECT_EQ(signal_number("SIG"), 0);
  EXPECT_EQ(signal_number("RTMIN+x"), 0);
  EXPECT_EQ(signal_number("RTMIN+1000"), 0);
}

}  // namespace

namespace {

TEST_F(Signal, UnreferencedWatchDoesNotHoldRun) {
  corio::SignalWatch w(loop, SIGUSR2, [](int) {});
  ASSERT_FALSE(w.start());
  w.unref();
  auto t0 = corio::Clock::now();
  loop.run();  // nothing referenced: returns at once
  EXPECT_LT(corio::Clock::now() - t0, 1s);
  EXPECT_TRUE(w.active());
}

}  // namespace
