// Listener: bind errors, accept timeout and close, Unix paths, back-off when out of
// descriptors (EMFILE) without spinning, and many concurrent clients.
#include <corio/listener.hpp>
#include <corio/stream.hpp>
#include <corio/task.hpp>

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "net_support.hpp"
#include "test_support.hpp"

namespace {

using namespace std::chrono_literals;
using corio::Address;
using corio::Error;
using corio::Listener;
using corio::Loop;
using corio::Result;
using corio::Stream;
using corio::Task;
using corio_net_test::EchoServer;
using corio_net_test::run_task;
using corio_test::ms;

// Each test gets `loop` and ends by asserting that it closes (corio_test::LoopFixture).
using ListenerTest = corio_test::LoopFixture;

TEST_F(ListenerTest, BindsAndReportsItsAddress) {
  auto any = Listener::bind(loop, "*", 0);
  ASSERT_TRUE(any) << any.error.message();
  EXPECT_EQ(any.value.address().family(), AF_INET);
  EXPECT_EQ(any.value.address().ip(), "0.0.0.0");
  EXPECT_NE(any.value.address().port(), 0);
  EXPECT_GE(any.value.fd(), 0);

  auto taken = Listener::bind(loop, "*", any.value.address().port());
  EXPECT_EQ(taken.error, std::errc::address_in_use) << taken.error.message();
  auto name = Listener::bind(loop, "localhost", 0);  // numeric hosts only
  EXPECT_EQ(name.error, std::errc::invalid_argument);
  EXPECT_EQ(name.value.fd(), -1);
}

TEST_F(ListenerTest, AcceptTimesOutAndCloseWakesIt) {
  auto l = Listener::bind(loop, "127.0.0.1", 0);
  ASSERT_TRUE(l);
  Result<Stream> timed_out;
  corio::Duration waited{};
  ASSERT_TRUE(run_task(loop, [](Listener& l, Result<Stream>& out, corio::Duration& w) -> Task<void> {
    auto t0 = corio::Clock::now();
    out = co_await l.accept(200ms);
    w = corio::Clock::now() - t0;
  }(l.value, timed_out, waited)));
  EXPECT_EQ(timed_out.error, Error::timeout);
  EXPECT_GE(ms(waited), 200);
  EXPECT_EQ(timed_out.value.fd(), -1);

  std::optional<Result<Stream>> closed;
  corio::spawn(loop, [](Listener& l, std::optional<Result<Stream>>& out) -> Task<void> {
    out = co_await l.accept(10s);
  }(l.value, closed));
  loop.run_once(10ms);
  EXPECT_FALSE(closed);
  l.value.close();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->error, Error::closed);
  EXPECT_EQ(l.value.address().family(), AF_UNSPEC);
}

TEST_F(ListenerTest, UnixPathEcho) {
  std::string path = "/tmp/corio-listener-" + std::to_string(::getpid()) + ".sock";
  ::unlink(path.c_str());
  auto addr = Address::from_path(path);
  ASSERT_TRUE(addr);
  auto l = Listener::bind(loop, *addr);
  ASSERT_TRUE(l) << l.error.message();
  EXPECT_EQ(l.value.address().ip(), path);
  corio::spawn(loop, corio_net_test::echo_server(l.value));
  std::string line;
  std::error_code ec;
  ASSERT_TRUE(run_task(loop, [](Loop& lp, Address a, std::string& out, std::error_code& err) -> Task<void> {
    Stream s(lp);
    if ((err = co_await s.connect(a, 2s))) co_return;
    if ((err = co_await s.write_all("over unix\n", 2s))) co_return;
    auto r = co_await s.read_line(2s);
    err = r.error;
    out = r.value;
  }(loop, *addr, line, ec)));
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(line, "over unix");
  ::unlink(path.c_str());
  l.value.close();  // ends the echo server's task
}

// ---- out of descriptors ----

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int highest_fd_below(rlim_t limit) {
  int high = 2;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (dirent* e = ::readdir(d)) {
      int fd = std::atoi(e->d_name);
      if (fd > high && static_cast<rlim_t>(fd) < limit) high = fd;
    }
    ::closedir(d);
  }
  return high;
}

