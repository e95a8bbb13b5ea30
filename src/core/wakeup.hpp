// Wakeup: a descriptor another thread can make readable to interrupt a blocked poll.
#pragma once

namespace corio {

class Wakeup {
 public:
  Wakeup();
  ~Wakeup();
  Wakeup(const Wakeup&) = delete;
  Wakeup& operator=(const Wakeup&) = delete;
  int fd() const noexcept { return fd_; }
  void signal() noexcept;  // async-signal-safe and thread-safe
  void drain() noexcept;
  void forsake() noexcept;  // after fork(), in the child: a fresh eventfd of the same number

 private:
  int fd_;
};

}  // namespace corio
