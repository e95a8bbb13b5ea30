// Awaiters for C++ coroutines: sleep_for, readable, writable. Each holds its Timer and
// IoWatch inside the awaiting coroutine's frame, so waiting allocates nothing, and a
// frame destroyed while waiting simply disarms them.
#pragma once
#include <corio/io_watch.hpp>
#include <corio/loop.hpp>
#include <corio/timer.hpp>

#include <coroutine>
#include <optional>
#include <system_error>

namespace corio {

class SleepAwaiter {
 public:
  SleepAwaiter(Loop& loop, Duration d) noexcept : timer_(loop), d_(d) {}
  bool await_ready() const noexcept { return false; }  // sleep_for(0) still yields a turn
  void await_suspend(std::coroutine_handle<> h) {
    timer_.start(d_, [h] { h.resume(); });
  }
  void await_resume() const noexcept {}

 private:
  Timer timer_;
  Duration d_;
};

// Waits until fd is ready for `interest`, or the timeout passes. Resumes with {} when
// ready, std::errc::timed_out on timeout, or the error registering fd (e.g. EBADF).
class IoAwaiter {
 public:
  IoAwaiter(Loop& loop, int fd, unsigned interest, std::optional<Duration> timeout) noexcept
      : watch_(loop, fd, [this](unsigned) { finish({}); }),
        timer_(loop),
        interest_(interest),
        timeout_(timeout) {}
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    h_ = h;
    if ((ec_ = watch_.start(interest_))) return false;
    if (timeout_) timer_.start(*timeout_, [this] { finish(std::make_error_code(std::errc::timed_out)); });
    return true;
  }
  std::error_code await_resume() const noexcept { return ec_; }

 private:
  void finish(std::error_code ec) {
    watch_.stop();
    timer_.stop();
    ec_ = ec;
    h_.resume();
  }
  IoWatch watch_;
  Timer timer_;
  unsigned interest_;
  std::optional<Duration> timeout_;
  std::coroutine_handle<> h_;
  std::error_code ec_;
};

inline SleepAwaiter sleep_for(Loop& loop, Duration d) noexcept { return {loop, d}; }
inline SleepAwaiter sleep_for(Duration d) noexcept { return {Loop::current(), d}; }

inline IoAwaiter readable(Loop& loop, int fd, std::optional<Duration> timeout = std::nullopt) noexcept {
  return {loop, fd, kReadable, timeout};
}
inline IoAwaiter readable(int fd, std::optional<Duration> timeout = std::nullopt) noexcept {
  return {Loop::current(), fd, kReadable, timeout};
}
inline IoAwaiter writable(Loop& loop, int fd, std::optional<Duration> timeout = std::nullopt) noexcept {
  return {loop, fd, kWritable, timeout};
}
inline IoAwaiter writable(int fd, std::optional<Duration> timeout = std::nullopt) noexcept {
  return {Loop::current(), fd, kWritable, timeout};
}

}  // namespace corio
