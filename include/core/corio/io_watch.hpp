// IoWatch: interest in a descriptor's readiness (level-triggered). Several watches may share
// one descriptor; the loop registers the union of their interests with the poller.
#pragma once
#include <corio/handle.hpp>
#include <corio/loop.hpp>

#include <functional>
#include <system_error>

namespace corio {

// Readiness bits. Error and Hangup are always reported to every watch of the descriptor;
// a watch interested in Readable/Writable also sees those bits then, as select() would.
enum IoEvent : unsigned {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kPriority = 1u << 2,  // out-of-band / exceptional condition (POLLPRI)
  kError = 1u << 3,
  kHangup = 1u << 4,
};

class IoWatch : public Handle {
 public:
  using Callback = std::function<void(unsigned events)>;

  IoWatch(Loop& loop, int fd, Callback cb) noexcept
      : Handle(loop.handles(), HandleKind::io_watch), fd_(fd), cb_(std::move(cb)) {}
  ~IoWatch() { stop(); }

  // Sets the interest (kReadable | kWritable | kPriority); 0 stops. Fails with the
  // poller's error (e.g. EBADF for a closed descriptor), leaving the watch stopped.
  // Regular files cannot be polled; they are reported ready on every loop iteration.
  std::error_code start(unsigned interest);
  void stop() noexcept;

  // Handle::unref(): an unreferenced watch does not keep Loop::run() going (an idle
  // socket's, a resolver's). Active (live) exactly while the interest is not 0.

  int fd() const noexcept { return fd_; }
  unsigned interest() const noexcept { return interest_; }

 private:
  friend class Loop;
  friend class SignalSource;  // its signalfd's watch is the loop's own (make_internal)
  int fd_;
  unsigned interest_ = 0;
  Callback cb_;
  IoWatch* prev_ = nullptr;  // the loop's list of watches on fd_
  IoWatch* next_ = nullptr;
};

}  // namespace corio