// Runs in a forked child (it exhausts the process's descriptors); returns an exit status.
int accept_under_emfile() {
  Loop loop;
  auto l = Listener::bind(loop, "127.0.0.1", 0);
  if (!l) return 10;
  Address at = l.value.address();
  // Valgrind emulates the limit after the system call: its accept() has dequeued the
  // connection, then closes it. There a second client, connected later, must get through.
  const char* preload = std::getenv("LD_PRELOAD");
  bool valgrind = preload && std::strstr(preload, "vgpreload");
  int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);  // before the descriptors run out
  int late_client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (client < 0 || late_client < 0) return 11;

  std::optional<Result<Stream>> accepted;
  corio::spawn(loop, [](Listener& l, std::optional<Result<Stream>>& out) -> Task<void> {
    out = co_await l.accept(20s);
  }(l.value, accepted));

  // Lower the limit just above the descriptors in use, then use up the rest.
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 12;
  rl.rlim_cur = static_cast<rlim_t>(highest_fd_below(rl.rlim_cur)) + 8;
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return 13;
  std::vector<int> filler;
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) filler.push_back(fd);
  if (errno != EMFILE || filler.empty()) return 14;

  if (::connect(client, at.data(), at.size()) != 0) return 15;  // completes in the backlog

  // accept() now fails with EMFILE while the connection stays queued: the loop must back
  // off rather than spin on the readable listening socket.
  double cpu0 = cpu_seconds();
  auto t0 = corio::Clock::now();
  while (corio::Clock::now() - t0 < 600ms) loop.run_once(600ms - (corio::Clock::now() - t0));
  double cpu = cpu_seconds() - cpu0;
  if (accepted) return 16;
  std::fprintf(stderr, "cpu while out of descriptors: %.3f s over 0.6 s\n", cpu);
  if (cpu > 0.25) return 17;

  ::close(filler.back());  // one descriptor free again: the pending connection gets it
  filler.pop_back();
  if (valgrind && ::connect(late_client, at.data(), at.size()) != 0) return 15;
  if (!corio_test::run_until(loop, [&] { return accepted.has_value(); }, 3s)) return 18;
  if (accepted->error) return 19;
  Address expected;
  ::getsockname(valgrind ? late_client : client, expected.data(), expected.size_ptr());
  if (accepted->value.peer_address().port() != expected.port()) return 20;
  for (int fd : filler) ::close(fd);
  ::close(client);
  ::close(late_client);
  return 0;
}

TEST_F(ListenerTest, AcceptBacksOffWhenOutOfDescriptors) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::alarm(30);  // never outlive the test
    ::_exit(accept_under_emfile());
  }
  int status = 0;
  auto end = corio::Clock::now() + 30s;
  pid_t r;
  while ((r = ::waitpid(pid, &status, WNOHANG)) == 0 && corio::Clock::now() < end) ::usleep(10000);
  if (r == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "the child hung";
  }
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  // 16: accepted although out of descriptors; 17: spun; 18: never accepted afterwards.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// ---- many clients ----

TEST_F(ListenerTest, TwoHundredConcurrentClients) {
  EchoServer srv(loop, "127.0.0.1");
  ASSERT_TRUE(srv.ok());
  constexpr int kClients = 200;
  int ok = 0, failed = 0;
  auto client = [](Loop& lp, std::uint16_t port, int id, int& good, int& bad) -> Task<void> {
    Stream s(lp);
    std::string line = "client " + std::to_string(id);
    bool fine = !co_await s.connect("127.0.0.1", port, 10s) && !co_await s.write_all(line + "\n", 10s);
    if (fine) {
      auto r = co_await s.read_line(10s);
      fine = !r.error && r.value == line;
    }
    ++(fine ? good : bad);
  };
  auto start = corio::Clock::now();
  for (int i = 0; i < kClients; ++i) corio::spawn(loop, client(loop, srv.port, i, ok, failed));
  ASSERT_TRUE(corio_test::run_until(loop, [&] { return ok + failed == kClients; }, 20s))
      << ok << " ok, " << failed << " failed";
  EXPECT_EQ(ok, kClients);
  EXPECT_LT(ms(corio::Clock::now() - start), 20000);
}

}  // namespace
