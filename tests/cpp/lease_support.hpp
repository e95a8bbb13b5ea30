// Shared by the lease tests: forked children that are always reaped, bounded reads, the
// tests' way into LeaseTable's lock, and a fixture with an shm name of its own.
#pragma once
#include <corio/clock.hpp>
#include <corio/lease_table.hpp>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.hpp"

namespace corio {
// The tests' way into the table's lock (lease_table.hpp names it a friend).
struct LeaseTableAccess {
  static std::error_code lock(LeaseTable& t) { return t.lock(); }
  static void unlock(LeaseTable& t) { t.unlock(); }
};
}  // namespace corio

namespace corio_test {

using corio::LeaseTable;

// A forked child running fn (its exit code: fn's result), killed by alarm after 10 s if
// nothing else ends it, and killed and reaped by the destructor if the test did not.
class Child {
 public:
  explicit Child(const std::function<int()>& fn) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::alarm(10);
      ::_exit(fn());
    }
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void kill(int sig) const { ::kill(pid_, sig); }
  // The wait status, or -1 if the child did not end within limit (then it is killed).
  int wait(corio::Duration limit = 5s) {
    const corio::TimePoint end = corio::Clock::now() + limit;
    int status = 0;
    for (;;) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        return status;
      }
      if (r < 0 || corio::Clock::now() >= end) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        reaped_ = true;
        return -1;
      }
      std::this_thread::sleep_for(1ms);
    }
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

inline bool exited_ok(int status) { return status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// Reads exactly n bytes from fd within limit.
inline bool read_within(int fd, void* buf, std::size_t n, corio::Duration limit = 5s) {
  const corio::TimePoint end = corio::Clock::now() + limit;
  auto* p = static_cast<char*>(buf);
  while (n > 0) {
    const corio::TimePoint now = corio::Clock::now();
    if (now >= end) return false;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(ms(end - now)) + 1) <= 0) continue;
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// Each test has its own shm name, unlinked at the end.
class LeaseFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    name = "test." + std::to_string(::getpid()) + "." +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    LeaseTable::unlink(name);  // a crashed earlier run of the same pid
  }
  void TearDown() override { LeaseTable::unlink(name); }

  std::shared_ptr<LeaseTable> open_table() {
    std::error_code ec;
    auto t = LeaseTable::open(name, ec);
    EXPECT_FALSE(ec) << ec.message();
    return t;
  }
  std::string shm() const { return "/corio." + std::to_string(::geteuid()) + "." + name; }
  // Makes the shm object of the test's name by hand: size bytes of fill, mode.
  void make_object(std::size_t size, unsigned char fill, mode_t mode = 0600) {
    int fd = ::shm_open(shm().c_str(), O_RDWR | O_CREAT | O_EXCL, mode);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ::fchmod(fd, mode);
    if (size > 0) {
      std::vector<unsigned char> bytes(size, fill);
      for (std::size_t i = 0; i < size; i += 7) bytes[i] = static_cast<unsigned char>(i * 31);
      ASSERT_EQ(::write(fd, bytes.data(), size), static_cast<ssize_t>(size));
    }
    ::close(fd);
  }

  std::string name;
};

}  // namespace corio_test
