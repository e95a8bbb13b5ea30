// SignalWatch: delivery of a POSIX signal as a loop callback. While any watch of a signal
// is active the loop blocks that signal in the calling thread and reads it from a
// signalfd; when the last watch stops, the signal's previous mask state is restored.
#pragma once
#include <corio/handle.hpp>
#include <corio/loop.hpp>

#include <functional>
#include <system_error>

namespace corio {

class SignalWatch : public Handle {
 public:
  using Callback = std::function<void(int signo)>;

  SignalWatch(Loop& loop, int signo, Callback cb) noexcept
      : Handle(loop.handles(), HandleKind::signal_watch), signo_(signo), cb_(std::move(cb)) {}
  ~SignalWatch() { stop(); }

  // Fails with EINVAL for a signal that cannot be caught (SIGKILL, SIGSTOP, out of range).
  std::error_code start();
  // When the last watch of a signal stops, instances of it still pending are discarded
  // before the signal is unblocked (they would otherwise take its default action).
  void stop() noexcept;
  // Handle::unref(): an unreferenced watch does not keep Loop::run() going.
  int signo() const noexcept { return signo_; }

 private:
  friend class SignalSource;
  int signo_;
  Callback cb_;
  SignalWatch* prev_ = nullptr;
  SignalWatch* next_ = nullptr;
};

// Signal number for "SIGINT", "INT" or "sigint"; 0 if unknown.
int signal_number(const char* name) noexcept;

}  // namespace corio
