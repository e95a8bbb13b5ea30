// Poller: the only platform-specific piece of the loop (as ae_epoll.c is for redis).
// One implementation file per backend; CMake picks one.
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
  virtual ~Poller() = default;
  // Registers, changes (old != 0) or removes (interest == 0) the interest mask for fd.
  // Returns 0 or an errno value; EPERM means the descriptor cannot be polled.
  virtual int set(int fd, unsigned old_interest, unsigned interest) noexcept = 0;
  // Waits up to timeout (nullopt: forever); fills out[0..n) and returns n (0 on timeout).
  virtual int wait(std::optional<Duration> timeout, PollEvent* out, int max) noexcept = 0;

  static std::unique_ptr<Poller> create();
};

}  // namespace corio
