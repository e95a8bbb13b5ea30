// Shared by the C++ tests: the fixture every test with a loop uses (its loop must close at
// the end), descriptors that close themselves, a bounded run loop, and exception capture.
// Time bounds in tests: lower bounds are strict (a timer must never be early), upper bounds
// are generous (CI machines are noisy).
#pragma once
#include <corio/clock.hpp>
#include <corio/loop.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace corio_test {

using namespace std::chrono_literals;

// Asserts that `loop` closes: nothing (timer, watch, signal watch, socket, task, hold,
// queued callback) is left live on it.
inline void expect_closes(corio::Loop& loop, const char* which = "the test's loop") {
  const std::error_code ec = loop.close();
  EXPECT_FALSE(ec) << which << " did not close (" << ec.message() << "): " << loop.live_report();
}

// The fixture of every test with a loop (libuv's MAKE_VALGRIND_HAPPY): the test gets `loop`,
// and ends by asserting that it closes with nothing left live — and the thread's default
// loop too (Loop::current(): Resolver::current() and the one-argument spawn/sleep_for use
// it), unless it already held something when the test began (another test's leak).
class LoopFixture : public ::testing::Test {
 protected:
  void SetUp() override { current_was_clean_ = corio::Loop::current().live_report().empty(); }
  void TearDown() override {
    expect_closes(loop);
    if (current_was_clean_) expect_closes(corio::Loop::current(), "Loop::current()");
  }

  corio::Loop loop;

 private:
  bool current_was_clean_ = false;
};

inline void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A non-blocking pipe.
struct Pipe {
  int r = -1;
  int w = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      r = fds[0];
      w = fds[1];
    }
  }
  ~Pipe() {
    close_fd(r);
    close_fd(w);
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  bool ok() const { return r >= 0 && w >= 0; }
  bool put(char c = 'x') const { return ::write(w, &c, 1) == 1; }
  int drain() const {
    char buf[256];
    int total = 0;
    for (ssize_t n; (n = ::read(r, buf, sizeof buf)) > 0;) total += static_cast<int>(n);
    return total;
  }
};

// Runs the loop one iteration at a time until pred() holds or `limit` passes.
template <class Pred>
bool run_until(corio::Loop& loop, Pred pred, corio::Duration limit = 2s) {
  const corio::TimePoint end = corio::Clock::now() + limit;
  while (!pred()) {
    const corio::TimePoint now = corio::Clock::now();
    if (now >= end) return false;
    loop.run_once(end - now);
  }
  return true;
}

// Installs a handler that records the what() of every exception the loop reports.
inline void capture_exceptions(corio::Loop& loop, std::vector<std::string>& out) {
  loop.set_exception_handler([&out](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      out.emplace_back(ex.what());
    } catch (...) {
      out.emplace_back("<non-std exception>");
    }
  });
}

// This process's descriptors of one kind, by their /proc/self/fd link: "anon_inode:[eventpoll]"
// (a loop's is the one that appears when it is made), "anon_inode:[signalfd]" ...
inline std::set<int> descriptors_linked_to(const std::string& target) {
  std::set<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto link = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && link == target) out.insert(std::stoi(e.path().filename().string()));
  }
  return out;
}

template <class D>
long long ms(D d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace corio_test
