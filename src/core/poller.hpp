// Poller: the only platform-specific piece of the loop (as ae_epoll.c is for redis).
// One implementation file per backend; CMake picks one. The backend decides what it can
// poll (as libuv's uv__io_check_fd does); the loop only keeps what it is told.
#pragma once
#include <corio/clock.hpp>

#include <memory>
#include <optional>

namespace corio {

struct PollEvent {
  int fd;
  unsigned events;  // IoEvent bits
};

class Poller {
 public:
  // set(): the descriptor cannot be polled but never blocks (a regular file for epoll):
  // the loop reports it ready on every iteration, as select() would.
  static constexpr int kAlwaysReady = -1;

  virtual ~Poller() = default;
  // Registers, changes (old != 0) or removes (interest == 0) the interest mask for fd.
  // Returns 0, kAlwaysReady (nothing registered) or an errno value.
  virtual int set(int fd, unsigned old_interest, unsigned interest) noexcept = 0;
  // Waits up to timeout (nullopt: forever); fills out[0..n) and returns n (0 on timeout
  // or when interrupted by a signal), or -errno if the wait itself failed.
  virtual int wait(std::optional<Duration> timeout, PollEvent* out, int max) noexcept = 0;

  // In the child of a fork(): replaces the backend's descriptor by a fresh one of the same
  // number, so that what is done through this poller no longer reaches the parent's.
  virtual void forsake() noexcept = 0;

  static std::unique_ptr<Poller> create();
};

}  // namespace corio
