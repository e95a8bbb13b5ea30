// IoWatch: starting and stopping a watch, and the loop's per-descriptor list of watches
// whose union of interests the poller holds.
#include <corio/io_watch.hpp>

#include "poller.hpp"

#include <algorithm>

namespace corio {

std::error_code IoWatch::start(unsigned interest) {
  interest &= kReadable | kWritable | kPriority;
  if (fd_ < 0) {
    stop();
    return std::make_error_code(std::errc::bad_file_descriptor);
  }
  if (interest == interest_) return {};
  if (interest == 0) {  // must unlink and leave the loop's count, not just clear the mask
    stop();
    return {};
  }
  Loop& loop = this->loop();
  if (static_cast<std::size_t>(fd_) >= loop.fds_.size()) loop.fds_.resize(fd_ + 1);
  bool was_active = active();
  if (!was_active) {
    auto& slot = loop.fds_[fd_];
    next_ = slot.head;
    prev_ = nullptr;
    if (slot.head) slot.head->prev_ = this;
    slot.head = this;
    start_handle();
  }
  interest_ = interest;
  std::error_code ec = loop.update_fd(fd_, !was_active);
  if (ec) stop();
  return ec;
}

void IoWatch::stop() noexcept {
  if (!active()) return;
  Loop& loop = this->loop();
  loop.unlink_watch(this);
  interest_ = 0;
  stop_handle();
  loop.update_fd(fd_);
}

void Loop::unlink_watch(IoWatch* w) noexcept {
  for (Cursor* c = cursor_; c; c = c->outer)
    if (c->next == w) c->next = w->next_;
  if (w->prev_)
    w->prev_->next_ = w->next_;
  else
    fds_[w->fd_].head = w->next_;
  if (w->next_) w->next_->prev_ = w->prev_;
  w->prev_ = w->next_ = nullptr;
}

// resync: a watch was just started. The descriptor may have been closed and its number
// reused since the poller last heard of it (the kernel then dropped our registration
// silently), so tell the poller again rather than trust `registered`.
std::error_code Loop::update_fd(int fd, bool resync) {
  FdSlot& slot = fds_[fd];
  unsigned want = 0;
  for (IoWatch* w = slot.head; w; w = w->next_) want |= w->interest_;
  if (slot.always_ready) {
    if (want == 0) {
      slot.always_ready = false;
      std::erase(always_ready_, fd);
    }
    return {};
  }
  if (want == slot.registered && !resync) return {};
  int err = poller_->set(fd, slot.registered, want);
  if (want == 0) {  // a failed removal means the kernel had dropped it already
    slot.registered = 0;
    return {};
  }
  if (err == Poller::kAlwaysReady) {
    slot.registered = 0;
    slot.always_ready = true;
    always_ready_.push_back(fd);
    return {};
  }
  if (err) return {err, std::generic_category()};
  slot.registered = want;
  return {};
}

}  // namespace corio
