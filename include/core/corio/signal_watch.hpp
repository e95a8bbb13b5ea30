// SignalWatch: delivery of a POSIX signal as a loop callback. While any watch of a signal
// is active the loop blocks that signal in the calling thread and reads it from a
// signalfd; when the last watch stops, the signal's previous mask state is restored.
#pragma once
#include <functional>
#include <system_error>

namespace corio {

class Loop;

class SignalWatch {
 public:
  using Callback = std::function<void(int signo)>;

  SignalWatch(Loop& loop, int signo, Callback cb) noexcept
      : loop_(&loop), signo_(signo), cb_(std::move(cb)) {}
  ~SignalWatch() { stop(); }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;

  // Fails with EINVAL for a signal that cannot be caught (SIGKILL, SIGSTOP, out of range).
  std::error_code start();
  void stop() noexcept;
  // An unreferenced watch does not keep Loop::run() going.
  void unref() noexcept;
  bool active() const noexcept { return active_; }
  int signo() const noexcept { return signo_; }

 private:
  friend class SignalSource;
  Loop* loop_;
  int signo_;
  bool active_ = false;
  bool ref_ = true;
  Callback cb_;
  SignalWatch* prev_ = nullptr;
  SignalWatch* next_ = nullptr;
};

// Signal number for "SIGINT", "INT" or "sigint"; 0 if unknown.
int signal_number(const char* name) noexcept;

}  // namespace corio
