// SignalSource: the loop's signalfd and the watches of each signal (created on first use).
#pragma once
#include <corio/io_watch.hpp>
#include <corio/signal_watch.hpp>

#include <csignal>
#include <cstdint>
#include <optional>
#include <string>

namespace corio {

class SignalSource {
 public:
  explicit SignalSource(Loop& loop);
  ~SignalSource();
  std::error_code add(SignalWatch* w);
  void remove(SignalWatch* w) noexcept;
  // Appends " (signal 10, signal 12)": the signal of each watch.
  void describe(std::string& out) const;
  // After fork(), in the child: detaches every watch (their stop() is then a no-op, so they
  // never touch the mask again), gives the signalfd's number to an empty signalfd, and
  // returns the signals this source blocked itself (bit s-1), leaving the mask as it is.
  std::uint64_t forsake() noexcept;

 private:
  void on_readable();
  std::error_code apply_mask() noexcept;
  void release(int signo) noexcept;

  static constexpr int kMax = 65;  // signals 1..64
  Loop& loop_;
  int fd_ = -1;
  std::optional<IoWatch> watch_;  // on fd_, once it exists
  SignalWatch* cursor_ = nullptr;  // next watch to call, moved on by remove()
  SignalWatch* heads_[kMax] = {};
  sigset_t watched_;
  sigset_t blocked_before_;  // which watched signals the thread had blocked already
};

}  // namespace corio
