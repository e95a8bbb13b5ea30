// IoWatch: interest in a descriptor's readiness (level-triggered). Several watches may share
// one descriptor; the loop registers the union of their interests with the poller.
#pragma once
#include <functional>
#include <system_error>

namespace corio {

class Loop;

// Readiness bits. Error and Hangup are always reported to every watch of the descriptor;
// a watch interested in Readable/Writable also sees those bits then, as select() would.
enum IoEvent : unsigned {
  kReadable = 1u << 0,
  kWritable = 1u << 1,
  kPriority = 1u << 2,  // out-of-band / exceptional condition (POLLPRI)
  kError = 1u << 3,
  kHangup = 1u << 4,
};

class IoWatch {
 public:
  using Callback = std::function<void(unsigned events)>;

  IoWatch(Loop& loop, int fd, Callback cb) noexcept : loop_(&loop), fd_(fd), cb_(std::move(cb)) {}
  ~IoWatch() { stop(); }
  IoWatch(const IoWatch&) = delete;
  IoWatch& operator=(const IoWatch&) = delete;

  // Sets the interest (kReadable | kWritable | kPriority); 0 stops. Fails with the
  // poller's error (e.g. EBADF for a closed descriptor), leaving the watch stopped.
  // Regular files cannot be polled; they are reported ready on every loop iteration.
  std::error_code start(unsigned interest);
  void stop() noexcept;

  // An unreferenced watch does not keep Loop::run() going (internal descriptors).
  void unref() noexcept;

  int fd() const noexcept { return fd_; }
  unsigned interest() const noexcept { return interest_; }
  bool active() const noexcept { return interest_ != 0; }
  Loop& loop() const noexcept { return *loop_; }

 private:
  friend class Loop;
  Loop* loop_;
  int fd_;
  unsigned interest_ = 0;
  bool ref_ = true;
  Callback cb_;
  IoWatch* prev_ = nullptr;  // the loop's list of watches on fd_
  IoWatch* next_ = nullptr;
};

}  // namespace corio
