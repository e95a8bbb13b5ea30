// The epoll backend. Waits with nanosecond precision (epoll_pwait2, Linux 5.11+) so a
// timer is neither early nor up to a millisecond late; falls back to epoll_wait with the
// timeout rounded up to whole milliseconds.
#include "poller.hpp"

#include <corio/io_watch.hpp>

#include <cerrno>
#include <fcntl.h>
#include <ctime>
#include <system_error>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace corio {
namespace {

unsigned to_epoll(unsigned interest) {
  unsigned ev = 0;
  if (interest & kReadable) ev |= EPOLLIN | EPOLLRDHUP;
  if (interest & kWritable) ev |= EPOLLOUT;
  if (interest & kPriority) ev |= EPOLLPRI;
  return ev;
}

unsigned from_epoll(unsigned ev) {
  unsigned r = 0;
  if (ev & (EPOLLIN | EPOLLRDHUP)) r |= kReadable;
  if (ev & EPOLLOUT) r |= kWritable;
  if (ev & EPOLLPRI) r |= kPriority;
  if (ev & EPOLLERR) r |= kError;
  if (ev & EPOLLHUP) r |= kHangup;
  return r;
}

class EpollPoller final : public Poller {
 public:
  EpollPoller() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  }
  ~EpollPoller() override { close(fd_); }

  // The epoll instance is shared with the parent after fork(): an EPOLL_CTL_DEL here would
  // remove the parent's registration. A fresh, empty instance takes its number.
  void forsake() noexcept override {
    int fresh = epoll_create1(EPOLL_CLOEXEC);
    if (fresh < 0) return;
    dup3(fresh, fd_, O_CLOEXEC);
    close(fresh);
  }

  int set(int fd, unsigned old_interest, unsigned interest) noexcept override {
    epoll_event ev{};
    ev.events = to_epoll(interest);
    ev.data.fd = fd;
    int op = interest == 0 ? EPOLL_CTL_DEL : old_interest == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
    if (epoll_ctl(fd_, op, fd, &ev) == 0) return 0;
    int err = errno;
    // The descriptor was closed (and maybe its number reused) behind our back: the
    // kernel dropped the old registration, so treat DEL as done and MOD as a new ADD.
    if (op == EPOLL_CTL_DEL && (err == ENOENT || err == EBADF)) return 0;
    if (op == EPOLL_CTL_MOD && err == ENOENT) {
      if (epoll_ctl(fd_, EPOLL_CTL_ADD, fd, &ev) == 0) return 0;
      err = errno;  // and the number may now be a regular file's
    }
    if (op == EPOLL_CTL_ADD && err == EEXIST && epoll_ctl(fd_, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (err == EPERM && regular_file(fd)) return kAlwaysReady;
    return err;
  }

  int wait(std::optional<Duration> timeout, PollEvent* out, int max) noexcept override {
    epoll_event evs[256];
    if (max > 256) max = 256;
    int n = -1;
#ifdef SYS_epoll_pwait2
    if (have_pwait2_) {
      timespec ts{}, *tsp = nullptr;
      if (timeout) {
        auto ns = timeout->count() < 0 ? 0 : timeout->count();
        ts.tv_sec = static_cast<time_t>(ns / 1000000000);
        ts.tv_nsec = static_cast<long>(ns % 1000000000);
        tsp = &ts;
      }
      n = static_cast<int>(syscall(SYS_epoll_pwait2, fd_, evs, max, tsp, nullptr, 0));
      if (n < 0 && errno == ENOSYS) have_pwait2_ = false;
    }
    if (!have_pwait2_)
#endif
    {
      int ms = -1;
      if (timeout) {
        auto ns = timeout->count() < 0 ? 0 : timeout->count();
        auto msl = (ns + 999999) / 1000000;  // round up: never wake before the deadline
        ms = msl > 0x7fffffff ? 0x7fffffff : static_cast<int>(msl);
      }
      n = epoll_wait(fd_, evs, max, ms);
    }
    if (n < 0) return errno == EINTR ? 0 : -errno;  // EINTR: the caller simply iterates again
    for (int i = 0; i < n; ++i) out[i] = PollEvent{evs[i].data.fd, from_epoll(evs[i].events)};
    return n;
  }

 private:
  // epoll refuses regular files (EPERM); they never block.
  static bool regular_file(int fd) noexcept {
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  }

  int fd_;
  bool have_pwait2_ = true;
};

}  // namespace

std::unique_ptr<Poller> Poller::create() { return std::make_unique<EpollPoller>(); }

}  // namespace corio
