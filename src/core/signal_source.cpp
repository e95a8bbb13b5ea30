#include "signal_source.hpp"

#include <corio/loop.hpp>

#include <cerrno>
#include <fcntl.h>
#include <ctime>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace corio {

SignalSource::SignalSource(Loop& loop) : loop_(loop) {
  sigemptyset(&watched_);
  sigemptyset(&blocked_before_);
}

SignalSource::~SignalSource() {
  for (auto& head : heads_)
    for (SignalWatch* w = head; w; w = w->next_) w->detach_handle();
  watch_.reset();
  if (fd_ >= 0) close(fd_);
  // Give the thread back the mask it had for the signals we took over.
  for (int s = 1; s < kMax; ++s)
    if (sigismember(&watched_, s)) release(s);
}

// The signal is no longer ours: unblock it unless the thread had it blocked before. An
// instance still pending (raised, not yet read from the signalfd) is discarded first, or
// unblocking would deliver it with its default action (terminating the process, for most).
void SignalSource::release(int signo) noexcept {
  sigdelset(&watched_, signo);
  if (sigismember(&blocked_before_, signo)) {
    sigdelset(&blocked_before_, signo);
    return;
  }
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  const timespec zero{};
  while (sigtimedwait(&one, nullptr, &zero) == signo) {
  }
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
}

std::error_code SignalSource::apply_mask() noexcept {
  int fd = signalfd(fd_, &watched_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return {errno, std::generic_category()};
  if (fd_ < 0) {
    fd_ = fd;
    watch_.emplace(loop_, fd_, [this](unsigned) { on_readable(); });
    watch_->make_internal();  // the loop's own: Loop::close() does not count it
    watch_->unref();
    if (auto ec = watch_->start(kReadable)) return ec;
  }
  return {};
}

std::error_code SignalSource::add(SignalWatch* w) {
  int s = w->signo_;
  if (s <= 0 || s >= kMax || s == SIGKILL || s == SIGSTOP) return std::make_error_code(std::errc::invalid_argument);
  if (!heads_[s]) {
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, s);
    // Block before the signalfd sees it, or a signal in between would take its default action.
    pthread_sigmask(SIG_BLOCK, &one, &old);
    if (sigismember(&old, s)) sigaddset(&blocked_before_, s);
    sigaddset(&watched_, s);
    if (auto ec = apply_mask()) {
      sigdelset(&watched_, s);
      if (!sigismember(&blocked_before_, s)) pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      sigdelset(&blocked_before_, s);
      return ec;
    }
  }
  w->prev_ = nullptr;
  w->next_ = heads_[s];
  if (heads_[s]) heads_[s]->prev_ = w;
  heads_[s] = w;
  return {};
}

void SignalSource::remove(SignalWatch* w) noexcept {
  int s = w->signo_;
  if (cursor_ == w) cursor_ = w->next_;
  if (w->prev_)
    w->prev_->next_ = w->next_;
  else
    heads_[s] = w->next_;
  if (w->next_) w->next_->prev_ = w->prev_;
  w->prev_ = w->next_ = nullptr;
  if (heads_[s]) return;
  sigdelset(&watched_, s);
  apply_mask();
  release(s);
}

std::uint64_t SignalSource::forsake() noexcept {
  std::uint64_t mine = 0;
  for (int s = 1; s < kMax; ++s) {
    for (SignalWatch* w = heads_[s]; w; w = w->next_) w->detach_handle();
    if (sigismember(&watched_, s) && !sigismember(&blocked_before_, s)) mine |= std::uint64_t{1} << (s - 1);
  }
  sigemptyset(&watched_);
  sigemptyset(&blocked_before_);
  if (fd_ >= 0) {
    sigset_t none;
    sigemptyset(&none);
    int fresh = signalfd(-1, &none, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fresh >= 0) {
      dup3(fresh, fd_, O_CLOEXEC);
      close(fresh);
    }
  }
  return mine;
}

void SignalSource::describe(std::string& out) const {
  const char* sep = " (";
  for (int s = 1; s < kMax; ++s)
    for (SignalWatch* w = heads_[s]; w; w = w->next_) {
      out += sep;
      out += "signal " + std::to_string(s);
      sep = ", ";
    }
  if (*sep == ',') out += ')';
}

void SignalSource::on_readable() {
  signalfd_siginfo info;
  while (read(fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    int s = static_cast<int>(info.ssi_signo);
    if (s <= 0 || s >= kMax) continue;
    // A callback may stop any watch of this signal; remove() moves the cursor past it.
    SignalWatch* outer = cursor_;
    for (SignalWatch* w = heads_[s]; w; w = cursor_) {
      cursor_ = w->next_;
      try {
        w->cb_(s);
      } catch (...) {
        loop_.report(std::current_exception());
      }
    }
    cursor_ = outer;
  }
}

}  // namespace corio
